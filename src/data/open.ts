/** Opening a dataset from a spec (a folder, a manifest or `fashion-mnist`), as the CLI and run configs name them. */
import * as fs from 'fs';
import * as path from 'path';
import { BaseSize, Dataset } from './dataset';
import { ImageFolder } from './image-folder';
import { ManifestDataset } from './manifest';
import { fashionMnist } from './idx';
import { Subset } from './subset';

/**
 * Opens `spec`: `fashion-mnist` (Debian's dataset-fashion-mnist, `split` picks train or test), a manifest
 * (`.csv`/`.jsonl`), or an image folder. Images are resized to `baseSize` when decoded.
 */
export function openDataset(spec: string, split: 'train' | 'test', baseSize: BaseSize): Dataset {
  if (spec === 'fashion-mnist') return fashionMnist(split, { size: baseSize });
  if (!fs.existsSync(spec)) throw new Error(`data '${spec}' does not exist (expected an image folder, a .csv/.jsonl manifest or fashion-mnist)`);
  if (fs.statSync(spec).isDirectory()) return new ImageFolder(spec, { size: baseSize });
  const ext = path.extname(spec).toLowerCase();
  if (ext === '.csv' || ext === '.jsonl') return new ManifestDataset(spec, { size: baseSize });
  throw new Error(`data '${spec}' is a file but not a .csv or .jsonl manifest`);
}

/** `dataset`, or a seeded random subset of `size` samples of it. */
export function maybeSubset(dataset: Dataset, size: number | undefined, seed: number): Dataset {
  return size === undefined || size >= dataset.length ? dataset : Subset.random(dataset, size, seed);
}
