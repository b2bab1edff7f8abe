/**
 * Files a user names that are not files: a FIFO (named pipe) blocks whoever opens it for reading until something
 * writes, a device such as /dev/zero never ends. Every reader of user files refuses both before reading a byte: an
 * error naming the file, at once, never a hang or a read that grows until the process dies. A FIFO among a data
 * folder's images is skipped like any unreadable image.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { Encoder, ImageFolder, Loader, readNpy, readStateDict } from '../src';
import { readCheckpoint, readCheckpointHeader } from '../src/train/checkpoint';
import { readConfigFile } from '../src/run/config';
import { decodeFile } from '../src/data/decode';
import { decodeJpeg } from '../src/augment/image-batch';
import { SampleError } from '../src/data/dataset';
import { ManifestDataset } from '../src/data/manifest';
import { NotARegularFileError, readRegularFile } from '../src/user-file';
import { native } from '../src/native';

let root: string;
let fifo: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-special-'));
  fifo = path.join(root, 'pipe.jpg');
  const made = spawnSync('mkfifo', [fifo]);
  if (made.status !== 0) throw new Error(`mkfifo failed: ${made.stderr}`);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

// Each reader, given the path: it must settle within this test's timeout (a FIFO would block it forever, /dev/zero
// would read until memory runs out).
const readers: [string, (file: string) => Promise<unknown>][] = [
  ['readCheckpoint', (f) => readCheckpoint(f)],
  ['readCheckpointHeader', (f) => readCheckpointHeader(f)],
  ['readStateDict', (f) => readStateDict(f)],
  ['readNpy', (f) => readNpy(f)],
  ['Encoder.create({ weights })', (f) => Encoder.create({ backbone: 'resnet18', outDim: 10, weights: f })],
  ['readConfigFile', async (f) => readConfigFile(f)],
  ['ManifestDataset', async (f) => new ManifestDataset(f)],
  ['decodeFile', (f) => decodeFile(f, [8, 8])],
  ['decodeJpeg', (f) => decodeJpeg(f, [8, 8])],
];

describe('readers of user files refuse what is not a regular file, before reading it', () => {
  it.each(readers)('%s: a FIFO is an error naming it, not a hang', async (_name, read) => {
    await expect(read(fifo)).rejects.toThrow(`${fifo} is a FIFO (named pipe), not a regular file`);
  }, 10_000);

  it.each(readers)('%s: /dev/zero is an error naming it, not a read without end', async (_name, read) => {
    await expect(read('/dev/zero')).rejects.toThrow('/dev/zero is a character device, not a regular file');
  }, 10_000);

  it('a folder is refused the same way, and a missing file keeps its own error', async () => {
    await expect(readRegularFile(root)).rejects.toThrow(NotARegularFileError);
    await expect(readRegularFile(path.join(root, 'gone'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('reads a regular file whole, and bounds what it may hold', async () => {
    const file = path.join(root, 'ten.bin');
    fs.writeFileSync(file, Buffer.alloc(10, 7));
    expect(await readRegularFile(file)).toEqual(Buffer.alloc(10, 7));
    await expect(readRegularFile(file, { maxBytes: 9 })).rejects.toThrow(`${file} holds 10 bytes, more than the 9 it may`);
  });
});

describe('a FIFO among a data folder\'s images', () => {
  it('is skipped like an unreadable image: the loader gives the others, and says which it skipped', async () => {
    const data = path.join(root, 'data');
    fs.mkdirSync(path.join(data, 'a'), { recursive: true });
    for (let i = 0; i < 3; i++) {
      await sharp({ create: { width: 12, height: 12, channels: 3, background: { r: 40 * i, g: 0, b: 0 } } }).jpeg().toFile(path.join(data, 'a', `${i}.jpg`));
    }
    const made = spawnSync('mkfifo', [path.join(data, 'a', 'pipe.jpg')]);
    expect(made.status).toBe(0);
    const dataset = new ImageFolder(data, { size: 8 });
    expect(dataset.length).toBe(4);
    await expect(dataset.get(3)).rejects.toThrow(SampleError);
    const reports: { skipped: number; skippedExamples: string[] }[] = [];
    const loader = new Loader(dataset, { batchSize: 4, shuffle: false, onEpochEnd: (report) => reports.push(report) });
    let images = 0;
    for await (const batch of loader) images += batch.images.shape[0];
    expect(images).toBe(3);
    expect(reports.map((r) => r.skipped)).toEqual([1]);
    expect(reports[0].skippedExamples[0]).toContain('pipe.jpg is a FIFO (named pipe), not a regular file');
  }, 20_000);
});

describe('a JPEG swapped for a FIFO after it was checked', () => {
  // The native decoder opens the path it is given itself. It used to be given the user's path after a check of it, so
  // a FIFO renamed over the file in between blocked it (a hang before step 1). Here the swap happens at the worst
  // moment, as the path goes to the addon: the decoder must read the file that was checked, not what the path names.
  it('decodes the file that was checked, not the FIFO now at its path', async () => {
    if (!native.jpegDecoder) return; // an addon without libjpeg leaves JPEGs to sharp, which reads bytes
    const file = path.join(root, 'swapped.jpg');
    await sharp({ create: { width: 12, height: 10, channels: 3, background: { r: 200, g: 10, b: 10 } } }).jpeg().toFile(file);
    const swap = path.join(root, 'swap-fifo');
    expect(spawnSync('mkfifo', [swap]).status).toBe(0);
    const realDecode = native.decodeJpeg;
    const spy = jest.spyOn(native, 'decodeJpeg').mockImplementation((source, width, height) => {
      fs.renameSync(swap, file); // the path names a FIFO from now on
      return realDecode.call(native, source, width, height);
    });
    try {
      const decoded = await decodeFile(file, null);
      expect([decoded.width, decoded.height]).toEqual([12, 10]);
      expect(spy).toHaveBeenCalledTimes(1);
      expect(fs.statSync(file).isFIFO()).toBe(true);
      // What the path names now is refused, as any FIFO is.
      await expect(decodeFile(file, null)).rejects.toThrow(`${file} is a FIFO (named pipe), not a regular file`);
    } finally {
      spy.mockRestore();
    }
  }, 10_000);
});
