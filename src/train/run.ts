/**
 * A whole training run from a RunConfig, as the CLI and the benchmarks use it: data, model, the Trainer with the kNN
 * monitor and checkpoints, the report; resuming from `<out>/last.ckpt`; stopping on SIGINT or an abort signal.
 */
import * as fs from 'fs';
import * as path from 'path';
import { openDataset, maybeSubset } from '../data/open';
import { evaluationSplits, knnMonitorAccuracy } from '../eval/evaluate';
import type { SimCLRModel } from '../models/simclr-model';
import { writeReport, StepRecord } from './report';
import { readCheckpointHeader, checkTrainingMeta } from './checkpoint';
import { Trainer, TrainResult } from './trainer';
import { RunConfig, SEED_STREAMS, validateRunConfig } from './config';
import { trainingData } from './training-data';
import { createModel } from './run-model';
import { distributedTrainingData } from './distributed-data';
import { DistributedRunOptions, joinGroup, rank0Monitor, rankDevice, resolveDistributed, shareCheckpoint } from './distributed';

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
  /**
   * Data-parallel training: this process is one worker (rank) of a group, given explicitly or by 'env' (torchrun's
   * RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK: what `simclr train --nproc-per-node` and `torchrun
   * --no-python` set). Every worker runs runTraining with the same config; `batchSize` is per worker; rank 0 alone
   * writes metrics, checkpoints and the report and runs the kNN monitor.
   */
  distributed?: DistributedRunOptions | 'env';
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
  const distributed = resolveDistributed(options.distributed);
  const group = distributed ? await joinGroup(config, distributed) : undefined;
  const writer = !group || group.rank === 0;
  const last = path.join(config.out, 'last.ckpt');
  const resumeFrom = options.resume && group ? await shareCheckpoint(group, last) : { file: last, cleanup: () => undefined };
  if (options.resume) config = await resumedConfig(config, resumeFrom.file);
  // A rank trains on its own device; the config stored in checkpoints keeps the run's.
  const local = distributed ? { ...config, device: rankDevice(config.device, distributed.localRank ?? distributed.rank) } : config;
  const dataset = maybeSubset(openDataset(config.data, 'train', config.baseSize), config.subset, config.seed + SEED_STREAMS.subset);
  const model = await createModel(local);
  const data = group ? distributedTrainingData(dataset, local, group.rank, group.worldSize) : trainingData(dataset, local);
  const splits = config.knnEvery > 0 && writer ? evaluationSplits(local) : undefined;
  const monitor = async (epoch: number) => {
    if (!splits || ((epoch + 1) % config.knnEvery !== 0 && epoch + 1 !== config.epochs)) return undefined;
    model.eval();
    try {
      return await knnMonitorAccuracy(model, splits, local);
    } finally {
      model.train();
    }
  };
  const trainer = new Trainer(model, data, {
    ...config,
    config: { ...config },
    progress: options.progress ?? 'auto',
    onStep: options.onStep,
    monitor: config.knnEvery === 0 ? undefined
      : group ? rank0Monitor(group, monitor, Math.max(config.distTimeout * 1000, 3_600_000)) : monitor,
    dataParallel: group ? { group, globalBatchNorm: config.globalBatchNorm } : undefined,
  });
  const quitNow = () => process.exit(130);
  const onSigint = () => {
    if (writer) process.stderr.write('\nsimclr: stopping after this step and saving last.ckpt (Ctrl-C again to quit at once)\n');
    trainer.requestStop();
    process.once('SIGINT', quitNow);
  };
  const onAbort = () => trainer.requestStop();
  if (options.handleSigint) process.once('SIGINT', onSigint);
  options.signal?.addEventListener('abort', onAbort);
  if (options.signal?.aborted) trainer.requestStop();
  let result: TrainResult;
  try {
    result = await trainer.fit(options.resume ? resumeFrom.file : undefined);
  } finally {
    process.removeListener('SIGINT', onSigint);
    process.removeListener('SIGINT', quitNow);
    options.signal?.removeEventListener('abort', onAbort);
    resumeFrom.cleanup();
  }
  if (!writer) return { ...result, config, model, reportPath: '', checkpoint: last };
  const records = fs.readFileSync(path.join(config.out, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const reportPath = await writeReport(config.out, records, {
    summary: { backbone: config.backbone, epochs: result.epochsCompleted, steps: result.steps, 'final loss': Number(result.lastLoss.toFixed(4)) },
  });
  return { ...result, config, model, reportPath, checkpoint: last };
}
