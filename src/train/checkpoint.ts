/**
 * Checkpoint files: one file holding a JSON header (config, counters, RNG states, anything serialisable) and named
 * tensors (model, optimiser state). Written atomically (writeFileAtomic), so a crash or SIGINT leaves either the old
 * or the new checkpoint, never half of one.
 *
 * Layout: "SIMCLRCK" | u32 version | u32 CRC-32 of the header | u64 header bytes | header JSON | tensor data (8-byte
 * aligned). The header JSON is `{ meta, tensors: [{ name, dtype, shape, offset, bytes, crc32 }] }`; a training
 * checkpoint's meta is a {@link CheckpointMeta} and its tensors are `model/<state-dict key>` and
 * `optimizer/<parameter>/<kind>`. The checksums (version 2) are verified on every read: a flipped bit or an edited
 * header is an error naming the file, not weights that train on from garbage. Version 1 files (no checksums) still read.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { Tensor, SupportedTypedArray } from '../tensor';
import { makeFolder, writeFileAtomic } from '../atomic-file';
import { openRegularFile, readRegularFile } from '../user-file';

const MAGIC = 'SIMCLRCK';
const VERSION = 2;
/** Versions this code reads: 1 had no checksums (its reserved word is 0). */
const READABLE_VERSIONS = [1, 2];
/** Bytes before the header JSON: magic, version, reserved, header length. */
const PREFIX_BYTES = 24;

/** Where one tensor lies in the data section, as the header lists it. */
export interface CheckpointTensorEntry {
  name: string;
  dtype: keyof typeof ARRAYS;
  shape: number[];
  offset: number;
  bytes: number;
  /** CRC-32 of the tensor's bytes (version 2). */
  crc32?: number;
}

export interface CheckpointContents<Meta> {
  meta: Meta;
  tensors: Record<string, Tensor>;
}

/** The JSON header of a checkpoint: its meta and the list of its tensors (without their data). */
export interface CheckpointHeader<Meta> {
  meta: Meta;
  tensors: CheckpointTensorEntry[];
}

/** What a training checkpoint's meta holds (the Trainer writes it; resume and evaluation read it). */
export interface CheckpointMeta {
  format: 'simclr-checkpoint';
  epoch: number;
  /** Batches of `epoch` already done (0 at an epoch boundary). */
  batchInEpoch: number;
  step: number;
  optimizerSteps: number;
  augmentState: unknown;
  bestMetric: number | null;
  /** The step losses of `epoch` so far (sum and count: its mean loss after a resume covers the whole epoch). */
  epochLoss?: { sum: number; count: number };
  /** Seconds spent in `epoch` so far. */
  epochSeconds?: number;
  /** Workers of the run (data-parallel ranks; 1 for one process). */
  worldSize?: number;
  /** Images of its training data (all ranks'), when the data says. */
  images?: number;
  /** Images of the data a subset was drawn from, when the training data is a subset. */
  sourceImages?: number;
  /** The run config (the CLI and runTraining store the whole RunConfig, its `'auto'` settings as given). */
  config: Record<string, unknown>;
  /** What those `'auto'` settings resolved to in the session that wrote the checkpoint (device, precision, ...). */
  resolved?: Record<string, unknown>;
}

/** Throws unless `meta` is a training checkpoint's. */
export function checkTrainingMeta(meta: { format?: unknown } | null | undefined, file: string): asserts meta is CheckpointMeta {
  if (meta?.format !== 'simclr-checkpoint') throw new Error(`${file} is not a simclr training checkpoint`);
}

/** The tensors of a training checkpoint: the model's state dict and the optimiser's state, under their prefixes. */
export function trainingTensors(model: Record<string, Tensor>, optimizer: Record<string, Tensor>): Record<string, Tensor> {
  const tensors: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(model)) tensors[`model/${name}`] = t;
  for (const [name, t] of Object.entries(optimizer)) tensors[`optimizer/${name}`] = t;
  return tensors;
}

/** The inverse of {@link trainingTensors}; tensors under any other prefix are disposed. */
export function splitTrainingTensors(tensors: Record<string, Tensor>): { model: Record<string, Tensor>; optimizer: Record<string, Tensor> } {
  const model: Record<string, Tensor> = {};
  const optimizer: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (name.startsWith('model/')) model[name.slice('model/'.length)] = t;
    else if (name.startsWith('optimizer/')) optimizer[name.slice('optimizer/'.length)] = t;
    else t.dispose();
  }
  return { model, optimizer };
}

