/**
 * The training step as one native call (native/core/train_step): forward of every view through encoder and head (under
 * autocast for bf16/fp16), fused NT-Xent in float32, backward and the optimiser update, off the JS thread. The
 * optimiser is an object of its own, so a custom loop chooses its schedule, logging and checkpoints; the `Trainer`
 * (train/trainer.ts) is one such loop.
 */
import { native, NativeDataParallelOptions, NativeOptimizer } from '../native';
import { Tensor } from '../tensor';
import type { ModelBase } from '../models/encoder';
import { checkInteger, checkNumber, checkOneOf, invalid, markChecked, wasChecked, withCallerStack } from '../errors';
import { NT_XENT_DEFAULT_TEMPERATURE, NT_XENT_MIN_TEMPERATURE } from './nt-xent';
import { FORWARD_DEFAULTS, MEMORY_FORMATS, MemoryFormat, PRECISIONS, Precision, checkMemoryFormat, checkPrecision } from '../models/precision';
import { Setting, checkSettings, defaultsOf } from '../settings';
import { ProcessGroup } from './process-group';

/** The optimisers of the native step, written out for their literal types (RunConfig's `optimizer`); a test checks them
 * against the native list, `native.optimizerNames`. */
export const OPTIMIZERS = ['sgd', 'adamw', 'lars'] as const;

/** The largest momentum (and AdamW beta): a moving average at 1 would never move again. Defined in native/core. */
export const MAX_MOMENTUM: number = native.maxMomentum;

/** The most batches accumulated into one update (far more than a run needs: a bound on typos). Defined in native/core. */
export const MAX_ACCUMULATION_STEPS: number = native.maxAccumulationSteps;
export type OptimizerName = (typeof OPTIMIZERS)[number];

/** Options left out take {@link OPTIMIZER_DEFAULTS}: the run settings' recipe (SGD, momentum 0.9, weight decay 5e-4). */
export interface OptimizerOptions {
  /** Which optimiser (default 'sgd'). */
  optimizer?: OptimizerName;
  /** SGD/LARS momentum (default 0.9). */
  momentum?: number;
  /** Nesterov momentum, SGD only (default false). */
  nesterov?: boolean;
  /** L2 for SGD, decoupled for AdamW, before adaptation for LARS; never on biases and BatchNorm (default 5e-4). */
  weightDecay?: number;
  /** AdamW's moment decay rates and epsilon (defaults 0.9, 0.999, 1e-8, as PyTorch). */
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** LARS trust coefficient η (default 0.001, as SimCLR). */
  trustCoefficient?: number;
  /** Makes every step with this optimiser a data-parallel step over a process group (see {@link DataParallelOptions}). */
  dataParallel?: DataParallelOptions;
}

/**
 * Data parallelism as PyTorch's DistributedDataParallel, plus what SimCLR needs: each rank steps on its own images;
 * before the first step the parameters and buffers of rank 0 are broadcast; the embeddings of all ranks are gathered
 * (with gradient) so that every rank scores its own rows against the global batch's N·B negatives; gradients are
 * all-reduced as a mean in ~25 MB buckets while backward runs. N ranks with batch B then compute the step one worker
 * with batch N·B would (with global BatchNorm), up to float rounding.
 */
export interface DataParallelOptions {
  group: ProcessGroup;
  /** BatchNorm statistics over all ranks, SimCLR's global BN (default true). False: per rank, with the buffers
   * (running statistics) broadcast from rank 0 before each step, as DDP does. */
  globalBatchNorm?: boolean;
  /** Size of the gradient buckets in MiB (default 25, DDP's). */
  bucketMegabytes?: number;
  /**
   * @internal What the all-gather's backward does: 'sum' (default, right) sums each row's gradient over all ranks;
   * 'own' keeps the rank's own only, the bug lightly shipped (#1528). For tests that show why the sum matters.
   */
  gatherBackward?: 'sum' | 'own';
}

function nativeDataParallel(options: DataParallelOptions | undefined): NativeDataParallelOptions | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== 'object' || options === null) throw invalid('an options object { group }', 'dataParallel', options);
  if (!(options.group instanceof ProcessGroup)) throw invalid('a ProcessGroup (ProcessGroup.init)', 'dataParallel.group', options.group);
  const globalBatchNorm = options.globalBatchNorm ?? true;
  if (typeof globalBatchNorm !== 'boolean') throw invalid('a boolean', 'dataParallel.globalBatchNorm', globalBatchNorm);
  return {
    group: options.group.handle,
    globalBatchNorm,
    gatherBackward: checkOneOf(options.gatherBackward ?? 'sum', 'dataParallel.gatherBackward', ['sum', 'own'] as const),
    bucketBytes: Math.round(checkNumber(options.bucketMegabytes ?? 25, 'dataParallel.bucketMegabytes', 0, 2 ** 20, true) * 2 ** 20),
  };
}

