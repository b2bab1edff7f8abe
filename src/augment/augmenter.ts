/**
 * The SimCLR augmenter: per-view parameters drawn in TS from a seeded generator, applied to a whole uint8 batch by one
 * native call on the target device. Two views per image, or multi-crop's two large plus K small views.
 */
import { native, NativeViewParams } from '../native';
import { Tensor, Device } from '../tensor';
import { checkInteger, checkOneOf, invalid, withCallerStack } from '../errors';
import { SeededRandom } from '../random';
import { AugmentConfig, AugmentOptions, ViewGroup, resolveAugmentConfig, viewGroups } from './config';

/**
 * The parameters of B x (views per image) views, as typed arrays: rows go group by group (the two large views, then
 * the small crops), and inside a group row v * B + i is view v of image i.
 */
export type ViewParameters = NativeViewParams;

/** The state of an augmenter's parameter generator (JSON-serialisable: a checkpoint stores it). */
export type AugmenterState = readonly number[];

/** The types views can be made in: float32, or the type a bf16 / fp16 training step computes in. */
export const VIEW_DTYPES = ['float32', 'bfloat16', 'float16'] as const;
export type ViewDtype = typeof VIEW_DTYPES[number];

export interface ViewOptions {
  /** Where the views are computed (default: the images' device). */
  device?: Device;
  /**
   * The views' type (default float32). 'bfloat16' / 'float16' halve the bytes written and moved, for a step at that
   * precision: computed in float32 and rounded to nearest even at the end, as `.to()` in PyTorch rounds. On the CPU
   * the fused kernels write bfloat16 directly; float16 (a CUDA precision) is converted after them.
   */
  dtype?: ViewDtype;
}

function checkImages(images: Tensor): number[] {
  if (!(images instanceof Tensor)) throw invalid('a Tensor', 'images', images);
  const shape = images.shape;
  if (shape.length !== 4 || shape[3] !== 3 || images.dtype !== 'uint8') {
    throw invalid('a uint8 Tensor B x H x W x 3', 'images', `${images.dtype} [${shape.join(', ')}]`);
  }
  return shape;
}

export class Augmenter {
  readonly config: AugmentConfig;
  /** The resolution groups of the views, in output order (one group unless the config has small crops). */
  readonly groups: readonly ViewGroup[];
  private random: SeededRandom;

  /** `options`: partial config (SimCLR defaults for the rest); `seed`: the parameter generator's seed (default 0). */
  constructor(options: AugmentOptions = {}, { seed = 0 }: { seed?: number } = {}) {
    this.config = resolveAugmentConfig(options);
    this.groups = Object.freeze(viewGroups(this.config));
    this.random = new SeededRandom(seed);
  }

  /** Views of each image over all groups: 2, or 2 + the small crops. */
  get viewsPerImage(): number {
    return this.groups.reduce((sum, g) => sum + g.views, 0);
  }

  /** The generator state, to store in a checkpoint. */
  getState(): AugmenterState {
    return this.random.getState();
  }

  /** Restores a state from `getState()`: the following views repeat exactly. */
  setState(state: AugmenterState): void {
    // A state is the 4 integers getState gave; anything else (a corrupt checkpoint's) is named as a state, not a seed.
    if (!Array.isArray(state)) throw invalid('a state of 4 integers (from getState)', 'state', state);
    this.random = new SeededRandom(state);
  }

  /**
   * Draws the parameters of every view (two, or two + the small crops) of each of `batch` images of `height` x `width`
   * pixels, as torchvision's RandomResizedCrop (with the view's group's scale), RandomHorizontalFlip,
   * RandomApply(ColorJitter), RandomGrayscale and GaussianBlur would. The two large views are drawn first, so adding
   * small crops leaves them as they were.
   */
  sample(batch: number, height: number, width: number): ViewParameters {
    checkInteger(batch, 'batch', 0);
    checkInteger(height, 'height', 1);
    checkInteger(width, 'width', 1);
    const n = this.viewsPerImage * batch;
    const p: ViewParameters = {
      boxes: new Float64Array(4 * n),
      flip: new Uint8Array(n),
      jitterApply: new Uint8Array(n),
      jitterFactors: new Float32Array(4 * n),
      jitterOrder: new Uint8Array(4 * n),
      grayscale: new Uint8Array(n),
      blurSigma: new Float32Array(n),
    };
    const { colorJitter: jitter, blur } = this.config;
    const r = this.random;
    let k = 0;
    for (const group of this.groups) {
      for (const end = k + group.views * batch; k < end; k++) {
        p.boxes.set(this.cropBox(height, width, group.scale), 4 * k);
        p.flip[k] = r.chance(this.config.flipProbability) ? 1 : 0;
        const factors = [1, 1, 1, 0];
        const order = [0, 1, 2, 3];
        if (r.chance(jitter.probability)) {
          p.jitterApply[k] = 1;
          factors[0] = r.uniform(Math.max(0, 1 - jitter.brightness), 1 + jitter.brightness);
          factors[1] = r.uniform(Math.max(0, 1 - jitter.contrast), 1 + jitter.contrast);
          factors[2] = r.uniform(Math.max(0, 1 - jitter.saturation), 1 + jitter.saturation);
          factors[3] = r.uniform(-jitter.hue, jitter.hue);
          order.splice(0, 4, ...r.permutation(4));
        }
        p.jitterFactors.set(factors, 4 * k);
        p.jitterOrder.set(order, 4 * k);
        p.grayscale[k] = r.chance(this.config.grayscaleProbability) ? 1 : 0;
        p.blurSigma[k] = r.chance(blur.probability) ? r.uniform(blur.sigma[0], blur.sigma[1]) : 0;
      }
    }
    return p;
  }

