/**
 * Embeddings export as NumPy `.npy` files: features as an N x D float32 array and labels as an N int64 array in
 * `<name>.labels.npy` beside it, both loadable with `numpy.load`; and, given which sample each row is, the rows' files
 * (`<name>.files.csv`), the files that could not be read (`<name>.skipped.csv`) and the class names
 * (`<name>.classes.json`). Each file is written atomically.
 */
import * as os from 'os';
import { types } from 'util';
import { Tensor } from '../tensor';
import { writeFileAtomic } from '../atomic-file';
import { invalid } from '../errors';
import { readRegularFile } from '../user-file';
import type { SkippedSample } from './features';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // "\x93NUMPY"

type NpyData = Float32Array | BigInt64Array;

/** A parsed `.npy` array. */
export interface NpyArray {
  dtype: 'float32' | 'int64';
  shape: number[];
  data: NpyData;
}

/** The files of an embeddings export, named after its features file (`emb.npy`). */
export interface EmbeddingFiles {
  /** `emb.npy`: the features, N x D float32. */
  featuresPath: string;
  /** `emb.labels.npy`: the labels, N int64 (-1: unlabelled). */
  labelsPath: string;
  /** `emb.files.csv`: one line per row, in row order, `path,label,class` (written when the rows are given). */
  filesPath?: string;
  /** `emb.skipped.csv`: the files that could not be read and have no row, `path,reason` (written when the rows are given). */
  skippedPath?: string;
  /** `emb.classes.json`: the class names, an array whose i-th is label i's (written when the rows are given). */
  classesPath?: string;
}

/** Where each file of the export with features file `featuresPath` goes: `emb.npy` → `emb.labels.npy`, `emb.files.csv`, .... */
export function embeddingPaths(featuresPath: string): Required<EmbeddingFiles> {
  const stem = featuresPath.endsWith('.npy') ? featuresPath.slice(0, -4) : featuresPath;
  return {
    featuresPath, labelsPath: `${stem}.labels.npy`, filesPath: `${stem}.files.csv`, skippedPath: `${stem}.skipped.csv`, classesPath: `${stem}.classes.json`,
  };
}

/** Where the labels of the features file `featuresPath` go: `emb.npy` → `emb.labels.npy`. */
export function labelsPathFor(featuresPath: string): string {
  return embeddingPaths(featuresPath).labelsPath;
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

/** Which sample each row of an export is: what `extractFeatures` returns beside the features. */
export interface EmbeddingRows {
  /** Where row i comes from: a file path, or e.g. `fashion-mnist:test:12`. */
  sources: readonly string[];
  /** Class names: label i is `classes[i]` (empty or left out when the labels are bare integers). */
  classes?: readonly string[];
  /** The samples that could not be read, so have no row. */
  skipped?: readonly Pick<SkippedSample, 'source' | 'reason'>[];
}

/**
 * One CSV field (RFC 4180): quoted, its quotes doubled, when it holds a comma, a quote or a line break. CSV rather than
 * TSV or a format of our own: file names may hold commas, tabs, quotes, even line breaks, and CSV has one standard way
 * to quote them that pandas (`read_csv`), Python's `csv`, R and spreadsheets all read; TSV has none for a tab or a line
 * break.
 */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** A CSV file's text: a header line, then one line per row. */
function csvText(header: readonly string[], rows: Iterable<readonly string[]>): string {
  const lines = [header.join(',')];
  for (const row of rows) lines.push(row.map(csvField).join(','));
  return `${lines.join('\n')}\n`;
}

function checkRows(value: unknown, rowCount: number): Required<EmbeddingRows> {
  if (typeof value !== 'object' || value === null) throw invalid('an object with sources (and classes, skipped)', 'rows', value);
  const { sources, classes = [], skipped = [] } = value as Partial<EmbeddingRows>;
  const strings = (a: unknown): a is string[] => Array.isArray(a) && a.every((s) => typeof s === 'string');
  if (!strings(sources)) throw invalid('an array of strings', 'rows.sources', sources);
  if (sources.length !== rowCount) throw invalid(`one source per feature row (${rowCount})`, 'rows.sources', sources.length, 'range');
  if (!strings(classes)) throw invalid('an array of class names', 'rows.classes', classes);
  if (!Array.isArray(skipped) || !skipped.every((s) => typeof s?.source === 'string' && typeof s?.reason === 'string')) {
    throw invalid('an array of { source, reason } strings', 'rows.skipped', skipped);
  }
  return { sources, classes, skipped };
}

/**
 * Exports embeddings: `features` (an N x D floating Tensor) to `featuresPath` as '<f4', and `labels` (N class indices)
 * to `labelsPathFor(featuresPath)` as '<i8'. With `rows` (which sample each row is: pass what extractFeatures
 * returned), also the rows' files, the skipped files and the class names, at the paths of {@link embeddingPaths}: a
 * row's line in `.files.csv` (after the header) is its row in the features, its label is its label in `.labels.npy`
 * (-1: unlabelled) and its class is that label's name (empty without one). Returns the paths written.
 */
export async function writeEmbeddings(featuresPath: string, features: Tensor,
  labels: Tensor | BigInt64Array | Int32Array | readonly number[], rows?: EmbeddingRows): Promise<EmbeddingFiles> {
  if (typeof featuresPath !== 'string' || featuresPath === '') throw invalid('a file path', 'featuresPath', featuresPath);
  if (!(features instanceof Tensor)) throw invalid('a Tensor', 'features', features);
  const shape = features.shape;
  if (shape.length !== 2) throw new RangeError(`Expected a 2-D Tensor (rows x dims) for features but received shape [${shape.join(', ')}]`);
  if (features.dtype !== 'float32' && features.dtype !== 'float64') {
    throw new TypeError(`Expected a floating point Tensor for features but received dtype ${features.dtype}`);
  }
  const labelData = labelsArray(labels);
  if (labelData.length !== shape[0]) throw invalid(`one label per feature row (${shape[0]})`, 'labels', labelData.length, 'range');
  const described = rows === undefined ? undefined : checkRows(rows, shape[0]);
  const paths = embeddingPaths(featuresPath);
  await writeNpy(featuresPath, features.toFloat32Array(), shape);
  await writeNpy(paths.labelsPath, labelData, [labelData.length]);
  if (!described) return { featuresPath, labelsPath: paths.labelsPath };
  const { sources, classes, skipped } = described;
  const className = (label: bigint) => (label >= 0n && label < BigInt(classes.length) ? classes[Number(label)] : '');
  await writeFileAtomic(paths.filesPath, [csvText(['path', 'label', 'class'],
    sources.map((source, i) => [source, String(labelData[i]), className(labelData[i])]))]);
  // Written even when empty: a skipped list left from an earlier export to the same path would describe other rows.
  await writeFileAtomic(paths.skippedPath, [csvText(['path', 'reason'], skipped.map((s) => [s.source, s.reason]))]);
  await writeFileAtomic(paths.classesPath, [`${JSON.stringify(classes)}\n`]);
  return paths;
}
