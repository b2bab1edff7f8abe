/** Image files' bytes to a model's input, as simclr's evaluation path makes it: what a LibTorch service embeds. */
import { Tensor } from '../tensor';
import { checkInteger, invalid } from '../errors';
import { stackImages } from '../augment/image-batch';
import { ModelInputOptions, toModelInput } from '../augment/eval-view';
import { decodeBytes } from './decode';

export interface ImagesToModelInputOptions extends ModelInputOptions {
  /** Side of the model's input (a run's imageSize). */
  size: number;
  /** Side the images are decoded to first (a run's baseSize); default `size`. */
  baseSize?: number;
}

/**
 * The model input of image files' bytes (JPEG, PNG, WebP, TIFF; one, or several as a batch, in order): float32
 * `N x 3 x size x size` on `device`, made as `evaluate` and `simclr embed` make it from files. Each image is decoded
 * as the datasets decode files (to RGB at `baseSize` x `baseSize`, PIL's bilinear filter), then resized to `size`
 * and normalised as {@link toModelInput} does. Rejects with a SampleError naming the image (`image 0`, ...) when one
 * cannot be decoded. Then `model.embed(input)`.
 */
export async function imagesToModelInput(images: Uint8Array | readonly Uint8Array[], options: ImagesToModelInputOptions): Promise<Tensor> {
  const list = images instanceof Uint8Array ? [images] : images;
  if (!Array.isArray(list) || list.length === 0) throw invalid('image bytes (a Uint8Array) or a non-empty array of them', 'images', images);
  list.forEach((bytes, i) => {
    if (!(bytes instanceof Uint8Array)) throw invalid('the bytes of an image file (a Uint8Array)', `images[${i}]`, bytes);
  });
  if (typeof options !== 'object' || options === null) throw invalid('an options object with size', 'options', options);
  const size = checkInteger(options.size, 'size', 1, 8192);
  const base = options.baseSize === undefined ? size : checkInteger(options.baseSize, 'baseSize', 1, 65536);
  const decoded = await Promise.all(list.map((bytes, i) => decodeBytes(bytes, [base, base], `image ${i}`)));
  const batch = stackImages(decoded.map((d) => d.image), base, base);
  try {
    return await toModelInput(batch, { size, normalize: options.normalize, device: options.device });
  } finally {
    batch.dispose();
  }
}
