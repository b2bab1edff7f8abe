/**
 * Model input from loader batches: the deterministic evaluation view (the whole image resized to the view size,
 * normalised like the training views), as torchvision's Resize + ToTensor + Normalize would make it.
 */
import { native } from '../native';
import { Tensor, Device } from '../tensor';
import { checkInteger, invalid, withCallerStack } from '../errors';
import { AugmentConfig, resolveAugmentConfig } from './config';

export interface ModelInputOptions {
  /** Side of the square output; default the images' own side (square images), else an error asks for it. */
  size?: number;
  /** Per-channel (x - mean) / std on [0, 1] pixels; default ImageNet's, as the Augmenter's views. */
  normalize?: Partial<AugmentConfig['normalize']>;
  /** Where the result lives (default: the images' device). */
  device?: Device;
}

/** @internal The evaluation view with a resolved normalisation (what feature extraction calls per batch). */
export async function prepareImages(images: Tensor, normalize: AugmentConfig['normalize'], size: number, device: Device): Promise<Tensor> {
  return new Tensor(await withCallerStack(native.prepareImages(images.handle, { size, mean: [...normalize.mean], std: [...normalize.std], device })));
}

/**
 * A Loader batch (or its `images`: uint8 RGB `B x H x W x 3`, HWC as decoded) as model input: float32
 * `B x 3 x size x size`, each whole image resized (bilinear) and normalised, on `device`. This is what `model.forward`,
 * `model.embed` and an Encoder take; the Augmenter's `views` is the training-time counterpart.
 */
export async function toModelInput(batch: Tensor | { images: Tensor }, options: ModelInputOptions = {}): Promise<Tensor> {
  const images = batch instanceof Tensor ? batch : (batch as { images?: unknown } | null)?.images;
  if (!(images instanceof Tensor)) throw invalid('a Tensor or a Loader batch { images }', 'batch', batch);
  const shape = images.shape;
  if (images.dtype !== 'uint8' || shape.length !== 4 || shape[3] !== 3) {
    throw invalid('a uint8 Tensor B x H x W x 3 (a Loader batch)', 'images', `${images.dtype} [${shape.join(', ')}]`);
  }
  if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
  if (options.size === undefined && shape[1] !== shape[2]) {
    throw invalid(`a size for these ${shape[1]} x ${shape[2]} images (the output is square)`, 'size', options.size);
  }
  const size = checkInteger(options.size ?? shape[1], 'size', 1, 8192);
  const { normalize } = resolveAugmentConfig({ size, normalize: options.normalize ?? {} });
  return prepareImages(images, normalize, size, options.device ?? images.device);
}
