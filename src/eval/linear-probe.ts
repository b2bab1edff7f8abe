/**
 * Linear probe: multinomial logistic regression trained natively on frozen features, the standard measure of how
 * linearly separable a representation is. Features are standardised with the training split's statistics; the layer is
 * trained with mini-batch Adam (seeded shuffle, cosine-decayed rate) off the JS thread.
 */
import { native } from '../native';
import { Tensor } from '../tensor';
import { checkInteger, checkNumber, invalid, withCallerStack } from '../errors';
import { LabelledFeatures, checkLabelledFeatures } from './labelled-features';

export interface LinearProbeOptions {
  /** Passes over the training split (default 30: on raw Fashion-MNIST pixels, 60k/10k, 30 and 100 epochs both give 0.84). */
  epochs?: number;
  /** Rows per Adam step (default 256). */
  batchSize?: number;
  /** Adam's initial learning rate, cosine-decayed to 0 (default 1e-3). */
  learningRate?: number;
  /** L2 penalty on the weights, not the bias (default 0). */
  weightDecay?: number;
  /** Seed of the shuffling order; the weights start at zero (default 0). */
  seed?: number;
  /** Number of classes (default: the largest label + 1). */
  numClasses?: number;
}

export interface LinearProbeResult {
  /** Top-1 accuracy on the training split. */
  trainAccuracy: number;
  /** Top-1 accuracy on the test split. */
  testAccuracy: number;
  /** Mean cross-entropy on the training split after training. */
  trainLoss: number;
  /** numClasses x D weights that apply to the raw (unstandardised) features: logits = features · weightsᵀ + bias. */
  weights: Tensor;
  /** numClasses biases. */
  bias: Tensor;
  /** Predicted class per test row (int64). */
  testPredictions: Tensor;
}

function checkOptions(options: LinearProbeOptions): LinearProbeOptions {
  if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
  const checked: LinearProbeOptions = {};
  if (options.epochs !== undefined) checked.epochs = checkInteger(options.epochs, 'epochs', 0, 1_000_000);
  if (options.batchSize !== undefined) checked.batchSize = checkInteger(options.batchSize, 'batchSize', 1, 2 ** 24);
  if (options.learningRate !== undefined) checked.learningRate = checkNumber(options.learningRate, 'learningRate', 0, Infinity, true);
  if (options.weightDecay !== undefined) checked.weightDecay = checkNumber(options.weightDecay, 'weightDecay', 0);
  if (options.seed !== undefined) checked.seed = checkInteger(options.seed, 'seed', 0, Number.MAX_SAFE_INTEGER);
  if (options.numClasses !== undefined) checked.numClasses = checkInteger(options.numClasses, 'numClasses', 1, 2 ** 20);
  return checked;
}

/** Trains a linear classifier on `train` (frozen features) and reports top-1 accuracy on `train` and `test`. */
export async function linearProbe(train: LabelledFeatures, test: LabelledFeatures, options: LinearProbeOptions = {}): Promise<LinearProbeResult> {
  const trainSplit = checkLabelledFeatures(train, 'train');
  const testSplit = checkLabelledFeatures(test, 'test');
  let result;
  try {
    result = await withCallerStack(native.trainLinearProbe(trainSplit.features.handle, trainSplit.labels.handle,
      testSplit.features.handle, testSplit.labels.handle, checkOptions(options)));
  } finally {
    trainSplit.dispose();
    testSplit.dispose();
  }
  return {
    trainAccuracy: result.trainAccuracy,
    testAccuracy: result.testAccuracy,
    trainLoss: result.trainLoss,
    weights: new Tensor(result.weight),
    bias: new Tensor(result.bias),
    testPredictions: new Tensor(result.testPredictions),
  };
}
