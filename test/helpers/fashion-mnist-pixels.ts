/** Raw Fashion-MNIST pixels from Debian's dataset-fashion-mnist IDX files, for probe tests on real data. */
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';

export const FASHION_MNIST_DIR = process.env.SIMCLR_FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';

export function fashionMnistAvailable(): boolean {
  return ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']
    .every((name) => fs.existsSync(path.join(FASHION_MNIST_DIR, name)));
}

/** Reads an IDX file (big-endian header: magic with type 0x08 = uint8 and rank, then one uint32 per dimension). */
function readIdx(file: string): { shape: number[]; data: Uint8Array } {
  const bytes = zlib.gunzipSync(fs.readFileSync(path.join(FASHION_MNIST_DIR, file)));
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== 0x08) throw new Error(`${file}: not a uint8 IDX file`);
  const rank = bytes[3];
  const shape = Array.from({ length: rank }, (_, i) => bytes.readUInt32BE(4 + 4 * i));
  return { shape, data: new Uint8Array(bytes.buffer, bytes.byteOffset + 4 + 4 * rank, shape.reduce((a, b) => a * b, 1)) };
}

/** The first `count` images of a split as float pixels in [0, 1] (count x 784) and their labels. */
export function fashionMnistPixels(split: 'train' | 't10k', count: number): { pixels: Float32Array; labels: BigInt64Array } {
  const images = readIdx(`${split}-images-idx3-ubyte.gz`);
  const labels = readIdx(`${split}-labels-idx1-ubyte.gz`);
  const size = images.shape[1] * images.shape[2];
  const pixels = Float32Array.from(images.data.subarray(0, count * size), (v) => v / 255);
  return { pixels, labels: BigInt64Array.from(labels.data.subarray(0, count), (v) => BigInt(v)) };
}