const align8 = (n: number) => Math.ceil(n / 8) * 8;

/** Writes `meta` and `tensors` to `file` atomically. */
export async function writeCheckpoint<Meta>(file: string, contents: CheckpointContents<Meta>): Promise<void> {
  const entries: CheckpointTensorEntry[] = [];
  let offset = 0;
  let largest = 0;
  for (const [name, tensor] of Object.entries(contents.tensors)) {
    const { dtype } = tensor;
    if (!Object.hasOwn(ARRAYS, dtype)) throw new TypeError(`checkpoint tensor ${name} is ${dtype}: checkpoints hold ${Object.keys(ARRAYS).join(', ')} tensors`);
    const bytes = tensor.byteLength;
    entries.push({ name, dtype: dtype as keyof typeof ARRAYS, shape: tensor.shape, offset, bytes });
    offset += align8(bytes);
    largest = Math.max(largest, align8(bytes));
  }

  // One scratch buffer for every tensor: a checkpoint's worth of copies would otherwise wait for garbage collection.
  const scratch = Buffer.alloc(largest);
  const tensors = Object.values(contents.tensors);
  // The checksums go in the header, which is written first: a pass over the tensors computes them.
  tensors.forEach((tensor, i) => {
    const bytes = scratch.subarray(0, entries[i].bytes);
    tensor.copyTo(bytes);
    entries[i].crc32 = zlib.crc32(bytes);
  });
  const header = Buffer.from(JSON.stringify({ meta: contents.meta, tensors: entries }), 'utf8');
  const paddedHeader = Buffer.concat([header, Buffer.alloc(align8(header.length) - header.length, 0x20)]);
  const prefix = Buffer.alloc(PREFIX_BYTES);
  prefix.write(MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(VERSION, 8);
  prefix.writeUInt32LE(zlib.crc32(paddedHeader), 12);
  prefix.writeBigUInt64LE(BigInt(paddedHeader.length), 16);
  function* chunks() {
    yield prefix;
    yield paddedHeader;
    for (let i = 0; i < tensors.length; i++) {
      const padded = scratch.subarray(0, align8(entries[i].bytes));
      tensors[i].copyTo(padded.subarray(0, entries[i].bytes));
      padded.fill(0, entries[i].bytes);
      yield padded;
    }
  }
  await makeFolder(path.dirname(path.resolve(file)));
  await writeFileAtomic(file, chunks());
}

const ARRAYS = { float32: Float32Array, float64: Float64Array, uint8: Uint8Array, int32: Int32Array, int64: BigInt64Array } as const;

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** Why a header's tensor entry cannot be read from a data section of `dataBytes` bytes (undefined: it can). */
function entryProblem(entry: CheckpointTensorEntry, dataBytes: number): string | undefined {
  if (typeof entry !== 'object' || entry === null || typeof entry.name !== 'string') return 'not a tensor entry';
  if (!Object.hasOwn(ARRAYS, entry.dtype)) return `unknown dtype ${String(entry.dtype)}`;
  if (!Array.isArray(entry.shape) || !entry.shape.every(isCount)) return 'its shape is not a list of sizes';
  if (!isCount(entry.offset) || !isCount(entry.bytes)) return 'its offset or size is not a non-negative integer';
  const elements = entry.shape.reduce((a, b) => a * b, 1);
  if (elements * ARRAYS[entry.dtype].BYTES_PER_ELEMENT !== entry.bytes) return `its shape [${entry.shape}] does not match its ${entry.bytes} bytes`;
  if (entry.offset + entry.bytes > dataBytes) return 'it lies past the end of the file';
  return undefined;
}

/** The header length from the fixed prefix; a foreign file or another version is a clear error. */
function headerBytesOf(prefix: Buffer, fileBytes: number, file: string): number {
  if (prefix.length < PREFIX_BYTES || prefix.toString('latin1', 0, 8) !== MAGIC) throw new Error(`${file} is not a simclr checkpoint`);
  const version = prefix.readUInt32LE(8);
  if (!READABLE_VERSIONS.includes(version)) throw new Error(`${file} has checkpoint version ${version}; this simclr reads versions ${READABLE_VERSIONS.join(', ')}`);
  const headerBytes = Number(prefix.readBigUInt64LE(16));
  if (PREFIX_BYTES + headerBytes > fileBytes) throw new Error(`${file} is truncated`);
  return headerBytes;
}

/** Options of the checkpoint readers. */
export interface ReadCheckpointOptions {
  /** Verify the checksums (default true); false reads a damaged file as it is, at the caller's risk. */
  verify?: boolean;
}

const corrupt = (file: string, what: string) =>
  new Error(`${file} is corrupt: ${what} does not match the checksum written with it (the file changed after it was saved); ` +
    'use an earlier checkpoint, or read it anyway with { verify: false }');

/** Throws unless the header bytes match the prefix's checksum (version 2). */
function verifyHeader(prefix: Buffer, header: Buffer, file: string): void {
  if (prefix.readUInt32LE(8) >= 2 && zlib.crc32(header) !== prefix.readUInt32LE(12)) throw corrupt(file, 'its header');
}

function parseHeader<Meta>(json: string, file: string): CheckpointHeader<Meta> {
  try {
    return JSON.parse(json);
  } catch {
    throw new Error(`${file} has a corrupt header`);
  }
}

/**
 * Reads only the fixed prefix and the JSON header of a checkpoint (not the tensors): its meta and tensor list, e.g.
 * the run config to resume with.
 */
export async function readCheckpointHeader<Meta>(file: string, options: ReadCheckpointOptions = {}): Promise<CheckpointHeader<Meta>> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await openRegularFile(file);
  } catch (err) {
    throw new Error(`Cannot read checkpoint ${file}: ${(err as Error).message}`);
  }
  try {
    const { size } = await handle.stat();
    const prefix = Buffer.alloc(Math.min(PREFIX_BYTES, size));
    await handle.read(prefix, 0, prefix.length, 0);
    const headerBytes = headerBytesOf(prefix, size, file);
    const header = Buffer.alloc(headerBytes);
    await handle.read(header, 0, headerBytes, PREFIX_BYTES);
    if (options.verify !== false) verifyHeader(prefix, header, file);
    return parseHeader<Meta>(header.toString('utf8'), file);
  } finally {
    await handle.close();
  }
}

