/**
 * A whole run as the CLI and the benchmarks use it: build the model and data from a RunConfig, train with the kNN
 * monitor and checkpoints, evaluate with the linear probe, export the encoder.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Tensor, manualSeed } from '../tensor';
import { SimCLRModel } from '../models/simclr-model';
import { Encoder } from '../models/encoder';
import { resolveAugmentConfig } from '../augment';
import { knnEvaluate } from '../eval/knn';
import { linearProbe } from '../eval/linear-probe';
import type { LabelledFeatures } from '../eval/labelled-features';
import { writeReport, StepRecord } from './report';
import { readCheckpoint } from './checkpoint';
import { Trainer, CheckpointMeta, TrainResult } from './trainer';
import { RunConfig, SEED_STREAMS, validateRunConfig } from './config';
import { openDataset, maybeSubset, trainingData, extractFeatures, Embedder } from './pipeline';
import type { Dataset } from '../data';

/** Creates the SimCLR model (encoder + projection head) of a run config, initialised from `config.seed`. */
export async function createModel(config: RunConfig): Promise<SimCLRModel> {
  manualSeed(config.seed + SEED_STREAMS.init);
  return SimCLRModel.create({
    backbone: config.backbone,
    stem: config.stem,
    device: config.device,
    head: { layers: config.projectionLayers, outDim: config.projectionDim, batchNorm: config.projectionBatchNorm },
  });
}

/** The evaluation splits of a run: a labelled bank (train side) and labelled queries (test side), or undefined. */
export function evaluationSplits(config: RunConfig): { bank: Dataset; query: Dataset } | undefined {
  const bankSize = config.evalSubset ?? 10000;
  if (config.data === 'fashion-mnist' && !config.evalData) {
    return {
      bank: maybeSubset(openDataset('fashion-mnist', 'train', config.baseSize), bankSize, config.seed + SEED_STREAMS.evalBank),
      query: maybeSubset(openDataset('fashion-mnist', 'test', config.baseSize), config.evalSubset, config.seed + SEED_STREAMS.evalQuery),
    };
  }
  if (!config.evalData) return undefined;
  return {
    bank: maybeSubset(openDataset(config.data, 'train', config.baseSize), bankSize, config.seed + SEED_STREAMS.evalBank),
    query: maybeSubset(openDataset(config.evalData, 'test', config.baseSize), config.evalSubset, config.seed + SEED_STREAMS.evalQuery),
  };
}

/** Features of both evaluation splits under `model` (undefined: raw pixels). */
export async function featuresOf(model: Embedder | undefined, splits: { bank: Dataset; query: Dataset }, config: RunConfig):
  Promise<{ bank: LabelledFeatures; query: LabelledFeatures }> {
  const options = { size: config.imageSize, normalize: resolveAugmentConfig({ size: config.imageSize }).normalize, device: config.device, workers: config.workers };
  return { bank: await extractFeatures(model, splits.bank, options), query: await extractFeatures(model, splits.query, options) };
}

function disposeFeatures(f: { bank: LabelledFeatures; query: LabelledFeatures }): void {
  for (const part of [f.bank, f.query]) {
    part.features.dispose();
    part.labels.dispose();
  }
}

export interface Evaluation {
  knnAccuracy: number;
  linearProbe: { trainAccuracy: number; testAccuracy: number };
  bankSize: number;
  querySize: number;
}

/** kNN and linear-probe accuracy of `model`'s features (undefined: raw pixels) on the run's evaluation splits. */
export async function evaluate(model: Embedder | undefined, config: RunConfig, splits = evaluationSplits(config)): Promise<Evaluation> {
  if (!splits) throw new Error('evaluation needs labelled data: use fashion-mnist or pass --eval-data <folder | manifest>');
  const features = await featuresOf(model, splits, config);
  try {
    const knn = await knnEvaluate(features.bank, features.query, { k: config.knnK, temperature: config.knnTemperature });
    knn.predictions.dispose();
    const probe = await linearProbe(features.bank, features.query, { seed: config.seed + SEED_STREAMS.probe });
    probe.weights.dispose();
    probe.bias.dispose();
    probe.testPredictions.dispose();
    return {
      knnAccuracy: knn.accuracy,
      linearProbe: { trainAccuracy: probe.trainAccuracy, testAccuracy: probe.testAccuracy },
      bankSize: splits.bank.length,
      querySize: splits.query.length,
    };
  } finally {
    disposeFeatures(features);
  }
}

export interface TrainingRun extends TrainResult {
  config: RunConfig;
  model: SimCLRModel;
  reportPath: string;
  checkpoint: string;
}

