/** The deterministic evaluation view: the whole image resized to the view size, normalised like the training views. */
import { native } from '../native';
import { Tensor, Device } from '../tensor';
import { withCallerStack } from '../errors';
import type { AugmentConfig } from './config';

/**
 * The evaluation view of a uint8 batch `B x H x W x 3` (as the Loader yields): each whole image resized to `size`
 * (bilinear), normalised with `normalize`, as a float32 Tensor `B x 3 x size x size` on `device`.
 */
export async function prepareImages(images: Tensor, normalize: AugmentConfig['normalize'], size: number, device: Device): Promise<Tensor> {
  return new Tensor(await withCallerStack(native.prepareImages(images.handle, { size, mean: [...normalize.mean], std: [...normalize.std], device })));
}
