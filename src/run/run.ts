/**
 * A whole training run from a RunConfig, as the CLI and the benchmarks use it: data, model, the Trainer with the kNN
 * monitor and checkpoints, the report; the run folder locked throughout; resuming from `<out>/last.ckpt` with the
 * run's own settings; stopping on SIGINT, SIGTERM or an abort signal with last.ckpt saved.
 */
import * as fs from 'fs';
import * as path from 'path';
import { openDataset, maybeSubset } from '../data/open';
import { evaluationSplits, knnMonitor, SplitFeatures } from './evaluate';
import type { SimCLRModel } from '../models/simclr-model';
import { readMetrics, writeReport, EpochRecord, StepRecord } from '../train/report';
import { formatDuration } from '../train/progress';
import { Trainer, TrainResult } from '../train/trainer';
import { RunConfig, SEED_STREAMS, validateRunConfig } from './config';
import { ResolvedRunConfig, RunResolution, resolveRun, runResolution } from './resolve';
import { absoluteData, checkFreshFolder, clearRunWithoutSteps, resumedConfig } from './run-folder';
import { trainingData } from './training-data';
import { createModel } from './model';
import { RunFolderLock } from '../train/folder-lock';
import { distributedTrainingData } from './distributed-data';
import { DistributedRunOptions, checkSameRun, joinGroup, rank0Monitor, rankDevice, resolveDistributed, shareCheckpoint } from './distributed';
import { sweepStaleResumeCopies } from './resume-copies';
import type { ProcessGroup } from '../ops/process-group';
import { markChecked } from '../errors';
import { exitWhenIdle } from '../tensor';

export interface TrainingRun extends TrainResult {
  config: RunConfig;
  model: SimCLRModel;
  reportPath: string;
  checkpoint: string;
  /** The signal that stopped the run early, if one did. */
  stoppedBy?: 'SIGINT' | 'SIGTERM';
  /** Resumed a run that had already finished: nothing was trained, `lastLoss` is its last step's. */
  alreadyComplete?: boolean;
  /**
   * With `keepMonitorFeatures`: the final epoch's kNN-monitor features (the trained model's features of the run's
   * evaluation splits), for `evaluate` to take; the caller frees them (evaluate does).
   */
  monitorFeatures?: SplitFeatures;
  /** On resume: the settings that were changed from the run's (those that may change), one line each. */
  notes: string[];
}

/** What a run needs of an AbortSignal (Node's and the DOM's are ones), declared here so the types need neither. */
export interface AbortSignalLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * The quit listener a run stopped by a signal leaves behind, so that Ctrl-C again quits while the process finishes; the
 * next run that handles signals takes over from it.
 */
const quitAfterStop = {
  listener: undefined as (() => void) | undefined,
  hold(listener: () => void): void {
    this.release();
    this.listener = listener;
    process.on('SIGINT', listener);
    process.on('SIGTERM', listener);
  },
  release(): void {
    if (!this.listener) return;
    process.removeListener('SIGINT', this.listener);
    process.removeListener('SIGTERM', this.listener);
    this.listener = undefined;
  },
};

/**
 * Trains `config` (or resumes its run from `<out>/last.ckpt`), writing checkpoints, metrics.jsonl, TensorBoard event
 * files and the report.
 */
export interface RunOptions {
  /** Continue the run in `config.out` from its last.ckpt. */
  resume?: boolean;
  /** Start over in a folder that holds a previous run (its checkpoints, metrics and report are removed first). */
  overwrite?: boolean;
  progress?: 'auto' | 'plain' | 'none';
  /**
   * The first SIGINT or SIGTERM stops after the step in flight and saves last.ckpt (the run then returns with
   * `stoppedBy`); a second exits once the native job in flight has finished (130 for SIGINT, 143 for SIGTERM), also
   * after the run returned, until another run handles signals.
   */
  handleSigint?: boolean;
  /** Aborting stops the run the same way. */
  signal?: AbortSignalLike;
  /** Called after every step with its record. */
  onStep?: (record: StepRecord) => unknown;
  /** Called after every epoch with its record (mean loss, kNN accuracy when monitored). */
  onEpoch?: (record: EpochRecord) => unknown;
  /**
   * Return the final epoch's kNN-monitor features in `monitorFeatures`, so that evaluating the run does not extract
   * them again.
   */
  keepMonitorFeatures?: boolean;
  /** Queue each step before reading the loss of the one before it (Trainer's overlapSteps; default: on a CUDA device). */
  overlapSteps?: boolean;
  /**
   * Data-parallel training: this process is one worker (rank) of a group, given explicitly or by 'env' (torchrun's
   * RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK: what `simclr train --nproc-per-node` and `torchrun
   * --no-python` set). Every worker runs runTraining with the same config; `batchSize` is per worker; rank 0 alone
   * locks `out`, writes metrics, checkpoints and the report and runs the kNN monitor; a resume reads rank 0's
   * last.ckpt on every rank (it is sent to them), so the other machines need no shared disk.
   */
  distributed?: DistributedRunOptions | 'env';
}

