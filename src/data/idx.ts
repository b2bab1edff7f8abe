/** MNIST-style IDX files (gzipped or not): grayscale images replicated to RGB, with their labels. */
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { invalid } from '../errors';
import { BaseSize, checkIndex, Dataset, DEFAULT_BASE_SIZE, Sample } from './dataset';
import { resolveBaseSize } from './decode';
import { resizeImage } from '../augment/image-batch';
import { readRegularFileSync } from '../user-file';

export interface IdxOptions {
  /** Resize images to this; default null: keep the file's size (28 x 28 for MNIST). */
  size?: BaseSize;
  /** What `source(i)` names sample i after, as `<name>:<i>` (default: the images file's path). */
  name?: string;
  /** Names of the label values: label i is `classes[i]` (default none). */
  classes?: readonly string[];
}

function readIdx(file: string, dims: number): { shape: number[]; data: Uint8Array } {
  let bytes: Buffer = readRegularFileSync(file);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = zlib.gunzipSync(bytes);
  // Magic: two zero bytes, type 0x08 (unsigned byte), number of dimensions; then one big-endian uint32 per dimension.
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== 0x08 || bytes[3] !== dims) {
    throw new Error(`IdxDataset: '${file}' is not an IDX file of unsigned bytes with ${dims} dimension(s)`);
  }
  const header = 4 + 4 * dims;
  if (bytes.length < header) throw new Error(`IdxDataset: '${file}' is truncated`);
  const shape = Array.from({ length: dims }, (_, i) => bytes.readUInt32BE(4 + 4 * i));
  const expected = shape.reduce((a, b) => a * b, 1);
  if (bytes.length - header !== expected) {
    throw new Error(`IdxDataset: '${file}' holds ${bytes.length - header} bytes of data, its header [${shape.join(', ')}] says ${expected}`);
  }
  return { shape, data: new Uint8Array(bytes.buffer, bytes.byteOffset + header, expected) };
}

export class IdxDataset implements Dataset {
  readonly count: number;
  readonly width: number;
  readonly height: number;
  readonly labels: Int32Array;
  /** Names of the label values (label i is classes[i]); empty when not given. */
  readonly classes: readonly string[];
  /** What {@link source} names samples after. */
  readonly name: string;
  private readonly pixels: Uint8Array;
  private readonly size: readonly [number, number] | null;

  /** `images`: an idx3-ubyte file; `labels`: its idx1-ubyte labels (omit for label -1). Either may be gzipped. */
  constructor(images: string, labels?: string, options: IdxOptions = {}) {
    if (typeof images !== 'string') throw invalid('an IDX file path', 'images', images);
    if (labels !== undefined && typeof labels !== 'string') throw invalid('an IDX file path', 'labels', labels);
    if (options.name !== undefined && typeof options.name !== 'string') throw invalid('a string', 'name', options.name);
    if (options.classes !== undefined && (!Array.isArray(options.classes) || !options.classes.every((c) => typeof c === 'string'))) {
      throw invalid('an array of class names', 'classes', options.classes);
    }
    this.name = options.name ?? images;
    this.classes = Object.freeze([...(options.classes ?? [])]);
    this.size = resolveBaseSize(options.size === undefined ? null : options.size);
    const { shape, data } = readIdx(images, 3);
    [this.count, this.height, this.width] = shape;
    if (this.count === 0) throw new Error(`IdxDataset: '${images}' holds no images`);
    this.pixels = data;
    if (labels === undefined) {
      this.labels = new Int32Array(this.count).fill(-1);
    } else {
      const read = readIdx(labels, 1);
      if (read.shape[0] !== this.count) throw new Error(`IdxDataset: ${this.count} images but ${read.shape[0]} labels in '${labels}'`);
      this.labels = Int32Array.from(read.data);
    }
  }

  get length(): number {
    return this.count;
  }

  async get(index: number): Promise<Sample> {
    checkIndex(index, this.length);
    const plane = this.width * this.height;
    const gray = this.pixels.subarray(index * plane, (index + 1) * plane);
    const label = this.labels[index];
    const image = new Uint8Array(plane * 3);
    for (let i = 0; i < plane; i++) image[3 * i] = image[3 * i + 1] = image[3 * i + 2] = gray[i];
    if (this.size && (this.size[0] !== this.height || this.size[1] !== this.width)) {
      // The addon's resize is PIL's BILINEAR (what torchvision's Resize does to these images in the PyTorch peer), and
      // far cheaper per image than libvips through sharp, whose per-image cost made resizing the main cost of an epoch.
      const [height, width] = this.size;
      return { image: await resizeImage(image, this.width, this.height, width, height), width, height, label };
    }
    return { image, width: this.width, height: this.height, label };
  }

  /** Sample `index` as `<name>:<index>` (e.g. `fashion-mnist:test:123`): the images are not files of their own. */
  source(index: number): string {
    return `${this.name}:${index}`;
  }
}

/** Fashion-MNIST's class names, by label (as torchvision's FashionMNIST.classes). */
export const FASHION_MNIST_CLASSES = Object.freeze(['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);

/** Debian's dataset-fashion-mnist location. */
export const FASHION_MNIST_ROOT = '/usr/share/datasets/fashion-mnist';

/**
 * Fashion-MNIST's train (60000) or test (10000) split, from `root` (gzipped or plain IDX files), resized to `size`
 * (default {@link DEFAULT_BASE_SIZE}, 32, as every dataset of a run; null keeps 28 x 28). Its samples are named
 * `fashion-mnist:<split>:<index>` and its classes are {@link FASHION_MNIST_CLASSES}.
 */
export function fashionMnist(split: 'train' | 'test', { root = FASHION_MNIST_ROOT, size = DEFAULT_BASE_SIZE }: { root?: string } & Pick<IdxOptions, 'size'> = {}): IdxDataset {
  if (split !== 'train' && split !== 'test') throw invalid("'train' or 'test'", 'split', split, 'range');
  const prefix = split === 'train' ? 'train' : 't10k';
  const find = (name: string) => {
    for (const candidate of [`${name}.gz`, name]) {
      const file = path.join(root, candidate);
      if (fs.existsSync(file)) return file;
    }
    throw new Error(`fashionMnist: ${name}(.gz) not found in '${root}' (Debian: apt-get install dataset-fashion-mnist)`);
  };
  return new IdxDataset(find(`${prefix}-images-idx3-ubyte`), find(`${prefix}-labels-idx1-ubyte`), {
    size, name: `fashion-mnist:${split}`, classes: FASHION_MNIST_CLASSES,
  });
}
