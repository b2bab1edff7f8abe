/** The trainer's data source for a run config: the loader (seeded shuffle, batches) and the augmenter. */
import { Tensor } from '../tensor';
import { Dataset, Loader } from '../data';
import { Augmenter, AugmenterState, ViewOptions } from '../augment';
import { viewDtypeFor } from '../models/precision';
import { resolveRun } from './resolve';
import type { TrainingData } from '../train/trainer';
import { RunConfig, SEED_STREAMS } from './config';

/**
 * The augmentation of a run config: SimCLR's defaults with the run's size, crop scale, jitter strength and blur, plus
 * multi-crop's small views when `smallCrops` > 0.
 */
export function augmenterFor(config: RunConfig, seed: number): Augmenter {
  return new Augmenter({
    size: config.imageSize,
    crop: { scale: [config.minScale, 1] },
    jitterStrength: config.jitterStrength,
    blur: { probability: config.blurProbability },
    smallCrops: config.smallCrops > 0
      ? { views: config.smallCrops, size: config.smallCropSize, scale: [config.smallCropMinScale, config.smallCropMaxScale] }
      : null,
  }, { seed });
}

/** Where and in which type a run's views are made: on its device, in the type its steps compute in. */
export function viewOptionsFor(config: RunConfig): ViewOptions {
  return { device: config.device, dtype: viewDtypeFor(resolveRun(config).precision) };
}

/**
 * Loader + augmenter as the trainer's data source. With `dropLast` (the default) every batch has `batchSize` images;
 * otherwise a short last batch is trained on, except one of fewer than 2 images (a contrastive loss needs negatives).
 * With small crops the views of a batch are one tensor per resolution group (Augmenter.viewGroups).
 */
export function trainingData(dataset: Dataset, config: RunConfig):
  TrainingData & { loader: Loader; augmenter: Augmenter } {
  if (config.dropLast && dataset.length < config.batchSize) {
    throw new RangeError(`batchSize ${config.batchSize} is larger than the ${dataset.length} training images and dropLast leaves no batch: ` +
      'lower --batch-size, or pass --drop-last false');
  }
  const loader = new Loader(dataset, {
    batchSize: config.batchSize, dropLast: config.dropLast, seed: config.seed + SEED_STREAMS.shuffle, concurrency: config.workers * 16,
  });
  const augmenter = augmenterFor(config, config.seed + SEED_STREAMS.augment);
  const multiCrop = augmenter.groups.length > 1;
  const viewOptions = viewOptionsFor(config);
  return {
    loader,
    augmenter,
    batchesPerEpoch: loader.length,
    viewsPerImage: augmenter.viewsPerImage,
    images: dataset.length,
    async *batches(epoch: number, skipBatches: number) {
      for await (const batch of loader.epoch(epoch, skipBatches)) {
        if (batch.labels.length < 2) {
          batch.images.dispose();
          continue;
        }
        yield { images: batch.images, labels: batch.labels, index: batch.step };
      }
    },
    views: (images: Tensor) => (multiCrop ? augmenter.viewGroups(images, viewOptions) : augmenter.views(images, viewOptions)),
    getAugmentState: () => augmenter.getState(),
    setAugmentState: (state: AugmenterState) => augmenter.setState(state),
    setWarn: (warn: (message: string) => void) => {
      loader.warn = warn;
    },
  };
}