/**
 * The optimiser's settings: the recipe's SGD (momentum 0.9, weight decay 5e-4, lightly's CIFAR-10 benchmark), PyTorch's
 * betas and epsilon for AdamW, SimCLR's trust coefficient for LARS. The run settings (run/config.ts) are made of these
 * entries, so a custom loop and a run start from the same recipe and check the same ranges.
 */
export const OPTIMIZER_SETTINGS = {
  optimizer: { kind: 'enum', choices: OPTIMIZERS, default: 'sgd', help: 'optimiser of the training step' },
  momentum: { kind: 'number', min: 0, max: MAX_MOMENTUM, default: 0.9, help: 'SGD/LARS momentum' },
  nesterov: { kind: 'bool', default: false, help: 'Nesterov momentum (SGD)' },
  weightDecay: { kind: 'number', min: 0, default: 5e-4, help: 'weight decay (biases and BatchNorm excluded)' },
  beta1: { kind: 'number', min: 0, max: MAX_MOMENTUM, default: 0.9, help: "AdamW's first moment decay" },
  beta2: { kind: 'number', min: 0, max: MAX_MOMENTUM, default: 0.999, help: "AdamW's second moment decay" },
  eps: { kind: 'number', min: 0, exclusiveMin: true, default: 1e-8, help: "AdamW's epsilon" },
  trustCoefficient: { kind: 'number', min: 0, exclusiveMin: true, default: 0.001, help: "LARS' trust coefficient" },
} as const satisfies Record<string, Setting>;

/** The defaults of the optional optimiser options ({@link OPTIMIZER_SETTINGS}'). */
export const OPTIMIZER_DEFAULTS = defaultsOf(OPTIMIZER_SETTINGS);

/**
 * How a training step runs, besides its optimiser: the loss's temperature, how many updates a gradient accumulates,
 * and precision and memory format (PyTorch's fp32 and contiguous by default; a run resolves its `'auto'`).
 */
export const TRAIN_STEP_SETTINGS = {
  temperature: { kind: 'number', min: NT_XENT_MIN_TEMPERATURE, exclusiveMin: true, default: NT_XENT_DEFAULT_TEMPERATURE, help: 'NT-Xent temperature' },
  accumulationSteps: { kind: 'int', min: 1, max: MAX_ACCUMULATION_STEPS, default: 1, help: 'update every N batches on their mean gradient: an effective batch of N x batch-size, which --lr-scaling uses' },
  precision: { kind: 'enum', choices: PRECISIONS, default: FORWARD_DEFAULTS.precision, help: 'fp32, or autocast to bf16/fp16 (fp16: CUDA only)' },
  memoryFormat: { kind: 'enum', choices: MEMORY_FORMATS, default: FORWARD_DEFAULTS.memoryFormat, help: 'contiguous (NCHW) or channelsLast (NHWC)' },
} as const satisfies Record<string, Setting>;

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}


/** An optimiser's state: its buffers by `<parameter>/<kind>` (momentum, exp_avg, exp_avg_sq; amp/* for fp16's loss
 * scaler) and its step count. Checkpoints save it; {@link Optimizer.loadState} restores it. */
export interface OptimizerState {
  tensors: Record<string, Tensor>;
  steps: number;
}

/** What an optimiser is created for: a model with a projection head (a SimCLRModel). */
type Trainable = Pick<ModelBase, 'handle'>;

/**
 * SGD (momentum, Nesterov), AdamW or LARS over the trainable parameters of a SimCLR model, as PyTorch's
 * `torch.optim.SGD` / `AdamW` and SimCLR's LARS; biases and BatchNorm parameters are excluded from weight decay (and
 * from LARS adaptation). The learning rate is given at each {@link trainStep}, so any schedule works.
 */
export class Optimizer {
  /** @internal */
  readonly handle: NativeOptimizer;
  readonly model: Trainable;
  /** The process group of a data-parallel optimiser. */
  readonly group: ProcessGroup | undefined;

  private constructor(model: Trainable, handle: NativeOptimizer, group: ProcessGroup | undefined) {
    this.model = model;
    this.handle = handle;
    this.group = group;
  }

  static create(model: Trainable, options: OptimizerOptions = {}): Optimizer {
    if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
    const o = { ...OPTIMIZER_DEFAULTS, ...definedOnly(options) };
    if (!wasChecked(options)) checkSettings(OPTIMIZER_SETTINGS, o);
    return new Optimizer(model, native.createOptimizer(model.handle, {
      optimizer: o.optimizer, momentum: o.momentum, nesterov: o.nesterov, weightDecay: o.weightDecay,
      beta1: o.beta1, beta2: o.beta2, eps: o.eps, trustCoefficient: o.trustCoefficient,
    }, nativeDataParallel(options.dataParallel)), options.dataParallel?.group);
  }

