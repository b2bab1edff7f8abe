/**
 * Batches of decoded images: a seeded shuffle per epoch, a bounded prefetch queue so decoding overlaps the training
 * step, a cap on decodes in flight, and a policy for bad files.
 */
import * as os from 'os';
import { Tensor } from '../tensor';
import { stackImages } from '../augment/image-batch';
import { checkInteger, checkOneOf, invalid } from '../errors';
import { Dataset, Sample, SampleError, sourceOf } from './dataset';
import { SeededRandom } from '../random';

export interface LoaderOptions {
  /** Images per batch. */
  batchSize: number;
  /** Shuffle the order each epoch (default true); the order of epoch e depends only on (seed, e). */
  shuffle?: boolean;
  /** Seed of the shuffle (default 0). */
  seed?: number;
  /** Drop the last batch when it is short (default false: a short last batch is yielded). */
  dropLast?: boolean;
  /** Batches decoded ahead of the one being consumed (default 2). */
  prefetch?: number;
  /** Images decoded at the same time (default: 4 per core, at least 16: enough to keep the libuv pool busy). */
  concurrency?: number;
  /**
   * What a missing, corrupt, truncated or unsupported file does: 'skip' (default) leaves it out of its batch (which is
   * then shorter), counts it and reports it when the epoch ends; 'error' rejects naming the file.
   */
  badFiles?: 'skip' | 'error';
  /**
   * Called with each sample left out under badFiles 'skip' (its dataset index and why), as its read fails: in no set
   * order. The epoch report counts them and keeps only the first few; this sees every one (extractFeatures lists them).
   */
  onSkip?: (index: number, error: SampleError) => void;
  /**
   * Called when an epoch ends; the default warns (through `warn`) when files were skipped, once for each set of skipped
   * files: a later epoch that skips the same files says nothing.
   */
  onEpochEnd?: (report: EpochReport) => void;
  /** Where the default `onEpochEnd` writes (default console.warn); a progress line routes it above itself. */
  warn?: (message: string) => void;
}

/** One batch. */
export interface Batch {
  /** uint8 RGB, `B x H x W x 3` (HWC, as decoded), on the CPU: the input of `Augmenter.views`. */
  images: Tensor;
  /** labels[i] belongs to images[i] (-1 when unlabelled). */
  labels: Int32Array;
  /** Dataset indices of the images. */
  indices: Int32Array;
  epoch: number;
  /** Position of the batch in its epoch. */
  step: number;
}

export interface EpochReport {
  epoch: number;
  batches: number;
  samples: number;
  /** Samples left out under badFiles 'skip'. */
  skipped: number;
  /** The first few skipped files (in epoch order), with the reason. */
  skippedExamples: string[];
}

const EXAMPLES_KEPT = 5;

// Caps the number of tasks running at once; a finished task hands its slot straight to the next waiting one.
class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly max: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active < this.max) this.active++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/** The default epoch-end report: the skipped files, said once for each set of them (every epoch reads the same files). */
function skipWarner(loader: { warn: (message: string) => void }): (report: EpochReport) => void {
  let said = '';
  return (report) => {
    if (report.skipped === 0) return;
    const which = `${report.skipped}\n${report.skippedExamples.join('\n')}`;
    if (which === said) return;
    said = which;
    loader.warn(`simclr: skipped ${report.skipped} unreadable image(s)${report.epoch > 0 ? ` in epoch ${report.epoch + 1}` : ''}, e.g.:\n  ` +
      `${report.skippedExamples.join('\n  ')}${report.epoch === 0 ? '\n  (later epochs that skip the same files say nothing)' : ''}`);
  };
}

export class Loader implements AsyncIterable<Batch> {
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly prefetch: number;
  readonly concurrency: number;
  readonly badFiles: 'skip' | 'error';
  /** The report of the last epoch that ran to its end. */
  lastReport: EpochReport | undefined;
  private nextEpoch = 0;
  private readonly onEpochEnd: (report: EpochReport) => void;
  private readonly onSkip: ((index: number, error: SampleError) => void) | undefined;
  /** Where the default epoch-end report writes (LoaderOptions.warn); the Trainer points it at its progress line. */
  warn: (message: string) => void;

