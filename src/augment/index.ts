/** Augmentation: the Augmenter (two views, or multi-crop), its config, and the batched functional ops. */
export { Augmenter, VIEW_DTYPES } from './augmenter';
export type { ViewParameters, AugmenterState, ViewDtype, ViewOptions } from './augmenter';
export { resolveAugmentConfig, defaultBlurKernel, defaultSmallCropSize, viewGroups, SEED_AUGMENTATION, AUGMENT_DEFAULTS, SIMCLR_IMAGENET_AUGMENTATION } from './config';
export type { AugmentConfig, AugmentOptions, ViewGroup } from './config';
export {
  resizedCrop, hflip, adjustBrightness, adjustContrast, adjustSaturation, adjustHue, rgbToGrayscale, gaussianBlur, normalize,
} from './functional';
export type { CropBox } from './functional';
export { toModelInput } from './eval-view';
export type { ModelInputOptions } from './eval-view';
export { stackImages, resizeImage } from './image-batch';
