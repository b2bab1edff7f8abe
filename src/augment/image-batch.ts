/** Decoded images to the uint8 batch the Augmenter takes: resized to the base size, then stacked. */
import { withRegularFilePath } from '../user-file';
import { native } from '../native';
import { Tensor } from '../tensor';
import { checkInteger, invalid, withCallerStack } from '../errors';

/**
 * The images (RGB uint8, each `height x width x 3`, row-major) as one CPU Tensor `B x H x W x 3`: each image is copied
 * once, straight into the tensor.
 */
export function stackImages(images: readonly Uint8Array[], height: number, width: number): Tensor {
  if (!Array.isArray(images)) throw invalid('an array of Uint8Array images', 'images', images);
  checkInteger(height, 'height', 1, 65536);
  checkInteger(width, 'width', 1, 65536);
  return new Tensor(native.stackImages(images as Uint8Array[], height, width));
}

/**
 * An RGB image (`height x width x 3`, uint8, row-major) resized to `outHeight` x `outWidth` exactly as PIL's
 * `Image.resize((w, h), BILINEAR)` does, which is torchvision's `Resize` on PIL images (the seed's BASE): a triangle
 * filter widened by the scale when shrinking, so every input pixel is averaged in. Runs off the JS thread.
 */
export async function resizeImage(pixels: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Promise<Uint8Array> {
  if (!(pixels instanceof Uint8Array)) throw invalid('a Uint8Array', 'pixels', pixels);
  for (const [value, name] of [[width, 'width'], [height, 'height'], [outWidth, 'outWidth'], [outHeight, 'outHeight']] as const) {
    checkInteger(value, name, 1, 65536);
  }
  const out = await withCallerStack(native.resizeImage(pixels, width, height, outWidth, outHeight));
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Whether JPEGs can be decoded natively (the addon was built with libjpeg); else {@link decodeJpeg} gives null. */
export function hasJpegDecoder(): boolean {
  return native.jpegDecoder;
}

/**
 * The JPEG in `source` (its bytes, or a file path: then read in the same job) decoded to RGB (grayscale replicated) as
 * Pillow's `Image.open(f).convert('RGB')` and, given `size` ([height, width]), resized to it as torchvision's `Resize`
 * on PIL images (bilinear with antialiasing), after scaling on load (JPEG DCT scaling by 1/2, 1/4 or 1/8) as PIL's
 * `Image.draft('RGB', (width, height))` does when the image is at least twice the size along both sides. One job off
 * the JS thread; the pixels are not copied again. Resolves null for a file that is no JPEG, JPEGs this decoder leaves
 * to sharp (CMYK, YCCK) or when the addon has no libjpeg; rejects with libjpeg's message for damaged or truncated data
 * (its warnings included) and with "the file is missing" or the system's reason for a file it cannot read.
 */
export async function decodeJpeg(source: Uint8Array | string, size?: readonly [number, number]): Promise<{ image: Uint8Array; width: number; height: number } | null> {
  if (!(source instanceof Uint8Array) && typeof source !== 'string') throw invalid('a Uint8Array or a path', 'source', source);
  const [height, width] = size ? [checkInteger(size[0], 'size[0]', 1, 65536), checkInteger(size[1], 'size[1]', 1, 65536)] : [0, 0];
  // The addon opens a path itself: only a regular file gets there (a FIFO would block it, a device never end), and
  // the one checked (it gets the descriptor's path).
  let out: Awaited<ReturnType<typeof native.decodeJpeg>>;
  if (typeof source === 'string') {
    try {
      out = await withRegularFilePath(source, (opened) => withCallerStack(native.decodeJpeg(opened, width, height)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('the file is missing');
      throw err;
    }
  } else {
    out = await withCallerStack(native.decodeJpeg(source, width, height));
  }
  if (out === null) return null;
  return { image: new Uint8Array(out.image.buffer, out.image.byteOffset, out.image.byteLength), width: out.width, height: out.height };
}
