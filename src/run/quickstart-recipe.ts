/**
 * The quickstart's recipe (`simclr quickstart`, `npm start`): the run settings that show SimCLR working in about ten
 * minutes on 2 CPU cores. How it was chosen, and what it measures, is in bench/README.md (the recipe search).
 */
import type { Precision } from '../models/precision';
import type { RunConfig } from './config';

/**
 * ResNet-18 with the ImageNet stem on 28 px views of Fashion-MNIST's own 28 px images (no upsampling), a 50k-image
 * subset for 2 epochs of batch 128, with stronger colour jitter (s = 1.5), Gaussian blur (p = 0.5), gentler crops
 * (scale [0.5, 1]) and half the rate (0.03·B/256) of lightly's CIFAR-10 recipe.
 */
export const QUICKSTART_CONFIG: Readonly<Partial<RunConfig>> = Object.freeze({
  data: 'fashion-mnist',
  subset: 50000,
  backbone: 'resnet18',
  stem: 'imagenet',
  baseSize: 28,
  imageSize: 28,
  jitterStrength: 1.5,
  blurProbability: 0.5,
  minScale: 0.5,
  epochs: 2,
  batchSize: 128,
  lr: 0.03,
  knnEvery: 1,
  out: 'runs/quickstart',
});

/**
 * The quickstart's budget where its run computes in bf16 (precision 'auto' on a CPU with AVX-512 BF16 or AMX, or on a
 * GPU): all 60 000 images for 4 epochs, in about the time fp32's budget takes on a CPU without bf16 (a bf16 step is the
 * faster one there, and the fp32 budget in bf16 left the probe barely above raw pixels).
 */
export const QUICKSTART_LOW_PRECISION_BUDGET: Readonly<Partial<RunConfig>> = Object.freeze({ subset: 60000, epochs: 4 });

/** The quickstart's recipe for a run that computes at `precision`: {@link QUICKSTART_CONFIG}, with
 * {@link QUICKSTART_LOW_PRECISION_BUDGET} at bf16 or fp16. */
export function quickstartRecipe(precision: Precision): Partial<RunConfig> {
  return precision === 'fp32' ? { ...QUICKSTART_CONFIG } : { ...QUICKSTART_CONFIG, ...QUICKSTART_LOW_PRECISION_BUDGET };
}
