/**
 * The distributed sampler: each rank of a data-parallel run gets a disjoint shard of every epoch's shuffled order, as
 * PyTorch's DistributedSampler does. The order of epoch e depends only on (seed, e), the same on every rank; it is
 * padded with its own first indices (or its tail dropped) to a multiple of the world size, so that every rank has the
 * same number of samples, and so of steps: a rank that ran one step fewer would leave the others waiting.
 */
import { checkInteger, invalid } from '../errors';
import { SeededRandom } from '../random';

export interface DistributedSamplerOptions {
  rank: number;
  worldSize: number;
  /** Seed of the shuffle (default 0); the order of epoch e is SeededRandom.stream(seed, e), as the Loader's. */
  seed?: number;
  /** Shuffle each epoch (default true); false: 0, 1, 2, … */
  shuffle?: boolean;
  /** Drop the tail that does not divide evenly (default false: pad with the order's first indices instead). */
  dropLast?: boolean;
}

export class DistributedSampler {
  readonly datasetLength: number;
  readonly rank: number;
  readonly worldSize: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;

  constructor(datasetLength: number, options: DistributedSamplerOptions) {
    if (typeof options !== 'object' || options === null) throw invalid('an options object { rank, worldSize }', 'options', options);
    this.datasetLength = checkInteger(datasetLength, 'datasetLength', 1);
    this.worldSize = checkInteger(options.worldSize, 'worldSize', 1);
    this.rank = checkInteger(options.rank, 'rank', 0, this.worldSize - 1);
    this.seed = checkInteger(options.seed ?? 0, 'seed', 0, 2 ** 32 - 1);
    this.shuffle = options.shuffle ?? true;
    this.dropLast = options.dropLast ?? false;
    if (typeof this.shuffle !== 'boolean') throw invalid('a boolean', 'shuffle', this.shuffle);
    if (typeof this.dropLast !== 'boolean') throw invalid('a boolean', 'dropLast', this.dropLast);
    if (this.length === 0) {
      throw new RangeError(`DistributedSampler: dropLast leaves no sample of the ${datasetLength} for each of ${this.worldSize} ranks`);
    }
  }

  /** Samples per rank and epoch. */
  get length(): number {
    return this.dropLast ? Math.floor(this.datasetLength / this.worldSize) : Math.ceil(this.datasetLength / this.worldSize);
  }

  /** This rank's dataset indices for epoch `epoch`: positions rank, rank + W, rank + 2W, … of the padded order. */
  indices(epoch: number): Int32Array {
    checkInteger(epoch, 'epoch', 0, 2 ** 31 - 1);
    const n = this.datasetLength;
    const order = this.shuffle ? SeededRandom.stream(this.seed, epoch).permutation(n) : Int32Array.from({ length: n }, (_, i) => i);
    const out = new Int32Array(this.length);
    for (let k = 0; k < out.length; k++) out[k] = order[(this.rank + k * this.worldSize) % n];
    return out;
  }
}
