/**
 * The SimCLR training loop. TypeScript decides what happens (schedule, logging, monitoring, checkpoints); one native
 * call per step does the work (both views forward, fused NT-Xent, backward, optimiser step) off the JS thread, while
 * the loader decodes and the augmenter prepares the next batch.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Tensor } from '../tensor';
import type { ModelBase } from '../models/encoder';
import { createTrainStep, DataParallelOptions, LaunchedTrainStep, OptimizerOptions, TRAIN_STEP_SETTINGS, TrainStep, TrainStepConfig } from '../ops/train-step';
import { checkInteger, checkNumber, invalid, markChecked, wasChecked } from '../errors';
import { checkSettings } from '../settings';
import { learningRate, peakLearningRate, ScheduleConfig } from './schedule';
import { TRAINER_DEFAULTS, TRAINER_SETTINGS, TrainerSettings, checkpointInterval } from './trainer-settings';
import { readCheckpoint, readCheckpointHeader, writeCheckpoint, checkTrainingMeta, splitTrainingTensors, trainingTensors, CheckpointMeta } from './checkpoint';
import { RunFolderLock } from './folder-lock';
import { EventFileWriter, removeEventFiles, truncateEventFiles } from './tensorboard';
import { linkFileAtomic, writeFileAtomic } from '../atomic-file';
import { Progress } from './progress';
import type { EpochRecord, MetricsRecord, SessionRecord, StepRecord } from './report';
import type { AugmenterState } from '../augment';

export type { OptimizerName } from '../ops/train-step';

/** The optimiser's settings a Trainer passes to its step (OPTIMIZER_SETTINGS' entries). */
export type OptimizerConfig = Pick<OptimizerOptions, 'optimizer' | 'momentum' | 'nesterov' | 'weightDecay'>;

/** Models in a Trainer.fit now (by native handle): a second fit on one of them is an error, not two interleaved runs. */
const modelsInFit = new WeakSet<object>();

/** What the loop needs of a model (a SimCLRModel): the native model the step runs on, and its state for checkpoints. */
export interface TrainableModel extends Pick<ModelBase, 'handle'> {
  stateDict(): Promise<Record<string, Tensor>>;
  loadStateDict(state: Record<string, Tensor>, options?: { strict?: boolean }): Promise<unknown>;
  train(): void;
  eval(): void;
}

/** One batch of the loader: images to augment. */
export interface ImageBatch {
  images: Tensor;
  labels: ArrayLike<number>;
  /**
   * The batch's position in its epoch, counting batches the data source skipped (e.g. all of whose files were
   * unreadable): where a resumed run continues. Without it, the batches trained on are counted.
   */
  index?: number;
}

/**
 * The views of a batch of B images on the training device: one Tensor `2B x 3 x S x S` (two views of one size), or
 * with multi-crop one Tensor per resolution group, `V_g*B x 3 x S_g x S_g`, view-major inside each group.
 */
export type BatchViews = Tensor | Tensor[];

/** What the loop needs of the data side: batches per epoch, and a seeded augmenter whose state can be saved. */
export interface TrainingData {
  /** Batches of epoch `epoch` (0-based: the loader's shuffle index), starting after the first `skipBatches` (used when resuming mid-epoch). */
  batches(epoch: number, skipBatches: number): AsyncIterable<ImageBatch>;
  batchesPerEpoch: number;
  /** The views of each image (see {@link BatchViews}) on `device`. */
  views(images: Tensor): Promise<BatchViews>;
  /** Views per image over all groups (default 2): what the loss counts as one image's positives plus itself. */
  viewsPerImage?: number;
  /** Images in the whole training set (all ranks'), recorded in checkpoints so that a resume on changed data is refused. */
  images?: number;
  /**
   * Images of the data a subset of `images` was drawn from (absent without one): data grown or shrunk behind a subset
   * keeps its size but changes which images it holds, so this is recorded and checked too.
   */
  sourceImages?: number;
  getAugmentState(): AugmenterState;
  setAugmentState(state: AugmenterState): void;
  /** Where the data's warnings (skipped files) go while the loop runs: above the progress line. */
  setWarn?(warn: (message: string) => void): void;
}

