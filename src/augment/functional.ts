/**
 * Functional image ops with explicit per-sample parameters, batched: each takes a float32 Tensor `N x 3 x H x W` with
 * values in [0, 1] and one parameter per image, and equals torchvision.transforms.functional's op of the same name
 * applied to each image (tolerances in test/augment.test.ts). All run off the JS thread on the tensor's device.
 */
import { native, NativeTensor } from '../native';
import { Tensor } from '../tensor';
import { checkInteger, checkNumber, invalid, withCallerStack } from '../errors';

/** A crop box in pixels of the input image. */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

function batchOf(images: Tensor, op: string): number {
  if (!(images instanceof Tensor)) throw invalid('a Tensor', `images of ${op}`, images);
  const shape = images.shape;
  if (shape.length !== 4 || images.dtype !== 'float32') {
    throw invalid('a float32 Tensor N x C x H x W', `images of ${op}`, `${images.dtype} [${shape.join(', ')}]`);
  }
  return shape[0];
}

function perSample(values: number | readonly number[], n: number, name: string, min: number, max: number): Float32Array {
  const list = typeof values === 'number' ? new Array<number>(n).fill(values) : values;
  if (!Array.isArray(list) && !(list instanceof Float32Array)) throw invalid('a number or an array of numbers', name, values);
  if (list.length !== n) throw invalid(`${n} values (one per image)`, name, `${list.length} values`, 'range');
  return Float32Array.from(list, (v, i) => checkNumber(v, `${name}[${i}]`, min, max));
}

async function wrap(result: Promise<NativeTensor>): Promise<Tensor> {
  return new Tensor(await withCallerStack(result));
}

/**
 * Crops `boxes[n]` of image n and resizes it to `size` ([height, width]) with bilinear interpolation (no antialias),
 * then mirrors it left-right where `flip[n]`: torchvision's `resized_crop(..., antialias=False)` (+ `hflip`).
 */
export function resizedCrop(images: Tensor, boxes: readonly CropBox[], size: readonly [number, number], flip?: readonly boolean[]): Promise<Tensor> {
  const n = batchOf(images, 'resizedCrop');
  if (!Array.isArray(boxes) || boxes.length !== n) throw invalid(`${n} crop boxes (one per image)`, 'boxes', boxes);
  const flat = new Float64Array(4 * n);
  boxes.forEach((box, i) => {
    flat.set([box.top, box.left, box.height, box.width].map((v, j) => checkNumber(v, `boxes[${i}].${['top', 'left', 'height', 'width'][j]}`, 0)), 4 * i);
  });
  if (!Array.isArray(size) || size.length !== 2) throw invalid('[height, width]', 'size', size);
  const outSize = [checkInteger(size[0], 'size[0]', 1, 8192), checkInteger(size[1], 'size[1]', 1, 8192)];
  let mirror: Uint8Array | undefined;
  if (flip !== undefined) {
    if (!Array.isArray(flip) || flip.length !== n) throw invalid(`${n} booleans`, 'flip', flip);
    mirror = Uint8Array.from(flip, (f) => (f ? 1 : 0));
  }
  return wrap(native.resizedCrop(images.handle, flat, outSize, mirror));
}

/** Mirrors every image left-right. */
export function hflip(images: Tensor): Promise<Tensor> {
  batchOf(images, 'hflip');
  return wrap(native.hflip(images.handle));
}

/** Multiplies image n by `factors[n]` (>= 0), clamped to [0, 1]. A single number applies to all. */
export function adjustBrightness(images: Tensor, factors: number | readonly number[]): Promise<Tensor> {
  const n = batchOf(images, 'adjustBrightness');
  return wrap(native.adjustBrightness(images.handle, perSample(factors, n, 'factors', 0, Infinity)));
}

/** Blends image n with its mean luma by `factors[n]` (>= 0; 1 = unchanged). */
export function adjustContrast(images: Tensor, factors: number | readonly number[]): Promise<Tensor> {
  const n = batchOf(images, 'adjustContrast');
  return wrap(native.adjustContrast(images.handle, perSample(factors, n, 'factors', 0, Infinity)));
}

/** Blends image n with its grayscale version by `factors[n]` (>= 0; 0 = gray, 1 = unchanged). */
export function adjustSaturation(images: Tensor, factors: number | readonly number[]): Promise<Tensor> {
  const n = batchOf(images, 'adjustSaturation');
  return wrap(native.adjustSaturation(images.handle, perSample(factors, n, 'factors', 0, Infinity)));
}

/** Rotates the hue of image n by `factors[n]` turns, in [-0.5, 0.5]. */
export function adjustHue(images: Tensor, factors: number | readonly number[]): Promise<Tensor> {
  const n = batchOf(images, 'adjustHue');
  return wrap(native.adjustHue(images.handle, perSample(factors, n, 'factors', -0.5, 0.5)));
}

/** ITU-R 601-2 luma, with 1 or 3 (replicated) output channels. */
export function rgbToGrayscale(images: Tensor, channels: 1 | 3 = 1): Promise<Tensor> {
  batchOf(images, 'rgbToGrayscale');
  if (channels !== 1 && channels !== 3) throw invalid('1 or 3', 'channels', channels, 'range');
  return wrap(native.rgbToGrayscale(images.handle, channels));
}

/** Gaussian blur with an odd `kernelSize` and `sigmas[n]` (> 0) for image n, reflect padding. */
export function gaussianBlur(images: Tensor, kernelSize: number, sigmas: number | readonly number[]): Promise<Tensor> {
  const n = batchOf(images, 'gaussianBlur');
  checkInteger(kernelSize, 'kernelSize', 1, 8191);
  if (kernelSize % 2 === 0) throw invalid('an odd integer', 'kernelSize', kernelSize, 'range');
  const sigma = perSample(sigmas, n, 'sigmas', 0, Infinity);
  if (sigma.some((s) => s <= 0)) throw invalid('sigmas > 0', 'sigmas', 0, 'range');
  return wrap(native.gaussianBlur(images.handle, kernelSize, sigma));
}

/** (image - mean[c]) / std[c] for each of the 3 channels. */
export function normalize(images: Tensor, mean: readonly number[], std: readonly number[]): Promise<Tensor> {
  batchOf(images, 'normalize');
  return wrap(native.normalize(images.handle, triple(mean, 'mean'), triple(std, 'std', true)));
}

/** @internal Checks a per-channel triple. */
export function triple(values: readonly number[], name: string, nonZero = false): number[] {
  if (!Array.isArray(values) || values.length !== 3) throw invalid('an array of 3 numbers', name, values);
  return values.map((v, i) => {
    const x = checkNumber(v, `${name}[${i}]`);
    if (nonZero && x === 0) throw invalid('a non-zero number', `${name}[${i}]`, x, 'range');
    return x;
  });
}

