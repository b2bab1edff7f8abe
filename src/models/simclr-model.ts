/** The SimCLR model: encoder f and projection head g; h = f(x) is the representation, z = g(h) feeds the loss. */
import { native } from '../native';
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

/** Projection head presets. Layers are named as a Python nn.Sequential: `head.0.weight`, `head.1.weight`, ... */
export const ProjectionHead = {
  /** SimCLR: Linear(d, d) → ReLU → Linear(d, 128). */
  simclr: (): ProjectionHeadOptions => ({ layers: 2, outDim: 128, batchNorm: false }),
  /** SimCLRv2: three Linear layers with BatchNorm and ReLU between them. */
  simclrV2: (): ProjectionHeadOptions => ({ layers: 3, outDim: 128, batchNorm: true }),
};

export interface SimCLRModelOptions extends Omit<EncoderOptions, 'outDim'> {
  /** Encoder output width; default 0: h is the pooled ResNet features (512 or 2048), as in the SimCLR paper. */
  outDim?: number;
  head?: ProjectionHeadOptions;
}

function headOptions(head: ProjectionHeadOptions | undefined): ProjectionHeadOptions {
  if (head === undefined) return ProjectionHead.simclr();
  if (typeof head !== 'object' || head === null) throw invalid('an options object', 'head', head);
  const out: ProjectionHeadOptions = {};
  if (head.layers !== undefined) out.layers = checkInteger(head.layers, 'head.layers', 1, 16);
  if (head.hiddenDim !== undefined) out.hiddenDim = checkInteger(head.hiddenDim, 'head.hiddenDim', 1, 2 ** 20);
  if (head.outDim !== undefined) out.outDim = checkInteger(head.outDim, 'head.outDim', 1, 2 ** 20);
  if (head.batchNorm !== undefined) {
    if (typeof head.batchNorm !== 'boolean') throw invalid('a boolean', 'head.batchNorm', head.batchNorm);
    out.batchNorm = head.batchNorm;
  }
  return out;
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
