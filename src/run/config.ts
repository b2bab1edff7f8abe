/**
 * The settings of a training run, written once. Each has a type, a default (or is optional), its range or choices
 * and its help text; from this one table come the {@link RunConfig} type, {@link DEFAULT_RUN_CONFIG},
 * {@link validateRunConfig} (and so the keys a JSON config file may hold), the Trainer's option checks and the CLI's
 * flags with their --help. A run's config is: defaults, then a JSON config file (`--config`), then command-line flags,
 * validated once, stored in every checkpoint.
 */
import { Backbones, DEFAULT_STEM, STEMS } from '../models/encoder';
import { PROJECTION_HEAD_DEFAULTS } from '../models/simclr-model';
import { OPTIMIZER_SETTINGS, TRAIN_STEP_SETTINGS } from '../ops/train-step';
import { MEMORY_FORMATS, PRECISIONS } from '../models/precision';
import { BACKENDS, DEFAULT_TIMEOUT_MS } from '../ops/process-group';
import { TRAINER_SETTINGS } from '../train/trainer-settings';
import { Setting, ValueOf, checkSetting as checkTableSetting, checkSettings as checkTableSettings } from '../settings';
import { AUGMENT_DEFAULTS } from '../augment/config';
import { DEFAULT_BASE_SIZE } from '../data/dataset';
import { FOLDER_LABELS } from '../data/image-folder';
import { KNN_DEFAULTS } from '../eval/knn';
import { invalid, markChecked } from '../errors';
import { readRegularFileSync } from '../user-file';

/** The c10d backends of a data-parallel run, and 'auto'. */
export const DIST_BACKENDS = ['auto', ...BACKENDS] as const;

/** A run's precision: a concrete one, or 'auto' (resolved once, by run/resolve.ts). */
export const PRECISION_SETTINGS = ['auto', ...PRECISIONS] as const;
export type PrecisionSetting = (typeof PRECISION_SETTINGS)[number];
/** A run's memory format: a concrete one, or 'auto'. */
export const MEMORY_FORMAT_SETTINGS = ['auto', ...MEMORY_FORMATS] as const;
export type MemoryFormatSetting = (typeof MEMORY_FORMAT_SETTINGS)[number];

/** Size of the evaluation bank (a subset of the training split) when `evalSubset` is not set. */
export const DEFAULT_EVAL_BANK_SIZE = 10000;

export type { Setting } from '../settings';

/**
 * Every run setting, in the order the CLI lists them; the CLI flag is the kebab-case name. The defaults are one recipe,
 * the same for the API, runTraining and the CLI: SimCLR on 32 px images with torchvision's ResNet-18 (ImageNet stem),
 * SimCLR's small-image augmentation (jitter strength 0.5, no blur, crops of 20-100%), NT-Xent at τ = 0.2, SGD with
 * momentum 0.9, lr 0.06·B/256 and weight decay 5e-4 (lightly's CIFAR-10 benchmark). Where a lower layer owns a setting
 * (the Trainer's, the train step's and optimiser's tables) the entry is that layer's own, range and default; where it
 * owns a default (the augmenter's, the datasets' base size, the stem, the head, the kNN monitor) it is taken from there.
 */
