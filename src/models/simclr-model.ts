/** The SimCLR model: encoder f and projection head g; h = f(x) is the representation, z = g(h) feeds the loss. */
import { native, NativeModelOptions } from '../native';
import { Tensor } from '../tensor';
import { checkInteger, invalid, withCallerStack } from '../errors';
import { EncoderOptions, encoderNativeOptions, ForwardOptions, ModelBase, checkImages } from './encoder';

export interface ProjectionHeadOptions {
  /** Number of Linear layers: 2 (SimCLR, the default) or 3 (SimCLRv2); any count from 1 to 16. */
  layers?: number;
  /** Width of the hidden layers; default the encoder's output width d. */
  hiddenDim?: number;
  /** Width of z; default 128. */
  outDim?: number;
  /** BatchNorm1d after each hidden Linear (which then has no bias), as in SimCLRv2. Default false. */
  batchNorm?: boolean;
}

/** The head when a setting is left out: SimCLR's (RUN_SETTINGS' projection settings take their defaults from here). */
export const PROJECTION_HEAD_DEFAULTS = Object.freeze({ layers: 2, outDim: 128, batchNorm: false });

/** Projection head presets. Layers are named as a Python nn.Sequential: `head.0.weight`, `head.1.weight`, ... */
export const ProjectionHead = {
  /** SimCLR: Linear(d, d) → ReLU → Linear(d, 128). */
  simclr: (): ProjectionHeadOptions => ({ ...PROJECTION_HEAD_DEFAULTS }),
  /** SimCLRv2: three Linear layers with BatchNorm and ReLU between them. */
  simclrV2: (): ProjectionHeadOptions => ({ layers: 3, outDim: PROJECTION_HEAD_DEFAULTS.outDim, batchNorm: true }),
};

export interface SimCLRModelOptions extends Omit<EncoderOptions, 'outDim'> {
  /** Encoder output width; default 0: h is the pooled ResNet features (512 or 2048), as in the SimCLR paper. */
  outDim?: number;
  head?: ProjectionHeadOptions;
}

/** The checked head options, complete: each one left out takes its {@link PROJECTION_HEAD_DEFAULTS} value (an absent
 * `hiddenDim` stays absent: the native model makes the hidden layers as wide as the encoder's output). */
function headOptions(head: ProjectionHeadOptions = {}): NonNullable<NativeModelOptions['head']> {
  if (typeof head !== 'object' || head === null) throw invalid('an options object', 'head', head);
  const d = PROJECTION_HEAD_DEFAULTS;
  const layers = checkInteger(head.layers ?? d.layers, 'head.layers', 1, 16);
  const hiddenDim = head.hiddenDim === undefined ? undefined : checkInteger(head.hiddenDim, 'head.hiddenDim', 1, 2 ** 20);
  const outDim = checkInteger(head.outDim ?? d.outDim, 'head.outDim', 1, 2 ** 20);
  const batchNorm = head.batchNorm ?? d.batchNorm;
  if (typeof batchNorm !== 'boolean') throw invalid('a boolean', 'head.batchNorm', batchNorm);
  return { layers, hiddenDim, outDim, batchNorm };
}

/**
 * Encoder + projection head. Its state dict keys are `encoder.<torchvision key>` and `head.<index>.<name>`.
 */
export class SimCLRModel extends ModelBase {
  static async create(options: SimCLRModelOptions): Promise<SimCLRModel> {
    const nativeOptions = { ...encoderNativeOptions(options), head: headOptions(options.head) };
    const model = new SimCLRModel(await withCallerStack(native.createModel(nativeOptions)));
    if (options.weights !== undefined) await model.loadBackboneWeights(options.weights, 'encoder.');
    return model;
  }

  /** h = encoder(x) and z = head(h), in the current train/eval mode, without autograd. */
  async forward(x: Tensor, options?: ForwardOptions): Promise<{ h: Tensor; z: Tensor }> {
    const out = await withCallerStack(this.handle.forward(checkImages(x, 'x').handle, this.forwardOptions(options)));
    return { h: new Tensor(out.h), z: new Tensor(out.z!) };
  }
}
