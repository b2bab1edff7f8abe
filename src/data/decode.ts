/** Image decoding with sharp (libvips, on the libuv pool): any file → RGB uint8 HWC at the base size. */
import * as os from 'os';
import type SharpModule from 'sharp';
import { checkInteger, invalid } from '../errors';
import { decodeJpeg, hasJpegDecoder, resizeImage } from '../augment/image-batch';
import { BaseSize, Sample, SampleError } from './dataset';
import { checkRegularFile, readRegularFile } from '../user-file';

/**
 * The libuv pool size simclr asks for unless UV_THREADPOOL_SIZE is set: one thread per core (at least 2), since a JPEG
 * is read, decoded and resized in one job on a pool thread, and more threads than cores only contend (measured in the
 * augment benchmark, bench/README.md). Node's default of 4 would leave a 16-core host decoding 4 images at a time.
 */
export const DECODE_THREADS = Math.min(1024, Math.max(2, os.availableParallelism()));

/**
 * Asks libuv for {@link DECODE_THREADS} pool threads unless UV_THREADPOOL_SIZE is set. It only takes effect before
 * anything has used the pool, so the package's entry points (index.ts, cli.ts) call it first thing.
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

/** [height, width], or null; checked. */
export function resolveBaseSize(size: BaseSize, name = 'size'): readonly [number, number] | null {
  if (size === null) return null;
  if (typeof size === 'number') {
    checkInteger(size, name, 1, 65536);
    return [size, size];
  }
  if (!Array.isArray(size) || size.length !== 2) throw invalid('a positive integer, [height, width] or null', name, size);
  return [checkInteger(size[0], `${name}[0]`, 1, 65536), checkInteger(size[1], `${name}[1]`, 1, 65536)];
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

async function raw(image: Pipeline): Promise<Omit<Sample, 'label'>> {
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels instead of 3`);
  return { image: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

const JPEG_NAME = /\.jpe?g$/i;

// decodeJpeg with its errors as SampleErrors naming `path`.
async function decodeJpegNamed(source: Uint8Array | string, path: string, size: readonly [number, number] | null): Promise<Omit<Sample, 'label'> | null> {
  try {
    return await decodeJpeg(source, size ?? undefined);
  } catch (err) {
    // The addon's errors come from Node's main realm: not `instanceof Error` where a test runner has its own.
    const message = typeof (err as { message?: unknown })?.message === 'string' ? (err as Error).message : String(err);
    throw new SampleError(path, message.charAt(0).toLowerCase() + message.slice(1));
  }
}

/**
 * Decodes the image file at `path` to RGB (grayscale replicated, alpha dropped), resized to `size` when given.
 * - JPEGs (by name, else by content) are read, decoded by the addon with libjpeg (when built with it) and resized, all
 *   in one job on the libuv pool, byte for byte as the seed's PIL `Image.open(f).convert('RGB')` + torchvision `Resize`
 *   (PIL bilinear): faster than through sharp, whose per-image pipeline cost more than the decoding itself (the augment
 *   benchmark measures both). Images
 *   at least twice `size` along both sides are scaled on load first (JPEG DCT scaling by 1/2, 1/4 or 1/8) exactly as
 *   PIL's `draft` does. Unlike sharp, this applies no embedded ICC profile (neither does PIL). CMYK JPEGs go to sharp.
 * - Other files are read with Node (fs) and decoded from memory by sharp (faster than libvips opening them). PNGs,
 *   and JPEGs that sharp decodes but would not shrink on load, are resized natively as PIL's bilinear `resize`; the
 *   rest by libvips, which shrinks JPEGs on load before its bilinear resize.
 */
export async function decodeFile(path: string, size: readonly [number, number] | null): Promise<Omit<Sample, 'label'>> {
  const jpeg = hasJpegDecoder();
  if (jpeg && JPEG_NAME.test(path)) {
    // The addon opens the file itself: a FIFO named *.jpg would block it, so only a regular file gets there.
    try {
      await checkRegularFile(path);
    } catch (err) {
      throw new SampleError(path, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file is missing' : (err as Error).message);
    }
    const decoded = await decodeJpegNamed(path, path, size);
    if (decoded) return decoded;
  }
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SampleError(path, code === 'ENOENT' ? 'the file is missing' : err instanceof Error ? err.message : String(err));
  }
  if (jpeg && bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    const decoded = await decodeJpegNamed(bytes, path, size);
    if (decoded) return decoded;
  }
  const header = size ? headerSize(bytes) : null;
  const resizeHere = size !== null && header !== null && !shrinksOnLoad(header, size);
  let decoded: Omit<Sample, 'label'>;
  try {
    decoded = await raw(toRgb(sharp()(bytes, { failOn: 'warning' }), resizeHere ? null : size));
  } catch (err) {
    throw new SampleError(path, err instanceof Error ? err.message.split('\n')[0] : String(err));
  }
  if (!resizeHere || (decoded.width === size[1] && decoded.height === size[0])) return decoded;
  const image = await resizeImage(decoded.image, decoded.width, decoded.height, size[1], size[0]);
  return { image, width: size[1], height: size[0] };
}
