/** Features with their class labels: the input of the kNN monitor and the linear probe. */
import { Tensor } from '../tensor';
import { invalid } from '../errors';

/**
 * `features`: N x D floating point Tensor; `labels`: N class indices in [0, numClasses), as an integer Tensor (int32 or
 * int64) or an Int32Array (what a Loader batch's `labels` are).
 */
export interface LabelledFeatures {
  features: Tensor;
  labels: Tensor | Int32Array;
}

/** Features with labels as a Tensor, as extractFeatures returns them. */
export interface FeatureTensors extends LabelledFeatures {
  labels: Tensor;
}

/** @internal A checked LabelledFeatures with Tensor labels; `dispose()` frees the labels Tensor made from an array. */
export interface CheckedLabelledFeatures {
  features: Tensor;
  labels: Tensor;
  dispose(): void;
}

/** @internal Checks a LabelledFeatures argument at the TS edge (dtypes and sizes are checked natively). */
export function checkLabelledFeatures(value: unknown, name: string): CheckedLabelledFeatures {
  if (typeof value !== 'object' || value === null) throw invalid('an object with features and labels', name, value);
  const { features, labels } = value as Partial<LabelledFeatures>;
  if (!(features instanceof Tensor)) throw invalid('a Tensor', `${name}.features`, features);
  if (labels instanceof Tensor) return { features, labels, dispose: () => undefined };
  if (labels instanceof Int32Array) {
    const tensor = Tensor.fromTypedArray(labels, [labels.length], { device: features.device });
    return { features, labels: tensor, dispose: () => tensor.dispose() };
  }
  throw invalid('a Tensor or an Int32Array', `${name}.labels`, labels);
}

/** @internal Fraction of rows where `predictions` equals `labels` (0 for no rows). */
export function accuracyOf(predictions: Tensor, labels: Tensor): number {
  const predicted = predictions.toTypedArray();
  const truth = labels.toTypedArray();
  if (truth.length === 0) return 0;
  let correct = 0;
  for (let i = 0; i < truth.length; i++) if (Number(predicted[i]) === Number(truth[i])) correct++;
  return correct / truth.length;
}
