/**
 * Embeddings export as NumPy `.npy` files: features as an N x D float32 array and labels as an N int64 array in
 * `<name>.labels.npy` beside it, both loadable with `numpy.load`. Files are written atomically.
 */
import * as os from 'os';
import { types } from 'util';
import { Tensor } from '../tensor';
import { writeFileAtomic } from '../atomic-file';
import { invalid } from '../errors';
import { readRegularFile } from '../user-file';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // "\x93NUMPY"

type NpyData = Float32Array | BigInt64Array;

/** A parsed `.npy` array. */
export interface NpyArray {
  dtype: 'float32' | 'int64';
  shape: number[];
  data: NpyData;
}

/** Where the labels of the features file `featuresPath` go: `emb.npy` → `emb.labels.npy`. */
export function labelsPathFor(featuresPath: string): string {
  return featuresPath.endsWith('.npy') ? `${featuresPath.slice(0, -4)}.labels.npy` : `${featuresPath}.labels.npy`;
}

/** The NPY v1.0 header for a C-ordered little-endian array, padded so the data starts at a multiple of 64 bytes. */
function npyHeader(descr: '<f4' | '<i8', shape: readonly number[]): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const unpadded = MAGIC.length + 2 + 2 + dict.length + 1; // magic, version, header length, dict, newline
  const header = dict + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const prefix = Buffer.alloc(MAGIC.length + 4);
  MAGIC.copy(prefix);
  prefix[6] = 1; // format version 1.0
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1')]);
}

function checkLittleEndian(): void {
  // The typed arrays are written as they lie in memory, which matches '<f4'/'<i8' only on little-endian hosts.
  if (os.endianness() !== 'LE') throw new Error('simclr: .npy export needs a little-endian machine');
}

/** Writes `data` (C order, the given shape) as a `.npy` file, atomically. */
export async function writeNpy(filePath: string, data: NpyData, shape: readonly number[]): Promise<void> {
  checkLittleEndian();
  // util.types checks hold across realms (arrays made by the addon or in a jest sandbox), where instanceof does not.
  if (!types.isFloat32Array(data) && !types.isBigInt64Array(data)) throw invalid('a Float32Array or BigInt64Array', 'data', data);
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) throw invalid('an array of non-negative integers', 'shape', shape);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw invalid(`${count} elements for shape [${shape.join(', ')}]`, 'data', data.length, 'range');
  const descr = types.isFloat32Array(data) ? '<f4' : '<i8';
  await writeFileAtomic(filePath, [npyHeader(descr, shape), data]);
}

/** Reads a `.npy` file written by {@link writeNpy} or numpy (little-endian float32 or int64, C order). */
export async function readNpy(filePath: string): Promise<NpyArray> {
  checkLittleEndian();
  const bytes = await readRegularFile(filePath);
  if (bytes.length < 10 || !bytes.subarray(0, 6).equals(MAGIC)) throw new Error(`${filePath} is not a .npy file`);
  const major = bytes[6];
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const dataStart = (major === 1 ? 10 : 12) + headerLength;
  const header = bytes.subarray(major === 1 ? 10 : 12, dataStart).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if ((descr !== '<f4' && descr !== '<i8') || fortran !== 'False' || shapeText === undefined) {
    throw new Error(`${filePath}: only little-endian float32 or int64 arrays in C order are supported (header ${header.trim()})`);
  }
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const itemSize = descr === '<f4' ? 4 : 8;
  if (bytes.length - dataStart !== count * itemSize) throw new Error(`${filePath}: expected ${count * itemSize} data bytes but found ${bytes.length - dataStart}`);
  // Copy into a fresh, aligned buffer: the file's data offset need not be a multiple of the element size.
  const aligned = new ArrayBuffer(count * itemSize);
  new Uint8Array(aligned).set(bytes.subarray(dataStart));
  return descr === '<f4'
    ? { dtype: 'float32', shape, data: new Float32Array(aligned) }
    : { dtype: 'int64', shape, data: new BigInt64Array(aligned) };
}

function labelsArray(labels: Tensor | BigInt64Array | Int32Array | readonly number[]): BigInt64Array {
  if (labels instanceof Tensor) {
    if (labels.dtype !== 'int64' && labels.dtype !== 'uint8') {
      throw new TypeError(`Expected an integer Tensor for labels but received dtype ${labels.dtype}`);
    }
    return BigInt64Array.from(labels.toTypedArray() as ArrayLike<number | bigint>, (v) => BigInt(v));
  }
  if (types.isBigInt64Array(labels)) return labels;
  if (types.isInt32Array(labels) || Array.isArray(labels)) {
    return BigInt64Array.from(labels as ArrayLike<number>, (v, i) => {
      if (!Number.isInteger(v)) throw invalid('integer labels', `labels[${i}]`, v, 'range');
      return BigInt(v);
    });
  }
  throw invalid('a Tensor, BigInt64Array, Int32Array or array of integers', 'labels', labels);
}

/**
 * Exports embeddings: `features` (an N x D floating Tensor) to `featuresPath` as '<f4', and `labels` (N class indices)
 * to `labelsPathFor(featuresPath)` as '<i8'. Returns both paths.
 */
export async function writeEmbeddings(featuresPath: string, features: Tensor,
  labels: Tensor | BigInt64Array | Int32Array | readonly number[]): Promise<{ featuresPath: string; labelsPath: string }> {
  if (typeof featuresPath !== 'string' || featuresPath === '') throw invalid('a file path', 'featuresPath', featuresPath);
  if (!(features instanceof Tensor)) throw invalid('a Tensor', 'features', features);
  const shape = features.shape;
  if (shape.length !== 2) throw new RangeError(`Expected a 2-D Tensor (rows x dims) for features but received shape [${shape.join(', ')}]`);
  if (features.dtype !== 'float32' && features.dtype !== 'float64') {
    throw new TypeError(`Expected a floating point Tensor for features but received dtype ${features.dtype}`);
  }
  const labelData = labelsArray(labels);
  if (labelData.length !== shape[0]) throw invalid(`one label per feature row (${shape[0]})`, 'labels', labelData.length, 'range');
  const labelsPath = labelsPathFor(featuresPath);
  await writeNpy(featuresPath, features.toFloat32Array(), shape);
  await writeNpy(labelsPath, labelData, [labelData.length]);
  return { featuresPath, labelsPath };
}
