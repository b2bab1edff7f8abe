/**
 * Checkpoint files: one file holding a JSON header (config, counters, RNG states, anything serialisable) and named
 * tensors (model, optimiser state). Written atomically (writeFileAtomic), so a crash or SIGINT leaves either the old
 * or the new checkpoint, never half of one.
 *
 * Layout: "SIMCLRCK" | u32 version | u32 reserved | u64 header bytes | header JSON | tensor data (8-byte aligned).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Tensor, SupportedTypedArray } from '../tensor';
import { writeFileAtomic } from '../atomic-file';

const MAGIC = 'SIMCLRCK';
const VERSION = 1;

interface TensorEntry {
  name: string;
  dtype: 'float32' | 'float64' | 'uint8' | 'int64';
  shape: number[];
  offset: number;
  bytes: number;
}

export interface CheckpointContents<Meta> {
  meta: Meta;
  tensors: Record<string, Tensor>;
}

const align8 = (n: number) => Math.ceil(n / 8) * 8;

/** Writes `meta` and `tensors` to `file` atomically. */
export async function writeCheckpoint<Meta>(file: string, contents: CheckpointContents<Meta>): Promise<void> {
  const entries: TensorEntry[] = [];
  let offset = 0;
  let largest = 0;
  for (const [name, tensor] of Object.entries(contents.tensors)) {
    const bytes = tensor.byteLength;
    entries.push({ name, dtype: tensor.dtype, shape: tensor.shape, offset, bytes });
    offset += align8(bytes);
    largest = Math.max(largest, align8(bytes));
  }
  const header = Buffer.from(JSON.stringify({ meta: contents.meta, tensors: entries }), 'utf8');
  const paddedHeader = Buffer.concat([header, Buffer.alloc(align8(header.length) - header.length, 0x20)]);
  const prefix = Buffer.alloc(24);
  prefix.write(MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(VERSION, 8);
  prefix.writeBigUInt64LE(BigInt(paddedHeader.length), 16);

  // One scratch buffer for every tensor: a checkpoint's worth of copies would otherwise wait for garbage collection.
  const scratch = Buffer.alloc(largest);
  const tensors = Object.values(contents.tensors);
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
  await fs.promises.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await writeFileAtomic(file, chunks());
}

const ARRAYS = { float32: Float32Array, float64: Float64Array, uint8: Uint8Array, int64: BigInt64Array } as const;

/** Reads a checkpoint written by writeCheckpoint; a foreign, truncated or corrupt file is a clear error. */
export async function readCheckpoint<Meta>(file: string, options: { device?: string } = {}): Promise<CheckpointContents<Meta>> {
  let data: Buffer;
  try {
    data = await fs.promises.readFile(file);
  } catch (err) {
    throw new Error(`Cannot read checkpoint ${file}: ${(err as Error).message}`);
  }
  if (data.length < 24 || data.toString('latin1', 0, 8) !== MAGIC) throw new Error(`${file} is not a simclr checkpoint`);
  const version = data.readUInt32LE(8);
  if (version !== VERSION) throw new Error(`${file} has checkpoint version ${version}; this simclr reads version ${VERSION}`);
  const headerBytes = Number(data.readBigUInt64LE(16));
  if (24 + headerBytes > data.length) throw new Error(`${file} is truncated`);
  let header: { meta: Meta; tensors: TensorEntry[] };
  try {
    header = JSON.parse(data.toString('utf8', 24, 24 + headerBytes));
  } catch {
    throw new Error(`${file} has a corrupt header`);
  }
  const base = 24 + headerBytes;
  const tensors: Record<string, Tensor> = {};
  for (const entry of header.tensors) {
    const Array = ARRAYS[entry.dtype];
    if (!Array || base + entry.offset + entry.bytes > data.length) throw new Error(`${file} is truncated or corrupt at tensor ${entry.name}`);
    // Copy into an aligned buffer: typed arrays need offsets that are multiples of their element size.
    const bytes = new Uint8Array(entry.bytes);
    bytes.set(data.subarray(base + entry.offset, base + entry.offset + entry.bytes));
    const typed = new Array(bytes.buffer) as SupportedTypedArray;
    tensors[entry.name] = Tensor.fromTypedArray(typed, entry.shape, { device: options.device });
  }
  return { meta: header.meta, tensors };
}
