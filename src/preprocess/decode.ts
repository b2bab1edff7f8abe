/**
 * Decoding image bytes with sharp (libvips, on the libuv pool) to RGB uint8 HWC at a base size: the part of simclr's
 * decoding that needs no LibTorch, shared by the datasets (data/decode.ts, which adds the addon's JPEG decoder and
 * resize) and simclr/preprocess (which resizes in TypeScript).
 */
import * as os from 'os';
import type SharpModule from 'sharp';

/** One decoded image: RGB uint8, row-major `height x width x 3` (HWC). */
export interface DecodedImage {
  image: Uint8Array;
  width: number;
  height: number;
}

/** One sample could not be read: a missing, corrupt, truncated or unsupported file. */
export class SampleError extends Error {
  override name = 'SampleError';
  /** The file (or other source) of the bad sample. */
  readonly source: string;
  /** Why it cannot be read ("the file is missing"), without the file's name. */
  readonly reason: string;

  constructor(source: string, reason: string) {
    super(`Cannot read image '${source}': ${reason}`);
    this.source = source;
    this.reason = reason;
  }
}

/**
 * The libuv pool size simclr asks for unless UV_THREADPOOL_SIZE is set: one thread per core (at least 2), since a JPEG
 * is read, decoded and resized in one job on a pool thread, and more threads than cores only contend (measured in the
 * augment benchmark, bench/README.md). Node's default of 4 would leave a 16-core host decoding 4 images at a time.
 */
export const DECODE_THREADS = Math.min(1024, Math.max(2, os.availableParallelism()));

/**
 * Asks libuv for {@link DECODE_THREADS} pool threads unless UV_THREADPOOL_SIZE is set. It only takes effect before
 * anything has used the pool, so the package's entry points (index.ts, cli.ts, preprocess/index.ts) call it first thing.
 */
export function configureThreadPool(): void {
  if (process.env.UV_THREADPOOL_SIZE === undefined) process.env.UV_THREADPOOL_SIZE = String(DECODE_THREADS);
}

let loadedSharp: typeof SharpModule | undefined;

/**
 * sharp, loaded by the first decode that needs it: importing simclr loads neither sharp nor libvips (a program that
 * never decodes a file, or decodes only JPEGs natively, does without them). libvips' operation cache keeps the last 100
 * operations for reuse; a training set decodes each file once per epoch, so it never hits, and keeping it cost ~6% of
 * the decoding time: it is turned off on load (for the process: sharp has one cache).
 */
function sharp(): typeof SharpModule {
  if (!loadedSharp) {
    loadedSharp = require('sharp') as typeof SharpModule;
    loadedSharp.cache(false);
  }
  return loadedSharp;
}

type Pipeline = ReturnType<typeof SharpModule>;

/** File extensions the folder datasets pick up (lower case), as torchvision's IMG_EXTENSIONS for these formats. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff'];

/** Whether `bytes` start as a JPEG does (SOI and a marker). */
export function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

// libvips' bilinear (triangle) resampling, close to the seed's torchvision Resize on PIL images.
function toRgb(image: Pipeline, size: readonly [number, number] | null): Pipeline {
  const rgb = image.removeAlpha().toColourspace('srgb');
  return size ? rgb.resize(size[1], size[0], { fit: 'fill', kernel: 'linear' }) : rgb;
}

/** Width and height from a JPEG's (first SOF segment) or PNG's (IHDR) header; null for other or damaged files. */
export function headerSize(bytes: Uint8Array): { width: number; height: number } | null {
  const u16 = (i: number) => (bytes[i] << 8) | bytes[i + 1];
  if (bytes.length >= 24 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47 &&
    String.fromCharCode(...bytes.subarray(12, 16)) === 'IHDR') {
    const width = ((bytes[16] << 24) | (bytes[17] << 16) | u16(18)) >>> 0;
    const height = ((bytes[20] << 24) | (bytes[21] << 16) | u16(22)) >>> 0;
    return width > 0 && height > 0 ? { width, height } : null;
  }
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  for (let i = 2; i + 9 < bytes.length;) {
    if (bytes[i] !== 0xff) return null;
    const marker = bytes[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
    } else if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      i += 2; // no length
    } else if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const height = u16(i + 5);
      const width = u16(i + 7);
      return width > 0 && height > 0 ? { width, height } : null;
    } else {
      i += 2 + u16(i + 2);
    }
  }
  return null;
}

