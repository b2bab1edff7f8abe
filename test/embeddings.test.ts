import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { Encoder, ImageFolder, Subset, resolveAugmentConfig, Tensor, embeddingPaths, extractFeatures, labelsPathFor, readNpy, writeEmbeddings, writeNpy } from '../src';
import { describeWithOracle, runPython } from './helpers/oracle';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-embed-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const features = () => Tensor.fromTypedArray(Float32Array.from({ length: 15 }, (_, i) => i * 0.5 - 3), [5, 3]);

describe('embeddings export', () => {
  it('puts the labels beside the features as <name>.labels.npy', () => {
    expect(labelsPathFor('/runs/a/emb.npy')).toBe('/runs/a/emb.labels.npy');
    expect(labelsPathFor('emb')).toBe('emb.labels.npy');
  });

  it('writes float32 features and int64 labels that read back unchanged', async () => {
    const file = path.join(dir, 'emb.npy');
    const written = await writeEmbeddings(file, features(), [4, 3, 2, 1, 0]);
    expect(written).toEqual({ featuresPath: file, labelsPath: path.join(dir, 'emb.labels.npy') });
    const back = await readNpy(file);
    expect(back.dtype).toBe('float32');
    expect(back.shape).toEqual([5, 3]);
    expect(back.data).toEqual(features().toFloat32Array());
    const labels = await readNpy(written.labelsPath);
    expect(labels).toEqual({ dtype: 'int64', shape: [5], data: new BigInt64Array([4n, 3n, 2n, 1n, 0n]) });
  });

  it('converts float64 features to float32 and accepts label Tensors', async () => {
    const file = path.join(dir, 'emb.npy');
    const doubles = Tensor.fromTypedArray(new Float64Array([0.1, 0.2]), [2, 1]);
    await writeEmbeddings(file, doubles, Tensor.fromTypedArray(new BigInt64Array([7n, 9n]), [2]));
    expect((await readNpy(file)).data).toEqual(new Float32Array([0.1, 0.2]));
    expect((await readNpy(labelsPathFor(file))).data).toEqual(new BigInt64Array([7n, 9n]));
  });

  it('aligns the data to 64 bytes as NPY 1.0 asks', async () => {
    const file = path.join(dir, 'x.npy');
    await writeNpy(file, new Float32Array(6), [2, 3]);
    const bytes = fs.readFileSync(file);
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]));
    const dataStart = 10 + bytes.readUInt16LE(8);
    expect(dataStart % 64).toBe(0);
    expect(bytes[dataStart - 1]).toBe(0x0a);
    expect(bytes.length).toBe(dataStart + 24);
  });

  it('replaces an existing file whole and leaves no temporary files', async () => {
    const file = path.join(dir, 'emb.npy');
    fs.writeFileSync(file, 'old contents');
    await writeEmbeddings(file, features(), [0, 0, 0, 0, 0]);
    expect((await readNpy(file)).shape).toEqual([5, 3]);
    expect(fs.readdirSync(dir).sort()).toEqual(['emb.labels.npy', 'emb.npy']);
  });

  it('names every file of an export after its features file', () => {
    expect(embeddingPaths('/runs/a/emb.npy')).toEqual({
      featuresPath: '/runs/a/emb.npy', labelsPath: '/runs/a/emb.labels.npy', filesPath: '/runs/a/emb.files.csv',
      skippedPath: '/runs/a/emb.skipped.csv', classesPath: '/runs/a/emb.classes.json',
    });
    expect(embeddingPaths('emb').filesPath).toBe('emb.files.csv');
  });

  it('given the rows, writes each row\'s path, label and class in row order, the skipped files with the reason, and the class names', async () => {
    const file = path.join(dir, 'emb.npy');
    const written = await writeEmbeddings(file, features(), [1, 0, -1, 1, 7], {
      sources: ['/d/b/1.png', '/d/a/2.png', 'x,y.png', 'say "hi".png', 'two\nlines.png'],
      classes: ['a', 'b'],
      skipped: [{ source: '/d/a/bad.png', reason: 'unsupported image format' }, { source: 'c,d.jpg', reason: 'premature end of JPEG file' }],
    });
    expect(written).toEqual(embeddingPaths(file));
    // CSV as RFC 4180 quotes it: fields with a comma, a quote or a line break in quotes, quotes doubled.
    expect(fs.readFileSync(written.filesPath!, 'utf8')).toBe(
      'path,label,class\n/d/b/1.png,1,b\n/d/a/2.png,0,a\n"x,y.png",-1,\n"say ""hi"".png",1,b\n"two\nlines.png",7,\n');
    expect(fs.readFileSync(written.skippedPath!, 'utf8')).toBe(
      'path,reason\n/d/a/bad.png,unsupported image format\n"c,d.jpg",premature end of JPEG file\n');
    expect(JSON.parse(fs.readFileSync(written.classesPath!, 'utf8'))).toEqual(['a', 'b']);
  });

  it('writes the skipped list and the class names even when empty, so none is left from an earlier export', async () => {
    const file = path.join(dir, 'emb.npy');
    await writeEmbeddings(file, features(), [0, 0, 0, 0, 0], { sources: ['a', 'b', 'c', 'd', 'e'], skipped: [{ source: 'f', reason: 'missing' }] });
    await writeEmbeddings(file, features(), [0, 0, 0, 0, 0], { sources: ['a', 'b', 'c', 'd', 'e'] });
    expect(fs.readFileSync(embeddingPaths(file).skippedPath, 'utf8')).toBe('path,reason\n');
    expect(fs.readFileSync(embeddingPaths(file).classesPath, 'utf8')).toBe('[]\n');
    expect(fs.readFileSync(embeddingPaths(file).filesPath, 'utf8')).toBe('path,label,class\na,0,\nb,0,\nc,0,\nd,0,\ne,0,\n');
  });

  it('fails without a trace when the folder does not exist', async () => {
    await expect(writeEmbeddings(path.join(dir, 'missing', 'emb.npy'), features(), [0, 1, 2, 3, 4])).rejects.toThrow(/ENOENT/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('rejects bad arguments with errors naming them', async () => {
    const file = path.join(dir, 'emb.npy');
    await expect(writeEmbeddings(file, features(), [0, 1])).rejects.toThrow(/one label per feature row \(5\) for labels/);
    await expect(writeEmbeddings(file, features(), [0, 1, 2, 3, 4.5])).rejects.toThrow(RangeError);
    await expect(writeEmbeddings(file, Tensor.ones([5]), [0, 1, 2, 3, 4])).rejects.toThrow(/2-D Tensor/);
    await expect(writeEmbeddings(file, Tensor.zeros([1, 2], { dtype: 'uint8' }), [0])).rejects.toThrow(/floating point Tensor/);
    await expect(writeEmbeddings(file, features(), Tensor.ones([5]))).rejects.toThrow(/integer Tensor for labels/);
    await expect(writeEmbeddings('', features(), [0, 1, 2, 3, 4])).rejects.toThrow(/featuresPath/);
    await expect(writeNpy(file, new Float32Array(5), [2, 3])).rejects.toThrow(/6 elements/);
    const labels = [0, 1, 2, 3, 4];
    await expect(writeEmbeddings(file, features(), labels, { sources: ['a'] })).rejects.toThrow(/one source per feature row \(5\) for rows.sources/);
    await expect(writeEmbeddings(file, features(), labels, { sources: 'abcde' as never })).rejects.toThrow(/Expected an array of strings for rows.sources/);
    await expect(writeEmbeddings(file, features(), labels, { sources: [...'abcde'], classes: [1] as never })).rejects.toThrow(/Expected an array of class names for rows.classes/);
    await expect(writeEmbeddings(file, features(), labels, { sources: [...'abcde'], skipped: ['f'] as never })).rejects.toThrow(/Expected an array of \{ source, reason \} strings for rows.skipped/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('extractFeatures: which file each row is', () => {
  let folder: string;
  beforeAll(async () => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-embed-folder-'));
    for (const [c, name] of ['dark', 'light'].entries()) {
      fs.mkdirSync(path.join(folder, name));
      for (let i = 0; i < 3; i++) {
        const value = c === 0 ? 20 + 30 * i : 160 + 30 * i;
        await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: value, g: 255 - value, b: (value * 7) % 256 } } })
          .png().toFile(path.join(folder, name, `${i}.png`));
      }
    }
    fs.writeFileSync(path.join(folder, 'dark', '1-broken.png'), 'text, not a PNG');
    const jpeg = await sharp({ create: { width: 16, height: 16, channels: 3, background: 'red' } }).jpeg().toBuffer();
    fs.writeFileSync(path.join(folder, 'light', 'truncated.jpg'), jpeg.subarray(0, jpeg.length >> 1));
  });
  afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

  it('leaves unreadable files out, says which file each row is, and lists the skipped ones with the reason', async () => {
    const dataset = new ImageFolder(folder, { size: 16 });
    const encoder = await Encoder.create({ backbone: 'resnet18', outDim: 0 });
    const options = { size: 16, normalize: resolveAugmentConfig({ size: 16 }).normalize, device: 'cpu', batchSize: 3 };
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const extracted = await extractFeatures(encoder, dataset, options);
    warn.mockRestore();
    const good = ['dark/0.png', 'dark/1.png', 'dark/2.png', 'light/0.png', 'light/1.png', 'light/2.png'].map((f) => path.join(folder, f));
    expect(extracted.features.shape).toEqual([6, 512]);
    expect(extracted.sources).toEqual(good);
    expect(Array.from(extracted.indices, (i) => dataset.files[i])).toEqual(good);
    expect(Array.from(extracted.labels.toTypedArray() as BigInt64Array, Number)).toEqual([0, 0, 0, 1, 1, 1]);
    expect(extracted.classes).toEqual(['dark', 'light']);
    expect(extracted.skipped).toEqual([
      { index: 1, source: path.join(folder, 'dark', '1-broken.png'), reason: expect.stringMatching(/unsupported image format/) },
      { index: 7, source: path.join(folder, 'light', 'truncated.jpg'), reason: expect.stringMatching(/premature end|truncated|corrupt/i) },
    ]);
    // Row 4 is the embedding of its file alone.
    const alone = await extractFeatures(encoder, new Subset(dataset, Int32Array.of(extracted.indices[4])), options);
    const row = extracted.features.toFloat32Array().subarray(4 * 512, 5 * 512);
    const single = alone.features.toFloat32Array();
    expect(Math.max(...row.map((v, i) => Math.abs(v - single[i])))).toBeLessThan(1e-5);
    expect(alone.sources).toEqual([good[4]]);
  });
});

describeWithOracle('embeddings export read by numpy', (python) => {
  it('numpy.load reads both files with their dtypes, shapes and values', async () => {
    const file = path.join(dir, 'emb.npy');
    await writeEmbeddings(file, features(), [4, 3, 2, 1, 2 ** 40]);
    const script = `
import json, sys
import numpy as np
args = json.loads(sys.argv[1])
x = np.load(args['features']); y = np.load(args['labels'])
print(json.dumps({'xd': str(x.dtype), 'xs': list(x.shape), 'xc': bool(x.flags['C_CONTIGUOUS']), 'x': x.ravel().tolist(),
                  'yd': str(y.dtype), 'ys': list(y.shape), 'y': y.tolist()}))`;
    const loaded = JSON.parse(runPython(python, script, { features: file, labels: labelsPathFor(file) }));
    expect(loaded).toEqual({
      xd: 'float32', xs: [5, 3], xc: true, x: Array.from(features().toFloat32Array()),
      yd: 'int64', ys: [5], y: [4, 3, 2, 1, 2 ** 40],
    });
  });

  it("Python's csv module reads the file list back, names with commas, quotes and line breaks included", async () => {
    const file = path.join(dir, 'emb.npy');
    const sources = ['plain.png', 'x,y.png', 'say "hi".png', 'two\nlines.png', 'tab\there.png'];
    await writeEmbeddings(file, features(), [0, 1, -1, 1, 0], { sources, classes: ['a', 'b'] });
    const script = `
import csv, json, sys
with open(json.loads(sys.argv[1])['files'], newline='', encoding='utf-8') as f:
    print(json.dumps(list(csv.DictReader(f))))`;
    const rows = JSON.parse(runPython(python, script, { files: embeddingPaths(file).filesPath }));
    expect(rows).toEqual(sources.map((p, i) => ({ path: p, label: ['0', '1', '-1', '1', '0'][i], class: ['a', 'b', '', 'b', 'a'][i] })));
  });

  it('reads float32 and int64 arrays that numpy wrote', async () => {
    const script = `
import json, sys
import numpy as np
args = json.loads(sys.argv[1])
np.save(args['x'], np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 8)
np.save(args['y'], np.array([-5, 0, 2**50], dtype=np.int64))`;
    runPython(python, script, { x: path.join(dir, 'x.npy'), y: path.join(dir, 'y.npy') });
    const x = await readNpy(path.join(dir, 'x.npy'));
    expect(x.shape).toEqual([2, 3, 4]);
    expect(x.data).toEqual(Float32Array.from({ length: 24 }, (_, i) => i / 8));
    expect((await readNpy(path.join(dir, 'y.npy'))).data).toEqual(new BigInt64Array([-5n, 0n, 2n ** 50n]));
  });
});