/** Where the loop is when it asks a custom learning-rate function. */
export interface LrScheduleContext {
  /** Steps per epoch and steps of the whole run. */
  stepsPerEpoch: number;
  totalSteps: number;
  /** The learning rate the built-in schedule (scaled lr, warmup, cosine) would use at this step. */
  scheduled: number;
}

function disposeViews(views: BatchViews): void {
  for (const t of Array.isArray(views) ? views : [views]) t.dispose();
}

/**
 * The Trainer's settings ({@link TRAINER_SETTINGS}: `epochs`, `batchSize`, `maxSteps`, `lr`, `lrScaling`,
 * `warmupEpochs`, `out`: the folder for last.ckpt, best.ckpt, metrics.jsonl (and its TensorBoard event files) and the
 * report, `checkpointEvery`) and its step's (the optimiser's, `temperature`, `accumulationSteps`, `precision`,
 * `memoryFormat`: see createTrainStep). Each one left out takes its default, the run settings' too. With
 * `accumulationSteps` N > 1 a step is still one batch, and the optimiser updates every N steps; a stop waits for the
 * group to finish, but a group that spans an epoch's end is started afresh by a run resumed from that epoch's
 * checkpoint.
 */
export interface TrainerOptions extends Partial<TrainerSettings>, OptimizerConfig,
  Pick<TrainStepConfig, 'temperature' | 'accumulationSteps' | 'precision' | 'memoryFormat'> {
  /** Called after each epoch with the epoch number (1 = the first); may return a monitor accuracy (kNN) used to pick best.ckpt. */
  monitor?: (epoch: number) => Promise<number | undefined>;
  /** Anything else to store in checkpoints (a run stores its whole config). */
  config?: Record<string, unknown>;
  /** What a run's `'auto'` settings resolved to in this session (device, precision, ...), stored in checkpoints. */
  resolved?: Record<string, unknown>;
  /** Called after every step with its record (a promise it returns is awaited before the next step), e.g. to log or to stop with requestStop. */
  onStep?: (record: StepRecord) => unknown;
  /** Called after every epoch with its record (mean loss, kNN accuracy when monitored); a promise it returns is awaited before the checkpoint is written. */
  onEpoch?: (record: EpochRecord) => unknown;
  /**
   * A learning-rate function replacing the built-in schedule: the lr of step `step` (0-based). It must return a finite
   * number >= 0.
   */
  lrSchedule?: (step: number, context: LrScheduleContext) => number;
  /** Progress output: a bar on a TTY, plain lines otherwise, or nothing. */
  progress?: 'auto' | 'plain' | 'none';
  /**
   * Queue each step before reading the loss of the one before it, so that the device never waits for the host between
   * steps (PyTorch's `loss.item()` after every step makes a GPU wait). Default: on for a CUDA model, off on the CPU,
   * where a step has run when its call returns. Losses and weights are the same either way; NaN checks, records and
   * onStep trail by one step, so a stop asked for in onStep takes effect one step later. Not for data-parallel runs.
   */
  overlapSteps?: boolean;
  /** The lock of `out` when the caller holds it already (runTraining does); otherwise fit takes it for its duration. */
  folderLock?: RunFolderLock;
  /**
   * Data-parallel training over a process group: `batchSize` is per rank (the learning rate scales with the global
   * batch), every rank must train on its own shard of the data with the same number of batches, and rank 0 alone
   * writes metrics.jsonl (and the event files), the progress and the checkpoints (and holds the folder lock); the other
   * ranks write nothing.
   */
  dataParallel?: DataParallelOptions;
}

/** The options with every Trainer setting filled in. */
type ResolvedOptions = TrainerOptions & Omit<TrainerSettings, 'maxSteps'>;

/** Where a run stands: the next batch (`batchInEpoch` of `epoch`), steps done, and the current epoch's losses so far. */
interface Position {
  epoch: number;
  batchInEpoch: number;
  step: number;
  epochLoss: { sum: number; count: number };
  epochSeconds: number;
}

export interface TrainResult {
  steps: number;
  epochsCompleted: number;
  lastLoss: number;
  interrupted: boolean;
  records: MetricsRecord[];
}

export class Trainer {
  private readonly trainStep: TrainStep;
  private readonly schedule: ScheduleConfig;
  private stopRequested = false;
  /** True while the epoch's monitor (kNN) runs: a stop asked for then waits for it, not for a step. */
  private monitoring = false;

