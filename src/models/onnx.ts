/**
 * ONNX export of a model's inference graph, written from the model's own structure (LibTorch has no ONNX exporter):
 * the ResNet as torchvision builds it, read off the state dict's keys and shapes, with every BatchNorm folded into the
 * Conv or Gemm before it (inference form: the running statistics), a dynamic batch axis and fp32 weights. The file is
 * encoded by protobufjs with ONNX's own schema (proto/onnx.proto), so that any ONNX runtime reads it: ONNX Runtime in
 * Node and in the browser, the ONNX checker.
 */
import * as path from 'path';
import { invalid, checkInteger } from '../errors';
import { writeFileAtomic } from '../atomic-file';
import { Tensor } from '../tensor';
import { ModelBase } from './encoder';
import { INPUT_METADATA_KEY, inputMetadata } from '../preprocess/onnx-metadata';
import { onnxSchema } from '../preprocess/onnx-schema';

/** How the exported model's input is made from an image; written into the model's metadata (`simclr.input`). */
export interface OnnxInputSpec {
  /** Height and width of the input (the whole image resized to size x size, bilinear, no crop). */
  size: number;
  /** The side images are decoded to before that (a run's baseSize, PIL's bilinear); default `size`. */
  baseSize?: number;
  /** Per-channel normalisation of RGB pixels scaled to [0, 1]: (x / 255 - mean) / std. */
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

export interface OnnxExportOptions {
  input: OnnxInputSpec;
  /** Also output `z`, the projection head's output (a SimCLRModel's); default false: `h` only. */
  projection?: boolean;
  /** More metadata (string values), e.g. the run the model comes from. */
  metadata?: Record<string, string>;
}

/** What an export wrote. */
export interface OnnxExportResult {
  /** The graph's outputs, by name: their width. */
  outputs: Record<string, number>;
  input: { name: string; shape: (string | number)[] };
  opset: number;
  bytes: number;
}

/** Opset 17 (ONNX 1.12): read by every ONNX Runtime from 1.12 and by onnxruntime-web; the ops used are all older. */
const OPSET = 17;
/** IR version 8 is the one opset 17 was released with. */
const IR_VERSION = 8;
/** LibTorch's BatchNorm default, which the native models use. */
const BN_EPS = 1e-5;
const INPUT = 'images';

/** An ONNX AttributeProto's type tags (onnx.proto's AttributeType). */
const ATTRIBUTE = { INT: 2, INTS: 7 } as const;
/** TensorProto.DataType.FLOAT */
const FLOAT = 1;

type Attribute = { name: string; type: number; i?: number; ints?: number[] };
type Node = { opType: string; name: string; input: string[]; output: string[]; attribute: Attribute[] };
type Initializer = { name: string; dims: number[]; dataType: number; rawData: Uint8Array };

const ints = (name: string, values: number[]): Attribute => ({ name, type: ATTRIBUTE.INTS, ints: values });
const int = (name: string, value: number): Attribute => ({ name, type: ATTRIBUTE.INT, i: value });

/** The float64 values and shape of a state-dict tensor (the model may be float32 or float64, on any device). */
interface Values {
  data: Float64Array;
  shape: number[];
}

/** Builds the graph node by node; weights are folded in float64 and stored as little-endian fp32. */
class GraphBuilder {
  constructor(
    private readonly state: Record<string, Values>,
    /** Where this part of the model sits in the state dict ('encoder.' in a SimCLRModel), left off the node names. */
    private readonly prefix: string,
    readonly nodes: Node[] = [],
    readonly initializers: Initializer[] = [],
  ) {}

  /** A builder of the same graph for another part of the model. */
  part(prefix: string): GraphBuilder {
    return new GraphBuilder(this.state, prefix, this.nodes, this.initializers);
  }

