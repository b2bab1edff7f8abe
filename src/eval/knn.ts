/**
 * kNN monitor: classifies features by a temperature-weighted vote of their nearest labelled neighbours under cosine
 * similarity, exactly as lightly's `knn_predict` (k = 200, temperature 0.1 by default). It tracks representation quality
 * during pretraining without training anything.
 */
import { native } from '../native';
import { Tensor } from '../tensor';
import { checkInteger, checkNumber, invalid, withCallerStack } from '../errors';
import { LabelledFeatures, accuracyOf, checkLabelledFeatures } from './labelled-features';

export interface KnnOptions {
  /** Neighbours that vote (default 200; fewer when the bank is smaller). */
  k?: number;
  /** Each vote weighs exp(similarity / temperature) (default 0.1). */
  temperature?: number;
  /** Number of classes (default: the largest bank label + 1). */
  numClasses?: number;
  /** Query rows per similarity block; peak memory is about chunkSize x bank rows floats (default 1024). */
  chunkSize?: number;
}

export interface KnnResult {
  /** Top-1 accuracy of the predictions against the query labels. */
  accuracy: number;
  /** Predicted class per query row (int64 Tensor). */
  predictions: Tensor;
}

function checkOptions(options: KnnOptions): KnnOptions {
  if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
  const checked: KnnOptions = {};
  if (options.k !== undefined) checked.k = checkInteger(options.k, 'k', 1, 2 ** 31);
  if (options.temperature !== undefined) checked.temperature = checkNumber(options.temperature, 'temperature', 0, Infinity, true);
  if (options.numClasses !== undefined) checked.numClasses = checkInteger(options.numClasses, 'numClasses', 1, 2 ** 20);
  if (options.chunkSize !== undefined) checked.chunkSize = checkInteger(options.chunkSize, 'chunkSize', 1, 2 ** 24);
  return checked;
}

/**
 * Predicts a class for each row of `queryFeatures` from the labelled `bank` (features are L2-normalised internally).
 * Runs off the JS thread.
 */
export async function knnPredict(bank: LabelledFeatures, queryFeatures: Tensor, options: KnnOptions = {}): Promise<Tensor> {
  const checked = checkLabelledFeatures(bank, 'bank');
  try {
    if (!(queryFeatures instanceof Tensor)) throw invalid('a Tensor', 'queryFeatures', queryFeatures);
    const pending = native.knnPredict(checked.features.handle, checked.labels.handle, queryFeatures.handle, checkOptions(options));
    return new Tensor(await withCallerStack(pending));
  } finally {
    checked.dispose();
  }
}

/**
 * The kNN monitor: top-1 accuracy of kNN predictions for the labelled `query` split using the labelled `bank`
 * (usually the training split's features).
 */
export async function knnEvaluate(bank: LabelledFeatures, query: LabelledFeatures, options: KnnOptions = {}): Promise<KnnResult> {
  const checkedQuery = checkLabelledFeatures(query, 'query');
  try {
    if (checkedQuery.labels.numel !== checkedQuery.features.shape[0]) {
      throw invalid(`one label per query row (${checkedQuery.features.shape[0]})`, 'query.labels', checkedQuery.labels.numel, 'range');
    }
    const predictions = await knnPredict(bank, checkedQuery.features, options);
    return { accuracy: accuracyOf(predictions, checkedQuery.labels), predictions };
  } finally {
    checkedQuery.dispose();
  }
}
