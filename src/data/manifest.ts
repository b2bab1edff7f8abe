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

function parseLabel(text: unknown, where: string): number {
  if (text === undefined || text === null || text === '') return -1;
  const label = typeof text === 'number' ? text : Number(String(text).trim());
  if (!Number.isInteger(label) || label < -1 || label > 2 ** 31 - 1) throw new Error(`${where}: label '${String(text)}' is not an integer >= -1`);
  return label;
}

// One CSV row: `path,label`, `path` alone, or `"path, with commas",label`.
function parseCsvRow(line: string, where: string): [string, number] {
  if (line.startsWith('"')) {
    const close = line.indexOf('"', 1);
    if (close < 0) throw new Error(`${where}: unterminated quoted path`);
    const rest = line.slice(close + 1).trim();
    if (rest !== '' && !rest.startsWith(',')) throw new Error(`${where}: expected ',' after the quoted path`);
    return [line.slice(1, close), parseLabel(rest.slice(1), where)];
  }
  const comma = line.lastIndexOf(',');
  return comma < 0 ? [line.trim(), -1] : [line.slice(0, comma).trim(), parseLabel(line.slice(comma + 1), where)];
}

export class ManifestDataset extends FileListDataset {
  readonly file: string;
  readonly files: string[] = [];
  readonly labels: Int32Array;
  protected readonly size: readonly [number, number] | null;

  constructor(file: string, options: ManifestOptions = {}) {
    super();
    if (typeof file !== 'string') throw invalid('a manifest file path', 'file', file);
    this.file = path.resolve(file);
    this.size = resolveBaseSize(options.size === undefined ? DEFAULT_BASE_SIZE : options.size);
    const text = readRegularFileSync(this.file).toString('utf8');
    const base = path.dirname(this.file);
    const jsonl = /\.(jsonl|ndjson)$/i.test(file) || text.trimStart().startsWith('{');
    const labels: number[] = [];
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      const where = `${file}:${i + 1}`;
      if (line === '' || line.startsWith('#')) return;
      let entry: [string, number];
      if (jsonl) {
        let row: { path?: unknown; label?: unknown };
        try {
          row = JSON.parse(line);
        } catch {
          throw new Error(`${where}: not a JSON object`);
        }
        if (typeof row.path !== 'string' || row.path === '') throw new Error(`${where}: expected a "path" string`);
        entry = [row.path, parseLabel(row.label, where)];
      } else {
        if (i === 0 && /^path\s*(,\s*label\s*)?$/i.test(line)) return; // header
        entry = parseCsvRow(line, where);
      }
      if (entry[0] === '') throw new Error(`${where}: empty path`);
      this.files.push(path.resolve(base, entry[0]));
      labels.push(entry[1]);
    });
    if (this.files.length === 0) throw new Error(`ManifestDataset: '${file}' lists no images`);
    this.labels = Int32Array.from(labels);
  }
}
