'use strict';
// Data-parallel training on c10d (Gloo on 127.0.0.1) against one process, on this machine's cores: the same global
// batch as 1 worker with 2 intra-op threads and as 2 workers with 1 thread each (the same cores, split), alternated in
// pairs; then what one step sends, measured by the process group's counters (payload bytes of each kind of
// collective), and the communication volume that implies for ResNet-50 at batch 256 per GPU on 8 x 8 GPUs.
// Usage: npm run bench -- distributed [pairs] [steps]
const { spawn } = require('child_process');
const path = require('path');
const { printTable, fmt, median, loadAverage } = require('./common');

const DIST = path.join(__dirname, '..', 'dist');
const WARMUP = 2;

/** One worker (run as `node bench/distributed.js --worker '<json>'`): times `steps` steps, prints one JSON line. */
async function worker(o) {
  const { SimCLRModel, Tensor, manualSeed, setNumThreads, createTrainStep, ProcessGroup } = require(DIST);
  setNumThreads(o.threads);
  manualSeed(o.rank);
  const model = await SimCLRModel.create({ backbone: o.backbone, stem: 'imagenet' });
  const group = o.worldSize > 1
    ? await ProcessGroup.init({ rank: o.rank, worldSize: o.worldSize, masterAddr: '127.0.0.1', masterPort: o.port, timeoutMs: 120_000 })
    : undefined;
  const step = createTrainStep(model, {
    optimizer: 'sgd', momentum: 0.9, weightDecay: 5e-4, temperature: 0.2, precision: 'fp32', memoryFormat: 'contiguous',
    ...(group ? { dataParallel: { group, globalBatchNorm: o.globalBatchNorm } } : {}),
  });
  const views = Tensor.randn([2 * o.batch, 3, o.size, o.size]);
  const seconds = [];
  let before;
  for (let i = 0; i < WARMUP + o.steps; i++) {
    if (i === WARMUP) before = group?.counters();
    const started = process.hrtime.bigint();
    await step.step(views, 0.01);
    if (i >= WARMUP) seconds.push(Number(process.hrtime.bigint() - started) / 1e9);
  }
  const after = group?.counters();
  const perStep = after && Object.fromEntries(Object.keys(after).map((k) => [k, (after[k] - before[k]) / o.steps]));
  const parameters = model.parameterCount();
  process.stdout.write(`${JSON.stringify({ rank: o.rank, seconds: median(seconds), perStep, parameters })}\n`);
  process.exit(0);
}

/** Runs `worldSize` workers of one configuration; resolves with their JSON lines, rank 0 first. */
function runWorkers(options) {
  const { freePort } = require(path.join(DIST, 'run', 'launch'));
  return freePort().then((port) => Promise.all(Array.from({ length: options.worldSize }, (_, rank) => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, '--worker', JSON.stringify({ ...options, rank, port })], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.once('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop())) : reject(new Error(`worker ${rank} exited with ${code}`))));
  }))));
}

const MiB = 2 ** 20;

/** Bytes one rank sends in a ring all-reduce of `payload` bytes over `world` ranks. */
const ringAllReduce = (payload, world) => (2 * (world - 1) / world) * payload;

