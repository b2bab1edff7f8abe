/**
 * The settings of a training run, written once. Each has a type, a default (or is optional), its range or choices
 * and its help text; from this one table come the {@link RunConfig} type, {@link DEFAULT_RUN_CONFIG},
 * {@link validateRunConfig} (and so the keys a JSON config file may hold), the Trainer's option checks and the CLI's
 * flags with their --help. A run's config is: defaults, then a JSON config file (`--config`), then command-line flags,
 * validated once, stored in every checkpoint.
 */
import { Backbones, DEFAULT_STEM, STEMS } from '../models/encoder';
import { PROJECTION_HEAD_DEFAULTS } from '../models/simclr-model';
import { MAX_ACCUMULATION_STEPS, MAX_MOMENTUM, OPTIMIZER_DEFAULTS, OPTIMIZERS } from '../ops/train-step';
import { NT_XENT_DEFAULT_TEMPERATURE, NT_XENT_MIN_TEMPERATURE } from '../ops/nt-xent';
import { MEMORY_FORMATS, PRECISIONS, Precision } from '../ops/precision';
import { BACKENDS, DEFAULT_TIMEOUT_MS } from '../ops/process-group';
import { AUGMENT_DEFAULTS } from '../augment/config';
import { DEFAULT_BASE_SIZE } from '../data/dataset';
import { FOLDER_LABELS } from '../data/image-folder';
import { KNN_DEFAULTS } from '../eval/knn';
import { checkInteger, checkNumber, checkOneOf, invalid } from '../errors';
import { readRegularFileSync } from '../user-file';

/** How the base learning rate grows with the batch size B: `linear` lr·B/256, `sqrt` lr·√B, `none` lr. */
export const LR_SCALINGS = ['linear', 'sqrt', 'none'] as const;

/** The c10d backends of a data-parallel run, and 'auto'. */
export const DIST_BACKENDS = ['auto', ...BACKENDS] as const;

/** Size of the evaluation bank (a subset of the training split) when `evalSubset` is not set. */
export const DEFAULT_EVAL_BANK_SIZE = 10000;

/** The side of multi-crop's small views as a fraction of the large views' when not set: SwAV's 96 px beside 224. */
export const SMALL_CROP_RATIO = [96, 224] as const;

/** One run setting. Without a `default` it is optional (undefined: not set). */
export type Setting =
  | { kind: 'int'; min: number; max?: number; default?: number; help: string }
  | { kind: 'number'; min: number; max?: number; exclusiveMin?: boolean; default?: number; help: string }
  | { kind: 'string'; default?: string; help: string; format?: { pattern: RegExp; expected: string } }
  | { kind: 'bool'; default?: boolean; help: string }
  | { kind: 'enum'; choices: readonly string[]; default?: string; help: string };

