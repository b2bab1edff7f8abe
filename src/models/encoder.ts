/** ResNet encoders (torchvision-identical, in native code) and what every model object shares. */
import { native, NativeForwardOptions, NativeModel, NativeModelDescription, NativeModelOptions } from '../native';
import { FORWARD_DEFAULTS, MemoryFormat, Precision, checkMemoryFormat, checkPrecision } from './precision';
import { Tensor, Device, useModelDevice } from '../tensor';
import { checkInteger, checkOneOf, invalid, withCallerStack } from '../errors';
import { describeKeyMismatch, fromNative, toNative, LoadResult, LoadStateDictOptions, StateDict } from './state-dict';
import { writeFileAtomic } from '../atomic-file';
import { readRegularFile } from '../user-file';

const BACKBONES = ['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152'] as const;
export type BackboneName = (typeof BACKBONES)[number];

/** The ResNet backbones, by torchvision's names. */
export const Backbones = {
  names: BACKBONES as readonly BackboneName[],
  /** Width of the pooled features (fc's in_features): 512 for resnet18/34, 2048 for the bottleneck ResNets. */
  featureDim(name: BackboneName): number {
    return checkBackbone(name) === 'resnet18' || name === 'resnet34' ? 512 : 2048;
  },
};

function checkBackbone(name: unknown): BackboneName {
  if (typeof name !== 'string') throw invalid(`one of ${BACKBONES.join(', ')}`, 'backbone', name);
  if (!BACKBONES.includes(name as BackboneName)) {
    throw new RangeError(`Backbone '${name}' not recognized. Available backbones: ${BACKBONES.join(', ')}`);
  }
  return name as BackboneName;
}

/**
 * First-layer variants: `imagenet` (torchvision's 7x7/2 conv + max-pool) or `cifar` (3x3/1 conv, no max-pool). Written
 * out for their literal types (RunConfig's `stem`); a test checks them against the native list, `native.stemNames`.
 */
export const STEMS = ['imagenet', 'cifar'] as const;
/** How a forward pass runs: `precision` (autocast to bf16/fp16 around the model; default `'fp32'`, no autocast) and
 * `memoryFormat` (NCHW or NHWC; default `'contiguous'`), PyTorch's defaults ({@link FORWARD_DEFAULTS}). A run passes
 * the values its `'auto'` resolved to (run/resolve.ts). */
export interface ForwardOptions {
  precision?: Precision;
  memoryFormat?: MemoryFormat;
}

export type Stem = (typeof STEMS)[number];
/** Parameter types a model can be cast to with `to(device, { dtype })`. */
export const MODEL_DTYPES = ['float32', 'float64'] as const;
export type ModelDtype = (typeof MODEL_DTYPES)[number];
/** torchvision's stem, the default everywhere (RUN_SETTINGS.stem too), so torchvision weights load as they are. */
export const DEFAULT_STEM: Stem = 'imagenet';

/** Backbone, widths, stem and head of a model, as {@link ModelBase.describe} reports them. */
export interface ModelDescription extends Omit<NativeModelDescription, 'stem'> {
  stem: Stem;
}

export interface EncoderOptions {
  backbone: BackboneName;
  /** Width of the Linear that replaces torchvision's `fc`; 0 keeps the pooled features (no `fc`). */
  outDim: number;
  /**
   * Path of a PyTorch state dict for the backbone (e.g. torchvision's `resnet50-*.pth`). It is loaded before `fc` is
   * replaced, so its `fc.*` tensors are ignored; every other key must match.
   */
  weights?: string;
  device?: Device;
  /** 'cifar': 3x3 stride-1 first convolution and no max-pool, for small (32 px) images. Default 'imagenet'. */
  stem?: Stem;
  /** Zero-initialise the last BatchNorm of each residual branch (torchvision's zero_init_residual). Default false. */
  zeroInitResidual?: boolean;
}

/**
 * @internal Checks the encoder options and turns them into complete native options (the native side has no defaults).
 * An absent `outDim` is 0, the pooled features: SimCLRModel's default (Encoder.create requires it).
 */
