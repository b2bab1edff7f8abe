/**
 * Decoding image files and bytes to RGB uint8 HWC at the base size: JPEGs by the addon (libjpeg, PIL's draft and
 * resize), everything else by sharp (preprocess/decode.ts) with the addon's PIL resize.
 */
import { checkInteger, invalid } from '../errors';
import { decodeJpeg, hasJpegDecoder, resizeImage } from '../augment/image-batch';
import { DecodedImage, SampleError, decodeWithSharp, isJpeg } from '../preprocess/decode';
import { BaseSize } from './dataset';
import { readRegularFile } from '../user-file';

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

const JPEG_NAME = /\.jpe?g$/i;

// decodeJpeg with its errors as SampleErrors naming `path`.
async function decodeJpegNamed(source: Uint8Array | string, path: string, size: readonly [number, number] | null): Promise<DecodedImage | null> {
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
 * - Other files are read with Node (fs) and decoded from memory by sharp (faster than libvips opening them), as
 *   {@link decodeBytes} does.
 */
export async function decodeFile(path: string, size: readonly [number, number] | null): Promise<DecodedImage> {
  if (hasJpegDecoder() && JPEG_NAME.test(path)) {
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
  return decodeBytes(bytes, size, path);
}

/**
 * Decodes an image file's bytes (JPEG, PNG, WebP, TIFF) as {@link decodeFile} decodes the file: JPEGs by the addon
 * (when built with libjpeg), the rest by sharp, PNGs and JPEGs that libvips would not shrink on load resized natively
 * as PIL's bilinear `resize`, the others by libvips, which shrinks JPEGs on load before its bilinear resize. Rejects
 * with a SampleError naming `source`.
 */
export async function decodeBytes(bytes: Uint8Array, size: readonly [number, number] | null, source: string): Promise<DecodedImage> {
  if (hasJpegDecoder() && isJpeg(bytes)) {
    const decoded = await decodeJpegNamed(bytes, source, size);
    if (decoded) return decoded;
  }
  return decodeWithSharp(bytes, size, source, resizeImage);
}
