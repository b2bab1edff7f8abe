/** A dataset of image files with labels, decoded on access: what ImageFolder and ManifestDataset both are. */
import { checkIndex, Dataset, Sample } from './dataset';
import { decodeFile } from './decode';

export abstract class FileListDataset implements Dataset {
  /** Image paths, in sample order. */
  abstract readonly files: string[];
  /** labels[i] belongs to files[i] (-1 when unlabelled). */
  abstract readonly labels: Int32Array;
  /** Base size images are resized to when decoded (null: each file's own size). */
  protected abstract readonly size: readonly [number, number] | null;

  get length(): number {
    return this.files.length;
  }

  async get(index: number): Promise<Sample> {
    checkIndex(index, this.length);
    return { ...(await decodeFile(this.files[index], this.size)), label: this.labels[index] };
  }

  source(index: number): string {
    return this.files[index];
  }
}
