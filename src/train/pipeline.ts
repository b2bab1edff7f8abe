/**
 * Wiring between the data side and the model side for the CLI and the trainer: opening a dataset from a
 * command-line spec, the training data (loader + augmenter), and feature extraction for evaluation.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Tensor, Device } from '../tensor';
import { BaseSize, Dataset, ImageFolder, ManifestDataset, Loader, fashionMnist, Subset } from '../data';
import { Augmenter, AugmentConfig, prepareImages } from '../augment';
import type { LabelledFeatures } from '../eval/labelled-features';
import type { TrainingData } from './trainer';
import { RunConfig, SEED_STREAMS } from './config';

/**
 * Opens `spec`: `fashion-mnist` (Debian's dataset-fashion-mnist, `split` picks train or test), a manifest
 * (`.csv`/`.jsonl`), or an image folder. Images are resized to `baseSize` when decoded.
 */
export function openDataset(spec: string, split: 'train' | 'test', baseSize: BaseSize): Dataset {
  if (spec === 'fashion-mnist') return fashionMnist(split, { size: baseSize });
  if (!fs.existsSync(spec)) throw new Error(`data '${spec}' does not exist (expected an image folder, a .csv/.jsonl manifest or fashion-mnist)`);
  if (fs.statSync(spec).isDirectory()) return new ImageFolder(spec, { size: baseSize });
  const ext = path.extname(spec).toLowerCase();
  if (ext === '.csv' || ext === '.jsonl') return new ManifestDataset(spec, { size: baseSize });
  throw new Error(`data '${spec}' is a file but not a .csv or .jsonl manifest`);
}

/** `dataset`, or a seeded random subset of `size` samples of it. */
export function maybeSubset(dataset: Dataset, size: number | undefined, seed: number): Dataset {
  return size === undefined || size >= dataset.length ? dataset : Subset.random(dataset, size, seed);
}

/** The augmentation of a run config: SimCLR's defaults with the run's size, crop scale, jitter strength and blur. */
export function augmenterFor(config: RunConfig, seed: number): Augmenter {
  return new Augmenter({
    size: config.imageSize,
    crop: { scale: [config.minScale, 1] },
    jitterStrength: config.jitterStrength,
    blur: { probability: config.blurProbability },
  }, { seed });
}

/** Loader + augmenter as the trainer's data source. Batches of fewer than 2 images (a contrastive loss needs
 * negatives) are skipped. */
export function trainingData(dataset: Dataset, config: RunConfig): TrainingData & { loader: Loader; augmenter: Augmenter } {
  const loader = new Loader(dataset, { batchSize: config.batchSize, seed: config.seed + SEED_STREAMS.shuffle, concurrency: config.workers * 16 });
  const augmenter = augmenterFor(config, config.seed + SEED_STREAMS.augment);
  return {
    loader,
    augmenter,
    batchesPerEpoch: loader.length,
    async *batches(epoch: number, skipBatches: number) {
      for await (const batch of loader.epoch(epoch, skipBatches)) {
        if (batch.labels.length < 2) {
          batch.images.dispose();
          continue;
        }
        yield { images: batch.images, labels: batch.labels };
      }
    },
    views: (images: Tensor) => augmenter.views(images, { device: config.device }),
    getAugmentState: () => augmenter.getState(),
    setAugmentState: (state: unknown) => augmenter.setState(state as number[]),
  };
}

/** What feature extraction needs of a model. */
export interface Embedder {
  embed(x: Tensor): Promise<Tensor>;
}

/**
 * Features `h` of every image of `dataset` (eval mode, no gradient), with labels, in dataset order. `model`
 * undefined gives the raw pixels of the evaluation view (the raw-pixel baseline).
 */
export async function extractFeatures(model: Embedder | undefined, dataset: Dataset, options: {
  size: number; normalize: AugmentConfig['normalize']; device: Device; batchSize?: number; workers?: number;
}): Promise<LabelledFeatures> {
  const loader = new Loader(dataset, { batchSize: options.batchSize ?? 256, shuffle: false, concurrency: (options.workers ?? 4) * 16 });
  const parts: Float32Array[] = [];
  const labels: number[] = [];
  let width = 0;
  for await (const batch of loader.epoch(0)) {
    const x = await prepareImages(batch.images, options.normalize, options.size, options.device);
    batch.images.dispose();
    const features = model ? await model.embed(x) : x;
    const data = features.toFloat32Array();
    width = data.length / batch.labels.length;
    parts.push(data);
    labels.push(...batch.labels);
    if (features !== x) features.dispose();
    x.dispose();
  }
  const all = new Float32Array(labels.length * width);
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return {
    features: Tensor.fromTypedArray(all, [labels.length, width]),
    labels: Tensor.fromTypedArray(BigInt64Array.from(labels, (l) => BigInt(l)), [labels.length]),
  };
}
