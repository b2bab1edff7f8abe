/**
 * The SimCLR training loop. TypeScript decides what happens (schedule, logging, monitoring, checkpoints); one native
 * call per step does the work (both views forward, fused NT-Xent, backward, optimiser step) off the JS thread, while
 * the loader decodes and the augmenter prepares the next batch.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Tensor } from '../tensor';
import type { ModelBase } from '../models/encoder';
import { createTrainStep, TrainStep } from '../ops/train-step';
import { checkInteger, checkNumber, invalid } from '../errors';
import { learningRate, peakLearningRate, ScheduleConfig } from './schedule';
import { DEFAULT_RUN_CONFIG, RunConfig, SettingName, checkSettings } from './config';
import { readCheckpoint, writeCheckpoint, checkTrainingMeta, splitTrainingTensors, trainingTensors, CheckpointMeta } from './checkpoint';
import { Progress } from './progress';
import type { EpochRecord, MetricsRecord, StepRecord } from './report';
import type { AugmenterState } from '../augment';

export type { OptimizerName } from '../ops/train-step';

/** The optimiser's run settings; their ranges, defaults and meanings are in RUN_SETTINGS (train/config.ts). */
const OPTIMIZER_SETTINGS = ['optimizer', 'lr', 'lrScaling', 'momentum', 'nesterov', 'weightDecay', 'warmupEpochs'] as const satisfies readonly SettingName[];
export type OptimizerConfig = Pick<RunConfig, (typeof OPTIMIZER_SETTINGS)[number]>;

/** The run settings the Trainer takes, checked against their RUN_SETTINGS entries. */
const TRAINER_SETTINGS = [...OPTIMIZER_SETTINGS, 'epochs', 'batchSize', 'accumulationSteps', 'maxSteps', 'temperature', 'precision', 'memoryFormat', 'out'] as const satisfies readonly SettingName[];

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
}

/** What the loop needs of the data side: batches per epoch, and a seeded augmenter whose state can be saved. */
export interface TrainingData {
  /** Batches of epoch `epoch` (0-based: the loader's shuffle index), starting after the first `skipBatches` (used when resuming mid-epoch). */
  batches(epoch: number, skipBatches: number): AsyncIterable<ImageBatch>;
  batchesPerEpoch: number;
  /** Two views of each image, `2B x 3 x S x S` on `device`. */
  views(images: Tensor): Promise<Tensor>;
  getAugmentState(): AugmenterState;
  setAugmentState(state: AugmenterState): void;
}

/** Where the loop is when it asks a custom learning-rate function. */
export interface LrScheduleContext {
  /** Steps per epoch and steps of the whole run. */
  stepsPerEpoch: number;
  totalSteps: number;
  /** The learning rate the built-in schedule (scaled lr, warmup, cosine) would use at this step. */
  scheduled: number;
}

/**
 * The run settings the Trainer takes (the optimiser's, `epochs`, `batchSize`, `accumulationSteps`, `maxSteps`,
 * `temperature`, `precision`, `memoryFormat`, `out`: the folder for last.ckpt, best.ckpt, metrics.jsonl and the
 * report). Each one left out takes its RUN_SETTINGS default, as runTraining and the CLI do. With `accumulationSteps`
 * N > 1 a step is still one batch, and the optimiser updates every N steps; a stop waits for the group to finish, but
 * a group that spans an epoch's end is started afresh by a run resumed from that epoch's checkpoint.
 */
export interface TrainerOptions extends Partial<Pick<RunConfig, (typeof TRAINER_SETTINGS)[number]>> {
  /** Called after each epoch with the epoch number (1 = the first); may return a monitor accuracy (kNN) used to pick best.ckpt. */
  monitor?: (epoch: number) => Promise<number | undefined>;
  /** Anything else to store in checkpoints (the CLI stores the whole run config). */
  config?: Record<string, unknown>;
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
}

