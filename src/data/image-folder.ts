/** Images in class subfolders (torchvision's ImageFolder), or a flat unlabelled folder. */
import * as fs from 'fs';
import * as path from 'path';
import { FileListDataset } from './file-list';
import { checkOneOf, invalid } from '../errors';
import { BaseSize, DEFAULT_BASE_SIZE } from './dataset';
import { IMAGE_EXTENSIONS, resolveBaseSize } from './decode';

export interface ImageFolderOptions {
  /** Decoded images are resized to this (default {@link DEFAULT_BASE_SIZE}, 32); null keeps each file's size. */
  size?: BaseSize;
  /**
   * 'folders' (default): each subfolder of root is a class, labels are the indices of the sorted class names and files
   * are found at any depth below the class folder. 'none': every image below root, label -1.
   */
  labels?: (typeof FOLDER_LABELS)[number];
}

/** How an ImageFolder labels its images (see {@link ImageFolderOptions.labels}). */
export const FOLDER_LABELS = ['folders', 'none'] as const;

const isImage = (name: string) => IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());

// Image files below `dir`, ordered as torchvision's sorted(os.walk(dir)) with sorted file names.
function imagesBelow(dir: string): string[] {
  const byFolder: [string, string[]][] = [];
  const visited = new Set<string>(); // real paths, so a symlink cycle is walked once
  const walk = (folder: string) => {
    const real = fs.realpathSync(folder);
    if (visited.has(real)) return;
    visited.add(real);
    const entries = fs.readdirSync(folder, { withFileTypes: true });
    const files: string[] = [];
    for (const entry of entries) {
      const full = path.join(folder, entry.name);
      const isDir = entry.isDirectory() || (entry.isSymbolicLink() && fs.statSync(full, { throwIfNoEntry: false })?.isDirectory());
      if (isDir) walk(full);
      else if (isImage(entry.name)) files.push(entry.name);
    }
    byFolder.push([folder, files.sort()]);
  };
  walk(dir);
  byFolder.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return byFolder.flatMap(([folder, files]) => files.map((f) => path.join(folder, f)));
}

export class ImageFolder extends FileListDataset {
  readonly root: string;
  /** Class names, sorted; label i is classes[i]. Empty when unlabelled. */
  readonly classes: string[];
  readonly files: string[];
  readonly labels: Int32Array;
  protected readonly size: readonly [number, number] | null;

  constructor(root: string, options: ImageFolderOptions = {}) {
    super();
    if (typeof root !== 'string') throw invalid('a folder path', 'root', root);
    this.root = path.resolve(root);
    const stat = fs.statSync(this.root, { throwIfNoEntry: false });
    if (!stat?.isDirectory()) throw new Error(`ImageFolder: '${root}' is not a folder`);
    this.size = resolveBaseSize(options.size === undefined ? DEFAULT_BASE_SIZE : options.size);
    const mode = checkOneOf(options.labels ?? 'folders', 'labels', FOLDER_LABELS);
    const files: string[] = [];
    const labels: number[] = [];
    if (mode === 'none') {
      this.classes = [];
      files.push(...imagesBelow(this.root));
      labels.push(...files.map(() => -1));
    } else {
      this.classes = fs.readdirSync(this.root, { withFileTypes: true })
        .filter((e) => e.isDirectory() || (e.isSymbolicLink() && fs.statSync(path.join(this.root, e.name)).isDirectory()))
        .map((e) => e.name)
        .sort();
      if (this.classes.length === 0) {
        throw new Error(`ImageFolder: '${root}' has no class subfolders; for a flat folder of unlabelled images pass { labels: 'none' }`);
      }
      const empty: string[] = [];
      this.classes.forEach((name, label) => {
        const found = imagesBelow(path.join(this.root, name));
        if (found.length === 0) empty.push(name);
        files.push(...found);
        labels.push(...found.map(() => label));
      });
      if (empty.length > 0) {
        throw new Error(`ImageFolder: no images (${IMAGE_EXTENSIONS.join(', ')}) in class folder(s) ${empty.map((e) => `'${e}'`).join(', ')} of '${root}'`);
      }
    }
    if (files.length === 0) throw new Error(`ImageFolder: no images (${IMAGE_EXTENSIONS.join(', ')}) in '${root}'`);
    this.files = files;
    this.labels = Int32Array.from(labels);
  }
}
