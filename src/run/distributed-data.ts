/**
 * A data-parallel rank's data source: its shard of every epoch (the distributed sampler), decoded by a Loader, and its
 * own augmentation stream. The augmentation of batch k of epoch e on rank r comes from a generator keyed by
 * (seed, r, e, k), so ranks never draw the same crops, and a resumed run redraws exactly what it would have drawn:
 * there is no augmenter state to save or gather from the ranks.
 */
import { Tensor } from '../tensor';
import { Dataset, DistributedSampler, Loader, SeededRandom, Subset } from '../data';
import type { AugmenterState } from '../augment';
import type { TrainingData } from '../train/trainer';
import { RunConfig, SEED_STREAMS } from './config';
import { augmenterFor, viewOptionsFor } from './training-data';

/**
 * Rank `rank` of `worldSize`: every rank has the same number of batches per epoch (the sampler pads the epoch's order
 * to a multiple of the world size; `dropLast` drops each shard's short last batch on every rank alike). A rank's batch
 * may hold a single image: its negatives come from the other ranks.
 */
export function distributedTrainingData(dataset: Dataset, config: RunConfig, rank: number, worldSize: number):
  TrainingData & { sampler: DistributedSampler } {
  const sampler = new DistributedSampler(dataset.length, { rank, worldSize, seed: config.seed + SEED_STREAMS.shuffle });
  if (config.dropLast && sampler.length < config.batchSize) {
    throw new RangeError(`batchSize ${config.batchSize} per worker is larger than each worker's ${sampler.length} of the ${dataset.length} ` +
      `training images and dropLast leaves no batch: lower --batch-size, or pass --drop-last false`);
  }
  const augmenter = augmenterFor(config, 0);
  const multiCrop = augmenter.groups.length > 1;
  const viewOptions = viewOptionsFor(config);
  const batchesPerEpoch = config.dropLast ? Math.floor(sampler.length / config.batchSize) : Math.ceil(sampler.length / config.batchSize);
  // The generator state each yielded batch is augmented with.
  const streams = new WeakMap<Tensor, number[]>();
  return {
    sampler,
    batchesPerEpoch,
    viewsPerImage: augmenter.viewsPerImage,
    images: dataset.length,
    async *batches(epoch: number, skipBatches: number) {
      const shard = new Subset(dataset, sampler.indices(epoch));
      const loader = new Loader(shard, { batchSize: config.batchSize, shuffle: false, dropLast: config.dropLast, concurrency: config.workers * 16 });
      let expected = skipBatches;
      for await (const batch of loader.epoch(0, skipBatches)) {
        // Every rank must run every step: a batch whose images were all unreadable cannot be left out here.
        if (batch.step !== expected) {
          batch.images.dispose();
          throw new Error(`rank ${rank}: every image of batch ${expected} of epoch ${epoch + 1} was unreadable, so this rank cannot take part in that step`);
        }
        expected++;
        streams.set(batch.images, SeededRandom.forKey(config.seed + SEED_STREAMS.augment, rank, epoch, batch.step).getState());
        yield { images: batch.images, labels: batch.labels, index: batch.step };
      }
      if (expected !== batchesPerEpoch) throw new Error(`rank ${rank}: the last ${batchesPerEpoch - expected} batch(es) of epoch ${epoch + 1} were unreadable`);
    },
    views: (images: Tensor) => {
      const state = streams.get(images);
      if (state === undefined) throw new Error('distributedTrainingData.views: images must come from this source\'s batches()');
      augmenter.setState(state);
      return multiCrop ? augmenter.viewGroups(images, viewOptions) : augmenter.views(images, viewOptions);
    },
    // The stream of a batch follows from (seed, rank, epoch, batch): nothing to save, nothing to restore.
    getAugmentState: (): AugmenterState => [],
    setAugmentState: () => undefined,
  };
}