  /** torchvision's RandomResizedCrop.get_params: [top, left, height, width]. */
  private cropBox(height: number, width: number, scale: readonly [number, number]): [number, number, number, number] {
    const { ratio } = this.config.crop;
    const area = height * width;
    const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])];
    for (let attempt = 0; attempt < 10; attempt++) {
      const target = area * this.random.uniform(scale[0], scale[1]);
      const aspect = Math.exp(this.random.uniform(logRatio[0], logRatio[1]));
      const w = Math.round(Math.sqrt(target * aspect));
      const h = Math.round(Math.sqrt(target / aspect));
      if (w > 0 && w <= width && h > 0 && h <= height) {
        return [this.random.int(height - h + 1), this.random.int(width - w + 1), h, w];
      }
    }
    // Fallback: the central crop with the closest allowed aspect ratio.
    const inRatio = width / height;
    let w = width;
    let h = height;
    if (inRatio < ratio[0]) h = Math.round(w / ratio[0]);
    else if (inRatio > ratio[1]) w = Math.round(h * ratio[1]);
    return [Math.floor((height - h) / 2), Math.floor((width - w) / 2), h, w];
  }

  /**
   * Two augmented views of each image of a uint8 batch `B x H x W x 3` (RGB, as the Loader yields), computed on
   * `device` (default: the images' device) in one native call. Returns a Tensor `2B x 3 x S x S` of `dtype` (float32), normalised;
   * rows i and i + B are the two views of image i. With small crops configured, use {@link viewGroups}.
   */
  async views(images: Tensor, { device, dtype = 'float32' }: ViewOptions = {}): Promise<Tensor> {
    const shape = checkImages(images);
    if (this.groups.length !== 1) {
      throw new Error(`Augmenter.views: this augmenter has ${this.groups.length} view groups (small crops): use viewGroups()`);
    }
    const params = this.sample(shape[0], shape[1], shape[2]);
    const { size, blur, normalize } = this.config;
    const result = native.augmentViews(images.handle, params, {
      size, blurKernel: blur.kernelSize, mean: normalize.mean, std: normalize.std, device: device ?? images.device,
      dtype: checkOneOf(dtype, 'dtype', VIEW_DTYPES),
    });
    return new Tensor(await withCallerStack(result));
  }

  /**
   * Every view of each image of a uint8 batch `B x H x W x 3`, one Tensor of `dtype` per group (see {@link groups}):
   * `V_g*B x 3 x S_g x S_g`, normalised, view-major (rows i, i + B, ... of a group are image i's views of that size).
   * Multi-crop's input to a training step: the positives of a view are all the other views of its image, in every
   * group. All groups are built in one native call on `device` (default: the images' device).
   */
  async viewGroups(images: Tensor, { device, dtype = 'float32' }: ViewOptions = {}): Promise<Tensor[]> {
    const shape = checkImages(images);
    const params = this.sample(shape[0], shape[1], shape[2]);
    const { normalize } = this.config;
    const result = native.augmentViewGroups(images.handle, params, {
      groups: this.groups.map(({ views, size, blurKernel }) => ({ views, size, blurKernel })),
      mean: normalize.mean, std: normalize.std, device: device ?? images.device, dtype: checkOneOf(dtype, 'dtype', VIEW_DTYPES),
    });
    return (await withCallerStack(result)).map((handle) => new Tensor(handle));
  }
}
