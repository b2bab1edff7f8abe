/** The dataset interface every source implements (users can write their own), and the error for a bad sample. */
import { invalid } from '../errors';

/** One decoded image: RGB uint8, row-major `height x width x 3` (HWC), with its label (-1 when unlabelled). */
export interface Sample {
  image: Uint8Array;
  width: number;
  height: number;
  label: number;
}

/**
 * A random-access collection of images. `get(i)` decodes sample i for 0 <= i < length; it rejects with a
 * {@link SampleError} when that one sample cannot be read (the Loader's `badFiles` policy then skips or throws), and
 * with any other error for a failure that should stop training. All samples of a dataset must have the same size for
 * the Loader to batch them (the built-in datasets resize to one base size).
 */
export interface Dataset {
  readonly length: number;
  get(index: number): Promise<Sample>;
  /** Where sample `index` comes from (a file path), for messages and for the rows of an embeddings export. */
  source?(index: number): string;
  /** Class names, where the labels stand for named classes: label i is `classes[i]`. Absent or empty otherwise. */
  readonly classes?: readonly string[];
}

/** Where sample `index` of `dataset` comes from: its own `source`, else `sample <index>`. */
export function sourceOf(dataset: Dataset, index: number): string {
  return dataset.source?.(index) ?? `sample ${index}`;
}

/** One sample could not be read: a missing, corrupt, truncated or unsupported file (defined with the decoding). */
export { SampleError } from '../preprocess/decode';

/** Base size of decoded images: a square side, [height, width], or null to keep each image's own size. */
export type BaseSize = number | readonly [number, number] | null;

/**
 * The side images are resized to when decoded unless a dataset is told otherwise: the recipe's size (32 px, the size
 * of its views; RUN_SETTINGS.baseSize takes its default from here).
 */
export const DEFAULT_BASE_SIZE = 32;

/** Throws unless `index` is an integer in [0, length). */
export function checkIndex(index: number, length: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= length) {
    throw invalid(`an integer index between 0 and ${length - 1}`, 'index', index, typeof index === 'number' ? 'range' : 'type');
  }
}