/**
 * Every run setting, in the order the CLI lists them; the CLI flag is the kebab-case name. The defaults are one recipe,
 * the same for the API, runTraining and the CLI: SimCLR on 32 px images with torchvision's ResNet-18 (ImageNet stem),
 * SimCLR's small-image augmentation (jitter strength 0.5, no blur, crops of 20-100%), NT-Xent at τ = 0.2, SGD with
 * momentum 0.9, lr 0.06·B/256 and weight decay 5e-4 (lightly's CIFAR-10 benchmark). Where a lower layer owns a default
 * (the augmenter's, the datasets' base size, the stem, the temperature, the optimiser's) the table takes it from there.
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
  smallCropSize: { kind: 'int', min: 1, help: `side of each small view (default: ${SMALL_CROP_RATIO.join('/')} of --image-size, SwAV's 96 px beside 224)` },
  smallCropMinScale: { kind: 'number', min: 0, exclusiveMin: true, max: 1, default: 0.05, help: 'smallest crop area fraction of the small views (SwAV: 0.05)' },
  smallCropMaxScale: { kind: 'number', min: 0, exclusiveMin: true, max: 1, default: 0.14, help: 'largest crop area fraction of the small views (SwAV: 0.14)' },
  projectionDim: { kind: 'int', min: 1, default: PROJECTION_HEAD_DEFAULTS.outDim, help: 'width of z' },
  projectionLayers: { kind: 'int', min: 1, default: PROJECTION_HEAD_DEFAULTS.layers, help: 'Linear layers in the projection head (2: SimCLR, 3: SimCLRv2)' },
  projectionBatchNorm: { kind: 'bool', default: PROJECTION_HEAD_DEFAULTS.batchNorm, help: 'BatchNorm in the projection head (SimCLRv2)' },
  epochs: { kind: 'int', min: 1, default: 10, help: 'passes over the training data' },
  batchSize: { kind: 'int', min: 2, default: 256, help: 'images per step (each gives two views); per worker in a data-parallel run' },
  accumulationSteps: { kind: 'int', min: 1, max: MAX_ACCUMULATION_STEPS, default: 1, help: 'update every N batches on their mean gradient: an effective batch of N x batch-size, which --lr-scaling uses' },
  dropLast: { kind: 'bool', default: true, help: 'drop each epoch\'s short last batch (fewer negatives: its loss is not comparable); evaluation never drops' },
  maxSteps: { kind: 'int', min: 1, help: 'the run\'s length in steps instead of epochs x batches: the learning-rate schedule spans it and the run stops there' },
  optimizer: { kind: 'enum', choices: OPTIMIZERS, default: OPTIMIZER_DEFAULTS.optimizer, help: 'optimiser of the training step' },
  lr: { kind: 'number', min: 0, exclusiveMin: true, default: 0.06, help: 'base learning rate, scaled by --lr-scaling' },
  lrScaling: { kind: 'enum', choices: LR_SCALINGS, default: 'linear', help: 'how lr grows with the batch size B: linear lr * B / 256, sqrt lr * sqrt(B), none lr' },
  momentum: { kind: 'number', min: 0, max: MAX_MOMENTUM, default: OPTIMIZER_DEFAULTS.momentum, help: 'SGD/LARS momentum' },
  nesterov: { kind: 'bool', default: OPTIMIZER_DEFAULTS.nesterov, help: 'Nesterov momentum (SGD)' },
  weightDecay: { kind: 'number', min: 0, default: OPTIMIZER_DEFAULTS.weightDecay, help: 'weight decay (biases and BatchNorm excluded)' },
  warmupEpochs: { kind: 'number', min: 0, default: 0, help: 'epochs of linear warmup before the cosine decay' },
  temperature: { kind: 'number', min: NT_XENT_MIN_TEMPERATURE, exclusiveMin: true, default: NT_XENT_DEFAULT_TEMPERATURE, help: 'NT-Xent temperature' },
  seed: { kind: 'int', min: 0, default: 0, help: 'seed of initialisation, shuffling and augmentation' },
  device: { kind: 'string', default: 'cpu', help: 'cpu | cuda | cuda:N' },
  precision: { kind: 'enum', choices: PRECISIONS, default: 'auto', help: 'fp32, or autocast to bf16/fp16 (fp16: CUDA only); auto: bf16 where the GPU or CPU (AVX-512 BF16/AMX) has it natively, else fp32' },
  memoryFormat: { kind: 'enum', choices: MEMORY_FORMATS, default: 'auto', help: 'contiguous (NCHW) or channelsLast (NHWC); auto: channelsLast on GPUs and with bf16, else contiguous' },
  knnEvery: { kind: 'int', min: 0, default: 1, help: 'run the kNN monitor every K epochs (0: never)' },
  knnK: { kind: 'int', min: 1, default: KNN_DEFAULTS.k, help: 'neighbours of the kNN monitor' },
  knnTemperature: { kind: 'number', min: 0, default: KNN_DEFAULTS.temperature, help: 'temperature of the kNN votes' },
  workers: { kind: 'int', min: 1, default: 4, help: 'decoding concurrency (x16 images in flight)' },
  globalBatchNorm: { kind: 'bool', default: true, help: 'data-parallel runs: BatchNorm statistics over all workers (SimCLR\'s global BN); false: per worker' },
  distBackend: { kind: 'enum', choices: DIST_BACKENDS, default: 'auto', help: 'data-parallel runs: the c10d backend; auto: nccl on CUDA devices when compiled in, else gloo' },
  distTimeout: { kind: 'number', min: 1, default: DEFAULT_TIMEOUT_MS / 1000, help: 'data-parallel runs: seconds before a rendezvous or collective with a dead or stuck worker fails' },
  out: { kind: 'string', default: 'runs/simclr', help: 'run folder: last.ckpt, best.ckpt, metrics.jsonl, report.html' },
  checkpointEvery: {
    kind: 'string', default: '10m', format: { pattern: /^(\d+|\d+(\.\d+)?m|epoch)$/, expected: "N steps ('500'), M minutes ('10m') or 'epoch'" },
    help: "also save last.ckpt every N steps ('500') or M minutes ('10m') within an epoch; 'epoch': only at epoch ends",
  },
} as const satisfies Record<string, Setting>;

type Settings = typeof RUN_SETTINGS;
export type SettingName = keyof Settings;

/** The TypeScript type of a setting's values. */
type ValueOf<S> = S extends { kind: 'int' | 'number' } ? number
  : S extends { kind: 'bool' } ? boolean
  : S extends { choices: readonly (infer C)[] } ? C
  : string;

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
  const setting: Setting = RUN_SETTINGS[name];
  switch (setting.kind) {
    case 'int':
      return checkInteger(value, name, setting.min, setting.max) as ValueOf<Settings[K]>;
    case 'number':
      return checkNumber(value, name, setting.min, setting.max, setting.exclusiveMin) as ValueOf<Settings[K]>;
    case 'bool':
      if (typeof value !== 'boolean') throw invalid('a boolean', name, value);
      return value as ValueOf<Settings[K]>;
    case 'enum':
      return checkOneOf(value, name, setting.choices) as ValueOf<Settings[K]>;
    case 'string':
      if (typeof value !== 'string' || value === '') throw invalid('a non-empty string', name, value);
      if (setting.format && !setting.format.pattern.test(value)) throw invalid(setting.format.expected, name, value, 'range');
      return value as ValueOf<Settings[K]>;
  }
}

