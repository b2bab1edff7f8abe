/**
 * The configuration of a training run: defaults, a JSON config file (`--config`), then command-line flags, in that
 * order of precedence. One typed object, validated once, stored in every checkpoint.
 */
import * as fs from 'fs';
import { checkInteger, checkNumber, checkOneOf } from '../errors';
import type { OptimizerConfig } from './trainer';

/** The optimiser settings (optimizer, lr, lrScaling, momentum, nesterov, weightDecay, warmupEpochs) are OptimizerConfig's. */
export interface RunConfig extends OptimizerConfig {
  /** An image folder, a manifest (.csv/.jsonl), or `fashion-mnist`. */
  data: string;
  /** Labelled split for the kNN monitor and evaluation (`fashion-mnist` uses its test split). */
  evalData?: string;
  /** Use only the first N training images (after a seeded shuffle), for quick runs. */
  subset?: number;
  evalSubset?: number;
  backbone: string;
  stem: 'imagenet' | 'cifar';
  /** Images are decoded and resized to this size before augmentation. */
  baseSize: number;
  /** Side of each augmented view. */
  imageSize: number;
  /** Colour-jitter strength s (SimCLR: 1 on ImageNet, 0.5 on CIFAR). */
  jitterStrength: number;
  /** Probability of Gaussian blur (SimCLR ImageNet: 0.5; small images: 0). */
  blurProbability: number;
  /** Smallest crop area fraction of RandomResizedCrop. */
  minScale: number;
  projectionDim: number;
  projectionLayers: number;
  projectionBatchNorm: boolean;
  epochs: number;
  batchSize: number;
  maxSteps?: number;
  temperature: number;
  seed: number;
  device: string;
  /** Run the kNN monitor every K epochs (0: never). */
  knnEvery: number;
  knnK: number;
  knnTemperature: number;
  /** Decoding concurrency of the loader. */
  workers: number;
  out: string;
}

export const DEFAULT_RUN_CONFIG: RunConfig = {
  data: 'fashion-mnist',
  backbone: 'resnet18',
  stem: 'cifar',
  baseSize: 32,
  imageSize: 32,
  jitterStrength: 0.5,
  blurProbability: 0,
  minScale: 0.2,
  projectionDim: 128,
  projectionLayers: 2,
  projectionBatchNorm: false,
  epochs: 10,
  batchSize: 256,
  optimizer: 'sgd',
  lr: 0.06,
  lrScaling: 'linear',
  momentum: 0.9,
  nesterov: false,
  weightDecay: 5e-4,
  warmupEpochs: 0,
  temperature: 0.2,
  seed: 0,
  device: 'cpu',
  knnEvery: 1,
  knnK: 200,
  knnTemperature: 0.1,
  workers: 4,
  out: 'runs/simclr',
};

const INTEGER_KEYS = ['baseSize', 'imageSize', 'projectionDim', 'projectionLayers', 'epochs', 'batchSize', 'seed', 'knnEvery', 'knnK', 'workers'] as const;
const NUMBER_KEYS = ['jitterStrength', 'blurProbability', 'minScale', 'lr', 'momentum', 'weightDecay', 'warmupEpochs', 'temperature', 'knnTemperature'] as const;

/** Validates every field, with the uniform argument messages; returns a complete config. */
export function validateRunConfig(partial: Partial<RunConfig>): RunConfig {
  const unknown = Object.keys(partial).filter((k) => !(k in DEFAULT_RUN_CONFIG) && !['evalData', 'subset', 'evalSubset', 'maxSteps'].includes(k));
  if (unknown.length) throw new RangeError(`Unknown config keys: ${unknown.join(', ')}`);
  const c: RunConfig = { ...DEFAULT_RUN_CONFIG, ...stripUndefined(partial) };
  for (const key of INTEGER_KEYS) checkInteger(c[key], key, key === 'seed' || key === 'knnEvery' ? 0 : 1);
  for (const key of NUMBER_KEYS) checkNumber(c[key], key, 0);
  checkInteger(c.batchSize, 'batchSize', 2);
  checkNumber(c.lr, 'lr', 0, Infinity, true);
  checkNumber(c.temperature, 'temperature', 1e-8, Infinity, true);
  checkNumber(c.minScale, 'minScale', 0, 1, true);
  checkNumber(c.blurProbability, 'blurProbability', 0, 1);
  checkNumber(c.momentum, 'momentum', 0, 0.999999);
  checkOneOf(c.stem, 'stem', ['imagenet', 'cifar'] as const);
  checkOneOf(c.optimizer, 'optimizer', ['sgd', 'adamw', 'lars'] as const);
  checkOneOf(c.lrScaling, 'lrScaling', ['linear', 'sqrt', 'none'] as const);
  if (typeof c.data !== 'string' || !c.data) throw new TypeError('Expected a folder, manifest or fashion-mnist for data');
  if (c.subset !== undefined) checkInteger(c.subset, 'subset', 2);
  if (c.evalSubset !== undefined) checkInteger(c.evalSubset, 'evalSubset', 1);
  if (c.maxSteps !== undefined) checkInteger(c.maxSteps, 'maxSteps', 1);
  if (typeof c.nesterov !== 'boolean') throw new TypeError('Expected a boolean for nesterov');
  if (typeof c.projectionBatchNorm !== 'boolean') throw new TypeError('Expected a boolean for projectionBatchNorm');
  return c;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Reads a JSON config file; a missing file or bad JSON is a clear error. */
export function readConfigFile(file: string): Partial<RunConfig> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`Cannot read config file ${file}: ${(err as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('expected a JSON object');
    return parsed;
  } catch (err) {
    throw new Error(`Config file ${file} is not valid: ${(err as Error).message}`);
  }
}