/**
 * A run's settings as its report shows them: what ran, with the setting given beside each resolved `'auto'`
 * (`bf16 (auto)`), and LibTorch's threads.
 */
export function reportSettings(config: RunConfig, resolved: RunResolution = runResolution(resolveRun(config))): Record<string, string | number | boolean | undefined> {
  const shown = (name: 'precision' | 'memoryFormat' | 'distBackend') => (config[name] === 'auto' ? `${resolved[name]} (auto)` : resolved[name]);
  return { ...config, precision: shown('precision'), memoryFormat: shown('memoryFormat'), distBackend: shown('distBackend'), threads: resolved.threads };
}

export async function runTraining(partial: Partial<RunConfig>, options: RunOptions = {}): Promise<TrainingRun> {
  if (options.resume && options.overwrite) throw new Error('--resume and --overwrite exclude each other');
  let config = validateRunConfig(partial);
  const given: Partial<RunConfig> = { ...partial, data: absoluteData(partial.data), evalData: absoluteData(partial.evalData) };
  // Still the validated config: only its paths made absolute.
  config = markChecked({ ...config, data: absoluteData(config.data), evalData: absoluteData(config.evalData) });
  const last = path.join(config.out, 'last.ckpt');
  const distributed = resolveDistributed(options.distributed);
  // Every worker joins first, so that a worker that fails below (rank 0's folder checks) ends the others' wait fast.
  const group = distributed ? await joinGroup(resolveRun(config), distributed) : undefined;
  if (group) await checkSameRun(group, config);
  const writer = !group || group.rank === 0;
  if (writer && options.resume && !fs.existsSync(last)) throw new Error(`--resume: no checkpoint at ${last}`);
  // A run that fails before writing anything leaves no empty --out behind (one it did not find there).
  const createdOut = writer && !fs.existsSync(config.out);
  const lock = writer ? await RunFolderLock.acquire(config.out) : undefined;
  let failed = true;
  try {
    let notes: string[] = [];
    if (!options.resume && writer) await checkFreshFolder(config.out, options.overwrite ?? false);
    // Data-parallel: rank 0's last.ckpt reaches every rank (machines need not share a disk).
    if (options.resume && !group) sweepStaleResumeCopies(); // a data-parallel resume's ranks sweep as they copy
    const resumeFrom = !options.resume ? undefined : group ? await shareCheckpoint(group, last) : { file: last, cleanup: () => undefined };
    try {
      if (resumeFrom) {
        ({ config, notes } = await resumedConfig(given, config.out, resumeFrom.file));
        if (writer) for (const note of notes) process.stderr.write(`simclr: resuming with ${note}\n`);
      }
      const run = await train(config, options, lock, group, distributed, resumeFrom?.file);
      failed = false;
      return { ...run, notes };
    } finally {
      resumeFrom?.cleanup();
    }
  } finally {
    await lock?.release();
    if (failed && writer && !options.resume) {
      // A fresh run that failed before its first step leaves nothing to resume: not even its folder, if it made it.
      await clearRunWithoutSteps(config.out);
      if (createdOut) await fs.promises.rmdir(config.out).catch(() => undefined); // only if now empty
    }
  }
}

