/**
 * The training step as one native call: forward of every view, fused NT-Xent, backward and the optimiser step, off the
 * JS thread. The TypeScript loop (train/trainer.ts) decides the learning rate and when to checkpoint.
 */
import { native, NativeTrainer, NativeTrainerOptions } from '../native';
import { Tensor } from '../tensor';
import type { ModelBase } from '../models/encoder';
import { invalid, withCallerStack } from '../errors';

/** The optimisers of the native step. */
export const OPTIMIZERS = ['sgd', 'adamw', 'lars'] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];

/** What the step needs of its options; anything left out takes {@link TRAIN_STEP_DEFAULTS}. */
export interface TrainStepOptions {
  optimizer: OptimizerName;
  /** NT-Xent temperature τ. */
  temperature: number;
  /** SGD/LARS momentum. */
  momentum?: number;
  /** Nesterov momentum (SGD). */
  nesterov?: boolean;
  /** Decoupled for AdamW; biases and BatchNorm parameters are excluded for all optimisers. */
  weightDecay?: number;
  /** AdamW's moment decay rates and epsilon. */
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** LARS trust coefficient η. */
  trustCoefficient?: number;
  /** Views per image in a batch (rows of `views` are view-major). */
  views?: number;
}

/** The defaults of the optional step options (PyTorch's for AdamW, SimCLR's for LARS). */
export const TRAIN_STEP_DEFAULTS = Object.freeze({
  momentum: 0.9,
  nesterov: false,
  weightDecay: 0,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  trustCoefficient: 0.001,
  views: 2,
});

/** The optimiser's state: its buffers by `<parameter>/<kind>` (momentum, exp_avg, exp_avg_sq) and its step count. */
export interface OptimizerState {
  tensors: Record<string, Tensor>;
  steps: number;
}

/** A model and its optimiser, stepped together. */
export interface TrainStep {
  /** One update with learning rate `lr` on `views` (`V*B x 3 x H x W`, view-major); resolves to the loss before it. */
  step(views: Tensor, lr: number): Promise<{ loss: number }>;
  /** Copies of the optimiser's buffers (empty before the first step). */
  optimizerState(): OptimizerState;
  /** Restores buffers and step count saved by {@link optimizerState}. */
  loadOptimizerState(state: OptimizerState): void;
}

/** The complete native options: every key present, as the native side requires. */
export function nativeTrainerOptions(options: TrainStepOptions): NativeTrainerOptions {
  const d = TRAIN_STEP_DEFAULTS;
  return {
    optimizer: options.optimizer,
    momentum: options.momentum ?? d.momentum,
    nesterov: options.nesterov ?? d.nesterov,
    weightDecay: options.weightDecay ?? d.weightDecay,
    beta1: options.beta1 ?? d.beta1,
    beta2: options.beta2 ?? d.beta2,
    eps: options.eps ?? d.eps,
    trustCoefficient: options.trustCoefficient ?? d.trustCoefficient,
    temperature: options.temperature,
    views: options.views ?? d.views,
  };
}

/**
 * A training step for `model` (a SimCLRModel: it needs a projection head). Ranges are the caller's to check (the
 * Trainer checks its options against the run settings); the native side rejects what it cannot run.
 */
export function createTrainStep(model: Pick<ModelBase, 'handle'>, options: TrainStepOptions): TrainStep {
  if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
  const trainer: NativeTrainer = native.createTrainer(model.handle, nativeTrainerOptions(options));
  return {
    async step(views: Tensor, lr: number): Promise<{ loss: number }> {
      if (!(views instanceof Tensor)) throw invalid('a Tensor', 'views', views);
      return withCallerStack(trainer.step(views.handle, lr));
    },
    optimizerState(): OptimizerState {
      const state = trainer.optimizerState();
      const tensors: Record<string, Tensor> = {};
      state.names.forEach((name, i) => {
        tensors[name] = new Tensor(state.tensors[i]);
      });
      return { tensors, steps: state.steps };
    },
    loadOptimizerState(state: OptimizerState): void {
      const names = Object.keys(state.tensors);
      trainer.loadOptimizerState(names, names.map((name) => state.tensors[name].handle), state.steps);
    },
  };
}
