/** Datasets (folders, manifests, IDX), decoding to RGB, the bad-file policy and the Loader. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import sharp from 'sharp';
import { ImageFolder, ManifestDataset, IdxDataset, fashionMnist, DEFAULT_BASE_SIZE, FASHION_MNIST_CLASSES, Loader, SampleError, Dataset, Sample, Subset, Augmenter, EpochReport } from '../src';
import { describeWithFashionMnist } from './helpers/tools';

let root: string;

// A solid colour image file of the given format; `channels` 1 writes grayscale, 4 adds alpha.
async function writeImage(file: string, rgb: [number, number, number], size: [number, number] = [20, 30], channels = 3) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const [w, h] = size;
  const raw = Buffer.alloc(w * h * channels);
  for (let i = 0; i < w * h; i++) {
    for (let c = 0; c < channels; c++) raw[i * channels + c] = channels === 1 ? rgb[0] : c < 3 ? rgb[c] : 128;
  }
  const image = sharp(raw, { raw: { width: w, height: h, channels: channels as 1 | 3 | 4 } });
  const ext = path.extname(file).slice(1);
  await (ext === 'jpg' || ext === 'jpeg' ? image.jpeg({ quality: 100 }) : ext === 'tiff' ? image.tiff() : ext === 'webp' ? image.webp({ lossless: true }) : image.png()).toFile(file);
}

function writeIdx(file: string, dims: number[], data: Uint8Array, gzip: boolean) {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  const bytes = Buffer.concat([header, Buffer.from(data)]);
  fs.writeFileSync(file, gzip ? zlib.gzipSync(bytes) : bytes);
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-data-'));
  const folder = path.join(root, 'classes');
  await writeImage(path.join(folder, 'zebra', 'a.png'), [200, 10, 10]);
  await writeImage(path.join(folder, 'zebra', 'nested', 'deeper', 'b.webp'), [10, 200, 10]);
  await writeImage(path.join(folder, 'apple', 'c.JPG'), [10, 10, 200]);
  await writeImage(path.join(folder, 'apple', 'gray.png'), [90, 0, 0], [20, 30], 1);
  await writeImage(path.join(folder, 'apple', 'alpha.png'), [40, 50, 60], [20, 30], 4);
  await writeImage(path.join(folder, 'mango', 'd.tiff'), [120, 130, 140]);
  fs.writeFileSync(path.join(folder, 'mango', 'notes.txt'), 'not an image, not listed');
  fs.writeFileSync(path.join(folder, 'root-level.png'), 'files beside the class folders are not samples');
  const flat = path.join(root, 'flat');
  await writeImage(path.join(flat, 'x.png'), [1, 2, 3]);
  await writeImage(path.join(flat, 'sub', 'y.jpeg'), [4, 5, 6]);
  fs.writeFileSync(path.join(flat, 'corrupt.jpg'), 'this is text, not a JPEG');
  const good = fs.readFileSync(path.join(flat, 'sub', 'y.jpeg'));
  fs.writeFileSync(path.join(flat, 'truncated.jpg'), good.subarray(0, Math.floor(good.length / 2)));
  fs.mkdirSync(path.join(root, 'empty', 'onlyclass'), { recursive: true });
});

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('ImageFolder', () => {
  it('labels files by sorted class folder names, at any depth, skipping other extensions', () => {
    const ds = new ImageFolder(path.join(root, 'classes'), { size: 16 });
    expect(ds.classes).toEqual(['apple', 'mango', 'zebra']);
    expect(ds.files.map((f) => path.relative(path.join(root, 'classes'), f))).toEqual([
      'apple/alpha.png', 'apple/c.JPG', 'apple/gray.png', 'mango/d.tiff', 'zebra/a.png', 'zebra/nested/deeper/b.webp',
    ]);
    expect(Array.from(ds.labels)).toEqual([0, 0, 0, 1, 2, 2]);
  });

  it('decodes every format to RGB uint8 at the base size: grayscale replicated, alpha dropped', async () => {
    const ds = new ImageFolder(path.join(root, 'classes'), { size: [12, 16] });
    const pixel = async (i: number): Promise<[Sample, number[]]> => {
      const s = await ds.get(i);
      return [s, Array.from(s.image.subarray(3 * 50, 3 * 50 + 3))];
    };
    const [alpha, alphaPixel] = await pixel(0);
    expect([alpha.width, alpha.height, alpha.image.length, alpha.label]).toEqual([16, 12, 16 * 12 * 3, 0]);
    // libvips resamples premultiplied by alpha, so values may come back 1 lower.
    alphaPixel.forEach((v, c) => expect(Math.abs(v - [40, 50, 60][c])).toBeLessThanOrEqual(1));
    expect((await pixel(2))[1]).toEqual([90, 90, 90]);
    for (const [i, rgb] of [[1, [10, 10, 200]], [3, [120, 130, 140]], [4, [200, 10, 10]], [5, [10, 200, 10]]] as const) {
      const [sample, value] = await pixel(i);
      expect(sample.label).toBe(ds.labels[i]);
      value.forEach((v, c) => expect(Math.abs(v - rgb[c])).toBeLessThanOrEqual(3)); // JPEG's colour rounding
    }
  });

  it('follows symlinked folders but walks a symlink cycle once', async () => {
    const cyclic = path.join(root, 'cyclic');
    await writeImage(path.join(cyclic, 'only', 'x.png'), [1, 2, 3]);
    fs.symlinkSync(cyclic, path.join(cyclic, 'only', 'loop'));
    const ds = new ImageFolder(cyclic, { size: 4 });
    expect(ds.files).toEqual([path.join(cyclic, 'only', 'x.png')]);
  });

  it('lists dangling and self-looping file links like files: reading them fails like any unreadable image, and the loader skips them', async () => {
    const folder = path.join(root, 'badlinks');
    await writeImage(path.join(folder, 'cls', 'good1.png'), [1, 2, 3]);
    await writeImage(path.join(folder, 'cls', 'good2.png'), [4, 5, 6]);
    fs.symlinkSync('nowhere.png', path.join(folder, 'cls', 'dangling.png'));
    fs.symlinkSync('loop.png', path.join(folder, 'cls', 'loop.png'));
    fs.symlinkSync('self', path.join(folder, 'cls', 'self')); // a looping link that is no image: not listed
    fs.symlinkSync('nowhere', path.join(folder, 'gone')); // a dangling link beside the classes: no class
    const ds = new ImageFolder(folder, { size: 8 });
    expect(ds.classes).toEqual(['cls']);
    expect(ds.files.map((f) => path.basename(f))).toEqual(['dangling.png', 'good1.png', 'good2.png', 'loop.png']);
    await expect(ds.get(0)).rejects.toThrow(SampleError);
    await expect(ds.get(3)).rejects.toThrow(SampleError);
    const reports: EpochReport[] = [];
    const loader = new Loader(ds, { batchSize: 4, shuffle: false, onEpochEnd: (r) => reports.push(r) });
    const sizes: number[] = [];
    for await (const batch of loader.epoch(0)) sizes.push(batch.labels.length);
    expect(sizes).toEqual([2]);
    expect(reports.map((r) => r.skipped)).toEqual([2]);
  });

  it('lists each image once, under its own class: links into the dataset or above it are not followed', async () => {
    const folder = path.join(root, 'crosslinks');
    await writeImage(path.join(folder, 'a', 'a1.png'), [1, 2, 3]);
    await writeImage(path.join(folder, 'b', 'b1.png'), [4, 5, 6]);
    fs.symlinkSync('..', path.join(folder, 'a', 'parent')); // the dataset itself
    fs.symlinkSync('../b', path.join(folder, 'a', 'sibling')); // another class
    fs.symlinkSync('../..', path.join(folder, 'b', 'up')); // above the dataset
    fs.symlinkSync('.', path.join(folder, 'all')); // the dataset as if it were a class
    const ds = new ImageFolder(folder, { size: 8 });
    expect(ds.classes).toEqual(['a', 'b']);
    expect(ds.files.map((f) => path.relative(folder, f))).toEqual(['a/a1.png', 'b/b1.png']);
    expect(Array.from(ds.labels)).toEqual([0, 1]);
    expect(new ImageFolder(folder, { labels: 'none', size: 8 }).files.map((f) => path.relative(folder, f))).toEqual(['a/a1.png', 'b/b1.png']);
  });

  it('reads a flat folder unlabelled (label -1)', async () => {
    const ds = new ImageFolder(path.join(root, 'flat'), { labels: 'none', size: 8 });
    expect(ds.files.map((f) => path.basename(f))).toEqual(['corrupt.jpg', 'truncated.jpg', 'x.png', 'y.jpeg']);
    expect(Array.from(ds.labels)).toEqual([-1, -1, -1, -1]);
    expect((await ds.get(2)).label).toBe(-1);
  });

  it('says clearly when there is nothing to read', () => {
    expect(() => new ImageFolder(path.join(root, 'flat', 'sub'))).toThrow(/no class subfolders.*labels: 'none'/);
    expect(() => new ImageFolder(path.join(root, 'empty'))).toThrow(/no images .* in class folder\(s\) 'onlyclass'/);
    expect(() => new ImageFolder(path.join(root, 'empty', 'onlyclass'), { labels: 'none' })).toThrow(/no images/);
    expect(() => new ImageFolder(path.join(root, 'missing'))).toThrow(/is not a folder/);
  });

  it('rejects a corrupt or truncated file with a SampleError naming it', async () => {
    const ds = new ImageFolder(path.join(root, 'flat'), { labels: 'none', size: 8 });
    await expect(ds.get(0)).rejects.toThrow(SampleError);
    await expect(ds.get(0)).rejects.toThrow(/corrupt\.jpg/);
    await expect(ds.get(1)).rejects.toThrow(/truncated\.jpg.*premature end/);
    await expect(ds.get(4)).toRejectKind('RangeError', /index/);
  });
});

describe('ManifestDataset', () => {
  it('reads CSV (header, quoted paths) and JSONL, paths relative to the manifest', async () => {
    fs.writeFileSync(path.join(root, 'list.csv'), 'path,label\nclasses/zebra/a.png,4\n"classes/apple/c.JPG",7\nclasses/mango/d.tiff\n');
    fs.writeFileSync(path.join(root, 'list.jsonl'), '{"path": "classes/zebra/a.png", "label": 2}\n\n{"path": "flat/x.png"}\n');
    const csv = new ManifestDataset(path.join(root, 'list.csv'), { size: 8 });
    expect(csv.files).toEqual(['classes/zebra/a.png', 'classes/apple/c.JPG', 'classes/mango/d.tiff'].map((f) => path.join(root, f)));
    expect(Array.from(csv.labels)).toEqual([4, 7, -1]);
    expect((await csv.get(1)).label).toBe(7);
    const jsonl = new ManifestDataset(path.join(root, 'list.jsonl'), { size: 8 });
    expect(Array.from(jsonl.labels)).toEqual([2, -1]);
    expect((await jsonl.get(0)).width).toBe(8);
  });

  it('takes class names as labels: label i is the i-th of the sorted names, as ImageFolder\'s class folders', () => {
    fs.writeFileSync(path.join(root, 'named.csv'), 'path,label\nclasses/zebra/a.png,zebra\n"classes/apple/c.JPG", apple\nclasses/mango/d.tiff\n');
    fs.writeFileSync(path.join(root, 'named.jsonl'), '{"path": "classes/zebra/a.png", "label": "circle"}\n{"path": "flat/x.png", "label": "arc"}\n');
    const csv = new ManifestDataset(path.join(root, 'named.csv'));
    expect([csv.classes, Array.from(csv.labels)]).toEqual([['apple', 'zebra'], [1, 0, -1]]);
    const jsonl = new ManifestDataset(path.join(root, 'named.jsonl'));
    expect([jsonl.classes, Array.from(jsonl.labels)]).toEqual([['arc', 'circle'], [1, 0]]);
    expect(new ManifestDataset(path.join(root, 'list.csv')).classes).toEqual([]);
  });

  it('reports malformed lines and empty manifests with file and line', () => {
    fs.writeFileSync(path.join(root, 'bad.jsonl'), '{"path": "a.png", "label": 1}\n{"path": "b.png", "label": true}\n');
    expect(() => new ManifestDataset(path.join(root, 'bad.jsonl'))).toThrow(/bad\.jsonl:2: a label is an integer or a class name, not true/);
    fs.writeFileSync(path.join(root, 'bad.csv'), 'a.png,1\nb.png,-7\n');
    expect(() => new ManifestDataset(path.join(root, 'bad.csv'))).toThrow(/bad\.csv:2: label -7 is not an integer >= -1/);
    fs.writeFileSync(path.join(root, 'empty.csv'), 'path,label\n');
    expect(() => new ManifestDataset(path.join(root, 'empty.csv'))).toThrow(/lists no images/);
  });
});

describe('IdxDataset', () => {
  it('reads gzipped and plain IDX files, replicating gray to RGB', async () => {
    const pixels = Uint8Array.from({ length: 3 * 4 * 5 }, (_, i) => i * 4);
    writeIdx(path.join(root, 'img.idx3.gz'), [3, 4, 5], pixels, true);
    writeIdx(path.join(root, 'lab.idx1'), [3], Uint8Array.from([9, 0, 3]), false);
    const ds = new IdxDataset(path.join(root, 'img.idx3.gz'), path.join(root, 'lab.idx1'));
    expect(ds.length).toBe(3);
    const s = await ds.get(1);
    expect([s.width, s.height, s.label]).toEqual([5, 4, 0]);
    expect(Array.from(s.image.subarray(0, 6))).toEqual([80, 80, 80, 84, 84, 84]);
    const resized = await new IdxDataset(path.join(root, 'img.idx3.gz'), undefined, { size: 10 }).get(2);
    expect([resized.width, resized.height, resized.label, resized.image.length]).toEqual([10, 10, -1, 300]);
  });

  it('rejects mismatched or damaged files clearly', () => {
    writeIdx(path.join(root, 'lab2.idx1'), [2], Uint8Array.from([1, 2]), false);
    expect(() => new IdxDataset(path.join(root, 'img.idx3.gz'), path.join(root, 'lab2.idx1'))).toThrow(/3 images but 2 labels/);
    fs.writeFileSync(path.join(root, 'short.idx3'), Buffer.from([0, 0, 8, 3, 0, 0, 0, 9, 0, 0, 0, 2, 0, 0, 0, 2, 1]));
    expect(() => new IdxDataset(path.join(root, 'short.idx3'))).toThrow(/holds 1 bytes of data/);
    expect(() => new IdxDataset(path.join(root, 'lab.idx1'))).toThrow(/not an IDX file/);
  });

  it('names its samples <images file>:<index> (or <name>:<index>), and its classes when told them; a subset keeps both', () => {
    const images = path.join(root, 'img.idx3.gz');
    const plain = new IdxDataset(images, path.join(root, 'lab.idx1'));
    expect([plain.source(2), plain.classes]).toEqual([`${images}:2`, []]);
    const named = new IdxDataset(images, path.join(root, 'lab.idx1'), { name: 'digits', classes: ['zero', 'one', 'two', 'three'] });
    expect(named.source(1)).toBe('digits:1');
    const subset = new Subset(named, Int32Array.of(2, 0));
    expect([subset.source(0), subset.classes]).toEqual(['digits:2', ['zero', 'one', 'two', 'three']]);
    expect(() => new IdxDataset(images, undefined, { classes: 'zero' as unknown as string[] })).toThrowKind('TypeError', 'classes');
  });

  describeWithFashionMnist("Debian's Fashion-MNIST", () => {
    it('opens the test split', async () => {
      const ds = fashionMnist('test', { size: null });
      expect(ds.length).toBe(10000);
      expect(new Set(ds.labels).size).toBe(10);
      const s = await ds.get(0);
      expect([s.width, s.height, s.label]).toEqual([28, 28, 9]); // the first test image is an ankle boot
      const resized = await fashionMnist('test').get(0); // the recipe's base size unless told otherwise
      expect([resized.width, resized.height, resized.label]).toEqual([DEFAULT_BASE_SIZE, DEFAULT_BASE_SIZE, 9]);
    });

    it("names its samples by split and index, and its classes as torchvision's FashionMNIST does", () => {
      const ds = fashionMnist('test');
      expect([ds.source(0), ds.source(9999)]).toEqual(['fashion-mnist:test:0', 'fashion-mnist:test:9999']);
      expect(ds.classes).toEqual(['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);
      expect(ds.classes).toEqual(FASHION_MNIST_CLASSES);
    });
  });
});

// A dataset of numbered 2 x 2 images that records how many reads are in flight; `bad` indices fail like bad files.
class CountingDataset implements Dataset {
  inFlight = 0;
  maxInFlight = 0;
  constructor(readonly length: number, private readonly bad = new Set<number>()) {}
  async get(index: number): Promise<Sample> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((r) => setTimeout(r, 1));
    this.inFlight--;
    if (this.bad.has(index)) throw new SampleError(`file-${index}.jpg`, 'corrupt');
    return { image: new Uint8Array(12).fill(index % 256), width: 2, height: 2, label: index * 10 };
  }
}

async function collect(iterable: AsyncIterable<{ indices: Int32Array; labels: Int32Array; images: { shape: number[]; toTypedArray(): unknown } }>) {
  const batches: { indices: number[]; labels: number[]; shape: number[]; first: number[] }[] = [];
  for await (const b of iterable) {
    batches.push({ indices: Array.from(b.indices), labels: Array.from(b.labels), shape: b.images.shape, first: Array.from(b.images.toTypedArray() as Uint8Array).filter((_, i) => i % 12 === 0) });
  }
  return batches;
}

describe('Loader', () => {
  it('visits every sample once per epoch, labels and pixels travel together, short last batch kept', async () => {
    const loader = new Loader(new CountingDataset(10), { batchSize: 4, seed: 1 });
    expect(loader.length).toBe(3);
    const batches = await collect(loader.epoch(0));
    expect(batches.map((b) => b.shape)).toEqual([[4, 2, 2, 3], [4, 2, 2, 3], [2, 2, 2, 3]]);
    expect(batches.flatMap((b) => b.indices).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const b of batches) {
      expect(b.labels).toEqual(b.indices.map((i) => i * 10));
      expect(b.first).toEqual(b.indices);
    }
  });

  it('shuffles by (seed, epoch): the same seed gives the same batches, epochs differ', async () => {
    const a = new Loader(new CountingDataset(50), { batchSize: 8, seed: 3 });
    const b = new Loader(new CountingDataset(50), { batchSize: 8, seed: 3 });
    const e0 = await collect(a.epoch(0));
    expect(await collect(b.epoch(0))).toEqual(e0);
    expect(await collect(a.epoch(1))).not.toEqual(e0);
    expect(await collect(new Loader(new CountingDataset(50), { batchSize: 8, seed: 4 }).epoch(0))).not.toEqual(e0);
    expect(await collect(new Loader(new CountingDataset(50), { batchSize: 8, shuffle: false }).epoch(0)))
      .toEqual(Array.from({ length: 7 }, (_, k) => expect.objectContaining({ indices: Array.from({ length: Math.min(8, 50 - 8 * k) }, (_, i) => 8 * k + i) })));
    a.setEpoch(1);
    expect(await collect(a)).toEqual(await collect(b.epoch(1)));
  });

  it('drops the short last batch only with dropLast', async () => {
    const loader = new Loader(new CountingDataset(10), { batchSize: 4, dropLast: true });
    expect(loader.length).toBe(2);
    expect((await collect(loader.epoch(0))).map((b) => b.indices.length)).toEqual([4, 4]);
    expect(() => new Loader(new CountingDataset(3), { batchSize: 4, dropLast: true })).toThrowKind('RangeError', /no batch/);
  });

  it('keeps at most `concurrency` reads in flight', async () => {
    const ds = new CountingDataset(64);
    await collect(new Loader(ds, { batchSize: 16, concurrency: 5, prefetch: 3 }).epoch(0));
    expect(ds.maxInFlight).toBe(5);
  });

  it('decodes ahead while the consumer works, bounded by prefetch', async () => {
    const ds = new CountingDataset(40);
    const loader = new Loader(ds, { batchSize: 4, prefetch: 2, concurrency: 64 });
    const started: number[] = [];
    const get = ds.get.bind(ds);
    let reads = 0;
    ds.get = (i) => (reads++, get(i));
    for await (const batch of loader.epoch(0)) {
      await new Promise((r) => setTimeout(r, 30)); // a training step
      started.push(reads - (batch.step + 1) * 4);
    }
    // While batch k is consumed, batches k+1 and k+2 (8 samples) are already read or being read, never more.
    expect(Math.max(...started)).toBe(8);
    expect(started[0]).toBe(8);
  });

  it("skips bad files by default, reports them at the end of the epoch, and never shifts a label", async () => {
    const reports: unknown[] = [];
    const loader = new Loader(new CountingDataset(12, new Set([2, 7, 8])), { batchSize: 5, shuffle: false, onEpochEnd: (r) => reports.push(r) });
    const batches = await collect(loader.epoch(0));
    expect(batches.map((b) => b.indices)).toEqual([[0, 1, 3, 4], [5, 6, 9], [10, 11]]);
    for (const b of batches) expect(b.labels).toEqual(b.indices.map((i) => i * 10));
    expect(reports).toEqual([{ epoch: 0, batches: 3, samples: 9, skipped: 3, skippedExamples: [
      "Cannot read image 'file-2.jpg': corrupt", "Cannot read image 'file-7.jpg': corrupt", "Cannot read image 'file-8.jpg': corrupt"] }]);
  });

  it('tells onSkip of every skipped sample, with its index and reason, beyond the few the report keeps', async () => {
    const bad = [1, 3, 5, 7, 9, 11, 13];
    const skipped: [number, string, string][] = [];
    const loader = new Loader(new CountingDataset(16, new Set(bad)), {
      batchSize: 4, onEpochEnd: () => undefined, onSkip: (index, error) => skipped.push([index, error.source, error.reason]),
    });
    await collect(loader.epoch(0));
    expect(skipped.sort((a, b) => a[0] - b[0])).toEqual(bad.map((i) => [i, `file-${i}.jpg`, 'corrupt']));
    expect(loader.lastReport?.skippedExamples).toHaveLength(5);
    expect(() => new Loader(new CountingDataset(4), { batchSize: 2, onSkip: 'log' as never })).toThrowKind('TypeError', 'onSkip');
  });

  it("with badFiles 'error' rejects naming the file", async () => {
    const loader = new Loader(new CountingDataset(12, new Set([7])), { batchSize: 5, badFiles: 'error' });
    await expect(collect(loader.epoch(0))).rejects.toThrow("Cannot read image 'file-7.jpg': corrupt");
  });

  it('skips real corrupt and missing files end to end and warns once per epoch', async () => {
    fs.writeFileSync(path.join(root, 'with-missing.csv'), 'flat/x.png,1\nflat/corrupt.jpg,2\nflat/gone.png,3\nflat/sub/y.jpeg,4\nflat/truncated.jpg,5\n');
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const loader = new Loader(new ManifestDataset(path.join(root, 'with-missing.csv'), { size: 8 }), { batchSize: 2, shuffle: false });
    const batches = await collect(loader.epoch(0));
    expect(batches.map((b) => b.labels)).toEqual([[1], [4]]);
    expect(loader.lastReport?.skipped).toBe(3);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0][0])).toMatch(/skipped 3 unreadable image\(s\)[\s\S]*corrupt\.jpg[\s\S]*gone\.png[\s\S]*missing/);
    warn.mockRestore();
  });

  it('feeds the Augmenter: a short last batch works end to end', async () => {
    const loader = new Loader(new ImageFolder(path.join(root, 'classes'), { size: 32 }), { batchSize: 4, seed: 9 });
    const augmenter = new Augmenter({ size: 16 }, { seed: 1 });
    const shapes: number[][] = [];
    for await (const batch of loader) shapes.push((await augmenter.views(batch.images)).shape);
    expect(shapes).toEqual([[8, 3, 16, 16], [4, 3, 16, 16]]);
  });

  it('validates its options', () => {
    const ds = new CountingDataset(4);
    expect(() => new Loader(ds, { batchSize: 0 })).toThrowKind('RangeError', 'batchSize');
    expect(() => new Loader(ds, { batchSize: 2, badFiles: 'ignore' as 'skip' })).toThrowKind('RangeError', 'badFiles');
    expect(() => new Loader(new CountingDataset(0), { batchSize: 2 })).toThrowKind('RangeError', /empty/);
    expect(() => new Loader({} as Dataset, { batchSize: 2 })).toThrowKind('TypeError', /Dataset/);
  });
});
