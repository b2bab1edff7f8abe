/**
 * kNN monitor: classifies features by a temperature-weighted vote of their nearest labelled neighbours under cosine
 * similarity, exactly as lightly's `knn_predict` (k = 200, temperature 0.1 by default). It tracks representation quality
 * during pretraining without training anything.
 */
import { native, NativeKnnOptions } from '../native';
import { Tensor } from '../tensor';
import { checkInteger, checkNumber, invalid, withCallerStack } from '../errors';
import { LabelledFeatures, accuracyOf, checkLabelledFeatures } from './labelled-features';

/** The kNN settings left out of {@link KnnOptions}: lightly's (RUN_SETTINGS' knnK and knnTemperature come from here). */
export const KNN_DEFAULTS = Object.freeze({ k: 200, temperature: 0.1, chunkSize: 1024 });

/** Each setting left out takes its {@link KNN_DEFAULTS} value; `numClasses` defaults to the largest bank label + 1. */
export type KnnOptions = Partial<NativeKnnOptions>;

export interface KnnResult {
  /** Top-1 accuracy of the predictions against the query labels. */
  accuracy: number;
  /** Predicted class per query row (int64 Tensor). */
  predictions: Tensor;
}

/** The checked options, complete: the native side has no defaults. */
function checkOptions(options: KnnOptions): NativeKnnOptions {
  if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
  const d = KNN_DEFAULTS;
  const k = checkInteger(options.k ?? d.k, 'k', 1, 2 ** 31);
  const temperature = checkNumber(options.temperature ?? d.temperature, 'temperature', 0, Infinity, true);
  const numClasses = options.numClasses === undefined ? undefined : checkInteger(options.numClasses, 'numClasses', 1, 2 ** 20);
  const chunkSize = checkInteger(options.chunkSize ?? d.chunkSize, 'chunkSize', 1, 2 ** 24);
  return { k, temperature, numClasses, chunkSize };
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