  constructor(dataset: Dataset, options: LoaderOptions) {
    if (!dataset || typeof dataset.get !== 'function' || !Number.isInteger(dataset.length)) {
      throw invalid('a Dataset (length and get(index))', 'dataset', dataset);
    }
    if (dataset.length <= 0) throw new RangeError('Loader: the dataset is empty');
    if (typeof options !== 'object' || options === null) throw invalid('an options object with batchSize', 'options', options);
    this.dataset = dataset;
    this.batchSize = checkInteger(options.batchSize, 'batchSize', 1);
    this.shuffle = options.shuffle ?? true;
    this.seed = checkInteger(options.seed ?? 0, 'seed', 0, 2 ** 32 - 1);
    this.dropLast = options.dropLast ?? false;
    this.prefetch = checkInteger(options.prefetch ?? 2, 'prefetch', 0, 1024);
    this.concurrency = checkInteger(options.concurrency ?? Math.max(16, 4 * os.availableParallelism()), 'concurrency', 1, 4096);
    this.badFiles = checkOneOf(options.badFiles ?? 'skip', 'badFiles', ['skip', 'error'] as const);
    this.warn = options.warn ?? ((message) => console.warn(message));
    this.onEpochEnd = options.onEpochEnd ?? skipWarner(this);
    if (options.onSkip !== undefined && typeof options.onSkip !== 'function') throw invalid('a function', 'onSkip', options.onSkip);
    this.onSkip = options.onSkip;
    if (this.length === 0) {
      throw new RangeError(`Loader: dropLast with batchSize ${this.batchSize} leaves no batch of the ${dataset.length} samples`);
    }
  }

  /** Batches per epoch (before any skipped files). */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The sample order of epoch `epoch`. */
  order(epoch: number): Int32Array {
    checkInteger(epoch, 'epoch', 0, 2 ** 31 - 1);
    if (!this.shuffle) return Int32Array.from({ length: this.dataset.length }, (_, i) => i);
    return SeededRandom.stream(this.seed, epoch).permutation(this.dataset.length);
  }

  /** The epoch that plain `for await (const batch of loader)` runs next (it then advances by one). */
  setEpoch(epoch: number): void {
    this.nextEpoch = checkInteger(epoch, 'epoch', 0, 2 ** 31 - 1);
  }

  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    return this.epoch(this.nextEpoch++);
  }

  /**
   * The batches of epoch `epoch`, decoded `prefetch` batches ahead, from batch `startBatch` on (a run resumed
   * mid-epoch continues where it stopped, with the same order).
   */
  async *epoch(epoch: number, startBatch = 0): AsyncGenerator<Batch> {
    checkInteger(startBatch, 'startBatch', 0, this.length);
    const order = this.order(epoch);
    const limiter = new Limiter(this.concurrency);
    const report: EpochReport = { epoch, batches: 0, samples: 0, skipped: 0, skippedExamples: [] };
    const pending: Promise<Batch | null>[] = [];
    const state = { stopped: false };
    const skippedFirst: [number, string][] = []; // (position in the epoch, message)
    let started = startBatch;
    try {
      while (started < this.length || pending.length > 0) {
        while (started < this.length && pending.length <= this.prefetch) {
          const batch = this.assemble(order, epoch, started++, limiter, report, state, skippedFirst);
          batch.catch(() => undefined); // awaited below in order; this only silences early rejections
          pending.push(batch);
        }
        const batch = await pending.shift()!;
        if (batch) {
          report.batches++;
          report.samples += batch.labels.length;
          yield batch;
        }
      }
    } finally {
      state.stopped = true;
    }
    if (report.samples === 0 && startBatch < this.length) throw new Error(`Loader: no image of epoch ${epoch + 1} could be read (${report.skippedExamples[0] ?? ''})`);
    this.lastReport = report;
    this.onEpochEnd(report);
  }

  private async assemble(order: Int32Array, epoch: number, step: number, limiter: Limiter, report: EpochReport,
    state: { stopped: boolean }, skippedFirst: [number, string][]): Promise<Batch | null> {
    const indices = order.subarray(step * this.batchSize, Math.min(order.length, (step + 1) * this.batchSize));
    const samples = await Promise.all(Array.from(indices, (index, i) => limiter.run(async () => {
      if (state.stopped) return null;
      try {
        return { index, sample: await this.dataset.get(index) };
      } catch (err) {
        if (this.badFiles === 'skip' && err instanceof SampleError) {
          report.skipped++;
          skippedFirst.push([step * this.batchSize + i, err.message]);
          // Reads finish out of order: keep the first few in epoch order, so reports repeat from run to run.
          skippedFirst.sort((a, b) => a[0] - b[0]).splice(EXAMPLES_KEPT);
          report.skippedExamples = skippedFirst.map(([, message]) => message);
          this.onSkip?.(index, err);
          return null;
        }
        throw err;
      }
    })));
    const good = samples.filter((s): s is { index: number; sample: Sample } => s !== null);
    if (good.length === 0) return null;
    const { width, height } = good[0].sample;
    const pixels = width * height * 3;
    for (const { index, sample } of good) {
      if (sample.width !== width || sample.height !== height || sample.image.length !== pixels) {
        const where = sourceOf(this.dataset, index);
        throw new Error(`Loader: ${where} is ${sample.width} x ${sample.height} (${sample.image.length} bytes) but the batch is ` +
          `${width} x ${height} RGB: give the dataset one base size`);
      }
    }
    return {
      // Each decoded image is copied once, into the batch tensor.
      images: stackImages(good.map(({ sample }) => sample.image), height, width),
      labels: Int32Array.from(good, (s) => s.sample.label),
      indices: Int32Array.from(good, (s) => s.index),
      epoch,
      step,
    };
  }
}