  private readonly checkpointEvery: { steps?: number; minutes?: number };
  /** The progress output while fit() runs. */
  private progress: Progress | undefined;

  private readonly options: ResolvedOptions;
  /** Batches a gradient accumulates before an update (the step's setting, which the schedule's batch counts). */
  private readonly accumulationSteps: number;

  constructor(private readonly model: TrainableModel, private readonly data: TrainingData, trainerOptions: TrainerOptions = {}) {
    if (typeof trainerOptions !== 'object' || trainerOptions === null) throw invalid('an options object', 'options', trainerOptions);
    if (trainerOptions.lrSchedule !== undefined && typeof trainerOptions.lrSchedule !== 'function') {
      throw invalid('a function (step, context) => lr', 'lrSchedule', trainerOptions.lrSchedule);
    }
    if (trainerOptions.overlapSteps !== undefined && typeof trainerOptions.overlapSteps !== 'boolean') {
      throw invalid('a boolean', 'overlapSteps', trainerOptions.overlapSteps);
    }
    const given = Object.fromEntries(Object.entries(trainerOptions).filter(([, value]) => value !== undefined));
    const options = { ...TRAINER_DEFAULTS, ...given } as ResolvedOptions;
    // Options a run made from its validated config were checked there; the step's settings are checked by the step.
    const checked = wasChecked(trainerOptions);
    if (!checked) checkSettings(TRAINER_SETTINGS, options as unknown as Record<string, unknown>);
    this.options = options;
    this.accumulationSteps = options.accumulationSteps ?? TRAIN_STEP_SETTINGS.accumulationSteps.default;
    this.checkpointEvery = options.checkpointEvery === undefined ? {} : checkpointInterval(options.checkpointEvery);
    // maxSteps 0 is no cap, as absent (a resume's way to drop the run's).
    const totalSteps = checkInteger(options.maxSteps || options.epochs * data.batchesPerEpoch, 'totalSteps', 1);
    this.schedule = {
      baseLr: options.lr,
      scaling: options.lrScaling,
      // With accumulation an update sees accumulationSteps batches: the rate scales with that effective batch.
      // Data-parallel: the global batch of every rank's images.
      batchSize: options.batchSize * this.accumulationSteps * (options.dataParallel?.group.worldSize ?? 1),
      warmupSteps: Math.min(totalSteps - 1, Math.round(options.warmupEpochs * data.batchesPerEpoch)),
      totalSteps,
    };
    const stepConfig: TrainStepConfig = {
      optimizer: options.optimizer,
      momentum: options.momentum,
      nesterov: options.nesterov,
      weightDecay: options.weightDecay,
      temperature: options.temperature,
      views: data.viewsPerImage ?? 2,
      precision: options.precision,
      memoryFormat: options.memoryFormat,
      accumulationSteps: options.accumulationSteps,
      dataParallel: options.dataParallel,
    };
    this.trainStep = createTrainStep(model, checked ? markChecked(stepConfig) : stepConfig);
    this.writer = (options.dataParallel?.group.rank ?? 0) === 0;
  }

  /** Whether this process writes metrics, progress and checkpoints (rank 0 of a data-parallel run). */
  private readonly writer: boolean;

  get peakLearningRate(): number {
    return peakLearningRate(this.schedule);
  }

  /** The learning rate of step `step` (0-based): the built-in schedule's, or the custom function's. */
  private learningRateAt(step: number): number {
    const scheduled = learningRate(step, this.schedule);
    const custom = this.options.lrSchedule;
    if (!custom) return scheduled;
    const lr = custom(step, { stepsPerEpoch: this.data.batchesPerEpoch, totalSteps: this.schedule.totalSteps, scheduled });
    return checkNumber(lr, `lrSchedule(${step})`, 0);
  }

  /**
   * Asks the loop to stop after the step in flight (or, while the epoch's monitor runs, after it); it then writes last.ckpt
   * and returns (SIGINT and SIGTERM use this). `notice` is printed above the progress line (or on stderr when the loop is
   * not running); a function gets what the stop waits for.
   */
  requestStop(notice?: string | ((waitsFor: 'step' | 'monitor') => string)): void {
    // Data-parallel: the request travels with the next step, and every rank stops after that same step (a rank that
    // stopped on its own would leave the others waiting in a collective).
    if (this.trainStep.group) this.trainStep.requestStop();
    else this.stopRequested = true;
    if (notice === undefined || !this.writer) return;
    const text = typeof notice === 'function' ? notice(this.monitoring ? 'monitor' : 'step') : notice;
    if (this.progress) this.progress.log(text);
    else process.stderr.write(`${text}\n`);
  }

