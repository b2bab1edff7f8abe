/**
 * The SimCLR training loop. TypeScript decides what happens (schedule, logging, monitoring, checkpoints); one native
 * call per step does the work (both views forward, fused NT-Xent, backward, optimiser step) off the JS thread, while
 * the loader decodes and the augmenter prepares the next batch.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Tensor } from '../tensor';
import type { ModelBase } from '../models/encoder';
import { createTrainStep, DataParallelOptions, TrainStep } from '../ops/train-step';
import { checkInteger, invalid } from '../errors';
import { learningRate, peakLearningRate, ScheduleConfig } from './schedule';
import { RunConfig, SettingName, checkSettings } from './config';
import { readCheckpoint, writeCheckpoint, checkTrainingMeta, splitTrainingTensors, trainingTensors, CheckpointMeta } from './checkpoint';
import { Progress } from './progress';
import type { MetricsRecord, StepRecord } from './report';

export type { OptimizerName } from '../ops/train-step';

/** The optimiser's run settings; their ranges, defaults and meanings are in RUN_SETTINGS (train/config.ts). */
const OPTIMIZER_SETTINGS = ['optimizer', 'lr', 'lrScaling', 'momentum', 'nesterov', 'weightDecay', 'warmupEpochs'] as const satisfies readonly SettingName[];
export type OptimizerConfig = Pick<RunConfig, (typeof OPTIMIZER_SETTINGS)[number]>;

/** The run settings the Trainer takes, checked against their RUN_SETTINGS entries. */
const TRAINER_SETTINGS = [...OPTIMIZER_SETTINGS, 'epochs', 'batchSize', 'maxSteps', 'temperature', 'precision', 'memoryFormat', 'out'] as const satisfies readonly SettingName[];

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
  /** Batches of epoch `epoch`, starting after the first `skipBatches` (used when resuming mid-epoch). */
  batches(epoch: number, skipBatches: number): AsyncIterable<ImageBatch>;
  batchesPerEpoch: number;
  /** Two views of each image, `2B x 3 x S x S` on `device`. */
  views(images: Tensor): Promise<Tensor>;
  getAugmentState(): unknown;
  setAugmentState(state: unknown): void;
}

/**
 * The optimiser settings, `epochs`, `batchSize`, `temperature`, `out` (the folder for last.ckpt, best.ckpt,
 * metrics.jsonl and the report) and `maxSteps` (stop after this many steps in total; default epochs *
 * batchesPerEpoch) are run settings (RUN_SETTINGS); the rest is the loop's own.
 */
export interface TrainerOptions extends Pick<RunConfig, (typeof TRAINER_SETTINGS)[number]> {
  /** Called after each epoch with the epoch number; may return a monitor accuracy (kNN) used to pick best.ckpt. */
  monitor?: (epoch: number) => Promise<number | undefined>;
  /** Anything else to store in checkpoints (the CLI stores the whole run config). */
  config?: Record<string, unknown>;
  /** Called after every step with its record (e.g. to stop a run at a given step with requestStop). */
  onStep?: (record: StepRecord) => void;
  /** Progress output: a bar on a TTY, plain lines otherwise, or nothing. */
  progress?: 'auto' | 'plain' | 'none';
  /**
   * Data-parallel training over a process group: `batchSize` is per rank (the learning rate scales with the global
   * batch), every rank must train on its own shard of the data with the same number of batches, and rank 0 alone
   * writes metrics.jsonl, the progress and the checkpoints.
   */
  dataParallel?: DataParallelOptions;
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
  /** The augmenter's state before the batch that is augmented but not yet trained on: what an interrupted run saves. */
  private augmentStateBeforePending: unknown;

