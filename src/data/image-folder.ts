/** Images in class subfolders (torchvision's ImageFolder), or a flat unlabelled folder. */
import * as fs from 'fs';
import * as path from 'path';
import { FileListDataset } from './file-list';
import { checkOneOf, invalid } from '../errors';
import { BaseSize, DEFAULT_BASE_SIZE } from './dataset';
import { resolveBaseSize } from './decode';
import { IMAGE_EXTENSIONS } from '../preprocess/decode';

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

/** What a path is once links are followed: undefined for a dangling, looping or unreadable link. */
function statOf(file: string): fs.Stats | undefined {
  try {
    return fs.statSync(file);
  } catch {
    return undefined;
  }
}

function realPathOf(file: string): string | undefined {
  try {
    return fs.realpathSync(file);
  } catch {
    return undefined;
  }
}

/** Whether `inner` is `outer` or lies below it (both real paths). */
const within = (inner: string, outer: string) => inner === outer || inner.startsWith(outer.endsWith(path.sep) ? outer : outer + path.sep);

/**
 * Image files below `dir`, ordered as torchvision's sorted(os.walk(dir)) with sorted file names. Links are followed,
 * with three exceptions that keep each image listed once and under its own label: a linked folder inside one of
 * `roots` (the dataset and its class folders: its images are listed where they are), one that contains a folder of the
 * walk (a cycle such as `parent -> ..`), and one already walked. A file link is listed like a file even when it
 * dangles or loops: reading it then fails like any unreadable image, and the loader skips it.
 */
function imagesBelow(dir: string, roots: readonly string[]): string[] {
  const byFolder: [string, string[]][] = [];
  const visited = new Set<string>(); // real paths of the folders walked
  const walk = (folder: string, real: string, chain: readonly string[]) => {
    visited.add(real);
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(folder, { withFileTypes: true });
    } catch {
      return; // an unreadable folder holds no readable image
    }
    const files: string[] = [];
    for (const entry of entries) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) {
        walk(full, path.join(real, entry.name), [...chain, path.join(real, entry.name)]);
      } else if (entry.isSymbolicLink() && statOf(full)?.isDirectory()) {
        const target = realPathOf(full);
        if (target === undefined || visited.has(target) || roots.some((root) => within(target, root)) ||
          chain.some((ancestor) => within(ancestor, target))) continue;
        walk(full, target, [...chain, target]);
      } else if (isImage(entry.name)) {
        files.push(entry.name);
      }
    }
    byFolder.push([folder, files.sort()]);
  };
  const real = realPathOf(dir);
  if (real !== undefined) walk(dir, real, [real]);
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
    const realRoot = fs.realpathSync(this.root);
    if (mode === 'none') {
      this.classes = [];
      files.push(...imagesBelow(this.root, [realRoot]));
      labels.push(...files.map(() => -1));
    } else {
      // Class folders, linked ones included, except a link to the dataset itself or above it (e.g. `all -> .`).
      const classFolders = new Map<string, string>();
      for (const e of fs.readdirSync(this.root, { withFileTypes: true })) {
        if (!e.isDirectory() && !(e.isSymbolicLink() && statOf(path.join(this.root, e.name))?.isDirectory())) continue;
        const real = realPathOf(path.join(this.root, e.name));
        if (real !== undefined && !within(realRoot, real)) classFolders.set(e.name, real);
      }
      this.classes = [...classFolders.keys()].sort();
      const roots = [realRoot, ...classFolders.values()];
      if (this.classes.length === 0) {
        throw new Error(`ImageFolder: '${root}' has no class subfolders; for a flat folder of unlabelled images pass { labels: 'none' }`);
      }
      const empty: string[] = [];
      this.classes.forEach((name, label) => {
        const found = imagesBelow(path.join(this.root, name), roots);
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