  /** The state-dict tensor `key` (under the model's prefix); a missing one means a structure this export does not know. */
  tensor(key: string): Values {
    const found = this.state[this.prefix + key];
    if (!found) throw new Error(`Cannot export this model to ONNX: its state dict has no '${this.prefix + key}' (not a torchvision ResNet layout)`);
    return found;
  }

  has(key: string): boolean {
    return this.prefix + key in this.state;
  }

  private weight(name: string, data: Float64Array, dims: number[]): string {
    const fp32 = Float32Array.from(data);
    this.initializers.push({ name, dims, dataType: FLOAT, rawData: new Uint8Array(fp32.buffer, fp32.byteOffset, fp32.byteLength) });
    return name;
  }

  private node(opType: string, name: string, input: string[], attribute: Attribute[] = []): string {
    this.nodes.push({ opType, name, input, output: [name], attribute });
    return name;
  }

  /**
   * The BatchNorm `bn` (eval mode: y = (x - mean) / sqrt(var + eps) * gamma + beta) as a per-channel scale and shift,
   * to fold into the layer before it.
   */
  private batchNorm(bn: string): { scale: Float64Array; shift: Float64Array } {
    const [gamma, beta, mean, variance] = ['weight', 'bias', 'running_mean', 'running_var'].map((p) => this.tensor(`${bn}.${p}`).data);
    const scale = new Float64Array(gamma.length);
    const shift = new Float64Array(gamma.length);
    for (let c = 0; c < gamma.length; c++) {
      scale[c] = gamma[c] / Math.sqrt(variance[c] + BN_EPS);
      shift[c] = beta[c] - mean[c] * scale[c];
    }
    return { scale, shift };
  }

  /** Conv `conv` (no bias, as torchvision's) followed by BatchNorm `bn`, as one Conv with a bias. */
  convBn(x: string, conv: string, bn: string, stride: number): string {
    const { data, shape } = this.tensor(`${conv}.weight`);
    const [outChannels, , kh, kw] = shape;
    const { scale, shift } = this.batchNorm(bn);
    const folded = scaleRows(data, scale);
    const w = this.weight(`${conv}.weight`, folded, shape);
    const b = this.weight(`${conv}.bias`, shift, [outChannels]);
    // torchvision pads every ResNet convolution by half its kernel (3x3: 1, 7x7: 3, 1x1: 0).
    const pads = [(kh - 1) / 2, (kw - 1) / 2, (kh - 1) / 2, (kw - 1) / 2];
    return this.node('Conv', conv, [x, w, b], [ints('kernel_shape', [kh, kw]), ints('strides', [stride, stride]), ints('pads', pads)]);
  }

  /** Linear `linear` (y = x Wᵀ + b), followed by BatchNorm1d `bn` when given (then the Linear has no bias), as one Gemm. */
  linear(x: string, linear: string, bn?: string): string {
    const { data, shape } = this.tensor(`${linear}.weight`);
    const [outFeatures, inFeatures] = shape;
    let weight = data;
    let bias = this.has(`${linear}.bias`) ? this.tensor(`${linear}.bias`).data : new Float64Array(outFeatures);
    if (bn) {
      const { scale, shift } = this.batchNorm(bn);
      weight = scaleRows(weight, scale);
      bias = bias.map((v, o) => v * scale[o] + shift[o]);
    }
    const w = this.weight(`${linear}.weight`, weight, shape);
    const b = this.weight(`${linear}.bias`, bias, [outFeatures]);
    return this.node('Gemm', linear, [x, w, b], [int('transB', 1)]);
  }

  relu(x: string, name: string): string {
    return this.node('Relu', name, [x]);
  }

  maxPool(x: string, name: string): string {
    return this.node('MaxPool', name, [x], [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])]);
  }

  add(a: string, b: string, name: string): string {
    return this.node('Add', name, [a, b]);
  }

  globalPool(x: string, name: string): string {
    return this.node('Flatten', name, [this.node('GlobalAveragePool', `${name}.pool`, [x])], [int('axis', 1)]);
  }

  /** Gives the value `x` the graph-output name `name`. */
  rename(x: string, name: string): string {
    return this.node('Identity', name, [x]);
  }
}