  /**
   * Trains from scratch, or from `resumeFrom` (a checkpoint written by this trainer) to the same end. The run folder
   * `out` is locked meanwhile, and one model trains in one fit at a time.
   */
  async fit(resumeFrom?: string): Promise<TrainResult> {
    const handle = this.model.handle as object;
    if (modelsInFit.has(handle)) {
      throw new Error('Trainer.fit: this model is already being trained by another fit; wait for it to end (or train a separate model)');
    }
    modelsInFit.add(handle);
    try {
      // Data-parallel: only rank 0 writes into `out`, so only rank 0 locks it (the others may share its machine).
      if (!this.writer) return await this.train(resumeFrom);
      const lock = this.options.folderLock ?? await RunFolderLock.acquire(this.options.out);
      try {
        if (!lock.held || lock.folder !== path.resolve(this.options.out)) throw new Error(`Trainer: folderLock does not hold ${this.options.out}`);
        return await this.train(resumeFrom);
      } finally {
        if (lock !== this.options.folderLock) await lock.release();
      }
    } finally {
      modelsInFit.delete(handle);
    }
  }

  private async train(resumeFrom: string | undefined): Promise<TrainResult> {
    const o = this.options;
    const metricsFile = path.join(o.out, 'metrics.jsonl');
    let position: Position = { epoch: 0, batchInEpoch: 0, step: 0, epochLoss: { sum: 0, count: 0 }, epochSeconds: 0 };
    let best: number | null = null;
    if (resumeFrom) {
      const restored = await this.restore(resumeFrom);
      position = restored.position;
      best = restored.bestMetric;
      if (this.writer) {
        await truncateMetrics(metricsFile, position);
        await truncateEventFiles(o.out, position);
        await this.repairBest(resumeFrom, metricsFile, position, best);
      }
    } else if (this.writer) {
      await fs.promises.writeFile(metricsFile, '');
      await removeEventFiles(o.out);
    }
    // TensorBoard's view of the same records: a new event file per session (a resume's follows the run's earlier ones).
    let events: EventFileWriter | undefined;
    let sessionStarted = false;
    // What this session computes with (a run's resolved 'auto' settings), and its event file, come with its first
    // record: a session that logs nothing (the resume of a finished run) leaves no trace.
    const startSession = async () => {
      sessionStarted = true;
      if (!this.writer) return;
      if (this.options.resolved) {
        const session: SessionRecord = { session: { step: position.step, ...this.options.resolved } };
        await fs.promises.appendFile(metricsFile, JSON.stringify(session) + '\n');
      }
      events = await EventFileWriter.create(o.out);
    };
    const records: MetricsRecord[] = [];
    const log = async (record: MetricsRecord) => {
      if (!sessionStarted) await startSession();
      records.push(record);
      if (this.writer) await fs.promises.appendFile(metricsFile, JSON.stringify(record) + '\n');
      await events?.write(record);
    };
    const totalSteps = this.schedule.totalSteps;
    const progress = new Progress(this.writer ? o.progress ?? 'auto' : 'none', totalSteps, position.step);
    this.progress = progress;
    this.data.setWarn?.((message) => progress.warn(message));
    let lastLoss = NaN;
    let interrupted = false;
    let { epoch, batchInEpoch, step } = position;
    let lastSave = Date.now();
    // Data-parallel ranks read every step's values before the next (they agree on a stop through them).
    const overlap = !this.trainStep.group && (o.overlapSteps ?? this.model.handle.device().startsWith('cuda'));
    const save = async (at: Position, augmentState: unknown) => {
      await this.save(path.join(o.out, 'last.ckpt'), at, best, augmentState);
      lastSave = Date.now();
    };

    try {
      for (; epoch < o.epochs && step < totalSteps && !this.stopRequested; epoch++, batchInEpoch = 0) {
        const resumed = epoch === position.epoch ? position : undefined;
        const epochStart = Date.now() - 1000 * (resumed?.epochSeconds ?? 0);
        const lossSoFar = { ...(resumed?.epochLoss ?? { sum: 0, count: 0 }) };
        const firstBatch = batchInEpoch;
        const iterator = this.data.batches(epoch, batchInEpoch)[Symbol.asyncIterator]();
        let exhausted = false;
        // The augmenter's state before the batch that is augmented but not yet trained on: what a checkpoint saves.
        let stateBeforePending: unknown;
        const nextViews = async (): Promise<{ views: BatchViews; index: number | undefined } | undefined> => {
          const next = await iterator.next();
          if (next.done) {
            exhausted = true;
            return undefined;
          }
          stateBeforePending = this.data.getAugmentState();
          const views = await this.data.views(next.value.images);
          next.value.images.dispose();
          return { views, index: next.value.index };
        };
        const augmentState = (pending: unknown) => (pending ? stateBeforePending : this.data.getAugmentState());
        const at = (): Position => ({ epoch, batchInEpoch, step, epochLoss: { ...lossSoFar }, epochSeconds: (Date.now() - epochStart) / 1000 });
        // A step whose loss has not been read yet (overlapSteps): read once the next step is queued behind it.
        let trailing: { launched: LaunchedTrainStep; step: number; lr: number; started: bigint } | undefined;
        const finish = async () => {
          if (!trailing) return;
          const { launched, lr, started } = trailing;
          const done = trailing.step;
          trailing = undefined;
          // Data-parallel: the global batch's loss and images, and whether any rank asked to stop.
          const { loss, images, stop } = await launched.result();
          if (stop) this.stopRequested = true;
          if (!Number.isFinite(loss)) throw new Error(`the loss became ${loss} at step ${done - 1}: lower the learning rate`);
          const seconds = Number(process.hrtime.bigint() - started) / 1e9;
          const imagesPerSecond = images / seconds;
          lastLoss = loss;
          lossSoFar.sum += loss;
          lossSoFar.count++;
          // Epochs are numbered from 1 wherever a person reads them (metrics.jsonl, the report, the console).
          const record: StepRecord = { step: done, epoch: epoch + 1, loss, lr, imagesPerSecond, images };
          await log(record);
          await o.onStep?.(record);
          progress.update(done, { loss, lr, imagesPerSecond, epoch: epoch + 1, epochs: o.epochs });
        };
        // The next batch's augmentation starts while the current step runs.
        let pending = await nextViews();
        try {
          while (pending && step < totalSteps) {
            const stepStart = process.hrtime.bigint();
            const lr = this.learningRateAt(step);
            const { views, index } = pending;
            const launching = this.trainStep.launch(views, lr);
            // A stop waits for the end of an accumulation group: a checkpoint holds no half-accumulated gradients.
            const groupOpen = (step + 1) % this.accumulationSteps !== 0;
            const upcoming = step + 1 < totalSteps && (!this.stopRequested || groupOpen) ? nextViews() : Promise.resolve(undefined);
            // Should the step fail, the batch being prepared meanwhile is dropped with it (its error is the step's).
            upcoming.then((next) => launching.catch(() => next && disposeViews(next.views)), () => undefined);
            const launched = await launching;
            disposeViews(views);
            // The step before this one, now that this one is queued behind it on the device.
            await finish();
            step++;
            batchInEpoch = index === undefined ? batchInEpoch + 1 : index + 1;
            trailing = { launched, step, lr, started: stepStart };
            pending = await upcoming;
            const groupDone = step % this.accumulationSteps === 0;
            const endsHere = !pending || step >= totalSteps;
            const due = (this.checkpointEvery.steps !== undefined && step % this.checkpointEvery.steps === 0) ||
              (this.checkpointEvery.minutes !== undefined && Date.now() - lastSave >= this.checkpointEvery.minutes * 60_000);
            // This step's loss is read now unless the next step may be queued first: a stop, a checkpoint or the end of
            // the epoch needs it (and the model as this step left it).
            if (!overlap || this.stopRequested || endsHere || (due && groupDone)) await finish();
            if (this.stopRequested && groupDone) break;
            if (due && groupDone && !endsHere) await save(at(), augmentState(pending));
          }
          await finish();
          // A run that stops exactly at an epoch's last batch has not yet seen the end of its batches: the data source
          // ends the epoch (and reports the files it skipped) when asked for one more.
          if (!pending && !exhausted && !this.stopRequested && batchInEpoch >= this.data.batchesPerEpoch) {
            const extra = await nextViews();
            if (extra) {
              disposeViews(extra.views);
              throw new Error(`the data gave more than its ${this.data.batchesPerEpoch} batches in epoch ${epoch + 1}`);
            }
          }
          if (!exhausted) {
            // Stopped within the epoch (a stop request or maxSteps): save where it stands; a resume continues here.
            await save(at(), augmentState(pending));
            interrupted = this.stopRequested;
            break;
          }
        } finally {
          if (pending) disposeViews(pending.views);
          if (!exhausted) await iterator.return?.(undefined);
        }
        if (lossSoFar.count === 0 && firstBatch === 0) {
          throw new Error(`epoch ${epoch + 1} gave no batch of at least 2 readable images: nothing to train on (see the skipped files above)`);
        }
        this.monitoring = o.monitor !== undefined;
        let knnAccuracy: number | undefined;
        try {
          knnAccuracy = o.monitor ? await o.monitor(epoch + 1) : undefined;
        } finally {
          this.monitoring = false;
        }
        const epochLoss = lossSoFar.sum / Math.max(1, lossSoFar.count);
        const epochRecord: EpochRecord = { epoch: epoch + 1, loss: epochLoss, ...(knnAccuracy !== undefined ? { knnAccuracy } : {}) };
        await log(epochRecord);
        await o.onEpoch?.(epochRecord);
        progress.log(`epoch ${epoch + 1}/${o.epochs}: loss ${epochLoss.toFixed(4)} in ${((Date.now() - epochStart) / 1000).toFixed(0)} s` +
          (knnAccuracy !== undefined ? `, kNN accuracy ${(knnAccuracy * 100).toFixed(2)}%` : ''));
        const metric = knnAccuracy ?? -epochLoss;
        const isBest = best === null || metric > best;
        if (isBest) best = metric;
        await save({ epoch: epoch + 1, batchInEpoch: 0, step, epochLoss: { sum: 0, count: 0 }, epochSeconds: 0 }, this.data.getAugmentState());
        if (isBest && this.writer) await linkFileAtomic(path.join(o.out, 'last.ckpt'), path.join(o.out, 'best.ckpt'));
      }
      // A stop requested while an epoch ended (during the monitor) leaves the rest of the run undone.
      interrupted ||= this.stopRequested && epoch < o.epochs && step < totalSteps;
    } finally {
      progress.stop();
      this.progress = undefined;
      this.data.setWarn?.((message) => console.warn(message));
    }
    return { steps: step, epochsCompleted: interrupted ? epoch : Math.min(epoch, o.epochs), lastLoss, interrupted, records };
  }

