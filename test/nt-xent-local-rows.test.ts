/**
 * NT-Xent in its data-parallel form (local rows x global columns) against the one-process loss on the concatenated
 * batch, gradients included. The trap this guards (lightly #1528): a rank's rows are columns of every other rank's
 * loss, so their gradient is the sum over ranks of each rank's `gradAll` slice; a rank that keeps only its own slice
 * trains on a different gradient than one process with the whole batch.
 */
import { Tensor, ntXent, ntXentLocalRows } from '../src';
import { seededNormal } from './helpers/synthetic-features';
import { testDevice } from './helpers/device';
import { relativeError } from './helpers/numerics';

type Dtype = 'float32' | 'float64';

/** Rank r's embeddings, view-major over its own images (what its encoder produces). */
interface Shard {
  images: number;
  rows: number[][];
}

function shards(imagesPerRank: number[], views: number, d: number, seed: number): Shard[] {
  const normal = seededNormal(seed);
  return imagesPerRank.map((images) => ({
    images,
    rows: Array.from({ length: views * images }, () => Array.from({ length: d }, normal)),
  }));
}

function tensor(rows: number[][], dtype: Dtype): Tensor {
  const flat = rows.flat();
  const data = dtype === 'float64' ? Float64Array.from(flat) : Float32Array.from(flat);
  return Tensor.fromTypedArray(data, [rows.length, rows[0].length]).to(testDevice);
}

function values(t: Tensor): number[] {
  return Array.from(t.toTypedArray() as Float32Array | Float64Array);
}

/**
 * Where row (view v, image i) of each rank sits in the one-process batch: view-major over all images, the ranks' images
 * in rank order (as the gathered batch holds them).
 */
function globalRowOf(all: Shard[], views: number): number[][] {
  const total = all.reduce((n, s) => n + s.images, 0);
  let first = 0;
  return all.map((s) => {
    const map: number[] = [];
    for (let v = 0; v < views; v++) for (let i = 0; i < s.images; i++) map.push(v * total + first + i);
    first += s.images;
    return map;
  });
}

function oneProcessBatch(all: Shard[], views: number): number[][] {
  const where = globalRowOf(all, views);
  const out: number[][] = [];
  all.forEach((s, r) => s.rows.forEach((row, k) => (out[where[r][k]] = row)));
  return out;
}

/**
 * The global loss and the gradient of every rank's rows as a data-parallel step combines them: each rank's loss is
 * weighted by its share of the anchors (R_r / M); a row's gradient is its rank's gradLocal plus its slice of gradAll
 * summed over ranks ('sum'), or of its own rank's gradAll only ('own', the bug). Gradients come back in the
 * one-process row order.
 */
async function dataParallel(all: Shard[], views: number, temperature: number, dtype: Dtype, backward: 'sum' | 'own') {
  const d = all[0].rows[0].length;
  const zAll = tensor(all.flatMap((s) => s.rows), dtype);
  const M = all.reduce((n, s) => n + s.rows.length, 0);
  const offsets = all.map((_, r) => all.slice(0, r).reduce((n, s) => n + s.rows.length, 0));
  const results = await Promise.all(all.map((s, r) => ntXentLocalRows(tensor(s.rows, dtype), zAll, offsets[r], { temperature, views })));
  const weight = all.map((s) => s.rows.length / M);
  const loss = results.reduce((sum, res, r) => sum + weight[r] * res.loss, 0);
  const gradAll = results.map((res) => values(res.gradAll));
  const where = globalRowOf(all, views);
  const grad = new Array<number>(M * d).fill(0);
  all.forEach((s, r) => {
    const local = values(results[r].gradLocal);
    for (let k = 0; k < s.rows.length; k++) {
      for (let c = 0; c < d; c++) {
        const row = offsets[r] + k;
        let g = weight[r] * local[k * d + c];
        if (backward === 'sum') for (let q = 0; q < all.length; q++) g += weight[q] * gradAll[q][row * d + c];
        else g += weight[r] * gradAll[r][row * d + c];
        grad[where[r][k] * d + c] = g;
      }
    }
  });
  return { loss, grad };
}

