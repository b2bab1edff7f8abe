/** A list of `path,label` rows in a CSV or JSONL file; paths are relative to the manifest's folder. */
import * as path from 'path';
import { FileListDataset } from './file-list';
import { invalid } from '../errors';
import { BaseSize, DEFAULT_BASE_SIZE } from './dataset';
import { resolveBaseSize } from './decode';
import { readRegularFileSync } from '../user-file';

export interface ManifestOptions {
  /** Decoded images are resized to this (default {@link DEFAULT_BASE_SIZE}, 32); null keeps each file's size. */
  size?: BaseSize;
}

/** A row's label as written: an integer, a class name, or none (undefined). */
type RawLabel = number | string | undefined;

function rawLabel(text: unknown, where: string): RawLabel {
  if (text === undefined || text === null || text === '') return undefined;
  if (typeof text === 'number') {
    if (!Number.isInteger(text) || text < -1 || text > 2 ** 31 - 1) throw new Error(`${where}: label ${text} is not an integer >= -1`);
    return text;
  }
  if (typeof text !== 'string') throw new Error(`${where}: a label is an integer or a class name, not ${JSON.stringify(text)}`);
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  return /^[+-]?\d+$/.test(trimmed) ? rawLabel(Number(trimmed), where) : trimmed;
}

// One CSV row: `path,label`, `path` alone, or `"path, with commas",label`.
function parseCsvRow(line: string, where: string): [string, RawLabel] {
  if (line.startsWith('"')) {
    const close = line.indexOf('"', 1);
    if (close < 0) throw new Error(`${where}: unterminated quoted path`);
    const rest = line.slice(close + 1).trim();
    if (rest !== '' && !rest.startsWith(',')) throw new Error(`${where}: expected ',' after the quoted path`);
    return [line.slice(1, close), rawLabel(rest.slice(1), where)];
  }
  const comma = line.lastIndexOf(',');
  return comma < 0 ? [line.trim(), undefined] : [line.slice(0, comma).trim(), rawLabel(line.slice(comma + 1), where)];
}

/**
 * Images listed with their labels. A label is an integer (-1 or none: unlabelled), or a class name: when any label is a
 * name, every label is, and label i is `classes[i]` of the sorted names (as ImageFolder's class folders).
 */
export class ManifestDataset extends FileListDataset {
  readonly file: string;
  readonly files: string[] = [];
  readonly labels: Int32Array;
  /** Class names, sorted, when the manifest labels by name; empty when its labels are integers. */
  readonly classes: string[];
  protected readonly size: readonly [number, number] | null;

  constructor(file: string, options: ManifestOptions = {}) {
    super();
    if (typeof file !== 'string') throw invalid('a manifest file path', 'file', file);
    this.file = path.resolve(file);
    this.size = resolveBaseSize(options.size === undefined ? DEFAULT_BASE_SIZE : options.size);
    const text = readRegularFileSync(this.file).toString('utf8');
    const base = path.dirname(this.file);
    const jsonl = /\.(jsonl|ndjson)$/i.test(file) || text.trimStart().startsWith('{');
    const labels: RawLabel[] = [];
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      const where = `${file}:${i + 1}`;
      if (line === '' || line.startsWith('#')) return;
      let entry: [string, RawLabel];
      if (jsonl) {
        let row: { path?: unknown; label?: unknown };
        try {
          row = JSON.parse(line);
        } catch {
          throw new Error(`${where}: not a JSON object`);
        }
        if (typeof row.path !== 'string' || row.path === '') throw new Error(`${where}: expected a "path" string`);
        entry = [row.path, rawLabel(row.label, where)];
      } else {
        if (i === 0 && /^path\s*(,\s*label\s*)?$/i.test(line)) return; // header
        entry = parseCsvRow(line, where);
      }
      if (entry[0] === '') throw new Error(`${where}: empty path`);
      this.files.push(path.resolve(base, entry[0]));
      labels.push(entry[1]);
    });
    if (this.files.length === 0) throw new Error(`ManifestDataset: '${file}' lists no images`);
    const byName = labels.some((label) => typeof label === 'string');
    this.classes = byName ? [...new Set(labels.filter((l) => l !== undefined).map(String))].sort() : [];
    const index = new Map(this.classes.map((name, i) => [name, i]));
    this.labels = Int32Array.from(labels, (label) => (label === undefined ? -1 : byName ? index.get(String(label))! : Number(label)));
  }
}