export function encoderNativeOptions(options: Omit<EncoderOptions, 'outDim'> & { outDim?: number }): NativeModelOptions {
  if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
  const backbone = checkBackbone(options.backbone);
  const outDim = checkInteger(options.outDim ?? 0, 'outDim', 0, 2 ** 20);
  const stem = checkOneOf(options.stem ?? DEFAULT_STEM, 'stem', STEMS);
  const zeroInitResidual = options.zeroInitResidual ?? false;
  if (typeof zeroInitResidual !== 'boolean') throw invalid('a boolean', 'zeroInitResidual', zeroInitResidual);
  const out: NativeModelOptions = { backbone, outDim, stem, zeroInitResidual };
  if (options.device !== undefined) out.device = options.device;
  if (options.weights !== undefined && (typeof options.weights !== 'string' || options.weights === '')) {
    throw invalid('a file path', 'weights', options.weights);
  }
  return out;
}

/**
 * @internal A starting-weights file (the `weights` option) that cannot be read or does not fit the model: its own
 * class, so that the run settings can say which setting (`--weights`) to change.
 */
export class WeightsError extends Error {
  override name = 'WeightsError';
}

/** The bytes of a weights file; a missing or unreadable file is an error that says which and what it should be. */
async function readWeights(path: string): Promise<Buffer> {
  try {
    return await readRegularFile(path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new WeightsError(`Cannot read weights '${path}': ${reason} (expected a PyTorch state dict: a torchvision .pth or a file written by saveStateDict / simclr export)`);
  }
}

function checkTensor(x: unknown, name: string): Tensor {
  if (!(x instanceof Tensor)) throw invalid('a Tensor', name, x);
  return x;
}

/** @internal Model input: a float Tensor N x 3 x H x W. A Loader batch (uint8 N x H x W x 3) gets a pointer to toModelInput. */
export function checkImages(x: unknown, name: string): Tensor {
  const tensor = checkTensor(x, name);
  const shape = tensor.shape;
  if (tensor.dtype === 'uint8' && shape.length === 4 && shape[3] === 3) {
    throw invalid('a float32 Tensor N x 3 x H x W (normalised images: pass a Loader batch through toModelInput(batch) first)',
      name, `uint8 [${shape.join(', ')}]`);
  }
  return tensor;
}

function checkStrict(options: LoadStateDictOptions | undefined): boolean {
  if (options === undefined) return true;
  if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
  if (options.strict === undefined) return true;
  if (typeof options.strict !== 'boolean') throw invalid('a boolean', 'strict', options.strict);
  return options.strict;
}

/**
 * What Encoder and SimCLRModel share: one native model (a ResNet, plus a projection head for SimCLR) and its state.
 * Calls that run the model return promises and run off the JS thread; calls on one model run one at a time.
 */
export abstract class ModelBase {
  /** @internal The native model; native training code takes this object. */
  readonly handle: NativeModel;

  /** @internal */
  protected constructor(handle: NativeModel) {
    this.handle = handle;
    useModelDevice(handle.device());
  }

  /** BatchNorm uses batch statistics and updates its running ones. Returns this. */
  train(): this {
    this.handle.train(true);
    return this;
  }

  /** BatchNorm uses its running statistics. Returns this. */
  eval(): this {
    this.handle.train(false);
    return this;
  }

  get training(): boolean {
    return this.handle.isTraining();
  }

  /**
   * Moves the parameters and buffers to `device`; `dtype` casts them too (default: keep theirs). A float64 model trains
   * and runs in float64: slow, for checks against exact arithmetic (e.g. data-parallel against one process). Returns this.
   */
  to(device: Device, options: { dtype?: ModelDtype } = {}): this {
    if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
    this.handle.to(device, checkOneOf(options.dtype ?? this.dtype, 'dtype', MODEL_DTYPES));
    useModelDevice(device);
    return this;
  }

  get device(): Device {
    return this.handle.device();
  }

  /** The type of the parameters: 'float32', or 'float64' after `to(device, { dtype: 'float64' })`. */
  get dtype(): ModelDtype {
    return this.handle.dtype() as ModelDtype;
  }

  /** Number of parameters (BatchNorm running statistics are buffers, not counted), as PyTorch's sum of numel(). */
  parameterCount(): number {
    return this.handle.parameterCount();
  }

  /** Backbone, widths, stem and head of this model. */
  describe(): ModelDescription {
    // The native side builds only the stems of STEMS.
    return this.handle.describe() as ModelDescription;
  }

  /**
   * h = encoder(x) in eval mode with no gradient (the mode is restored afterwards): features for downstream use, as
   * float32 whatever the precision.
   */
  async embed(x: Tensor, options?: ForwardOptions): Promise<Tensor> {
    return new Tensor(await withCallerStack(this.handle.embed(checkImages(x, 'x').handle, this.forwardOptions(options))));
  }

  /** @internal The native form of `options`, checked for this model's device. */
  protected forwardOptions(options: ForwardOptions = {}): NativeForwardOptions {
    if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
    return {
      precision: checkPrecision(options.precision ?? FORWARD_DEFAULTS.precision, this.handle.device()),
      memoryFormat: checkMemoryFormat(options.memoryFormat ?? FORWARD_DEFAULTS.memoryFormat),
    };
  }

  /**
   * Runs forward with autograd and back-propagates `gradOutput` (the gradient of some loss with respect to the
   * output: z for SimCLRModel, the encoder output for Encoder) into the parameters' gradients, which accumulate
   * until {@link zeroGrad}. Returns the output.
   */
  async forwardBackward(x: Tensor, gradOutput: Tensor): Promise<Tensor> {
    const out = this.handle.forwardBackward(checkImages(x, 'x').handle, checkTensor(gradOutput, 'gradOutput').handle);
    return new Tensor(await withCallerStack(out));
  }

  /** Copies of the accumulated parameter gradients, by state-dict key (parameters without a gradient are absent). */
  gradients(): StateDict {
    return fromNative(this.handle.gradients());
  }

  /** Clears the parameter gradients. */
  zeroGrad(): void {
    this.handle.zeroGrad();
  }

  /** A snapshot (copies) of the parameters and buffers, keyed as PyTorch's state_dict(). */
  async stateDict(): Promise<StateDict> {
    return fromNative(await withCallerStack(this.handle.stateDict()));
  }

  /**
   * Loads a state dict from a `torch.save` file path or from tensors. A shape mismatch is an error naming the key and
   * both shapes; with `strict` (the default) so are missing and unexpected keys, otherwise they are returned.
   */
  async loadStateDict(source: string | StateDict, options?: LoadStateDictOptions): Promise<LoadResult> {
    const strict = checkStrict(options);
    if (typeof source === 'string') {
      if (source === '') throw invalid('a file path or an object of Tensors', 'source', source);
      const bytes = await readWeights(source);
      return this.strictLoad(this.handle.loadStateDictBytes(bytes, strict), async () => Object.keys(await native.readStateDict(bytes)), source);
    }
    const state = toNative(source, 'source');
    return this.strictLoad(this.handle.loadStateDict(state, strict), async () => Object.keys(state));
  }

  /**
   * A load whose strict key check failed is reported as a short account (counts, a few keys, the likely prefix
   * problem) instead of every key; nothing was loaded then.
   */
  private async strictLoad(load: Promise<LoadResult>, sourceKeys: () => Promise<string[]>, file?: string): Promise<LoadResult> {
    try {
      return await withCallerStack(load);
    } catch (err) {
      // Native errors may come from another realm (jest's vm contexts): recognise them by their message.
      const error = err as Error;
      if (typeof error?.message !== 'string' || !error.message.startsWith('Error loading the state dict (strict)')) throw err;
      const state = await this.stateDict();
      const modelKeys = Object.keys(state);
      for (const tensor of Object.values(state)) tensor.dispose();
      const fileKeys = new Set(await sourceKeys());
      const missing = modelKeys.filter((key) => !fileKeys.has(key));
      const known = new Set(modelKeys);
      const unexpected = [...fileKeys].filter((key) => !known.has(key));
      error.message = `The state dict${file ? ` in ${file}` : ''} does not fit this ${this.describe().backbone} model: ${describeKeyMismatch(missing, unexpected)}`;
      throw error;
    }
  }

  /** Writes the state dict to `path` in the format Python's torch.load reads, atomically (never a partial file). */
  async saveStateDict(path: string): Promise<void> {
    if (typeof path !== 'string' || path === '') throw invalid('a file path', 'path', path);
    await writeFileAtomic(path, [await this.stateDictBytes()]);
  }

  /** The whole state as torch.save bytes (for checkpoints); {@link loadStateDictBytes} restores it. */
  stateDictBytes(): Promise<Uint8Array> {
    return withCallerStack(this.handle.stateDictBytes());
  }

  async loadStateDictBytes(bytes: Uint8Array, options?: LoadStateDictOptions): Promise<LoadResult> {
    if (!(bytes instanceof Uint8Array)) throw invalid('a Buffer or Uint8Array', 'bytes', bytes);
    return withCallerStack(this.handle.loadStateDictBytes(bytes, checkStrict(options)));
  }

  /**
   * @internal Loads backbone weights from a torch.save file into the encoder, ignoring its `fc.*` (a torchvision
   * classifier's, replaced by this model's own). Every other backbone key must be present and match; any failure is a
   * {@link WeightsError} naming the file.
   */
  protected async loadBackboneWeights(path: string, keyPrefix: string): Promise<void> {
    const bytes = await readWeights(path);
    const file = await withCallerStack(native.readStateDict(bytes)).catch((err: Error) => {
      throw new WeightsError(`Cannot read weights '${path}': ${err.message}`);
    });
    const backbone: Record<string, (typeof file)[string]> = {};
    for (const [key, tensor] of Object.entries(file)) if (!key.startsWith('fc.')) backbone[keyPrefix + key] = tensor;
    const { backbone: name, stem } = this.describe();
    const doNotFit = `The weights in ${path} do not fit a ${name} encoder (${stem} stem)`;
    const report = await withCallerStack(this.handle.loadStateDict(backbone, false)).catch((err: Error) => {
      throw new WeightsError(`${doNotFit}: ${err.message}`);
    });
    const missing = report.missingKeys.filter((key) => key.startsWith(keyPrefix) && !key.startsWith(`${keyPrefix}fc.`));
    if (missing.length > 0 || report.unexpectedKeys.length > 0) {
      const bare = (keys: string[]) => keys.map((key) => (key.startsWith(keyPrefix) ? key.slice(keyPrefix.length) : key));
      throw new WeightsError(`${doNotFit}: ${describeKeyMismatch(bare(missing), bare(report.unexpectedKeys))}`);
    }
  }
}

/**
 * A torchvision ResNet whose `fc` is replaced by `Linear(in_features, outDim)` (or removed with outDim 0). Its state
 * dict has torchvision's bare keys: torchvision's `resnetXX(num_classes=outDim)` loads what `saveStateDict` writes.
 */
export class Encoder extends ModelBase {
  static async create(options: EncoderOptions): Promise<Encoder> {
    const nativeOptions = encoderNativeOptions(options);
    if (options.outDim === undefined) throw invalid('an integer', 'outDim', options.outDim);
    const encoder = new Encoder(await withCallerStack(native.createModel(nativeOptions)));
    if (options.weights !== undefined) await encoder.loadBackboneWeights(options.weights, '');
    return encoder;
  }

  /** The encoder's output for images `x` (N x 3 x H x W), in the current train/eval mode, without autograd. */
  async forward(x: Tensor, options?: ForwardOptions): Promise<Tensor> {
    const out = await withCallerStack(this.handle.forward(checkImages(x, 'x').handle, this.forwardOptions(options)));
    return new Tensor(out.h);
  }
}
