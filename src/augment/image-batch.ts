/** The uint8 batch the Augmenter takes, assembled from decoded images. */
import { native } from '../native';
import { Tensor } from '../tensor';
import { checkInteger, invalid } from '../errors';

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