  constructor(private readonly model: TrainableModel, private readonly data: TrainingData, private readonly options: TrainerOptions) {
    if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
    checkSettings(options, TRAINER_SETTINGS);
    const totalSteps = checkInteger(options.maxSteps ?? options.epochs * data.batchesPerEpoch, 'totalSteps', 1);
    this.schedule = {
      baseLr: options.lr,
      scaling: options.lrScaling,
      batchSize: options.batchSize * (options.dataParallel?.group.worldSize ?? 1),
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
      dataParallel: options.dataParallel,
    });
    this.writer = (options.dataParallel?.group.rank ?? 0) === 0;
  }

  /** Whether this process writes metrics, progress and checkpoints (rank 0 of a data-parallel run). */
  private readonly writer: boolean;

  get peakLearningRate(): number {
    return peakLearningRate(this.schedule);
  }

  /** Asks the loop to stop after the step in flight; it then writes last.ckpt and returns (SIGINT uses this). In a
   * data-parallel run the request travels with the next step, and every rank stops after that step. */
  requestStop(): void {
    if (this.trainStep.group) this.trainStep.requestStop();
    else this.stopRequested = true;
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
    } else if (this.writer) {
      await fs.promises.writeFile(path.join(o.out, 'metrics.jsonl'), '');
    }
    const metricsFile = path.join(o.out, 'metrics.jsonl');
    const records: MetricsRecord[] = [];
    const log = async (record: MetricsRecord) => {
      records.push(record);
      if (this.writer) await fs.promises.appendFile(metricsFile, JSON.stringify(record) + '\n');
    };
    const totalSteps = this.schedule.totalSteps;
    const progress = new Progress(this.writer ? o.progress ?? 'auto' : 'none', totalSteps, position.step);
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
          const lr = learningRate(step, this.schedule);
          const views = pending;
          const stepPromise = this.trainStep.step(views, lr);
          const upcoming = step + 1 < totalSteps && !this.stopRequested ? this.nextViews(iterator) : Promise.resolve(undefined);
          const { loss, images, stop } = await stepPromise;
          if (stop) this.stopRequested = true;
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
          const record: StepRecord = { step, epoch, loss, lr, imagesPerSecond };
          await log(record);
          o.onStep?.(record);
          progress.update(step, { loss, lr, imagesPerSecond, epoch });
          if (this.stopRequested) break;
        }
        const unfinished = pending !== undefined;
        pending?.dispose();
        if (!unfinished) this.augmentStateBeforePending = undefined;
        if (this.stopRequested && (unfinished || batchInEpoch < this.data.batchesPerEpoch)) {
          interrupted = true;
          break;
        }
        const knnAccuracy = o.monitor ? await o.monitor(epoch) : undefined;
        const epochLoss = lossSum / Math.max(1, lossCount);
        await log({ epoch, loss: epochLoss, ...(knnAccuracy !== undefined ? { knnAccuracy } : {}) });
        progress.log(`epoch ${epoch + 1}/${o.epochs}: loss ${epochLoss.toFixed(4)} in ${((Date.now() - epochStart) / 1000).toFixed(0)} s` +
          (knnAccuracy !== undefined ? `, kNN accuracy ${(knnAccuracy * 100).toFixed(2)}%` : ''));
        const metric = knnAccuracy ?? -epochLoss;
        const isBest = best === null || metric > best;
        if (isBest) best = metric;
        const at = { epoch: epoch + 1, batchInEpoch: 0, step };
        await this.save(path.join(o.out, 'last.ckpt'), at, best);
        if (isBest && this.writer) await fs.promises.copyFile(path.join(o.out, 'last.ckpt'), path.join(o.out, 'best.ckpt'));
      }
      if (interrupted) {
        // A batch that was already augmented but not trained on is redone after resuming, with the same draws.
        if (this.augmentStateBeforePending !== undefined) this.data.setAugmentState(this.augmentStateBeforePending);
        await this.save(path.join(o.out, 'last.ckpt'), { epoch, batchInEpoch, step }, best);
      }
    } finally {
      progress.stop();
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
    if (!this.writer) return;
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
    this.data.setAugmentState(meta.augmentState);
    for (const t of Object.values(tensors)) t.dispose();
    return { epoch: meta.epoch, batchInEpoch: meta.batchInEpoch, step: meta.step, bestMetric: meta.bestMetric };
  }
}