async function main() {
  const pairs = Number(process.argv[3] || 5);
  const steps = Number(process.argv[4] || 8);
  const cores = 2;
  const globalBatch = 128;
  const size = 32;
  console.log(`distributed: resnet18 (ImageNet stem), ${size} px, global batch ${globalBatch}, fp32, ${pairs} pairs of ${steps} steps; ` +
    `1 worker x ${cores} threads vs ${cores} workers x 1 thread (Gloo, 127.0.0.1); load before: ${loadAverage()}`);
  const one = [];
  const two = [];
  let counters;
  for (let i = 0; i < pairs; i++) {
    const [single] = await runWorkers({ worldSize: 1, threads: cores, batch: globalBatch, size, steps, backbone: 'resnet18' });
    const ranks = await runWorkers({ worldSize: 2, threads: 1, batch: globalBatch / 2, size, steps, backbone: 'resnet18', globalBatchNorm: true });
    one.push(globalBatch / single.seconds);
    two.push(globalBatch / Math.max(...ranks.map((r) => r.seconds)));
    counters = ranks[0].perStep;
    console.log(`  pair ${i + 1}: 1 x ${cores} threads ${fmt(one[i], 1)} img/s, ${cores} x 1 thread ${fmt(two[i], 1)} img/s`);
  }
  const ratios = two.map((t, i) => t / one[i]);
  printTable([
    { setup: `1 worker, ${cores} threads, batch ${globalBatch}`, 'img/s (median)': fmt(median(one), 1), 'ratio (min-max)': '1' },
    { setup: `${cores} workers, 1 thread each, batch ${globalBatch / 2} each`, 'img/s (median)': fmt(median(two), 1),
      'ratio (min-max)': `${fmt(median(ratios))}x (${fmt(Math.min(...ratios))}-${fmt(Math.max(...ratios))})` },
  ]);
  console.log(`per step and rank, resnet18 here: all-reduce ${fmt(counters.allReduceBytes / MiB)} MiB in ${counters.allReduceCalls} calls, ` +
    `all-gather ${fmt(counters.allGatherBytes / 1024)} KiB in ${counters.allGatherCalls} calls, broadcast ${fmt(counters.broadcastBytes / 1024)} KiB; load after: ${loadAverage()}`);

  // ResNet-50: the payloads of one step measured on 2 ranks (they do not depend on the image size; the embeddings'
  // grow with the batch), with and without global BatchNorm to tell gradients from BatchNorm statistics.
  const r50 = { worldSize: 2, threads: 1, batch: 4, size: 32, steps: 2, backbone: 'resnet50' };
  const [withBn] = await runWorkers({ ...r50, globalBatchNorm: true });
  const [withoutBn] = await runWorkers({ ...r50, globalBatchNorm: false });
  const gradients = withoutBn.perStep.allReduceBytes - 2 * 2 * r50.batch * 128 * 4; // less the gather backward's all-reduce
  // Global BatchNorm all-gathers each rank's statistics in forward and all-reduces their gradients in backward.
  const bnForward = withBn.perStep.allGatherBytes - withoutBn.perStep.allGatherBytes;
  const bnBackward = withBn.perStep.allReduceBytes - withoutBn.perStep.allReduceBytes;
  const world = 64;
  const batch = 256;
  const rows = 2 * batch; // two views
  const embedding = rows * 128 * 4;
  const sent = {
    gradients: ringAllReduce(gradients, world),
    'global BatchNorm statistics (forward all-gather)': (world - 1) * bnForward,
    'global BatchNorm gradients (backward all-reduce)': ringAllReduce(bnBackward, world),
    'embeddings all-gather (forward)': (world - 1) * embedding,
    'embeddings gradient all-reduce (backward)': ringAllReduce(world * embedding, world),
  };
  console.log(`\nResNet-50 + head: ${(withBn.parameters / 1e6).toFixed(2)} M parameters; measured per step on 2 ranks: gradients ` +
    `${fmt(gradients / MiB, 1)} MiB, global BatchNorm ${fmt(bnForward / 1024, 1)} KiB forward, ${fmt(bnBackward / 1024, 1)} KiB backward`);
  console.log(`communication per step and GPU for ResNet-50, batch ${batch} per GPU, 8 x 8 = ${world} GPUs (ring algorithms, fp32):`);
  printTable([
    ...Object.entries(sent).map(([what, bytes]) => ({ traffic: what, 'MiB sent per GPU': fmt(bytes / MiB, 1) })),
    { traffic: 'total', 'MiB sent per GPU': fmt(Object.values(sent).reduce((a, b) => a + b, 0) / MiB, 1) },
  ]);
}

if (process.argv[2] === '--worker') {
  worker(JSON.parse(process.argv[3])).catch((err) => {
    process.stderr.write(`${err.stack || err}\n`);
    process.exit(1);
  });
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
