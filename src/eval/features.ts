/** Feature extraction for evaluation: a model's features (or the raw eval-view pixels) of a whole dataset, with labels. */
import { Tensor, Device } from '../tensor';
import { Dataset, Loader } from '../data';
import type { AugmentConfig } from '../augment';
import { prepareImages } from '../augment/eval-view';
import type { ForwardOptions } from '../models/encoder';
import type { FeatureTensors } from './labelled-features';

/** What feature extraction needs of a model. */
export interface Embedder {
  embed(x: Tensor, options?: ForwardOptions): Promise<Tensor>;
}

/**
 * Features `h` of every image of `dataset` (eval mode, no gradient), with labels, in dataset order. `model`
 * undefined gives the raw pixels of the evaluation view (the raw-pixel baseline).
 */
export async function extractFeatures(model: Embedder | undefined, dataset: Dataset, options: {
  size: number; normalize: AugmentConfig['normalize']; device: Device; batchSize?: number; workers?: number;
  /** The precision and memory format of the model's forward passes (default 'fp32' and 'contiguous'). */
  forward?: ForwardOptions;
}): Promise<FeatureTensors> {
  const loader = new Loader(dataset, { batchSize: options.batchSize ?? 256, shuffle: false, concurrency: (options.workers ?? 4) * 16 });
  const parts: Float32Array[] = [];
  const labels: number[] = [];
  let width = 0;
  for await (const batch of loader.epoch(0)) {
    const x = await prepareImages(batch.images, options.normalize, options.size, options.device);
    batch.images.dispose();
    const features = model ? await model.embed(x, options.forward) : x;
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
