/**
 * A whole training run from a RunConfig, as the CLI and the benchmarks use it: data, model, the Trainer with the kNN
 * monitor and checkpoints, the report; resuming from `<out>/last.ckpt`; stopping on SIGINT or an abort signal.
 */
import * as fs from 'fs';
import * as path from 'path';
import { openDataset, maybeSubset } from '../data/open';
import { evaluationSplits, knnMonitorAccuracy } from '../eval/evaluate';
import type { SimCLRModel } from '../models/simclr-model';
import { readMetrics, writeReport, EpochRecord, StepRecord } from './report';
import { formatDuration } from './progress';
import { readCheckpointHeader, checkTrainingMeta } from './checkpoint';
import { Trainer, TrainResult } from './trainer';
import { RunConfig, SEED_STREAMS, validateRunConfig } from './config';
import { trainingData } from './training-data';
import { createModel } from './run-model';

export interface TrainingRun extends TrainResult {
  config: RunConfig;
  model: SimCLRModel;
  reportPath: string;
  checkpoint: string;
}

/** What a run needs of an AbortSignal (Node's and the DOM's are ones), declared here so the types need neither. */
export interface AbortSignalLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Trains `config` (or resumes its run from `<out>/last.ckpt`), writing checkpoints, metrics.jsonl and the report. */
export interface RunOptions {
  /** Continue the run in `config.out` from its last.ckpt. */
  resume?: boolean;
  progress?: 'auto' | 'plain' | 'none';
  /** The first SIGINT stops after the step in flight and saves last.ckpt; a second exits at once. */
  handleSigint?: boolean;
  /** Aborting stops the run the same way. */
  signal?: AbortSignalLike;
  /** Called after every step with its record. */
  onStep?: (record: StepRecord) => unknown;
  /** Called after every epoch with its record (mean loss, kNN accuracy when monitored). */
  onEpoch?: (record: EpochRecord) => unknown;
}

/** The config a resumed run continues with: its own recipe; only where it writes and how long it runs may change. */
async function resumedConfig(config: RunConfig, last: string): Promise<RunConfig> {
  if (!fs.existsSync(last)) throw new Error(`--resume: no checkpoint at ${last}`);
  const { meta } = await readCheckpointHeader<{ format?: unknown }>(last);
  checkTrainingMeta(meta, last);
  return validateRunConfig({ ...(meta.config as Partial<RunConfig>), out: config.out, epochs: config.epochs, maxSteps: config.maxSteps });
}

export async function runTraining(partial: Partial<RunConfig>, options: RunOptions = {}): Promise<TrainingRun> {
  let config = validateRunConfig(partial);
  const last = path.join(config.out, 'last.ckpt');
  if (options.resume) config = await resumedConfig(config, last);
  const dataset = maybeSubset(openDataset(config.data, 'train', config.baseSize, { labels: config.labels }), config.subset, config.seed + SEED_STREAMS.subset);
  // A resumed run's checkpoint holds the model: its starting weights are not read again.
  const model = await createModel(options.resume ? { ...config, weights: undefined } : config);
  const data = trainingData(dataset, config);
  const splits = config.knnEvery > 0 ? evaluationSplits(config) : undefined;
  const trainer = new Trainer(model, data, {
    ...config,
    config: { ...config },
    progress: options.progress ?? 'auto',
    onStep: options.onStep,
    onEpoch: options.onEpoch,
    monitor: splits
      ? async (epoch) => {
        if (epoch % config.knnEvery !== 0 && epoch !== config.epochs) return undefined;
        model.eval();
        try {
          return await knnMonitorAccuracy(model, splits, config);
        } finally {
          model.train();
        }
      }
      : undefined,
  });
  const quitNow = () => process.exit(130);
  const onSigint = () => {
    trainer.requestStop('simclr: stopping after this step to save last.ckpt (Ctrl-C again: quit now)');
    process.once('SIGINT', quitNow);
  };
  const onAbort = () => trainer.requestStop();
  if (options.handleSigint) process.once('SIGINT', onSigint);
  options.signal?.addEventListener('abort', onAbort);
  if (options.signal?.aborted) trainer.requestStop();
  let result: TrainResult;
  const started = Date.now();
  try {
    result = await trainer.fit(options.resume ? last : undefined);
  } finally {
    process.removeListener('SIGINT', onSigint);
    process.removeListener('SIGINT', quitNow);
    options.signal?.removeEventListener('abort', onAbort);
  }
  const reportPath = await writeReport(config.out, readMetrics(config.out), {
    settings: { ...config },
    timing: { [options.resume ? 'wall time (this session)' : 'wall time']: formatDuration((Date.now() - started) / 1000) },
  });
  return { ...result, config, model, reportPath, checkpoint: last };
}
