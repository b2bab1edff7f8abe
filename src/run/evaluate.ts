/**
 * Evaluation of a run: its labelled splits (a bank from the training side, queries from the test side), their
 * features under a model, the kNN monitor and the linear probe.
 */
import { resolveAugmentConfig } from '../augment';
import type { Dataset } from '../data';
import { openDataset, maybeSubset, heldOutSplit, labelsOf } from '../data/open';
import { DEFAULT_EVAL_BANK_SIZE, RunConfig, SEED_STREAMS } from './config';
import { resolveRun } from './resolve';
import { knnEvaluate } from '../eval/knn';
import { linearProbe } from '../eval/linear-probe';
import { Embedder, SkippedSample, extractFeatures } from '../eval/features';
import type { FeatureTensors } from '../eval/labelled-features';

/** The labelled splits of a run's evaluation. */
export interface EvaluationSplits {
  bank: Dataset;
  query: Dataset;
}

/**
 * The evaluation splits of a run: a labelled bank (train side) and labelled queries (test side). Fashion-MNIST uses
 * its test split for the queries; `evalData` gives the queries (and the bank too when the training data is
 * unlabelled); otherwise, when the training data is labelled (class folders, a manifest with labels), a seeded held-out
 * part of it (`evalSubset` images, default a fifth) is queried against the rest. Undefined when there are no labels.
 */
export function evaluationSplits(config: RunConfig): EvaluationSplits | undefined {
  const bankSize = config.evalSubset ?? DEFAULT_EVAL_BANK_SIZE;
  const bankSeed = config.seed + SEED_STREAMS.evalBank;
  const querySeed = config.seed + SEED_STREAMS.evalQuery;
  if (config.data === 'fashion-mnist' && !config.evalData) {
    return {
      bank: maybeSubset(openDataset('fashion-mnist', 'train', config.baseSize), bankSize, bankSeed),
      query: maybeSubset(openDataset('fashion-mnist', 'test', config.baseSize), config.evalSubset, querySeed),
    };
  }
  const training = openDataset(config.data, 'train', config.baseSize, { labels: config.labels });
  if (!config.evalData) return heldOutSplit(training, bankSize, config.evalSubset, querySeed);
  const evalData = openDataset(config.evalData, 'test', config.baseSize);
  // Unlabelled training data cannot be the bank: the evaluation data then gives both sides.
  if (!labelsOf(training)?.every((label) => label >= 0)) return heldOutSplit(evalData, bankSize, config.evalSubset, querySeed);
  return {
    bank: maybeSubset(training, bankSize, bankSeed),
    query: maybeSubset(evalData, config.evalSubset, querySeed),
  };
}

/** Features of both evaluation splits under `model` (undefined: raw pixels), in the run's eval view. */
export async function featuresOf(model: Embedder | undefined, splits: EvaluationSplits, config: RunConfig):
  Promise<SplitFeatures> {
  const { precision, memoryFormat } = resolveRun(config);
  const options = {
    size: config.imageSize, normalize: resolveAugmentConfig({ size: config.imageSize }).normalize, device: config.device, workers: config.workers,
    forward: { precision, memoryFormat },
  };
  const bank = await extractFeatures(model, splits.bank, options);
  warnSkipped('the kNN bank', bank.skipped);
  const query = await extractFeatures(model, splits.query, options);
  warnSkipped('the evaluation queries', query.skipped);
  return { bank, query };
}

const warned = new Set<string>();

/** Says once per process which files of a split could not be read (the monitor reads the same splits every epoch). */
function warnSkipped(split: string, skipped: readonly SkippedSample[]): void {
  if (skipped.length === 0) return;
  const message = `simclr: ${split} left out ${skipped.length} unreadable image(s), e.g.:\n  ` +
    skipped.slice(0, 3).map((s) => `${s.source}: ${s.reason}`).join('\n  ');
  if (warned.has(message)) return;
  warned.add(message);
  console.warn(message);
}

function disposeFeatures(f: SplitFeatures): void {
  for (const part of [f.bank, f.query]) {
    part.features.dispose();
    part.labels.dispose();
  }
}

/** The features of both evaluation splits under one model. */
export interface SplitFeatures {
  bank: FeatureTensors;
  query: FeatureTensors;
}

/**
 * kNN-monitor accuracy of `model`'s features on the splits (what the Trainer's monitor reports each epoch). With `keep`
 * the features are returned too (the caller then owns them: {@link evaluate} takes them instead of extracting them
 * again); else they are freed here.
 */
export async function knnMonitor(model: Embedder, splits: EvaluationSplits, config: RunConfig, keep = false):
  Promise<{ accuracy: number; features?: SplitFeatures }> {
  const features = await featuresOf(model, splits, config);
  let accuracy: number;
  try {
    const knn = await knnEvaluate(features.bank, features.query, { k: config.knnK, temperature: config.knnTemperature });
    knn.predictions.dispose();
    accuracy = knn.accuracy;
  } catch (err) {
    disposeFeatures(features);
    throw err;
  }
  if (keep) return { accuracy, features };
  disposeFeatures(features);
  return { accuracy };
}

export interface Evaluation {
  knnAccuracy: number;
  /** The probe's accuracies and the L2 penalty it chose on held-out bank rows. */
  linearProbe: { trainAccuracy: number; testAccuracy: number; weightDecay: number };
  /** Images the bank and the queries held: those of the splits that could be read. */
  bankSize: number;
  querySize: number;
}

/**
 * kNN and linear-probe accuracy of `model`'s features (undefined: raw pixels) on the run's evaluation splits.
 * `features`: the same model's features of `splits` when already extracted (a run's final kNN monitor, see
 * `RunOptions.keepMonitorFeatures`), used instead of extracting them again; they are freed here either way.
 */
export async function evaluate(model: Embedder | undefined, config: RunConfig, splits = evaluationSplits(config), features?: SplitFeatures): Promise<Evaluation> {
  if (!splits) {
    if (features) disposeFeatures(features);
    throw new Error(`evaluation needs labels and '${config.data}' has none: pass --eval-data <labelled folder | manifest>`);
  }
  features ??= await featuresOf(model, splits, config);
  try {
    const knn = await knnEvaluate(features.bank, features.query, { k: config.knnK, temperature: config.knnTemperature });
    knn.predictions.dispose();
    const probe = await linearProbe(features.bank, features.query, { seed: config.seed + SEED_STREAMS.probe });
    probe.weights.dispose();
    probe.bias.dispose();
    probe.testPredictions.dispose();
    return {
      knnAccuracy: knn.accuracy,
      linearProbe: { trainAccuracy: probe.trainAccuracy, testAccuracy: probe.testAccuracy, weightDecay: probe.weightDecay },
      bankSize: features.bank.labels.shape[0],
      querySize: features.query.labels.shape[0],
    };
  } finally {
    disposeFeatures(features);
  }
}
