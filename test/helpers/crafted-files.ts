/**
 * Hand-made torch.save files for tests of hostile input: a state-dict pickle whose tensors may declare any storage
 * size, offset, sizes and strides, and a zip writer whose records may be deflated streams of any length (a few KB of
 * deflate can expand to gigabytes).
 */
import * as zlib from 'zlib';

/** One tensor of a crafted state dict: `_rebuild_tensor_v2(storage <key> of <numel> floats, offset, sizes, strides)`. */
export interface CraftedTensor {
  name: string;
  key: string;
  numel: number;
  offset: number;
  sizes: number[];
  strides: number[];
}

const text = (s: string) => Buffer.concat([Buffer.from('X'), u32(Buffer.byteLength(s)), Buffer.from(s, 'latin1')]);
const global = (module: string, name: string) => Buffer.from(`c${module}\n${name}\n`, 'latin1');
// LONG1 with 8 bytes: any int64, negative ones included.
const long = (n: number) => {
  const b = Buffer.alloc(10);
  b[0] = 0x8a;
  b[1] = 8;
  b.writeBigInt64LE(BigInt(n), 2);
  return b;
};
const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}
const tuple = (...items: Buffer[]) => Buffer.concat([Buffer.from('('), ...items, Buffer.from('t')]);

/** The data.pkl of `{name: tensor}` as torch.save writes it at protocol 2 (float storages on the CPU). */
export function statePickle(tensors: CraftedTensor[]): Buffer {
  const parts = [Buffer.from([0x80, 0x02]), Buffer.from('}')];
  for (const t of tensors) {
    parts.push(text(t.name), global('torch._utils', '_rebuild_tensor_v2'), tuple(
      tuple(text('storage'), global('torch', 'FloatStorage'), text(t.key), text('cpu'), long(t.numel)), Buffer.from('Q'),
      long(t.offset), tuple(...t.sizes.map(long)), tuple(...t.strides.map(long)), Buffer.from([0x89]),
      global('collections', 'OrderedDict'), Buffer.from(')R'),
    ), Buffer.from('Rs'));
  }
  parts.push(Buffer.from('.'));
  return Buffer.concat(parts);
}

/** A zip record: stored bytes, or a deflate stream with the size and CRC of what it expands to. */
export type ZipRecord = { name: string; data: Buffer } | { name: string; deflated: Buffer; size: number; crc: number };

/** `size` zero bytes as a raw deflate stream of about size / 1000 bytes, with their CRC-32, without allocating them. */
export function deflatedZeros(size: number): { deflated: Buffer; size: number; crc: number } {
  const chunk = 1 << 20;
  if (size % chunk !== 0) throw new Error('deflatedZeros: size must be a multiple of 1 MiB');
  const zeros = Buffer.alloc(chunk);
  // A full flush ends each block byte-aligned with an empty dictionary, so one chunk's output repeats verbatim.
  const block = zlib.deflateRawSync(zeros, { finishFlush: zlib.constants.Z_FULL_FLUSH });
  const blocks: Buffer[] = [];
  let crc = 0;
  for (let i = 0; i < size / chunk; i++) {
    blocks.push(block);
    crc = zlib.crc32(zeros, crc);
  }
  blocks.push(Buffer.from([0x03, 0x00])); // a final, empty fixed-Huffman block
  return { deflated: Buffer.concat(blocks), size, crc };
}

/** A zip file of `records` under the folder `archive/` (as torch.save names them). */
export function zipOf(records: ZipRecord[]): Buffer {
  const local: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const record of records) {
    const name = Buffer.from(`archive/${record.name}`, 'latin1');
    const stored = 'data' in record;
    const body = stored ? record.data : record.deflated;
    const size = stored ? record.data.length : record.size;
    const crc = stored ? zlib.crc32(record.data) : record.crc;
    const fields = [u16(stored ? 0 : 8), u16(0), u16(0x21), u32(crc), u32(body.length), u32(size), u16(name.length), u16(0)];
    const header = Buffer.concat([u32(0x04034b50), u16(20), u16(0), ...fields, name]);
    central.push(Buffer.concat([u32(0x02014b50), u16(20), u16(20), u16(0), ...fields, u16(0), u16(0), u16(0), u32(0), u32(offset), name]));
    local.push(header, body);
    offset += header.length + body.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.concat([u32(0x06054b50), u16(0), u16(0), u16(records.length), u16(records.length), u32(directory.length), u32(offset), u16(0)]);
  return Buffer.concat([...local, directory, end]);
}

/** A torch.save zip of `tensors`, each storage holding `numel` floats 0, 1, 2, ... */
export function stateDictZip(tensors: CraftedTensor[], extra: ZipRecord[] = []): Buffer {
  const storages = new Map(tensors.map((t) => [t.key, t.numel]));
  const data = [...storages].map(([key, numel]) => ({ name: `data/${key}`, data: Buffer.from(Float32Array.from({ length: numel }, (_, i) => i).buffer) }));
  return zipOf([{ name: 'data.pkl', data: statePickle(tensors) }, ...data, { name: 'version', data: Buffer.from('3\n') }, ...extra]);
}