  private async save(file: string, at: Position, best: number | null, augmentState: unknown): Promise<void> {
    if (!this.writer) return;
    const modelState = await this.model.stateDict();
    const optimizer = this.trainStep.optimizerState();
    const tensors = trainingTensors(modelState, optimizer.tensors);
    const meta: CheckpointMeta = {
      format: 'simclr-checkpoint',
      ...at,
      optimizerSteps: optimizer.steps,
      augmentState,
      bestMetric: best,
      worldSize: this.trainStep.group?.worldSize ?? 1,
      ...(this.data.images !== undefined ? { images: this.data.images } : {}),
      ...(this.data.sourceImages !== undefined ? { sourceImages: this.data.sourceImages } : {}),
      config: { ...(this.options.config ?? {}) },
      ...(this.options.resolved ? { resolved: { ...this.options.resolved } } : {}),
    };
    await writeCheckpoint(file, { meta, tensors });
    for (const t of Object.values(tensors)) t.dispose();
  }

  /**
   * A resume continues the same run: as many workers (each a share of the global batch, which sets the learning rate)
   * and the same data. Either changed is an error naming what and how to resume.
   */
  private checkSameShape(meta: CheckpointMeta, file: string): void {
    const workers = this.trainStep.group?.worldSize ?? 1;
    if (meta.worldSize !== undefined && meta.worldSize !== workers) {
      throw new Error(`--resume: ${file} was written by a run of ${meta.worldSize} worker(s), and this one has ${workers}: the images ` +
        `per step, and with them the learning rate, would change mid-run. Resume with ${meta.worldSize} worker(s) ` +
        `(--nproc-per-node ${meta.worldSize}${meta.worldSize === 1 ? ', or none' : ''}), or start a new run in another --out`);
    }
    if (meta.images !== undefined && this.data.images !== undefined && meta.images !== this.data.images) {
      throw new Error(`--resume: the run trained on ${meta.images} images and its data now has ${this.data.images}: images were ` +
        `${this.data.images > meta.images ? 'added' : 'removed'} since it started, so its epochs and shuffles no longer line up. ` +
        'Resume on the data it started with, or start a new run in another --out');
    }
    if (meta.sourceImages !== undefined && this.data.sourceImages !== undefined && meta.sourceImages !== this.data.sourceImages) {
      throw new Error(`--resume: the run drew its ${meta.images ?? this.data.images} images (--subset) from ${meta.sourceImages} and its data now has ` +
        `${this.data.sourceImages}: images were ${this.data.sourceImages > meta.sourceImages ? 'added' : 'removed'} since it started, so the ` +
        'subset would hold other images. Resume on the data it started with, or start a new run in another --out');
    }
  }

