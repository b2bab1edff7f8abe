/** Features with their class labels: the input of the kNN monitor and the linear probe. */
import { Tensor } from '../tensor';
import { invalid } from '../errors';

/** `features`: N x D floating point Tensor; `labels`: N integer class indices (an int64 Tensor) in [0, numClasses). */
export interface LabelledFeatures {
  features: Tensor;
  labels: Tensor;
}

/** @internal Checks the shape of a LabelledFeatures argument at the TS edge; dtypes and sizes are checked natively. */
export function checkLabelledFeatures(value: unknown, name: string): LabelledFeatures {
  if (typeof value !== 'object' || value === null) throw invalid('an object with features and labels Tensors', name, value);
  const { features, labels } = value as Partial<LabelledFeatures>;
  if (!(features instanceof Tensor)) throw invalid('a Tensor', `${name}.features`, features);
  if (!(labels instanceof Tensor)) throw invalid('a Tensor', `${name}.labels`, labels);
  return { features, labels };
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