async function oneProcess(all: Shard[], views: number, temperature: number, dtype: Dtype) {
  const { loss, grad } = await ntXent(tensor(oneProcessBatch(all, views), dtype), { temperature, views });
  return { loss, grad: values(grad) };
}

describe('ntXentLocalRows: the data-parallel NT-Xent', () => {
  it('over 2 ranks equals the one-process loss on the concatenated batch, gradients included (float64)', async () => {
    const all = shards([3, 3], 2, 5, 1);
    const one = await oneProcess(all, 2, 0.5, 'float64');
    const dp = await dataParallel(all, 2, 0.5, 'float64', 'sum');
    expect(Math.abs(dp.loss - one.loss)).toBeLessThan(1e-12);
    expect(relativeError(dp.grad, one.grad)).toBeLessThan(1e-12);
  });

  it('holds for ranks with different image counts (one image on a rank) and 3 views', async () => {
    const all = shards([1, 4, 2], 3, 6, 2);
    const one = await oneProcess(all, 3, 0.2, 'float64');
    const dp = await dataParallel(all, 3, 0.2, 'float64', 'sum');
    expect(Math.abs(dp.loss - one.loss)).toBeLessThan(1e-12);
    expect(relativeError(dp.grad, one.grad)).toBeLessThan(1e-12);
  });

  it('needs the gather backward to sum over ranks: each rank\'s own slice alone gives another gradient', async () => {
    const all = shards([3, 3], 2, 5, 1);
    const one = await oneProcess(all, 2, 0.5, 'float64');
    const own = await dataParallel(all, 2, 0.5, 'float64', 'own');
    expect(Math.abs(own.loss - one.loss)).toBeLessThan(1e-12); // the loss alone cannot see the bug
    expect(relativeError(own.grad, one.grad)).toBeGreaterThan(0.05);
  });

  it('keeps equal to the full form when the local rows run in many tiles (float32, 8192 local rows x 16384 columns)', async () => {
    const all = shards([4096, 4096], 2, 16, 3);
    const one = await oneProcess(all, 2, 0.1, 'float32');
    const dp = await dataParallel(all, 2, 0.1, 'float32', 'sum');
    expect(Math.abs(dp.loss - one.loss) / one.loss).toBeLessThan(1e-5);
    expect(relativeError(dp.grad, one.grad)).toBeLessThan(1e-4);
  });

  it('stays finite and equal where exp(s/τ) overflows float32 (τ = 0.01: the max-shifted path)', async () => {
    const all = shards([3, 2], 2, 4, 4);
    const one = await oneProcess(all, 2, 0.01, 'float32');
    const dp = await dataParallel(all, 2, 0.01, 'float32', 'sum');
    expect(Number.isFinite(dp.loss)).toBe(true);
    expect(Math.abs(dp.loss - one.loss) / one.loss).toBeLessThan(1e-5);
    expect(relativeError(dp.grad, one.grad)).toBeLessThan(1e-4);
  });

  it('rejects arguments that do not place the local rows inside the gathered ones', async () => {
    const z = Tensor.randn([4, 8]);
    const all = Tensor.randn([8, 8]);
    await expect(ntXentLocalRows(z, all, 5, { temperature: 0.5 })).toRejectKind('RangeError', 'offset');
    await expect(ntXentLocalRows(z, Tensor.randn([8, 7]), 0, { temperature: 0.5 })).toRejectKind('RangeError', 'same width');
    await expect(ntXentLocalRows(Tensor.randn([3, 8]), all, 0, { temperature: 0.5 })).toRejectKind('RangeError', 'views');
    await expect(ntXentLocalRows(z, Tensor.randn([2, 8]), 0, { temperature: 0.5 })).toRejectKind('RangeError');
    await expect(ntXentLocalRows(z, all, -1, { temperature: 0.5 })).rejects.toThrow(/offset/);
    await expect(ntXentLocalRows(z, all, 0, { temperature: 0 })).rejects.toThrow(/temperature/);
    await expect(ntXentLocalRows({} as Tensor, all, 0, { temperature: 0.5 })).rejects.toThrow(/zLocal/);
  });
});
