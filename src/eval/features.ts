/** Feature extraction for evaluation: a model's features (or the raw eval-view pixels) of a whole dataset, with labels. */
import { Tensor, Device } from '../tensor';
import { Dataset, Loader } from '../data';
import { sourceOf } from '../data/dataset';
import type { AugmentConfig } from '../augment';
import { prepareImages } from '../augment/eval-view';
import type { ForwardOptions } from '../models/encoder';
import type { FeatureTensors } from './labelled-features';

/** What feature extraction needs of a model. */
export interface Embedder {
  embed(x: Tensor, options?: ForwardOptions): Promise<Tensor>;
}

/** A sample that has no row: it could not be read (a missing, corrupt, truncated or unsupported file). */
export interface SkippedSample {
  /** Its index in the dataset. */
  index: number;
  /** Where it comes from (the dataset's `source`: a file path). */
  source: string;
  /** Why it could not be read. */
  reason: string;
}

/**
 * The features of a dataset and which sample each row is. Unreadable samples are left out (the Loader skips them), so
 * row i need not be sample i: `indices` and `sources` say which it is.
 */
export interface ExtractedFeatures extends FeatureTensors {
  /** Row i holds dataset sample `indices[i]`; rows are in dataset order. */
  indices: Int32Array;
  /** Where row i comes from: the dataset's `source(indices[i])`, a file path (or e.g. `fashion-mnist:test:12`). */
  sources: string[];
  /** The dataset's class names: label i is `classes[i]`. Empty when its labels are bare integers. */
  classes: readonly string[];
  /** The samples left out, in dataset order. */
  skipped: SkippedSample[];
}

/**
 * Features `h` of every readable image of `dataset` (eval mode, no gradient), with labels, in dataset order, and which
 * sample each row is; the unreadable ones are listed in `skipped` (nothing is printed). `model` undefined gives the
 * raw pixels of the evaluation view (the raw-pixel baseline).
 */
export async function extractFeatures(model: Embedder | undefined, dataset: Dataset, options: {
  size: number; normalize: AugmentConfig['normalize']; device: Device; batchSize?: number; workers?: number;
  /** The precision and memory format of the model's forward passes (default 'fp32' and 'contiguous'). */
  forward?: ForwardOptions;
}): Promise<ExtractedFeatures> {
  const skipped: SkippedSample[] = [];
  const loader = new Loader(dataset, {
    batchSize: options.batchSize ?? 256, shuffle: false, concurrency: (options.workers ?? 4) * 16,
    onSkip: (index, error) => skipped.push({ index, source: error.source, reason: error.reason }),
    // One pass, whose skipped samples are returned: the caller says what they were skipped from (the loader's own
    // epoch-end warning spoke of epochs, and said nothing of which split).
    onEpochEnd: () => undefined,
  });
  const parts: Float32Array[] = [];
  const labels: number[] = [];
  const indices: number[] = [];
  let width = 0;
  for await (const batch of loader.epoch(0)) {
    const x = await prepareImages(batch.images, options.normalize, options.size, options.device);
    batch.images.dispose();
    const features = model ? await model.embed(x, options.forward) : x;
    const data = features.toFloat32Array();
    width = data.length / batch.labels.length;
    parts.push(data);
    labels.push(...batch.labels);
    indices.push(...batch.indices);
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
    indices: Int32Array.from(indices),
    sources: indices.map((index) => sourceOf(dataset, index)),
    classes: dataset.classes ?? [],
    // Reads fail in the order they finish, not in dataset order.
    skipped: skipped.sort((a, b) => a.index - b.index),
  };
}