// Whether libvips would shrink this image on load (JPEG DCT scaling) on its way to `size`: sharp does when the image is
// at least 3 times the size along both sides (below that its rounding rule keeps the full decode).
function shrinksOnLoad(header: { width: number; height: number }, size: readonly [number, number]): boolean {
  return Math.min(header.width / size[1], header.height / size[0]) >= 3;
}

async function raw(image: Pipeline): Promise<DecodedImage> {
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels instead of 3`);
  return { image: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

/** PIL's bilinear resize of RGB uint8 pixels (the addon's `resizeImage`, or its TypeScript port). */
export type PilResize = (pixels: Uint8Array, width: number, height: number, outWidth: number, outHeight: number) => Uint8Array | Promise<Uint8Array>;

/**
 * The image in `bytes` (any format sharp reads) decoded by sharp to RGB (grayscale replicated, alpha dropped), resized
 * to `size` ([height, width]) when given: PNGs, and JPEGs that libvips would not shrink on load, by `resize` (PIL's
 * bilinear, as torchvision's Resize on PIL images); the rest (WebP, TIFF, JPEGs at least 3x the size) by libvips,
 * which shrinks JPEGs on load before its bilinear resize. Rejects with a {@link SampleError} naming `source`.
 */
export async function decodeWithSharp(bytes: Uint8Array, size: readonly [number, number] | null, source: string, resize: PilResize): Promise<DecodedImage> {
  const header = size ? headerSize(bytes) : null;
  const resizeHere = size !== null && header !== null && !shrinksOnLoad(header, size);
  let decoded: DecodedImage;
  try {
    decoded = await raw(toRgb(sharp()(bytes, { failOn: 'warning' }), resizeHere ? null : size));
  } catch (err) {
    throw new SampleError(source, err instanceof Error ? err.message.split('\n')[0] : String(err));
  }
  if (!resizeHere || (decoded.width === size[1] && decoded.height === size[0])) return decoded;
  const image = await resize(decoded.image, decoded.width, decoded.height, size[1], size[0]);
  return { image, width: size[1], height: size[0] };
}

/**
 * The scale a JPEG of `header`'s size is decoded at on its way to `size` by simclr's native decoder, as PIL's
 * `draft`: 1/8, 1/4 or 1/2 when the image is at least 8, 4 or 2 times the size along both sides, else 1.
 */
export function draftScale(header: { width: number; height: number }, size: readonly [number, number]): number {
  const fits = Math.min(Math.floor(header.width / size[1]), Math.floor(header.height / size[0]));
  return [8, 4, 2].find((denominator) => fits >= denominator) ?? 1;
}

/**
 * Each `factor` x `factor` block of an RGB image averaged into one pixel (blocks cut by the right and bottom edges
 * average what they hold): the image at 1/factor of its size, ceil(width / factor) x ceil(height / factor), as a
 * JPEG decoder's DCT scaling makes it, whose 1/8 scale is exactly the mean of each 8 x 8 block (before rounding) and
 * whose 1/2 and 1/4 come close to it.
 */
export function averageBlocks(image: DecodedImage, factor: number): DecodedImage {
  const { width, height } = image;
  const outWidth = Math.ceil(width / factor);
  const outHeight = Math.ceil(height / factor);
  const out = new Uint8Array(outWidth * outHeight * 3);
  for (let y = 0; y < outHeight; y++) {
    const rows = Math.min(height, (y + 1) * factor) - y * factor;
    for (let x = 0; x < outWidth; x++) {
      const columns = Math.min(width, (x + 1) * factor) - x * factor;
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let yy = y * factor; yy < y * factor + rows; yy++) {
          for (let xx = x * factor, p = 3 * (yy * width + xx) + c; xx < x * factor + columns; xx++, p += 3) sum += image.image[p];
        }
        out[3 * (y * outWidth + x) + c] = Math.round(sum / (rows * columns));
      }
    }
  }
  return { image: out, width: outWidth, height: outHeight };
}