export const RUN_SETTINGS = {
  data: { kind: 'string', default: 'fashion-mnist', help: 'training images: an image folder, a .csv/.jsonl manifest, or fashion-mnist' },
  labels: { kind: 'enum', choices: FOLDER_LABELS, default: 'folders', help: 'image folders: folders (each subfolder is a class) or none (every image below the folder, unlabelled)' },
  evalData: { kind: 'string', help: 'labelled images for the kNN monitor and evaluation (default: fashion-mnist\'s test split, or a held-out part of labelled --data)' },
  subset: { kind: 'int', min: 2, help: 'train on a seeded random subset of this many images' },
  evalSubset: { kind: 'int', min: 1, help: `size of the evaluation splits (bank and queries; without it the bank has ${DEFAULT_EVAL_BANK_SIZE} images)` },
  backbone: { kind: 'enum', choices: Backbones.names, default: 'resnet18', help: 'ResNet encoder, by torchvision\'s name' },
  stem: { kind: 'enum', choices: STEMS, default: DEFAULT_STEM, help: 'first layer: imagenet is torchvision\'s 7x7/2 conv + max-pool, cifar a 3x3/1 conv and no max-pool (slower, for small images)' },
  weights: { kind: 'string', help: 'start the encoder from these weights (same --backbone and --stem): a torchvision .pth, e.g. the ImageNet classifier resnet18-f37072fd.pth (its fc is left out), or a simclr export' },
  baseSize: { kind: 'int', min: 1, default: DEFAULT_BASE_SIZE, help: 'side images are resized to when decoded, before augmentation' },
  imageSize: { kind: 'int', min: 1, default: AUGMENT_DEFAULTS.size, help: 'side of each augmented view' },
  jitterStrength: { kind: 'number', min: 0, default: AUGMENT_DEFAULTS.jitterStrength, help: 'colour-jitter strength s (SimCLR: 1 on ImageNet, 0.5 on small images)' },
  blurProbability: { kind: 'number', min: 0, max: 1, default: AUGMENT_DEFAULTS.blurProbability, help: 'probability of Gaussian blur (SimCLR ImageNet: 0.5; small images: 0)' },
  minScale: { kind: 'number', min: 0, exclusiveMin: true, max: 1, default: AUGMENT_DEFAULTS.minScale, help: 'smallest crop area fraction of RandomResizedCrop' },
  smallCrops: { kind: 'int', min: 0, max: 64, default: 0, help: 'multi-crop (SwAV): this many small views of each image besides the two of --image-size, all positives of one another; 0: two views only' },
  smallCropSize: { kind: 'int', min: 1, help: `side of each small view (default: ${AUGMENT_DEFAULTS.smallCropRatio.join('/')} of --image-size, SwAV's 96 px beside 224)` },
  smallCropMinScale: { kind: 'number', min: 0, exclusiveMin: true, max: 1, default: AUGMENT_DEFAULTS.smallCropScale[0], help: 'smallest crop area fraction of the small views (SwAV: 0.05)' },
  smallCropMaxScale: { kind: 'number', min: 0, exclusiveMin: true, max: 1, default: AUGMENT_DEFAULTS.smallCropScale[1], help: 'largest crop area fraction of the small views (SwAV: 0.14)' },
  projectionDim: { kind: 'int', min: 1, default: PROJECTION_HEAD_DEFAULTS.outDim, help: 'width of z' },
  projectionLayers: { kind: 'int', min: 1, default: PROJECTION_HEAD_DEFAULTS.layers, help: 'Linear layers in the projection head (2: SimCLR, 3: SimCLRv2)' },
  projectionBatchNorm: { kind: 'bool', default: PROJECTION_HEAD_DEFAULTS.batchNorm, help: 'BatchNorm in the projection head (SimCLRv2)' },
  epochs: TRAINER_SETTINGS.epochs,
  batchSize: TRAINER_SETTINGS.batchSize,
  accumulationSteps: TRAIN_STEP_SETTINGS.accumulationSteps,
  dropLast: { kind: 'bool', default: true, help: 'drop each epoch\'s short last batch (fewer negatives: its loss is not comparable); evaluation never drops' },
  maxSteps: TRAINER_SETTINGS.maxSteps,
  optimizer: OPTIMIZER_SETTINGS.optimizer,
  lr: TRAINER_SETTINGS.lr,
  lrScaling: TRAINER_SETTINGS.lrScaling,
  momentum: OPTIMIZER_SETTINGS.momentum,
  nesterov: OPTIMIZER_SETTINGS.nesterov,
  weightDecay: OPTIMIZER_SETTINGS.weightDecay,
  warmupEpochs: TRAINER_SETTINGS.warmupEpochs,
  temperature: TRAIN_STEP_SETTINGS.temperature,
  seed: { kind: 'int', min: 0, default: 0, help: 'seed of initialisation, shuffling and augmentation' },
  device: { kind: 'string', default: 'cpu', help: 'cpu | cuda | cuda:N' },
  precision: { kind: 'enum', choices: PRECISION_SETTINGS, default: 'auto', help: 'fp32, or autocast to bf16/fp16 (fp16: CUDA only); auto: bf16 where the GPU or CPU (AVX-512 BF16/AMX) has it natively, else fp32' },
  memoryFormat: { kind: 'enum', choices: MEMORY_FORMAT_SETTINGS, default: 'auto', help: 'contiguous (NCHW) or channelsLast (NHWC); auto: channelsLast on GPUs and with bf16, else contiguous' },
  knnEvery: { kind: 'int', min: 0, default: 1, help: 'run the kNN monitor every K epochs (0: never)' },
  knnK: { kind: 'int', min: 1, default: KNN_DEFAULTS.k, help: 'neighbours of the kNN monitor' },
  knnTemperature: { kind: 'number', min: 0, default: KNN_DEFAULTS.temperature, help: 'temperature of the kNN votes' },
  workers: { kind: 'int', min: 1, default: 4, help: 'decoding concurrency (x16 images in flight)' },
  globalBatchNorm: { kind: 'bool', default: true, help: 'data-parallel runs: BatchNorm statistics over all workers (SimCLR\'s global BN); false: per worker' },
  distBackend: { kind: 'enum', choices: DIST_BACKENDS, default: 'auto', help: 'data-parallel runs: the c10d backend; auto: nccl on CUDA devices when compiled in, else gloo' },
  distTimeout: { kind: 'number', min: 1, default: DEFAULT_TIMEOUT_MS / 1000, help: 'data-parallel runs: seconds before a rendezvous or collective with a dead or stuck worker fails' },
  out: TRAINER_SETTINGS.out,
  checkpointEvery: TRAINER_SETTINGS.checkpointEvery,
} as const satisfies Record<string, Setting>;

