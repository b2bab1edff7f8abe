/** A view of some samples of another dataset, in a given order (e.g. a seeded random subset for quick runs). */
import { checkIndex, Dataset, Sample, sourceOf } from './dataset';
import { SeededRandom } from '../random';
import { checkInteger } from '../errors';

export class Subset implements Dataset {
  /** `indices`: the samples of `base` this subset holds, in order (read-only: `indices[i]` is the base index of sample i). */
  constructor(private readonly base: Dataset, readonly indices: Int32Array) {
    for (const i of indices) checkIndex(i, base.length);
  }

  /** `size` samples of `base` drawn without replacement by a seeded shuffle. */
  static random(base: Dataset, size: number, seed: number): Subset {
    checkInteger(size, 'subset size', 1, base.length);
    return new Subset(base, new SeededRandom(seed).permutation(base.length).subarray(0, size));
  }

  get length(): number {
    return this.indices.length;
  }

  get(index: number): Promise<Sample> {
    checkIndex(index, this.indices.length);
    return this.base.get(this.indices[index]);
  }

  source(index: number): string {
    return sourceOf(this.base, this.indices[index]);
  }

  /** The class names of `base` (empty when it has none): a subset keeps its labels. */
  get classes(): readonly string[] {
    return this.base.classes ?? [];
  }
}
