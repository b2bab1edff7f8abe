/** Opening a dataset from a spec (a folder, a manifest or `fashion-mnist`), as the CLI and run configs name them. */
import * as fs from 'fs';
import * as path from 'path';
import { BaseSize, Dataset } from './dataset';
import { FOLDER_LABELS, ImageFolder } from './image-folder';
import { ManifestDataset } from './manifest';
import { fashionMnist } from './idx';
import { Subset } from './subset';
import { SeededRandom } from '../random';

export interface OpenOptions {
  /** How an image folder is labelled: 'folders' (class subfolders, the default) or 'none' (unlabelled). */
  labels?: (typeof FOLDER_LABELS)[number];
}

const hasSubfolder = (folder: string) => fs.readdirSync(folder, { withFileTypes: true }).some((entry) =>
  entry.isDirectory() || (entry.isSymbolicLink() && fs.statSync(path.join(folder, entry.name), { throwIfNoEntry: false })?.isDirectory()));

/**
 * Opens `spec`: `fashion-mnist` (Debian's dataset-fashion-mnist, `split` picks train or test), a manifest
 * (`.csv`/`.jsonl`), or an image folder. Images are resized to `baseSize` when decoded.
 */
export function openDataset(spec: string, split: 'train' | 'test', baseSize: BaseSize, options: OpenOptions = {}): Dataset {
  if (spec === 'fashion-mnist') return fashionMnist(split, { size: baseSize });
  if (!fs.existsSync(spec)) throw new Error(`data '${spec}' does not exist (expected an image folder, a .csv/.jsonl manifest or fashion-mnist)`);
  if (fs.statSync(spec).isDirectory()) {
    const labels = options.labels ?? 'folders';
    if (labels === 'folders' && !hasSubfolder(spec)) {
      throw new Error(`data '${spec}' has no class subfolders: for a flat folder of unlabelled images pass --labels none ` +
        `(labels: 'none' in a config)`);
    }
    return new ImageFolder(spec, { size: baseSize, labels });
  }
  const ext = path.extname(spec).toLowerCase();
  if (ext === '.csv' || ext === '.jsonl') return new ManifestDataset(spec, { size: baseSize });
  throw new Error(`data '${spec}' is a file but not a .csv or .jsonl manifest`);
}

/** `dataset`, or a seeded random subset of `size` samples of it. */
export function maybeSubset(dataset: Dataset, size: number | undefined, seed: number): Dataset {
  return size === undefined || size >= dataset.length ? dataset : Subset.random(dataset, size, seed);
}

/** The labels of a dataset that has them (every built-in one; -1 marks an unlabelled sample), else undefined. */
export function labelsOf(dataset: Dataset): Int32Array | undefined {
  const labels = (dataset as { labels?: unknown }).labels;
  return labels instanceof Int32Array && labels.length === dataset.length ? labels : undefined;
}

/**
 * Two disjoint seeded subsets of the labelled samples of `dataset` (label >= 0): `querySize` queries and up to
 * `bankSize` bank samples from the rest; undefined when fewer than two samples are labelled.
 */
export function heldOutSplit(dataset: Dataset, bankSize: number, querySize: number | undefined, seed: number): { bank: Dataset; query: Dataset } | undefined {
  const labels = labelsOf(dataset);
  if (!labels) return undefined;
  const labelled = Int32Array.from(labels.keys()).filter((i) => labels[i] >= 0);
  if (labelled.length < 2) return undefined;
  const order = new SeededRandom(seed).permutation(labelled.length).map((i) => labelled[i]);
  const queries = Math.min(querySize ?? Math.max(1, Math.round(labelled.length / 5)), labelled.length - 1);
  return {
    query: new Subset(dataset, order.subarray(0, queries)),
    bank: new Subset(dataset, order.subarray(queries, queries + bankSize)),
  };
}
