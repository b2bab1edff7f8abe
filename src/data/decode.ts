/** Image decoding with sharp (libvips, on the libuv pool): any file → RGB uint8 HWC at the base size. */
import * as fs from 'fs';
import * as os from 'os';
import sharp from 'sharp';
import { checkInteger, invalid } from '../errors';
import { BaseSize, Sample, SampleError } from './dataset';

/**
 * The libuv pool size simclr asks for unless UV_THREADPOOL_SIZE is set: two threads per core, since a sharp decode
 * holds a libuv thread while a libvips thread does the work. Node's default of 4 would leave a 16-core host decoding 4
 * images at a time. It only takes effect if nothing used the pool before simclr was loaded (the pool starts then).
 */
export const DECODE_THREADS = Math.min(1024, Math.max(4, 2 * os.availableParallelism()));
if (process.env.UV_THREADPOOL_SIZE === undefined) process.env.UV_THREADPOOL_SIZE = String(DECODE_THREADS);

type Pipeline = ReturnType<typeof sharp>;

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

// Bilinear (triangle) resampling, as the seed's torchvision Resize on PIL images.
function toRgb(image: Pipeline, size: readonly [number, number] | null): Pipeline {
  const rgb = image.removeAlpha().toColourspace('srgb');
  return size ? rgb.resize(size[1], size[0], { fit: 'fill', kernel: 'linear' }) : rgb;
}

async function raw(image: Pipeline): Promise<Omit<Sample, 'label'>> {
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels instead of 3`);
  return { image: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

// libvips' operation cache keeps the last 100 operations for reuse; a training set decodes each file once per epoch, so
// it never hits, and keeping it cost ~6% of the decoding time. Turned off (for the process: sharp has one cache) the
// first time a file is decoded.
let cacheOff = false;

/**
 * Decodes the image file at `path` to RGB (grayscale replicated, alpha dropped), resized to `size` when given. The file
 * is read with Node (fs, on the libuv pool) and decoded from memory: ~10% faster than libvips opening the file itself.
 * libvips reads sequentially and shrinks JPEGs on load (DCT scaling by 2, 4 or 8) when `size` is at most half the
 * image's size.
 */
export async function decodeFile(path: string, size: readonly [number, number] | null): Promise<Omit<Sample, 'label'>> {
  if (!cacheOff) {
    sharp.cache(false);
    cacheOff = true;
  }
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SampleError(path, code === 'ENOENT' ? 'the file is missing' : err instanceof Error ? err.message : String(err));
  }
  try {
    return await raw(toRgb(sharp(bytes, { failOn: 'warning' }), size));
  } catch (err) {
    throw new SampleError(path, err instanceof Error ? err.message.split('\n')[0] : String(err));
  }
}

/** Resizes raw pixels (`channels` 1 or 3) to RGB at `size`. */
export async function resizeRaw(pixels: Uint8Array, width: number, height: number, channels: 1 | 3, size: readonly [number, number]): Promise<Omit<Sample, 'label'>> {
  return raw(toRgb(sharp(pixels, { raw: { width, height, channels } }), size));
}
