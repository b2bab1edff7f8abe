/** Image decoding with sharp (libvips, on the libuv pool): any file → RGB uint8 HWC at the base size. */
import sharp from 'sharp';
import { checkInteger, invalid } from '../errors';
import { BaseSize, Sample, SampleError } from './dataset';

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

/** Decodes the image file at `path` to RGB (grayscale replicated, alpha dropped), resized to `size` when given. */
export async function decodeFile(path: string, size: readonly [number, number] | null): Promise<Omit<Sample, 'label'>> {
  try {
    return await raw(toRgb(sharp(path, { failOn: 'warning' }), size));
  } catch (err) {
    throw new SampleError(path, err instanceof Error ? err.message.split('\n')[0] : String(err));
  }
}

/** Resizes raw pixels (`channels` 1 or 3) to RGB at `size`. */
export async function resizeRaw(pixels: Uint8Array, width: number, height: number, channels: 1 | 3, size: readonly [number, number]): Promise<Omit<Sample, 'label'>> {
  return raw(toRgb(sharp(pixels, { raw: { width, height, channels } }), size));
}
