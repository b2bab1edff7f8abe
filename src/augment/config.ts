/** The augmentation config: SimCLR's defaults written once, every field documented and checked. */
import { checkInteger, checkKnownKeys, checkNumber, invalid } from '../errors';
import { triple } from './functional';

export interface AugmentConfig {
  /** Side S of each square output view, in pixels. SimCLR: 224; the seed: 128. */
  size: number;
  /** RandomResizedCrop: area fraction and aspect ratio (width / height) ranges of the crop. SimCLR: (0.08, 1), (3/4, 4/3). */
  crop: { scale: [number, number]; ratio: [number, number] };
  /** Probability of a left-right flip. SimCLR: 0.5. */
  flipProbability: number;
  /**
   * Colour jitter, applied with `probability` (SimCLR: 0.8) with its four ops in random order. Factors are drawn
   * uniformly: brightness, contrast, saturation in [max(0, 1 - x), 1 + x]; hue in [-hue, hue]. SimCLR with strength s:
   * 0.8s, 0.8s, 0.8s, 0.2s (s = 1 for ImageNet). Jitter works on [0, 1] pixels, before normalisation.
   */
  colorJitter: { probability: number; brightness: number; contrast: number; saturation: number; hue: number };
  /** Probability of converting a view to grayscale (3 equal channels). SimCLR: 0.2. */
  grayscaleProbability: number;
  /**
   * Gaussian blur with `probability` (SimCLR: 0.5), an odd kernel of `kernelSize` pixels (default: about 10% of
   * `size`, made odd, as SimCLR) and sigma drawn uniformly from `sigma` (SimCLR: [0.1, 2]).
   */
  blur: { probability: number; kernelSize: number; sigma: [number, number] };
  /** Per-channel normalisation after augmentation: (x - mean) / std. Default: ImageNet's, as the seed. */
  normalize: { mean: [number, number, number]; std: [number, number, number] };
  /**
   * Multi-crop (SwAV, Caron et al. 2020): `views` more views of each image besides the two of `size`, each `size` px,
   * cropped with an area fraction drawn from `scale` and blurred with an odd kernel of `blurKernel` taps (default: 10%
   * of its size, made odd); aspect ratios, flip, jitter, grayscale and blur probabilities are those of the large views.
   * null (the default): the two views only. SwAV on ImageNet: 2 x 224 px with crop.scale [0.14, 1] + 6 x 96 px with
   * [0.05, 0.14]; VISSL's 2 x 160 + 4 x 96 is cheaper.
   */
  smallCrops: { views: number; size: number; scale: [number, number]; blurKernel: number } | null;
}

/** One resolution group of views: `views` views of each image at `size` px, crops of `scale`, `blurKernel` taps. */
export interface ViewGroup {
  views: number;
  size: number;
  scale: [number, number];
  blurKernel: number;
}

/**
 * A partial config: anything left out takes its default ({@link AUGMENT_DEFAULTS}; SimCLR's for the rest).
 * `jitterStrength` s sets the jitter's four factors.
 */
export interface AugmentOptions {
  size?: number;
  crop?: Partial<AugmentConfig['crop']>;
  flipProbability?: number;
  jitterStrength?: number;
  colorJitter?: Partial<AugmentConfig['colorJitter']>;
  grayscaleProbability?: number;
  blur?: Partial<AugmentConfig['blur']>;
  normalize?: Partial<AugmentConfig['normalize']>;
  /** Multi-crop's small views: `views` is required; the size defaults to 96/224 of `size` and the scale to [0.05, 0.14]
   * (SwAV's 96 px beside 224, {@link AUGMENT_DEFAULTS}.smallCrops). */
  smallCrops?: { views: number; size?: number; scale?: [number, number]; blurKernel?: number } | null;
}

/** SimCLR's blur kernel: 10% of the view size, rounded down, made odd. */
export function defaultBlurKernel(size: number): number {
  const k = Math.max(1, Math.floor(size / 10));
  return k % 2 === 1 ? k : k + 1;
}

const frozenPair = (low: number, high: number) => Object.freeze([low, high]) as readonly [number, number];

