/**
 * The seeded generator behind shuffling and augmentation parameters: pure-rand's xoroshiro128+, whose whole state is
 * four 32-bit numbers, so a checkpoint can store it and resume the exact sequence.
 */
import { invalid } from './errors';

interface JumpableGenerator {
  next(): number;
  jump(): void;
  getState(): readonly number[];
}
// pure-rand 8 publishes subpath exports only, which this package's moduleResolution ("node") cannot type: the part we
// use is declared here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const xoroshiro = require('pure-rand/generator/xoroshiro128plus') as {
  xoroshiro128plus(seed: number): JumpableGenerator;
  xoroshiro128plusFromState(state: readonly number[]): JumpableGenerator;
};

/** MurmurHash3's 32-bit finaliser: every input bit affects every output bit. */
function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

function checkKeyPart(part: number, index: number): void {
  if (typeof part !== 'number' || !Number.isInteger(part) || part < 0 || part > Number.MAX_SAFE_INTEGER) {
    throw invalid('a non-negative safe integer', `key[${index}]`, part, typeof part === 'number' ? 'range' : 'type');
  }
}

export class SeededRandom {
  private generator: JumpableGenerator;

  /** `seed`: any integer in [0, 2^32), or a state from `getState()`. */
  constructor(seed: number | readonly number[]) {
    if (Array.isArray(seed)) {
      if (seed.length !== 4 || !seed.every((v) => Number.isInteger(v))) throw invalid('a state of 4 integers', 'state', seed, 'range');
      this.generator = xoroshiro.xoroshiro128plusFromState(seed);
    } else {
      if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
        throw invalid('an integer between 0 and 4294967295', 'seed', seed, typeof seed === 'number' ? 'range' : 'type');
      }
      this.generator = xoroshiro.xoroshiro128plus(seed | 0);
    }
  }

  /** A generator for stream `k` of this seed (k jumps of 2^64 steps), independent of the others. */
  static stream(seed: number, k: number): SeededRandom {
    const random = new SeededRandom(seed);
    for (let i = 0; i < k; i++) random.generator.jump();
    return random;
  }

  /**
   * A generator for a tuple of integers, e.g. (seed, rank, epoch, batch): the tuple is hashed into the whole 128-bit
   * state, so tuples that differ in one place give unrelated sequences. No state to save: the tuple recreates it.
   */
  static forKey(...parts: number[]): SeededRandom {
    parts.forEach((p, i) => checkKeyPart(p, i));
    const state = [0, 1, 2, 3].map((word) => {
      let h = mix32(0x9e3779b9 + word);
      for (const part of parts) {
        h = mix32(h ^ (part >>> 0));
        h = mix32(h ^ Math.floor(part / 2 ** 32));
      }
      return h | 0;
    });
    if (!state.some((v) => v !== 0)) state[0] = 1; // the one state xoroshiro cannot leave
    return new SeededRandom(state);
  }

  /** Uniform in [0, 1), 53 random bits. */
  next(): number {
    const high = (this.generator.next() >>> 0) >>> 5; // 27 bits
    const low = (this.generator.next() >>> 0) >>> 6; // 26 bits
    return (high * 2 ** 26 + low) / 2 ** 53;
  }

  /** Uniform in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.min(n - 1, Math.floor(this.next() * n));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Fisher–Yates shuffle of 0..n-1. */
  permutation(n: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = out[i];
      out[i] = out[j];
      out[j] = t;
    }
    return out;
  }

  /** The generator state (4 integers), for `new SeededRandom(state)`. */
  getState(): number[] {
    return [...this.generator.getState()];
  }
}
