/** Seeded synthetic classification data for the evaluation tests: Gaussian clusters around per-class centres. */
import { Tensor } from '../../src';

/** A small deterministic generator (mulberry32) with Box-Muller normals, so tests need no LibTorch RNG. */
export function seededNormal(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

export interface ClusterData {
  features: Tensor;
  labels: Tensor;
  data: Float32Array;
  labelData: BigInt64Array;
}

/** `rows` points in `dims` dimensions, class i % classes, centred on a random unit-scale centre per class plus noise. */
export function clusters(rows: number, dims: number, classes: number, noise: number, seed: number, centreSeed = 1): ClusterData {
  const centreNormal = seededNormal(centreSeed);
  const centres = Array.from({ length: classes }, () => Array.from({ length: dims }, () => centreNormal()));
  const normal = seededNormal(seed);
  const data = new Float32Array(rows * dims);
  const labelData = new BigInt64Array(rows);
  for (let r = 0; r < rows; r++) {
    const label = r % classes;
    labelData[r] = BigInt(label);
    for (let d = 0; d < dims; d++) data[r * dims + d] = centres[label][d] + noise * normal();
  }
  return { features: Tensor.fromTypedArray(data, [rows, dims]), labels: Tensor.fromTypedArray(labelData, [rows]), data, labelData };
}