/*
 * The loops over weights use no globals (Math, Number): under a test runner's vm context every global lookup goes
 * through the context's interceptors, and resnet50's 25 M weights then took 40 s instead of 1.
 */

/** `rows` (a row-major array of `scale.length` rows: a weight by output channel) with row r multiplied by scale[r]. */
function scaleRows(rows: Float64Array, scale: Float64Array): Float64Array {
  const out = new Float64Array(rows.length);
  const width = rows.length / scale.length;
  for (let r = 0, i = 0; r < scale.length; r++) {
    for (let end = i + width; i < end; i++) out[i] = rows[i] * scale[r];
  }
  return out;
}

/** The index of the first NaN or infinity in `values`, or -1 (v - v is 0 for every finite v, NaN otherwise). */
function firstNonFinite(values: Float64Array): number {
  for (let i = 0; i < values.length; i++) if (values[i] - values[i] !== 0) return i;
  return -1;
}

/** One residual block of torchvision's ResNet (BasicBlock, or Bottleneck with the stride on its 3x3 conv: v1.5). */
function residualBlock(g: GraphBuilder, x: string, block: string, stride: number): string {
  const bottleneck = g.has(`${block}.conv3.weight`);
  let y = g.relu(g.convBn(x, `${block}.conv1`, `${block}.bn1`, bottleneck ? 1 : stride), `${block}.relu1`);
  y = g.convBn(y, `${block}.conv2`, `${block}.bn2`, bottleneck ? stride : 1);
  if (bottleneck) y = g.convBn(g.relu(y, `${block}.relu2`), `${block}.conv3`, `${block}.bn3`, 1);
  const shortcut = g.has(`${block}.downsample.0.weight`) ? g.convBn(x, `${block}.downsample.0`, `${block}.downsample.1`, stride) : x;
  return g.relu(g.add(y, shortcut, `${block}.add`), `${block}.relu`);
}

/** The float64 values of every tensor of the model's state dict (copies), with the check that they are finite. */
async function stateValues(model: ModelBase): Promise<Record<string, Values>> {
  const state = await model.stateDict();
  const values: Record<string, Values> = {};
  try {
    for (const [key, tensor] of Object.entries(state)) {
      if (key.endsWith('num_batches_tracked')) continue;
      const data = Float64Array.from(tensor.toTypedArray() as Float32Array | Float64Array);
      const bad = firstNonFinite(data);
      if (bad >= 0) {
        throw new Error(`Cannot export this model to ONNX: '${key}' holds ${data[bad]} (element ${bad}): a diverged run's weights; export an earlier checkpoint`);
      }
      values[key] = { data, shape: tensor.shape };
    }
  } finally {
    for (const tensor of Object.values(state)) (tensor as Tensor).dispose();
  }
  return values;
}