/** Trains `config` (or resumes its run from `<out>/last.ckpt`), writing checkpoints, metrics.jsonl and the report. */
export interface RunOptions {
  /** Continue the run in `config.out` from its last.ckpt. */
  resume?: boolean;
  progress?: 'auto' | 'plain' | 'none';
  /** The first SIGINT stops after the step in flight and saves last.ckpt; a second exits at once. */
  handleSigint?: boolean;
  /** Aborting stops the run the same way. */
  signal?: AbortSignal;
  onStep?: (record: StepRecord) => void;
}

export async function runTraining(partial: Partial<RunConfig>, options: RunOptions = {}): Promise<TrainingRun> {
  let config = validateRunConfig(partial);
  const last = path.join(config.out, 'last.ckpt');
  if (options.resume) {
    if (!fs.existsSync(last)) throw new Error(`--resume: no checkpoint at ${last}`);
    const { meta, tensors } = await readCheckpoint<CheckpointMeta>(last);
    for (const t of Object.values(tensors)) t.dispose();
    // The run continues with its own recipe; only where it writes and how long it runs may change.
    config = validateRunConfig({ ...(meta.config as Partial<RunConfig>), out: config.out, epochs: config.epochs, maxSteps: config.maxSteps });
  }
  const dataset = maybeSubset(openDataset(config.data, 'train', config.baseSize), config.subset, config.seed + SEED_STREAMS.subset);
  const model = await createModel(config);
  const data = trainingData(dataset, config);
  const splits = config.knnEvery > 0 ? evaluationSplits(config) : undefined;
  const trainer = new Trainer(model, data, {
    ...config,
    config: { ...config },
    progress: options.progress ?? 'auto',
    onStep: options.onStep,
    monitor: splits
      ? async (epoch) => {
        if ((epoch + 1) % config.knnEvery !== 0 && epoch + 1 !== config.epochs) return undefined;
        model.eval();
        const features = await featuresOf(model, splits, config);
        try {
          const knn = await knnEvaluate(features.bank, features.query, { k: config.knnK, temperature: config.knnTemperature });
          knn.predictions.dispose();
          return knn.accuracy;
        } finally {
          disposeFeatures(features);
          model.train();
        }
      }
      : undefined,
  });
  const quitNow = () => process.exit(130);
  const onSigint = () => {
    process.stderr.write('\nsimclr: stopping after this step and saving last.ckpt (Ctrl-C again to quit at once)\n');
    trainer.requestStop();
    process.once('SIGINT', quitNow);
  };
  const onAbort = () => trainer.requestStop();
  if (options.handleSigint) process.once('SIGINT', onSigint);
  options.signal?.addEventListener('abort', onAbort);
  if (options.signal?.aborted) trainer.requestStop();
  let result: TrainResult;
  try {
    result = await trainer.fit(options.resume ? last : undefined);
  } finally {
    process.removeListener('SIGINT', onSigint);
    process.removeListener('SIGINT', quitNow);
    options.signal?.removeEventListener('abort', onAbort);
  }
  const records = fs.readFileSync(path.join(config.out, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const reportPath = await writeReport(config.out, records, {
    summary: { backbone: config.backbone, epochs: result.epochsCompleted, steps: result.steps, 'final loss': Number(result.lastLoss.toFixed(4)) },
  });
  return { ...result, config, model, reportPath, checkpoint: last };
}

/** The model and config stored in a checkpoint. */
export async function loadCheckpointModel(file: string, overrides: Partial<RunConfig> = {}): Promise<{ model: SimCLRModel; config: RunConfig; meta: CheckpointMeta }> {
  const { meta, tensors } = await readCheckpoint<CheckpointMeta>(file);
  if (meta.format !== 'simclr-checkpoint') throw new Error(`${file} is not a simclr training checkpoint`);
  const config = validateRunConfig({ ...(meta.config as Partial<RunConfig>), ...overrides });
  const model = await createModel(config);
  const state: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (name.startsWith('model/')) state[name.slice(6)] = t;
    else t.dispose();
  }
  await model.loadStateDict(state, { strict: true });
  for (const t of Object.values(state)) t.dispose();
  model.eval();
  return { model, config, meta };
}

/**
 * Writes the encoder of a checkpoint as a PyTorch state dict with torchvision's keys. The encoder's output is the
 * pooled features (no fc), so load it into torchvision with `model.fc = torch.nn.Identity()` first.
 */
export async function exportEncoder(checkpoint: string, out: string): Promise<{ keys: number }> {
  const { model, config } = await loadCheckpointModel(checkpoint);
  const state = await model.stateDict();
  const encoderState: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(state)) {
    if (name.startsWith('encoder.')) encoderState[name.slice('encoder.'.length)] = t;
  }
  const encoder = await Encoder.create({ backbone: config.backbone, stem: config.stem, outDim: 0 });
  await encoder.loadStateDict(encoderState, { strict: true });
  await fs.promises.mkdir(path.dirname(path.resolve(out)), { recursive: true });
  await encoder.saveStateDict(out);
  return { keys: Object.keys(encoderState).length };
}