  /**
   * A kill between an epoch's save and the link of best.ckpt to it leaves best.ckpt an epoch behind: when the checkpoint
   * resumed from ended the epoch that set the best metric, best.ckpt is linked to it again.
   */
  private async repairBest(last: string, metricsFile: string, position: Position, best: number | null): Promise<void> {
    if (best === null || position.batchInEpoch !== 0) return;
    const records = (await fs.promises.readFile(metricsFile, 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as MetricsRecord);
    const ended = records.filter((r): r is EpochRecord => !('step' in r)).find((r) => r.epoch === position.epoch);
    if (!ended || (ended.knnAccuracy ?? -ended.loss) !== best) return; // the best is an earlier epoch's
    const bestFile = path.join(this.options.out, 'best.ckpt');
    const linked = await readCheckpointHeader<CheckpointMeta>(bestFile).then(({ meta }) => meta.step === position.step, () => false);
    if (!linked) await linkFileAtomic(last, bestFile);
  }

  private async restore(file: string): Promise<{ position: Position; bestMetric: number | null }> {
    const { meta, tensors } = await readCheckpoint<CheckpointMeta>(file);
    checkTrainingMeta(meta, file);
    try {
      this.checkSameShape(meta, file);
    } catch (err) {
      for (const t of Object.values(tensors)) t.dispose();
      throw err;
    }
    const state = splitTrainingTensors(tensors);
    await this.model.loadStateDict(state.model, { strict: true });
    this.trainStep.loadOptimizerState({ tensors: state.optimizer, steps: meta.optimizerSteps });
    try {
      this.data.setAugmentState(meta.augmentState as AugmenterState);
    } catch (err) {
      for (const t of Object.values(tensors)) t.dispose();
      throw new Error(`${file} holds a corrupt augmenter state: ${(err as Error).message}`);
    }
    for (const t of Object.values(tensors)) t.dispose();
    const position: Position = {
      epoch: meta.epoch, batchInEpoch: meta.batchInEpoch, step: meta.step,
      epochLoss: meta.epochLoss ?? { sum: 0, count: 0 }, epochSeconds: meta.epochSeconds ?? 0,
    };
    return { position, bestMetric: meta.bestMetric };
  }
}

/**
 * Cuts metrics.jsonl back to what the checkpoint at `position` had logged: its steps and its completed epochs. Records
 * logged after that checkpoint (by a run killed later) would otherwise appear twice; a partial last line (a run killed
 * mid-write) goes too.
 */
async function truncateMetrics(file: string, position: Position): Promise<void> {
  const text = await fs.promises.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  const kept = text.split('\n').filter((line) => {
    let record: Partial<StepRecord> & { epoch?: number } & Partial<SessionRecord>;
    try {
      record = JSON.parse(line);
    } catch {
      return false;
    }
    if (typeof record !== 'object' || record === null) return false;
    if (record.session !== undefined) return record.session.step <= position.step;
    return record.step !== undefined ? record.step <= position.step : record.epoch !== undefined && record.epoch <= position.epoch;
  });
  await writeFileAtomic(file, [kept.map((line) => line + '\n').join('')]);
}