/** The ONNX model of `model` (an Encoder or a SimCLRModel) as bytes, with the inference graph described above. */
export async function onnxModelBytes(model: ModelBase, options: OnnxExportOptions): Promise<{ bytes: Uint8Array; result: Omit<OnnxExportResult, 'bytes'> }> {
  if (!(model instanceof ModelBase)) throw invalid('an Encoder or a SimCLRModel', 'model', model);
  if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
  const { input } = options;
  if (typeof input !== 'object' || input === null) throw invalid('the input spec { size, mean, std }', 'input', input);
  const size = checkInteger(input.size, 'input.size', 1, 8192);
  if (input.baseSize !== undefined) checkInteger(input.baseSize, 'input.baseSize', 1, 65536);
  for (const key of ['mean', 'std'] as const) {
    const v = input[key];
    if (!Array.isArray(v) || v.length !== 3 || v.some((x) => typeof x !== 'number' || !Number.isFinite(x) || (key === 'std' && x <= 0))) {
      throw invalid(key === 'std' ? 'three positive numbers' : 'three numbers', `input.${key}`, v);
    }
  }
  const projection = options.projection ?? false;
  if (typeof projection !== 'boolean') throw invalid('a boolean', 'projection', projection);
  const description = model.describe();
  if (projection && !description.head) throw new Error('Cannot export a projection: this model has no projection head (an Encoder); export a SimCLRModel, or leave projection out');

  const g = new GraphBuilder(await stateValues(model), description.head ? 'encoder.' : '');
  let x = g.relu(g.convBn(INPUT, 'conv1', 'bn1', description.stem === 'cifar' ? 1 : 2), 'relu');
  if (description.stem !== 'cifar') x = g.maxPool(x, 'maxpool');
  for (let layer = 1; layer <= 4; layer++) {
    for (let block = 0; g.has(`layer${layer}.${block}.conv1.weight`); block++) {
      x = residualBlock(g, x, `layer${layer}.${block}`, layer > 1 && block === 0 ? 2 : 1);
    }
  }
  let h = g.globalPool(x, 'avgpool');
  if (description.outDim > 0) h = g.linear(h, 'fc');
  const outputs: Record<string, number> = { h: description.outDim > 0 ? description.outDim : description.featureDim };
  const names = [g.rename(h, 'h')];
  if (projection) {
    const head = description.head!;
    const local = g.part('');
    // head.<i>: Linear, [BatchNorm1d], ReLU for each hidden layer, then the last Linear (simclr-model.ts's layout).
    let z = h;
    let index = 0;
    for (let layer = 0; layer < head.layers - 1; layer++) {
      const linear = `head.${index++}`;
      const bn = head.batchNorm ? `head.${index++}` : undefined;
      z = local.relu(local.linear(z, linear, bn), `head.${index++}`);
    }
    z = local.linear(z, `head.${index}`);
    names.push(g.rename(z, 'z'));
    outputs.z = head.outDim;
  }

  const inputShape: (string | number)[] = ['batch', 3, size, size];
  const valueInfo = (name: string, dims: (string | number)[]) => ({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  });
  const metadata: Record<string, string> = {
    [INPUT_METADATA_KEY]: JSON.stringify(inputMetadata(INPUT, input)),
    'simclr.backbone': description.backbone,
    'simclr.stem': description.stem,
    'simclr.outputs': JSON.stringify(outputs),
    ...(options.metadata ?? {}),
  };
  const Model = onnxSchema().lookupType('onnx.ModelProto');
  const message = Model.fromObject({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'simclr',
    producerVersion: packageVersion(),
    docString: `SimCLR ${description.backbone} encoder (${description.stem} stem)${projection ? ' and projection head' : ''}: input ${INPUT} ` +
      `N x 3 x ${size} x ${size}, RGB scaled to [0, 1] then normalised by mean/std (metadata simclr.input); outputs ${names.join(', ')}. ` +
      'BatchNorm is folded into the convolutions (inference form).',
    graph: {
      name: `simclr_${description.backbone}`,
      node: g.nodes,
      initializer: g.initializers,
      input: [valueInfo(INPUT, inputShape)],
      output: names.map((name) => valueInfo(name, ['batch', outputs[name]])),
    },
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  });
  const bytes = Model.encode(message).finish();
  return { bytes, result: { outputs, input: { name: INPUT, shape: inputShape }, opset: OPSET } };
}

/** Writes the ONNX model of `model` to `file` atomically (never a partial file). */
export async function saveOnnx(model: ModelBase, file: string, options: OnnxExportOptions): Promise<OnnxExportResult> {
  if (typeof file !== 'string' || file === '') throw invalid('a file path', 'path', file);
  const { bytes, result } = await onnxModelBytes(model, options);
  await writeFileAtomic(file, [bytes]);
  return { ...result, bytes: bytes.byteLength };
}

function packageVersion(): string {
  return (require(path.join(__dirname, '..', '..', 'package.json')) as { version: string }).version;
}