  /** Copies of the optimiser's buffers (empty before the first step) and its step count. */
  state(): OptimizerState {
    const state = this.handle.state();
    const tensors: Record<string, Tensor> = {};
    state.names.forEach((name, i) => {
      tensors[name] = new Tensor(state.tensors[i]);
    });
    return { tensors, steps: state.steps };
  }

  /** Restores buffers and step count saved by {@link state}. */
  loadState(state: OptimizerState): void {
    if (typeof state !== 'object' || state === null || typeof state.tensors !== 'object') {
      throw invalid('an optimizer state { tensors, steps }', 'state', state);
    }
    const names = Object.keys(state.tensors);
    this.handle.loadState(names, names.map((name) => state.tensors[name].handle), checkInteger(state.steps, 'steps', 0));
  }
}

export interface TrainStepOptions {
  optimizer: Optimizer;
  /** Learning rate of this step's update. */
  lr: number;
  /** NT-Xent temperature τ (default {@link NT_XENT_DEFAULT_TEMPERATURE}, 0.2, the run settings' too). */
  temperature?: number;
  /** Views per image over all tensors of views (default 2). */
  views?: number;
  /** `fp32` (default, no autocast, as in PyTorch), `bf16` or `fp16` (CUDA); a run resolves its `'auto'` into one. */
  precision?: Precision;
  /** `contiguous` (default, as in PyTorch) or `channelsLast`. */
  memoryFormat?: MemoryFormat;
  /** Apply the update once every this many calls, on the mean of their gradients (default 1: every call). */
  accumulationSteps?: number;
  /** Data-parallel: ask every rank to stop after this step; the answer is the result's `stop` (default false). */
  stopRequested?: boolean;
}

export interface TrainStepResult {
  /** This batch's NT-Xent loss (before the update); data-parallel: the global batch's, the same on every rank. */
  loss: number;
  /** Data-parallel: the loss of this rank's anchors only; otherwise the same as `loss`. */
  localLoss: number;
  /** Images in the batch (data-parallel: over all ranks). */
  images: number;
  /** Whether the optimiser update ran: false while accumulating, or when fp16's loss scaler found Inf/NaN. */
  applied: boolean;
  /** Whether a rank asked to stop after this step (`stopRequested`): every rank gets the same answer. */
  stop: boolean;
}

/** The native step options that stay fixed for a TrainStep: complete, and checked unless `options` was. */
function fixedStepOptions(options: Omit<TrainStepOptions, 'optimizer' | 'lr' | 'stopRequested'>, device: string) {
  const o = { ...TRAIN_STEP_DEFAULTS, views: 2, ...definedOnly(options) };
  if (!wasChecked(options)) {
    checkSettings(TRAIN_STEP_SETTINGS, o);
    checkPrecision(o.precision, device);
    checkMemoryFormat(o.memoryFormat);
    checkInteger(o.views, 'views', 2, 64);
  }
  return { temperature: o.temperature, views: o.views, precision: o.precision, memoryFormat: o.memoryFormat, accumulationSteps: o.accumulationSteps };
}

type FixedStepOptions = ReturnType<typeof fixedStepOptions>;

/** The defaults of {@link TRAIN_STEP_SETTINGS}. */
const TRAIN_STEP_DEFAULTS = defaultsOf(TRAIN_STEP_SETTINGS);

function checkViews(views: Tensor | readonly Tensor[]): Tensor[] {
  const list = Array.isArray(views) ? views : [views];
  list.forEach((v, i) => {
    if (!(v instanceof Tensor)) throw invalid('a Tensor or an array of Tensors', Array.isArray(views) ? `views[${i}]` : 'views', v);
  });
  return list as Tensor[];
}

/**
 * One SimCLR training step of `model` on `views`: forward of every view, NT-Xent, backward, and (every
 * `accumulationSteps` calls) the optimiser's update with learning rate `lr`, in one native call off the JS thread.
 *
 * `views` is `V*B x 3 x H x W` with view-major rows (rows i and i + B are views of image i), or, for multi-crop, one
 * such tensor per resolution (all views of image i in every tensor are its positives). The model is put in train mode.
 * With a data-parallel optimiser every rank must call this with its own images, the same number of times; a rank may
 * hold a different number of images than the others (at least one).
 */
export async function trainStep(model: Trainable, views: Tensor | readonly Tensor[], options: TrainStepOptions): Promise<TrainStepResult> {
  return (await launchTrainStep(model, views, options)).result();
}