/** When `checkpointEvery` asks for a checkpoint within an epoch: every `steps` steps or `minutes` minutes (or never). */
export function checkpointInterval(value: string): { steps?: number; minutes?: number } {
  checkSetting('checkpointEvery', value);
  if (value === 'epoch') return {};
  if (value.endsWith('m')) return Number(value.slice(0, -1)) > 0 ? { minutes: Number(value.slice(0, -1)) } : {};
  return Number(value) > 0 ? { steps: Number(value) } : {};
}

/** Checks the settings `names` of `options` (an optional one may be undefined). */
export function checkSettings(options: Partial<RunConfig>, names: readonly SettingName[]): void {
  for (const name of names) {
    const setting: Setting = RUN_SETTINGS[name];
    if (options[name] === undefined && setting.default === undefined) continue;
    checkSetting(name, options[name]);
  }
}

/** Validates every field, with the uniform argument messages; returns a complete config. */
export function validateRunConfig(partial: Partial<RunConfig>): RunConfig {
  if (typeof partial !== 'object' || partial === null || Array.isArray(partial)) throw invalid('an object of run settings', 'config', partial);
  const unknown = Object.keys(partial).filter((key) => !Object.hasOwn(RUN_SETTINGS, key));
  if (unknown.length) throw new RangeError(`Unknown config keys: ${unknown.join(', ')}`);
  const config: RunConfig = { ...DEFAULT_RUN_CONFIG, ...stripUndefined(partial) };
  checkSettings(config, SETTING_NAMES);
  if (config.smallCrops > 0 && config.smallCropMinScale > config.smallCropMaxScale) {
    throw new RangeError(`smallCropMinScale (${config.smallCropMinScale}) must not exceed smallCropMaxScale (${config.smallCropMaxScale})`);
  }
  return config;
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

/**
 * The quick recipe (`simclr quickstart`), sized for about ten minutes on 2 cores: ResNet-18 with the ImageNet stem on
 * 28 px views of Fashion-MNIST's own 28 px images (no upsampling: at batch 128 a 28 px step costs about 0.8 of a 32 px
 * one), a 50k-image subset for 2 epochs of batch 128 (780 steps), with stronger colour jitter (s = 1.5), Gaussian blur
 * (p = 0.5), gentler crops (scale [0.5, 1]) and half the rate (0.03·B/256) of lightly's CIFAR-10 recipe. In the recipe
 * search (bench/README.md), on the quickstart's fixed protocol (src/quickstart.ts), 28 px at batch 128 saw twice the
 * images of the 32 px batch-64 recipe in the same time, and its probe beat raw pixels for both seeds tried (+0.52 and
 * +0.79 points); 45k and 40k images fell short of raw pixels.
 */
export const QUICKSTART_CONFIG: Partial<RunConfig> = {
  data: 'fashion-mnist',
  subset: 50000,
  backbone: 'resnet18',
  stem: 'imagenet',
  baseSize: 28,
  imageSize: 28,
  jitterStrength: 1.5,
  blurProbability: 0.5,
  minScale: 0.5,
  epochs: 2,
  batchSize: 128,
  lr: 0.03,
  knnEvery: 1,
  out: 'runs/quickstart',
};

/**
 * The quickstart's budget where its run computes in bf16 (precision 'auto' on a CPU with AVX-512 BF16 or AMX, or on a
 * GPU): all 60 000 images for 4 epochs, in about the ten minutes that fp32's 2 epochs of 50 000 take on a 2-core AVX2
 * CPU (420 s of pretraining). A CPU with bf16 instructions has AVX-512 too: on the 2-core AVX-512 BF16 machine the
 * quickstart's step ran 1.66x as fast in bf16 as in fp32, and 4 epochs of 60 000 took 415–450 s of pretraining, probe
 * 84.34 % and kNN 78.92 % (raw pixels 83.34 / 76.65), where the fp32 budget in bf16 gave 83.36 / 77.73 in 154 s.
 */
export const QUICKSTART_LOW_PRECISION_BUDGET: Partial<RunConfig> = Object.freeze({ subset: 60000, epochs: 4 });

/** The quickstart's recipe for a run that computes at `precision`: {@link QUICKSTART_CONFIG}, with
 * {@link QUICKSTART_LOW_PRECISION_BUDGET} at bf16 or fp16. */
export function quickstartRecipe(precision: Precision): Partial<RunConfig> {
  return precision === 'fp32' ? { ...QUICKSTART_CONFIG } : { ...QUICKSTART_CONFIG, ...QUICKSTART_LOW_PRECISION_BUDGET };
}
