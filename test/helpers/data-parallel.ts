/**
 * The data-parallel equivalence runs of test/data-parallel.test.ts and test/distributed.test.ts: `worldSize` workers
 * of helpers/data-parallel-worker.js (the built package, dist/) training a CIFAR-stem ResNet-18, and the distance
 * between two runs' parameters.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { freePort } from '../../src/run/launch';

const WORKER = path.join(__dirname, 'data-parallel-worker.js');

export interface WorkerResult {
  losses: number[];
  params: Float64Array;
}

export interface TrainOptions {
  globalBatchNorm?: boolean;
  gatherBackward?: 'sum' | 'own';
  reverse?: boolean;
  smallViews?: number;
  smallSize?: number;
  float64?: boolean;
  /** Image size of the (large) views; 32 unless given. */
  size?: number;
}

function exitOf(child: ChildProcess): Promise<number | null> {
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(code) : reject(new Error(`worker exited with ${code}: ${stderr}`))));
  });
}

/**
 * 3 SGD steps of a CIFAR-stem ResNet-18 on 2 x 8 images of 32 px (unless `size` says otherwise), as `worldSize`
 * workers (1: the one-process reference on all 16 images), in a new folder from `folder`. Every rank starts from
 * another random init: the broadcast from rank 0 must unify them. Each worker runs on 1 thread.
 */
export async function train(folder: () => string, worldSize: 1 | 2, options: TrainOptions = {}): Promise<WorkerResult> {
  const dir = folder();
  const port = await freePort();
  const base = { worldSize, port, imagesPerRank: [8, 8], size: 32, views: 2, seed: 3, steps: 3, lrs: [0.01, 0.02, 0.005], globalBatchNorm: true, gatherBackward: 'sum', ...options };
  const ranks = Array.from({ length: worldSize }, (_, rank) => rank);
  await Promise.all(ranks.map((rank) => exitOf(spawn(process.execPath, [WORKER, JSON.stringify({ ...base, rank, out: path.join(dir, `rank${rank}`) })],
    { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 }))));
  const read = (rank: number) => ({
    losses: JSON.parse(fs.readFileSync(path.join(dir, `rank${rank}.json`), 'utf8')).losses as number[],
    params: new Float64Array(new Uint8Array(fs.readFileSync(path.join(dir, `rank${rank}.bin`))).buffer),
  });
  const results = ranks.map(read);
  // Every rank reports the same (global) losses and ends with the same model (with per-rank BatchNorm the running
  // statistics are each rank's own after the last step).
  for (const r of results.slice(1)) {
    expect(r.losses).toEqual(results[0].losses);
    if (options.globalBatchNorm !== false) expect(distance(r.params, results[0].params).maxAbs).toBe(0);
  }
  return results[0];
}

/**
 * Two one-process runs at once: each is one single-threaded process, so the pair keeps 2 cores busy as one 2-worker
 * run does, in the time of one.
 */
export function trainTwoReferences(folder: () => string, a: TrainOptions, b: TrainOptions): Promise<[WorkerResult, WorkerResult]> {
  return Promise.all([train(folder, 1, a), train(folder, 1, b)]);
}

/** Math's functions, looked up once: a global lookup in jest's sandbox is ~100x slower than in node, per element here. */
const { abs, max, sqrt } = Math;

/** ‖a − b‖ / ‖b‖ over all parameters and buffers (11M numbers), and the largest absolute difference. */
export function distance(a: Float64Array, b: Float64Array): { relative: number; maxAbs: number } {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let norm = 0;
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    diff += d * d;
    norm += b[i] * b[i];
    maxAbs = max(maxAbs, abs(d));
  }
  return { relative: sqrt(diff / norm), maxAbs };
}