/** A training step queued on its device: its update is ordered there before anything queued later. */
export interface LaunchedTrainStep {
  /** Images in the batch (data-parallel: over all ranks). */
  readonly images: number;
  /**
   * The step's loss and the rest of its result, once its scalars reach the host: on a GPU, once the step has run there.
   * Read it after queuing the next step, and the GPU does not wait for the host in between.
   */
  result(): Promise<TrainStepResult>;
}

/**
 * {@link trainStep} without waiting for its loss: the promise settles once the step is queued on the model's device
 * (on the CPU, where ATen runs synchronously, once it ran), and `result()` reads the loss when it is wanted. A loop that
 * queues step k+1 before it reads step k's loss keeps a GPU busy; the losses and weights are the same either way.
 */
export async function launchTrainStep(model: Trainable, views: Tensor | readonly Tensor[], options: TrainStepOptions): Promise<LaunchedTrainStep> {
  if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
  const { optimizer, lr, stopRequested = false, ...fixed } = options;
  if (!(optimizer instanceof Optimizer)) throw invalid('an Optimizer (Optimizer.create)', 'optimizer', optimizer);
  if (optimizer.model.handle !== model.handle) throw new RangeError('this optimizer was created for another model');
  if (typeof stopRequested !== 'boolean') throw invalid('a boolean', 'stopRequested', stopRequested);
  return launchChecked(model, optimizer, checkViews(views), fixedStepOptions(fixed, model.handle.device()), checkNumber(lr, 'lr', 0), stopRequested);
}

/** Queues a step whose fixed options were checked when its TrainStep was made: only what comes with each step is new. */
async function launchChecked(model: Trainable, optimizer: Optimizer, views: Tensor[], fixed: FixedStepOptions, lr: number,
  stopRequested: boolean): Promise<LaunchedTrainStep> {
  const launched = await withCallerStack(native.trainStep(model.handle, optimizer.handle, views.map((v) => v.handle),
    { ...fixed, lr, stopRequested }));
  let read: Promise<TrainStepResult> | undefined;
  return {
    images: launched.images,
    result: () => (read ??= withCallerStack(native.readTrainStepValues(launched.values))
      .then(({ loss, localLoss, stop }) => ({ loss, localLoss, stop, images: launched.images, applied: launched.applied }))),
  };
}

/** The settings of a fixed training loop: an optimiser, the loss and how the step runs (data-parallel with
 * `dataParallel`). */
export interface TrainStepConfig extends OptimizerOptions {
  temperature?: number;
  views?: number;
  precision?: Precision;
  memoryFormat?: MemoryFormat;
  accumulationSteps?: number;
}

/** A model and its optimiser, stepped together with fixed settings (what the Trainer runs). */
export interface TrainStep {
  readonly optimizer: Optimizer;
  /** One step with learning rate `lr` on `views` (see {@link trainStep}). */
  step(views: Tensor | readonly Tensor[], lr: number): Promise<TrainStepResult>;
  /** The same step, its loss read later (see {@link launchTrainStep}). */
  launch(views: Tensor | readonly Tensor[], lr: number): Promise<LaunchedTrainStep>;
  optimizerState(): OptimizerState;
  loadOptimizerState(state: OptimizerState): void;
  /** The process group of a data-parallel step. */
  readonly group: ProcessGroup | undefined;
  /**
   * Asks to stop: the next step's result has `stop` set, on every rank of a data-parallel step at the same step (a
   * rank that stopped on its own would leave the others waiting in a collective).
   */
  requestStop(): void;
}

/**
 * A training step for `model` (a SimCLRModel: it needs a projection head) with its own optimiser. Its settings are
 * checked here, once (or not at all when `config` comes checked from a run); each step then checks only its views and
 * learning rate.
 */
export function createTrainStep(model: Trainable, config: TrainStepConfig): TrainStep {
  if (typeof config !== 'object' || config === null) throw invalid('an options object', 'options', config);
  const { temperature, views, precision, memoryFormat, accumulationSteps, ...optimizerOptions } = config;
  const checked = wasChecked(config);
  const given = { temperature, views, precision, memoryFormat, accumulationSteps };
  const fixed = fixedStepOptions(checked ? markChecked(given) : given, model.handle.device());
  const optimizer = Optimizer.create(model, checked ? markChecked(optimizerOptions) : optimizerOptions);
  let stopRequested = false;
  const launch = (batch: Tensor | readonly Tensor[], lr: number) => launchChecked(model, optimizer, checkViews(batch), fixed, checkNumber(lr, 'lr', 0), stopRequested);
  return {
    optimizer,
    step: async (batch, lr) => (await launch(batch, lr)).result(),
    launch,
    optimizerState: () => optimizer.state(),
    loadOptimizerState: (state) => optimizer.loadState(state),
    group: optimizer.group,
    requestStop: () => {
      stopRequested = true;
    },
  };
}
