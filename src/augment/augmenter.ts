/**
 * The SimCLR two-view augmenter: per-view parameters drawn in TS from a seeded generator, applied to a whole uint8
 * batch by one native call on the target device.
 */
import { native, NativeViewParams } from '../native';
import { Tensor, Device } from '../tensor';
import { checkInteger, invalid, withCallerStack } from '../errors';
import { SeededRandom } from '../data/random';
import { AugmentConfig, AugmentOptions, resolveAugmentConfig } from './config';

/** The parameters of 2B views (row v * B + i is view v of image i), as typed arrays. */
export type ViewParameters = NativeViewParams;

/** The state of an augmenter's parameter generator (JSON-serialisable: a checkpoint stores it). */
export type AugmenterState = readonly number[];

export class Augmenter {
  readonly config: AugmentConfig;
  private random: SeededRandom;

  /** `options`: partial config (SimCLR defaults for the rest); `seed`: the parameter generator's seed (default 0). */
  constructor(options: AugmentOptions = {}, { seed = 0 }: { seed?: number } = {}) {
    this.config = resolveAugmentConfig(options);
    this.random = new SeededRandom(seed);
  }

  /** The generator state, to store in a checkpoint. */
  getState(): AugmenterState {
    return this.random.getState();
  }

  /** Restores a state from `getState()`: the following views repeat exactly. */
  setState(state: AugmenterState): void {
    this.random = new SeededRandom(state);
  }

  /**
   * Draws the parameters of two views for each of `batch` images of `height` x `width` pixels, as torchvision's
   * RandomResizedCrop, RandomHorizontalFlip, RandomApply(ColorJitter), RandomGrayscale and GaussianBlur would.
   */
  sample(batch: number, height: number, width: number): ViewParameters {
    checkInteger(batch, 'batch', 0);
    checkInteger(height, 'height', 1);
    checkInteger(width, 'width', 1);
    const n = 2 * batch;
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
    for (let k = 0; k < n; k++) {
      p.boxes.set(this.cropBox(height, width), 4 * k);
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
    return p;
  }

  /** torchvision's RandomResizedCrop.get_params: [top, left, height, width]. */
  private cropBox(height: number, width: number): [number, number, number, number] {
    const { scale, ratio } = this.config.crop;
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
   * `device` (default: the images' device) in one native call. Returns a float32 Tensor `2B x 3 x S x S`, normalised;
   * rows i and i + B are the two views of image i.
   */
  async views(images: Tensor, { device }: { device?: Device } = {}): Promise<Tensor> {
    if (!(images instanceof Tensor)) throw invalid('a Tensor', 'images', images);
    const shape = images.shape;
    if (shape.length !== 4 || shape[3] !== 3 || images.dtype !== 'uint8') {
      throw invalid('a uint8 Tensor B x H x W x 3', 'images', `${images.dtype} [${shape.join(', ')}]`);
    }
    const params = this.sample(shape[0], shape[1], shape[2]);
    const { size, blur, normalize } = this.config;
    const result = native.augmentViews(images.handle, params, {
      size, blurKernel: blur.kernelSize, mean: normalize.mean, std: normalize.std, device: device ?? images.device,
    });
    return new Tensor(await withCallerStack(result));
  }
}