type Settings = typeof RUN_SETTINGS;
export type SettingName = keyof Settings;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** A complete run config: one field per entry of {@link RUN_SETTINGS}; those without a default are optional. */
export type RunConfig = Simplify<
  { -readonly [K in SettingName as Settings[K] extends { default: unknown } ? K : never]: ValueOf<Settings[K]> } &
  { -readonly [K in SettingName as Settings[K] extends { default: unknown } ? never : K]?: ValueOf<Settings[K]> }
>;

/** The names of all settings, in table order. */
export const SETTING_NAMES = Object.keys(RUN_SETTINGS) as SettingName[];

/** The default of every setting that has one. */
export const DEFAULT_RUN_CONFIG: RunConfig = Object.fromEntries(
  SETTING_NAMES.flatMap((name) => {
    const setting: Setting = RUN_SETTINGS[name];
    return setting.default === undefined ? [] : [[name, setting.default]];
  }),
) as RunConfig;

/**
 * Offsets added to `seed` for each random stream of a run, so the streams differ and a run repeats exactly. Changing
 * one changes results.
 */
export const SEED_STREAMS = Object.freeze({
  /** LibTorch's generator when the model is created. */
  init: 0,
  /** The seeded subset of the training data (`subset`). */
  subset: 0,
  /** The loader's epoch shuffles. */
  shuffle: 0,
  /** The augmenter's parameter generator. */
  augment: 1,
  /** The evaluation bank (a subset of the training split). */
  evalBank: 7,
  /** The evaluation queries (a subset of the test split). */
  evalQuery: 8,
  /** The linear probe's shuffling. */
  probe: 0,
  /** The randomly initialised encoder the quickstart compares against. */
  randomEncoder: 1000,
});

/** Checks one setting's value against its table entry, with the uniform argument messages; returns it. */
export function checkSetting<K extends SettingName>(name: K, value: unknown): ValueOf<Settings[K]> {
  return checkTableSetting(RUN_SETTINGS[name] as Setting, name, value) as ValueOf<Settings[K]>;
}

/** Validates every field, with the uniform argument messages; returns a complete config, frozen: the layers it is
 * handed to (Trainer, train step) do not check it again. */
export function validateRunConfig(partial: Partial<RunConfig>): RunConfig {
  if (typeof partial !== 'object' || partial === null || Array.isArray(partial)) throw invalid('an object of run settings', 'config', partial);
  const unknown = Object.keys(partial).filter((key) => !Object.hasOwn(RUN_SETTINGS, key));
  if (unknown.length) throw new RangeError(`Unknown config keys: ${unknown.join(', ')}`);
  const config: RunConfig = { ...DEFAULT_RUN_CONFIG, ...stripUndefined(partial) };
  checkTableSettings(RUN_SETTINGS, config);
  if (config.smallCrops > 0 && config.smallCropMinScale > config.smallCropMaxScale) {
    throw invalid(`a number <= smallCropMaxScale (${config.smallCropMaxScale})`, 'smallCropMinScale', config.smallCropMinScale, 'range');
  }
  return markChecked(config);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Reads a JSON config file; a missing file or bad JSON is a clear error. Its keys are checked by validateRunConfig. */
export function readConfigFile(file: string): Partial<RunConfig> {
  let text: string;
  try {
    text = readRegularFileSync(file).toString('utf8');
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

export { checkpointInterval } from '../train/trainer-settings';
