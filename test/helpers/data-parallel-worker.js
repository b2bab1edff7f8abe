'use strict';
// One worker of the data-parallel equivalence tests (test/data-parallel.test.ts and test/distributed.test.ts, through
// test/helpers/data-parallel.ts), run as `node data-parallel-worker.js '<json>'` on the built package (dist/). With
// worldSize 1 it is the one-process reference: the same steps on the images of every rank at once. Each step's batch
// is drawn in JS from a fixed seed, image-major over the global batch: rank r takes images [first_r, first_r + B_r)
// of every view, so 2 ranks x B see exactly the 1 x 2B batch.
// With `reverse` the images of the batch come in reverse order (the float32 rounding yardstick); with `smallViews`
// each step has multi-crop's second group of views.
// With `float64` the model, the views and the whole step are float64 (exact enough to compare without a yardstick).
// Writes <out>.json (losses) and <out>.bin (every float parameter and buffer, in sorted key order, as float64).
const fs = require('fs');
const path = require('path');
const { SimCLRModel, Tensor, manualSeed, setNumThreads, createTrainStep, ProcessGroup } = require(path.join(__dirname, '..', '..', 'dist'));

const cfg = JSON.parse(process.argv[2]);
const { rank, worldSize, imagesPerRank, steps, size, views, out } = cfg;

/** mulberry32 + Box-Muller, as test/helpers/synthetic-features.ts. */
function normals(seed, count) {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return data;
}

/**
 * The views this worker trains on at `step` in one group: V x B x 3 x S x S, view-major, its images of the global
 * batch (`salt` draws another group from the same step).
 */
function viewGroup(step, views, size, salt) {
  const total = imagesPerRank.reduce((a, b) => a + b, 0);
  const image = 3 * size * size;
  const all = normals(1000 + step + salt, views * total * image);
  const first = worldSize === 1 ? 0 : imagesPerRank.slice(0, rank).reduce((a, b) => a + b, 0);
  const mine = worldSize === 1 ? total : imagesPerRank[rank];
  const data = new (cfg.float64 ? Float64Array : Float32Array)(views * mine * image);
  for (let v = 0; v < views; v++) data.set(all.subarray((v * total + first) * image, (v * total + first + mine) * image), v * mine * image);
  if (cfg.reverse) {
    // The same batch with its images in reverse order: the same loss and gradients, rounded otherwise.
    const copy = data.slice();
    for (let v = 0; v < views; v++) {
      for (let i = 0; i < mine; i++) data.set(copy.subarray((v * mine + mine - 1 - i) * image, (v * mine + mine - i) * image), (v * mine + i) * image);
    }
  }
  return Tensor.fromTypedArray(data, [views * mine, 3, size, size]);
}

/** The step's views: `views` of `size` px, and with `smallViews` multi-crop's second group of `smallSize` px. */
function batch(step) {
  return cfg.smallViews ? [viewGroup(step, views, size, 0), viewGroup(step, cfg.smallViews, cfg.smallSize, 500)] : viewGroup(step, views, size, 0);
}

(async () => {
  setNumThreads(cfg.threads ?? 1);
  // A different seed on every rank: the broadcast from rank 0 must make them one model.
  manualSeed(cfg.seed + rank);
  const model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar', head: { batchNorm: false } });
  if (cfg.float64) model.to('cpu', { dtype: 'float64' });
  const group = worldSize > 1
    ? await ProcessGroup.init({ rank, worldSize, masterAddr: '127.0.0.1', masterPort: cfg.port, timeoutMs: cfg.timeoutMs ?? 60_000 })
    : undefined;
  const trainStep = createTrainStep(model, {
    optimizer: 'sgd', momentum: 0.9, weightDecay: 1e-4, temperature: 0.2, views: views + (cfg.smallViews ?? 0), precision: 'fp32', memoryFormat: 'contiguous',
    ...(group ? { dataParallel: { group, globalBatchNorm: cfg.globalBatchNorm, gatherBackward: cfg.gatherBackward } } : {}),
  });
  const losses = [];
  const localLosses = [];
  const seconds = [];
  for (let step = 0; step < steps; step++) {
    const input = batch(step);
    const started = process.hrtime.bigint();
    const result = await trainStep.step(input, cfg.lrs[step]);
    seconds.push(Number(process.hrtime.bigint() - started) / 1e9);
    losses.push(result.loss);
    localLosses.push(result.localLoss);
    for (const t of Array.isArray(input) ? input : [input]) t.dispose();
  }
  const state = await model.stateDict();
  const parts = [];
  const keys = [];
  for (const key of Object.keys(state).sort()) {
    const values = state[key].toTypedArray();
    if (values instanceof Float32Array || values instanceof Float64Array) {
      parts.push(Float64Array.from(values));
      keys.push([key, values.length]);
    }
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const flat = new Float64Array(total);
  let offset = 0;
  for (const p of parts) {
    flat.set(p, offset);
    offset += p.length;
  }
  fs.writeFileSync(`${out}.bin`, Buffer.from(flat.buffer));
  fs.writeFileSync(`${out}.json`, JSON.stringify({ rank, losses, localLosses, seconds, keys, counters: group ? group.counters() : undefined }));
  process.exit(0);
})().catch((err) => {
  process.stderr.write(`rank ${rank}: ${err.stack || err}\n`);
  process.exit(1);
});
