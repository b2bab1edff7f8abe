/**
 * The input an exported model expects, as its metadata (`simclr.input`) says: written by models/onnx.ts, read back
 * here without LibTorch (ONNX Runtime has no API for a model's custom metadata).
 */
import * as protobuf from 'protobufjs';
import { checkInteger, checkNumber, invalid } from '../errors';
import { onnxSchema } from './onnx-schema';

/** The metadata key that holds the input's description (JSON). */
export const INPUT_METADATA_KEY = 'simclr.input';

/**
 * How an exported model's input is made from an image (`simclr.input` in its metadata, as JSON): each image decoded
 * to RGB and resized to `baseSize` x `baseSize` (PIL's bilinear, as simclr's datasets decode), then to `size` x
 * `size` (bilinear, as simclr's evaluation view), scaled by `scale` (1/255) and normalised by `mean` and `std`, as
 * float32 `N x 3 x size x size` (NCHW) named `name`.
 */
export interface OnnxInputMetadata {
  name: string;
  layout: 'NCHW';
  channels: 'RGB';
  size: number;
  /** The side images are decoded to first (the run's baseSize); models exported before it was recorded: `size`. */
  baseSize: number;
  resize: string;
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
}

/**
 * What the input is made with: the metadata's own object, or the least of it (size, mean, std; mean and std may be
 * readonly, as `as const` literals are: they are checked to hold 3 numbers).
 */
export type OnnxInputSpecLike = Pick<OnnxInputMetadata, 'size'> & { mean: readonly number[]; std: readonly number[] } &
  Partial<Omit<OnnxInputMetadata, 'size' | 'mean' | 'std'>>;

const RESIZE = 'whole image to baseSize x baseSize when decoded (PIL bilinear), then to size x size (bilinear), no crop';

/** The `simclr.input` metadata of a model whose input is `name`, made as `spec` says (baseSize defaults to size). */
export function inputMetadata(name: string, spec: { size: number; baseSize?: number; mean: readonly number[]; std: readonly number[] }): OnnxInputMetadata {
  return {
    name, layout: 'NCHW', channels: 'RGB', size: spec.size, baseSize: spec.baseSize ?? spec.size, resize: RESIZE, scale: 1 / 255,
    mean: [spec.mean[0], spec.mean[1], spec.mean[2]], std: [spec.std[0], spec.std[1], spec.std[2]],
  };
}

function triple(value: unknown, name: string, nonZero: boolean): [number, number, number] {
  if (!Array.isArray(value) || value.length !== 3) throw invalid('an array of 3 numbers', name, value);
  return value.map((v: unknown, i) => {
    const n = checkNumber(v, `${name}[${i}]`);
    if (nonZero && n === 0) throw invalid('a non-zero number', `${name}[${i}]`, n, 'range');
    return n;
  }) as [number, number, number];
}

/**
 * `spec` checked and completed: size between 1 and 8192, baseSize between 1 and 65536 (default size), mean and std of 3
 * finite numbers (std non-zero), and when given, layout NCHW, channels RGB and scale 1/255 (the only input simclr
 * exports).
 */
export function checkInputSpec(spec: unknown, name = 'spec'): OnnxInputMetadata {
  if (typeof spec !== 'object' || spec === null) throw invalid('the model\'s simclr.input metadata (an object with size, mean and std)', name, spec);
  const s = spec as Record<string, unknown>;
  const size = checkInteger(s.size, `${name}.size`, 1, 8192);
  const baseSize = s.baseSize === undefined ? size : checkInteger(s.baseSize, `${name}.baseSize`, 1, 65536);
  if (s.layout !== undefined && s.layout !== 'NCHW') throw invalid("'NCHW'", `${name}.layout`, s.layout);
  if (s.channels !== undefined && s.channels !== 'RGB') throw invalid("'RGB'", `${name}.channels`, s.channels);
  if (s.scale !== undefined && s.scale !== 1 / 255) throw invalid('1/255', `${name}.scale`, s.scale, 'range');
  if (s.name !== undefined && typeof s.name !== 'string') throw invalid('a string', `${name}.name`, s.name);
  return inputMetadata(typeof s.name === 'string' ? s.name : 'images', { size, baseSize, mean: triple(s.mean, `${name}.mean`, false), std: triple(s.std, `${name}.std`, true) });
}

/** The metadata (key → value) of the ONNX model in `model` (the file's bytes), read without decoding its weights. */
export function readOnnxMetadata(model: Uint8Array): Record<string, string> {
  if (!(model instanceof Uint8Array)) throw invalid('the bytes of an .onnx file (a Uint8Array)', 'model', model);
  const root = onnxSchema();
  const field = root.lookupType('onnx.ModelProto').fields.metadataProps.id;
  const Entry = root.lookupType('onnx.StringStringEntryProto');
  const metadata: Record<string, string> = {};
  const reader = protobuf.Reader.create(model);
  try {
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if (tag >>> 3 === field && (tag & 7) === 2) {
        const entry = Entry.toObject(Entry.decode(reader, reader.uint32())) as { key?: string; value?: string };
        metadata[entry.key ?? ''] = entry.value ?? '';
      } else {
        reader.skipType(tag & 7);
      }
    }
  } catch (err) {
    throw new Error(`Cannot read the ONNX model's metadata: ${err instanceof Error ? err.message : String(err)} (not an .onnx file?)`);
  }
  return metadata;
}

/**
 * The input the ONNX model in `model` (the file's bytes) expects, from its `simclr.input` metadata, checked: what
 * {@link imageToOnnxInput} takes. A model not exported by simclr (no such metadata) is an error that says so.
 */
export function readOnnxInputSpec(model: Uint8Array): OnnxInputMetadata {
  const text = readOnnxMetadata(model)[INPUT_METADATA_KEY];
  if (text === undefined) throw new Error(`The ONNX model has no ${INPUT_METADATA_KEY} metadata: export it with simclr export --format onnx`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`The ONNX model's ${INPUT_METADATA_KEY} metadata is not JSON: ${text.slice(0, 80)}`);
  }
  return checkInputSpec(parsed, INPUT_METADATA_KEY);
}
