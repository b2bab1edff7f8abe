/** Augmentation: the two-view Augmenter, its config, and the batched functional ops. */
export { Augmenter } from './augmenter';
export type { ViewParameters, AugmenterState } from './augmenter';
export { resolveAugmentConfig, defaultBlurKernel, SEED_AUGMENTATION, AUGMENT_DEFAULTS, SIMCLR_IMAGENET_AUGMENTATION } from './config';
export type { AugmentConfig, AugmentOptions } from './config';
export {
  resizedCrop, hflip, adjustBrightness, adjustContrast, adjustSaturation, adjustHue, rgbToGrayscale, gaussianBlur, normalize,
} from './functional';
export type { CropBox } from './functional';
export { toModelInput } from './eval-view';
export type { ModelInputOptions } from './eval-view';