/**
 * Every default of {@link AugmentOptions}, in one place: SimCLR's augmentation at the recipe's size, 32 px views (the
 * paper's small-image setting: colour-jitter strength 0.5, no blur), with crops of at least 20% of the image; the rest
 * is SimCLR's (flip 0.5, jitter with p 0.8 at 0.8s/0.8s/0.8s/0.2s, grayscale 0.2, blur sigma [0.1, 2], aspect ratios
 * [3/4, 4/3]), ImageNet's normalisation as the seed's, and SwAV's small crops (96 px beside 224, scale [0.05, 0.14]).
 * The run settings (imageSize, minScale, jitterStrength, blurProbability, the small crops') take their defaults from
 * here. SimCLR's ImageNet values are {@link SIMCLR_IMAGENET_AUGMENTATION}.
 */
export const AUGMENT_DEFAULTS = Object.freeze({
  size: 32,
  minScale: 0.2,
  cropRatio: frozenPair(3 / 4, 4 / 3),
  flipProbability: 0.5,
  jitterProbability: 0.8,
  jitterStrength: 0.5,
  /** Brightness, contrast and saturation factors are this times the strength s; hue is `hue` times s (at most 0.5). */
  jitterFactors: Object.freeze({ brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2 }),
  grayscaleProbability: 0.2,
  blurProbability: 0,
  blurSigma: frozenPair(0.1, 2),
  normalize: Object.freeze({ mean: Object.freeze([0.485, 0.456, 0.406]), std: Object.freeze([0.229, 0.224, 0.225]) }),
  /** Small views are this fraction of `size` (SwAV's 96 px beside 224) unless given. */
  smallCropRatio: frozenPair(96, 224),
  smallCropScale: frozenPair(0.05, 0.14),
});

/** The default side of multi-crop's small views beside views of `size`: SwAV's 96/224 of it, at least 1. */
export function defaultSmallCropSize(size: number): number {
  return Math.max(1, Math.round(size * AUGMENT_DEFAULTS.smallCropRatio[0] / AUGMENT_DEFAULTS.smallCropRatio[1]));
}

/** SimCLR's ImageNet augmentation: 224 px views, crops (0.08, 1), jitter strength 1, blur with p 0.5. */
export const SIMCLR_IMAGENET_AUGMENTATION: AugmentOptions = Object.freeze<AugmentOptions>({
  size: 224,
  crop: { scale: [0.08, 1] },
  jitterStrength: 1,
  blur: { probability: 0.5 },
});

/** The seed's pipeline (crop (0.08, 1) to 128, jitter of strength 1 with the default RandomApply p = 0.5, blur kernel 23 always). */
export const SEED_AUGMENTATION: AugmentOptions = Object.freeze<AugmentOptions>({
  size: 128,
  crop: { scale: [0.08, 1] },
  jitterStrength: 1,
  colorJitter: { probability: 0.5 },
  blur: { probability: 1, kernelSize: 23 },
});

function range(value: unknown, name: string, min: number, max: number): [number, number] {
  if (!Array.isArray(value) || value.length !== 2) throw invalid('[low, high]', name, value);
  const low = checkNumber(value[0], `${name}[0]`, min, max);
  const high = checkNumber(value[1], `${name}[1]`, min, max);
  if (low > high) throw invalid('low <= high', name, `[${low}, ${high}]`, 'range');
  return [low, high];
}

const probability = (value: unknown, name: string) => checkNumber(value, name, 0, 1);

function cropScale(value: unknown, name: string): [number, number] {
  const scale = range(value, name, 0, 1);
  if (scale[1] <= 0) throw invalid('a scale range reaching above 0', name, scale[1], 'range');
  return scale;
}

// An odd kernel below twice the view size; SimCLR's 10% of the size when not given.
function blurKernel(value: number | undefined, size: number, name: string): number {
  const kernel = checkInteger(value ?? defaultBlurKernel(size), name, 1, 8191);
  if (kernel % 2 === 0 || Math.floor(kernel / 2) >= size) throw invalid(`an odd integer below ${2 * size}`, name, kernel, 'range');
  return kernel;
}

/** A nested options object (`crop`, `blur`, ...): {} when not given, else an object of known keys only. */
function part<T extends object>(value: T | undefined, name: string, keys: readonly (keyof T & string)[]): Partial<T> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('an options object', name, value);
  checkKnownKeys(value, name, keys);
  return value;
}