async function train(config: RunConfig, options: RunOptions, lock: RunFolderLock | undefined, group: ProcessGroup | undefined,
  distributed: DistributedRunOptions | undefined, resumeFrom: string | undefined): Promise<Omit<TrainingRun, 'notes'>> {
  const last = path.join(config.out, 'last.ckpt');
  const writer = !group || group.rank === 0;
  // A rank trains on its own device; the config stored in checkpoints keeps the run's (its 'auto' as given, so that a
  // resume on other hardware resolves afresh), and what this session resolved is stored beside it.
  const local: ResolvedRunConfig = resolveRun(distributed ? markChecked({ ...config, device: rankDevice(config.device, distributed.localRank ?? distributed.rank) }) : config);
  const resolution = runResolution(local);
  const source = openDataset(config.data, 'train', config.baseSize, { labels: config.labels });
  const dataset = maybeSubset(source, config.subset, config.seed + SEED_STREAMS.subset);
  // A resumed run's checkpoint holds the model: its starting weights are not read again.
  const model = await createModel(resumeFrom ? { ...local, weights: undefined } : local);
  const data = group ? distributedTrainingData(dataset, local, group.rank, group.worldSize) : trainingData(dataset, local);
  if (dataset !== source) data.sourceImages = source.length;
  const splits = config.knnEvery > 0 && writer ? evaluationSplits(local) : undefined;
  let monitorFeatures: SplitFeatures | undefined;
  const monitor = async (epoch: number) => {
    if (!splits || (epoch % config.knnEvery !== 0 && epoch !== config.epochs)) return undefined;
    model.eval();
    try {
      const result = await knnMonitor(model, splits, local, options.keepMonitorFeatures && epoch === config.epochs);
      monitorFeatures = result.features;
      return result.accuracy;
    } finally {
      model.train();
    }
  };
  // Built from the validated, resolved config: the Trainer and its step do not check these settings again.
  const trainer = new Trainer(model, data, markChecked({
    ...local,
    config: { ...config },
    resolved: { ...resolution },
    folderLock: lock,
    progress: options.progress ?? 'auto',
    onStep: options.onStep,
    onEpoch: options.onEpoch,
    overlapSteps: options.overlapSteps,
    // Data-parallel: rank 0 evaluates while the others wait for its signal (not in a collective, whose timeout a long
    // evaluation could exceed).
    monitor: config.knnEvery === 0 ? undefined
      : group ? rank0Monitor(group, monitor, Math.max(config.distTimeout * 1000, 3_600_000)) : monitor,
    dataParallel: group ? { group, globalBatchNorm: config.globalBatchNorm } : undefined,
  }));
  let stoppedBy: 'SIGINT' | 'SIGTERM' | undefined;
  // A second signal hurries the exit, but waits for the native job in flight (the step), so that LibTorch is not torn
  // down under a running kernel; a checkpoint being written is left unfinished and its temporary file removed.
  const quitNow = () => exitWhenIdle(stoppedBy === 'SIGTERM' ? 143 : 130);
  // One listener per signal for the whole run, never swapped: while a signal has no listener, Node restores its
  // default action, and a second Ctrl-C landing in that gap killed the process by the signal (CI, under load).
  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => {
    if (stoppedBy) return quitNow();
    stoppedBy = signal;
    trainer.requestStop((waitsFor) => {
      const after = waitsFor === 'monitor' ? "after this epoch's kNN monitor (one pass over the evaluation images)" : 'after this step';
      return signal === 'SIGINT' ? `simclr: stopping ${after} to save last.ckpt (Ctrl-C again: quit now)`
        : `simclr: SIGTERM: stopping ${after} to save last.ckpt (a second signal quits now)`;
    });
  };
  const onSigint = () => onSignal('SIGINT');
  const onSigterm = () => onSignal('SIGTERM');
  const onAbort = () => trainer.requestStop();
  if (options.handleSigint) {
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigterm);
    quitAfterStop.release();
  }
  options.signal?.addEventListener('abort', onAbort);
  if (options.signal?.aborted) trainer.requestStop();
  const started = Date.now();
  // The listeners stay until the run returns: a second signal while the report is written still quits with its code
  // (removed earlier, it killed the process by the signal instead).
  try {
    let result: TrainResult = await trainer.fit(resumeFrom);
    const stopped = result.interrupted && stoppedBy ? { stoppedBy } : {};
    if (!writer) return { ...result, config, model, reportPath: '', checkpoint: last, ...stopped };
    const metrics = readMetrics(config.out);
    // A resume of a finished run trains nothing: say so, with the loss it ended on rather than none.
    const complete = resumeFrom !== undefined && !result.interrupted && !result.records.some((r) => 'step' in r);
    if (complete) {
      const lastStep = metrics.filter((r): r is StepRecord => 'step' in r).pop();
      result = { ...result, lastLoss: lastStep?.loss ?? result.lastLoss };
      process.stderr.write(`simclr: the run in ${config.out} was already complete (${result.steps} steps): nothing to train\n`);
    }
    const reportPath = await writeReport(config.out, metrics, {
      settings: reportSettings(config, resolution),
      timing: { [options.resume ? 'wall time (this session)' : 'wall time']: formatDuration((Date.now() - started) / 1000) },
    });
    return { ...result, config, model, reportPath, checkpoint: last, ...stopped, ...(complete ? { alreadyComplete: true } : {}),
      ...(monitorFeatures ? { monitorFeatures } : {}) };
  } finally {
    // Stopped by a signal, the process is winding down: a further one still quits with the code (installed before the
    // run's own listeners go, so the signal is never left to its default action).
    if (options.handleSigint && stoppedBy) quitAfterStop.hold(quitNow);
    process.removeListener('SIGINT', onSigint);
    process.removeListener('SIGTERM', onSigterm);
    options.signal?.removeEventListener('abort', onAbort);
  }
}
