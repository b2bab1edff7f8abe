/**
 * The model of a run: built from its config, restored from a training checkpoint, or exported from one as a
 * torchvision encoder or an ONNX model.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Tensor, manualSeed } from '../tensor';
import { SimCLRModel } from '../models/simclr-model';
import { Encoder, ModelBase, WeightsError } from '../models/encoder';
import { OnnxExportResult, saveOnnx } from '../models/onnx';
import { resolveAugmentConfig } from '../augment/config';
import { checkInteger, invalid } from '../errors';
import { readCheckpoint, checkTrainingMeta, splitTrainingTensors, CheckpointMeta } from '../train/checkpoint';
import { RunConfig, SEED_STREAMS, validateRunConfig } from './config';
import { makeFolder } from '../atomic-file';

/**
 * Creates the SimCLR model (encoder + projection head) of a run config, initialised from `config.seed`; the encoder
 * starts from `config.weights` when set.
 */
export async function createModel(config: RunConfig): Promise<SimCLRModel> {
  manualSeed(config.seed + SEED_STREAMS.init);
  if (config.weights !== undefined && !fs.existsSync(config.weights)) {
    throw new Error(`--weights: ${config.weights} does not exist (give a torchvision .pth such as resnet18-f37072fd.pth, or a file written by simclr export)`);
  }
  try {
    return await SimCLRModel.create({
      backbone: config.backbone,
      stem: config.stem,
      device: config.device,
      weights: config.weights,
      head: { layers: config.projectionLayers, outDim: config.projectionDim, batchNorm: config.projectionBatchNorm },
    });
  } catch (err) {
    // The file is the setting to change (or --backbone/--stem, which the message names).
    if (err instanceof WeightsError) throw new WeightsError(`--weights: ${err.message}`);
    throw err;
  }
}

/** The model and config stored in a checkpoint (in eval mode); `overrides` change the config (e.g. device, data). */
export async function loadCheckpointModel(file: string, overrides: Partial<RunConfig> = {}): Promise<{ model: SimCLRModel; config: RunConfig; meta: CheckpointMeta }> {
  const { meta, tensors } = await readCheckpoint<CheckpointMeta>(file);
  checkTrainingMeta(meta, file);
  const config = validateRunConfig({ ...(meta.config as Partial<RunConfig>), ...overrides });
  // The checkpoint holds the whole model: the starting weights of its run are not read again.
  const model = await createModel({ ...config, weights: undefined });
  const state = splitTrainingTensors(tensors);
  for (const t of Object.values(state.optimizer)) t.dispose();
  await model.loadStateDict(state.model, { strict: true });
  for (const t of Object.values(state.model)) t.dispose();
  model.eval();
  return { model, config, meta };
}

/**
 * Writes the encoder of a checkpoint as a PyTorch state dict with torchvision's keys. The encoder's output is the
 * pooled features (no fc), so load it into torchvision with `model.fc = torch.nn.Identity()` first.
 */
export async function exportEncoder(checkpoint: string, out: string): Promise<{ keys: number; backbone: RunConfig['backbone']; stem: RunConfig['stem'] }> {
  const { model, config } = await loadCheckpointModel(checkpoint);
  const state = await model.stateDict();
  const encoderState: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(state)) {
    if (name.startsWith('encoder.')) encoderState[name.slice('encoder.'.length)] = t;
  }
  const encoder = await Encoder.create({ backbone: config.backbone, stem: config.stem, outDim: 0 });
  await encoder.loadStateDict(encoderState, { strict: true });
  await makeFolder(path.dirname(path.resolve(out)));
  await encoder.saveStateDict(out);
  return { keys: Object.keys(encoderState).length, backbone: config.backbone, stem: config.stem };
}

export interface ExportOnnxOptions {
  /** Also output z, the projection head's (default false: the encoder's features h only). */
  projection?: boolean;
  /**
   * Side of the model's input images. From a checkpoint: its run's imageSize, what the model was trained and evaluated
   * on; from a model: required.
   */
  imageSize?: number;
  /**
   * The side images are decoded to before they are resized to imageSize (recorded in the model's metadata, for
   * simclr/preprocess). From a checkpoint: its run's baseSize; from a model: default imageSize.
   */
  baseSize?: number;
  /** The input's normalisation, recorded in the model's metadata; default the run's (ImageNet's mean and std). */
  normalize?: { mean: [number, number, number]; std: [number, number, number] };
}

/**
 * Writes the ONNX model of a checkpoint's (or a model's) encoder, and its projection head when asked: BatchNorm folded,
 * a dynamic batch axis, fp32 weights, and the input it expects (size, RGB, mean and std) in its metadata, so that ONNX
 * Runtime in Node or in a browser embeds images as `evaluate` does.
 */
export async function exportOnnx(source: string | ModelBase, out: string, options: ExportOnnxOptions = {}): Promise<OnnxExportResult & { out: string }> {
  if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
  let model: ModelBase;
  let size: number;
  let baseSize: number | undefined = options.baseSize === undefined ? undefined : checkInteger(options.baseSize, 'baseSize', 1, 65536);
  const metadata: Record<string, string> = {};
  if (typeof source === 'string') {
    const loaded = await loadCheckpointModel(source);
    model = loaded.model;
    size = options.imageSize === undefined ? loaded.config.imageSize : checkInteger(options.imageSize, 'imageSize', 1, 8192);
    baseSize ??= loaded.config.baseSize;
    metadata['simclr.checkpoint'] = path.basename(source);
    metadata['simclr.steps'] = String(loaded.meta.step);
  } else if (source instanceof ModelBase) {
    model = source;
    if (options.imageSize === undefined) throw invalid('the side of the images the model takes (e.g. its run\'s imageSize)', 'imageSize', undefined);
    size = checkInteger(options.imageSize, 'imageSize', 1, 8192);
  } else {
    throw invalid('a checkpoint path or an Encoder / SimCLRModel', 'source', source);
  }
  const { normalize } = resolveAugmentConfig({ size, normalize: options.normalize ?? {} });
  await makeFolder(path.dirname(path.resolve(out)));
  const result = await saveOnnx(model, out, { input: { size, baseSize, ...normalize }, projection: options.projection, metadata });
  return { out, ...result };
}