/** The full config for `options`, checked. */
export function resolveAugmentConfig(options: AugmentOptions = {}): AugmentConfig {
  if (typeof options !== 'object' || options === null) throw invalid('an options object', 'augment options', options);
  checkKnownKeys(options, 'augment options', ['size', 'crop', 'flipProbability', 'jitterStrength', 'colorJitter', 'grayscaleProbability', 'blur',
    'normalize', 'smallCrops']);
  const size = checkInteger(options.size ?? AUGMENT_DEFAULTS.size, 'size', 1, 8192);
  const s = checkNumber(options.jitterStrength ?? AUGMENT_DEFAULTS.jitterStrength, 'jitterStrength', 0);
  const jitter = part(options.colorJitter, 'colorJitter', ['probability', 'brightness', 'contrast', 'saturation', 'hue']);
  const blur = part(options.blur, 'blur', ['probability', 'kernelSize', 'sigma']);
  const kernelSize = blurKernel(blur.kernelSize, size, 'blur.kernelSize');
  const crop = part(options.crop, 'crop', ['scale', 'ratio']);
  const [ratioLow, ratioHigh] = range(crop.ratio ?? [...AUGMENT_DEFAULTS.cropRatio], 'crop.ratio', 0, Infinity);
  if (ratioLow <= 0) throw invalid('ratios > 0', 'crop.ratio', ratioLow, 'range');
  const scale = cropScale(crop.scale ?? [AUGMENT_DEFAULTS.minScale, 1], 'crop.scale');
  const normalize = part(options.normalize, 'normalize', ['mean', 'std']);
  let smallCrops: AugmentConfig['smallCrops'] = null;
  if (options.smallCrops !== undefined && options.smallCrops !== null) {
    const small = options.smallCrops;
    if (typeof small !== 'object') throw invalid('{ views, size?, scale?, blurKernel? } or null', 'smallCrops', small);
    checkKnownKeys(small, 'smallCrops', ['views', 'size', 'scale', 'blurKernel']);
    const smallSize = checkInteger(small.size ?? defaultSmallCropSize(size), 'smallCrops.size', 1, 8192);
    smallCrops = {
      views: checkInteger(small.views, 'smallCrops.views', 1, 64),
      size: smallSize,
      scale: cropScale(small.scale ?? [...AUGMENT_DEFAULTS.smallCropScale], 'smallCrops.scale'),
      blurKernel: blurKernel(small.blurKernel, smallSize, 'smallCrops.blurKernel'),
    };
  }
  const d = AUGMENT_DEFAULTS;
  return {
    size,
    crop: { scale, ratio: [ratioLow, ratioHigh] },
    flipProbability: probability(options.flipProbability ?? d.flipProbability, 'flipProbability'),
    colorJitter: {
      probability: probability(jitter.probability ?? d.jitterProbability, 'colorJitter.probability'),
      brightness: checkNumber(jitter.brightness ?? d.jitterFactors.brightness * s, 'colorJitter.brightness', 0),
      contrast: checkNumber(jitter.contrast ?? d.jitterFactors.contrast * s, 'colorJitter.contrast', 0),
      saturation: checkNumber(jitter.saturation ?? d.jitterFactors.saturation * s, 'colorJitter.saturation', 0),
      hue: checkNumber(jitter.hue ?? Math.min(0.5, d.jitterFactors.hue * s), 'colorJitter.hue', 0, 0.5),
    },
    grayscaleProbability: probability(options.grayscaleProbability ?? d.grayscaleProbability, 'grayscaleProbability'),
    blur: {
      probability: probability(blur.probability ?? d.blurProbability, 'blur.probability'),
      kernelSize,
      sigma: range(blur.sigma ?? [...d.blurSigma], 'blur.sigma', Number.MIN_VALUE, Infinity),
    },
    normalize: {
      mean: triple(normalize.mean ?? [...d.normalize.mean], 'normalize.mean') as [number, number, number],
      std: triple(normalize.std ?? [...d.normalize.std], 'normalize.std', true) as [number, number, number],
    },
    smallCrops,
  };
}

/** The resolution groups of a config, in output order: the two views of `size`, then the small crops if any. */
export function viewGroups(config: AugmentConfig): ViewGroup[] {
  const groups: ViewGroup[] = [{ views: 2, size: config.size, scale: config.crop.scale, blurKernel: config.blur.kernelSize }];
  if (config.smallCrops) groups.push({ ...config.smallCrops });
  return groups;
}