/** The options with every run setting filled in. */
type ResolvedOptions = TrainerOptions & Pick<RunConfig, Exclude<(typeof TRAINER_SETTINGS)[number], 'maxSteps'>>;

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
  /** The progress output while fit() runs. */
  private progress: Progress | undefined;
  /** The augmenter's state before the batch that is augmented but not yet trained on: what an interrupted run saves. */
  private augmentStateBeforePending: AugmenterState | undefined;

  private readonly options: ResolvedOptions;

  constructor(private readonly model: TrainableModel, private readonly data: TrainingData, trainerOptions: TrainerOptions = {}) {
    if (typeof trainerOptions !== 'object' || trainerOptions === null) throw invalid('an options object', 'options', trainerOptions);
    if (trainerOptions.lrSchedule !== undefined && typeof trainerOptions.lrSchedule !== 'function') {
      throw invalid('a function (step, context) => lr', 'lrSchedule', trainerOptions.lrSchedule);
    }
    const defaults = Object.fromEntries(TRAINER_SETTINGS.flatMap((name) => (name in DEFAULT_RUN_CONFIG ? [[name, DEFAULT_RUN_CONFIG[name as keyof RunConfig]]] : [])));
    const given = Object.fromEntries(Object.entries(trainerOptions).filter(([, value]) => value !== undefined));
    const options = { ...defaults, ...given } as ResolvedOptions;
    checkSettings(options, TRAINER_SETTINGS);
    this.options = options;
    const totalSteps = checkInteger(options.maxSteps ?? options.epochs * data.batchesPerEpoch, 'totalSteps', 1);
    this.schedule = {
      baseLr: options.lr,
      scaling: options.lrScaling,
      // With accumulation an update sees accumulationSteps batches: the rate scales with that effective batch.
      batchSize: options.batchSize * options.accumulationSteps,
      warmupSteps: Math.min(totalSteps - 1, Math.round(options.warmupEpochs * data.batchesPerEpoch)),
      totalSteps,
    };
    this.trainStep = createTrainStep(model, {
      optimizer: options.optimizer,
      momentum: options.momentum,
      nesterov: options.nesterov,
      weightDecay: options.weightDecay,
      temperature: options.temperature,
      precision: options.precision,
      memoryFormat: options.memoryFormat,
      accumulationSteps: options.accumulationSteps,
    });
  }

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
   * Asks the loop to stop after the step in flight; it then writes last.ckpt and returns (SIGINT uses this). `notice`
   * is printed above the progress line (or on stderr when the loop is not running).
   */
  requestStop(notice?: string): void {
    this.stopRequested = true;
    if (notice === undefined) return;
    if (this.progress) this.progress.log(notice);
    else process.stderr.write(`${notice}\n`);
  }

  /** Trains from scratch, or from `resumeFrom` (a checkpoint written by this trainer) to the same end. */
  async fit(resumeFrom?: string): Promise<TrainResult> {
    const o = this.options;
    await fs.promises.mkdir(o.out, { recursive: true });
    let position = { epoch: 0, batchInEpoch: 0, step: 0 };
    let best: number | null = null;
    if (resumeFrom) {
      const restored = await this.restore(resumeFrom);
      position = restored;
      best = restored.bestMetric;
    } else {
      await fs.promises.writeFile(path.join(o.out, 'metrics.jsonl'), '');
    }
    const metricsFile = path.join(o.out, 'metrics.jsonl');
    const records: MetricsRecord[] = [];
    const log = async (record: MetricsRecord) => {
      records.push(record);
      await fs.promises.appendFile(metricsFile, JSON.stringify(record) + '\n');
    };
    const totalSteps = this.schedule.totalSteps;
    const progress = new Progress(o.progress ?? 'auto', totalSteps, position.step);
    this.progress = progress;
    let lastLoss = NaN;
    let interrupted = false;
    let epoch = position.epoch;
    let batchInEpoch = position.batchInEpoch;
    let step = position.step;

    try {
      for (; epoch < o.epochs && step < totalSteps && !this.stopRequested; epoch++, batchInEpoch = 0) {
        const epochStart = Date.now();
        let lossSum = 0;
        let lossCount = 0;
        const iterator = this.data.batches(epoch, batchInEpoch)[Symbol.asyncIterator]();
        // The next batch's augmentation starts while the current step runs.
        let pending = await this.nextViews(iterator);
        while (pending && step < totalSteps) {
          const stepStart = process.hrtime.bigint();
          const lr = this.learningRateAt(step);
          const views = pending;
          const stepPromise = this.trainStep.step(views, lr);
          // A stop waits for the end of an accumulation group: a checkpoint holds no half-accumulated gradients.
          const groupOpen = (step + 1) % o.accumulationSteps !== 0;
          const upcoming = step + 1 < totalSteps && (!this.stopRequested || groupOpen) ? this.nextViews(iterator) : Promise.resolve(undefined);
          const { loss } = await stepPromise;
          const images = views.shape[0] / 2;
          views.dispose();
          pending = await upcoming;
          if (!Number.isFinite(loss)) throw new Error(`the loss became ${loss} at step ${step}: lower the learning rate`);
          const seconds = Number(process.hrtime.bigint() - stepStart) / 1e9;
          const imagesPerSecond = images / seconds;
          step++;
          batchInEpoch++;
          lastLoss = loss;
          lossSum += loss;
          lossCount++;
          // Epochs are numbered from 1 wherever a person reads them (metrics.jsonl, the report, the console).
          const record: StepRecord = { step, epoch: epoch + 1, loss, lr, imagesPerSecond, images };
          await log(record);
          await o.onStep?.(record);
          progress.update(step, { loss, lr, imagesPerSecond, epoch: epoch + 1, epochs: o.epochs });
          if (this.stopRequested && step % o.accumulationSteps === 0) break;
        }
        const unfinished = pending !== undefined;
        pending?.dispose();
        if (!unfinished) this.augmentStateBeforePending = undefined;
        if (this.stopRequested && (unfinished || batchInEpoch < this.data.batchesPerEpoch)) {
          interrupted = true;
          break;
        }
        const knnAccuracy = o.monitor ? await o.monitor(epoch + 1) : undefined;
        const epochLoss = lossSum / Math.max(1, lossCount);
        const epochRecord: EpochRecord = { epoch: epoch + 1, loss: epochLoss, ...(knnAccuracy !== undefined ? { knnAccuracy } : {}) };
        await log(epochRecord);
        await o.onEpoch?.(epochRecord);
        progress.log(`epoch ${epoch + 1}/${o.epochs}: loss ${epochLoss.toFixed(4)} in ${((Date.now() - epochStart) / 1000).toFixed(0)} s` +
          (knnAccuracy !== undefined ? `, kNN accuracy ${(knnAccuracy * 100).toFixed(2)}%` : ''));
        const metric = knnAccuracy ?? -epochLoss;
        const isBest = best === null || metric > best;
        if (isBest) best = metric;
        const at = { epoch: epoch + 1, batchInEpoch: 0, step };
        await this.save(path.join(o.out, 'last.ckpt'), at, best);
        if (isBest) await fs.promises.copyFile(path.join(o.out, 'last.ckpt'), path.join(o.out, 'best.ckpt'));
      }
      if (interrupted) {
        // A batch that was already augmented but not trained on is redone after resuming, with the same draws.
        if (this.augmentStateBeforePending !== undefined) this.data.setAugmentState(this.augmentStateBeforePending);
        await this.save(path.join(o.out, 'last.ckpt'), { epoch, batchInEpoch, step }, best);
      }
    } finally {
      progress.stop();
      this.progress = undefined;
    }
    return { steps: step, epochsCompleted: interrupted ? epoch : Math.min(epoch, o.epochs), lastLoss, interrupted, records };
  }

  private async nextViews(iterator: AsyncIterator<ImageBatch>): Promise<Tensor | undefined> {
    const next = await iterator.next();
    if (next.done) return undefined;
    this.augmentStateBeforePending = this.data.getAugmentState();
    const views = await this.data.views(next.value.images);
    next.value.images.dispose();
    return views;
  }

  private async save(file: string, at: { epoch: number; batchInEpoch: number; step: number }, best: number | null): Promise<void> {
    const modelState = await this.model.stateDict();
    const optimizer = this.trainStep.optimizerState();
    const tensors = trainingTensors(modelState, optimizer.tensors);
    const meta: CheckpointMeta = {
      format: 'simclr-checkpoint',
      ...at,
      optimizerSteps: optimizer.steps,
      augmentState: this.data.getAugmentState(),
      bestMetric: best,
      config: { ...(this.options.config ?? {}) },
    };
    await writeCheckpoint(file, { meta, tensors });
    for (const t of Object.values(tensors)) t.dispose();
  }

  private async restore(file: string): Promise<{ epoch: number; batchInEpoch: number; step: number; bestMetric: number | null }> {
    const { meta, tensors } = await readCheckpoint<CheckpointMeta>(file);
    checkTrainingMeta(meta, file);
    const state = splitTrainingTensors(tensors);
    await this.model.loadStateDict(state.model, { strict: true });
    this.trainStep.loadOptimizerState({ tensors: state.optimizer, steps: meta.optimizerSteps });
    this.data.setAugmentState(meta.augmentState as AugmenterState);
    for (const t of Object.values(tensors)) t.dispose();
    return { epoch: meta.epoch, batchInEpoch: meta.batchInEpoch, step: meta.step, bestMetric: meta.bestMetric };
  }
}