/** Reads a checkpoint written by writeCheckpoint; a foreign, truncated or corrupt file is a clear error. */
export async function readCheckpoint<Meta>(file: string, options: { device?: string } & ReadCheckpointOptions = {}): Promise<CheckpointContents<Meta>> {
  let data: Buffer;
  try {
    data = await readRegularFile(file);
  } catch (err) {
    throw new Error(`Cannot read checkpoint ${file}: ${(err as Error).message}`);
  }
  const headerBytes = headerBytesOf(data.subarray(0, PREFIX_BYTES), data.length, file);
  const verify = options.verify !== false && data.readUInt32LE(8) >= 2;
  if (verify) verifyHeader(data, data.subarray(PREFIX_BYTES, PREFIX_BYTES + headerBytes), file);
  const header = parseHeader<Meta>(data.toString('utf8', PREFIX_BYTES, PREFIX_BYTES + headerBytes), file);
  const base = PREFIX_BYTES + headerBytes;
  const tensors: Record<string, Tensor> = {};
  if (!Array.isArray(header?.tensors)) throw new Error(`${file} has a corrupt header`);
  for (const entry of header.tensors) {
    const problem = entryProblem(entry, data.length - base);
    if (problem) throw new Error(`${file} is truncated or corrupt at tensor ${String(entry?.name)}: ${problem}`);
    const TypedArray = ARRAYS[entry.dtype];
    // Copy into an aligned buffer: typed arrays need offsets that are multiples of their element size.
    const bytes = new Uint8Array(entry.bytes);
    bytes.set(data.subarray(base + entry.offset, base + entry.offset + entry.bytes));
    if (verify && zlib.crc32(bytes) !== entry.crc32) {
      for (const t of Object.values(tensors)) t.dispose();
      throw corrupt(file, `tensor ${entry.name}`);
    }
    const typed = new TypedArray(bytes.buffer) as SupportedTypedArray;
    tensors[entry.name] = Tensor.fromTypedArray(typed, entry.shape, { device: options.device });
  }
  return { meta: header.meta, tensors };
}
