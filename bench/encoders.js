'use strict';
// ResNet encoders, simclr vs PyTorch eager in the same run on the same threads: eval forward (no autograd) and the
// whole SimCLR training step (forward of 2B views, NT-Xent, backward, SGD), images/s. Ours and the peer alternate in
// pairs (`pairs`, default 7), each timing a few iterations; the ratio printed is the median of the per-pair ratios with
// their min-max, so a load change on a shared machine hits both sides alike.
//
// Precision rows (bf16 autocast, channels-last) compare our bf16 step with our fp32 step and with PyTorch's bf16
// autocast channels-last step. On a CPU without native bf16 (no avx512_bf16 / amx_bf16 in /proc/cpuinfo) bf16 is
// emulated and runs many times slower than fp32 on both sides: those rows then run one pair at the smallest size
// unless SIMCLR_BENCH_BF16=1.
//
// Usage: npm run bench -- encoders [pairs]      (after dist/ is built; SIMCLR_BENCH_QUICK=1: one small configuration)
const { SimCLRModel, Encoder, Tensor, getNumThreads, manualSeed } = require('../dist');
const { createTrainStep } = require('../dist/ops/train-step');
const { cpuBf16Support } = require('../dist/run/resolve');
const { PeerServer, alternate, medianSeconds, printTable, fmt, loadAverage, ratioText } = require('./common');

// Batches sized so that the default run stays within about ten minutes on 2 CPU cores; 32 px uses the CIFAR stem.
const CONFIGS = [
  { backbone: 'resnet18', size: 32, batch: 64 },
  { backbone: 'resnet18', size: 96, batch: 32 },
  { backbone: 'resnet18', size: 224, batch: 16 },
  { backbone: 'resnet50', size: 32, batch: 32 },
  { backbone: 'resnet50', size: 96, batch: 16 },
  { backbone: 'resnet50', size: 224, batch: 8 },
];
const PRECISION_CONFIGS = [
  { backbone: 'resnet18', size: 96, batch: 32 },
  { backbone: 'resnet50', size: 224, batch: 8 },
];

/** Times `n` runs of one mode of ours: eval forward, or the training step with `precision` and `memoryFormat`. */
async function ourRunner({ backbone, size, batch, stem }, mode, precision, memoryFormat) {
  manualSeed(0);
  if (mode === 'eval') {
    const encoder = await Encoder.create({ backbone, outDim: 0, stem });
    encoder.eval();
    const x = Tensor.randn([batch, 3, size, size]);
    const run = () => encoder.forward(x, { precision, memoryFormat });
    await run();
    return (n) => medianSeconds(run, n);
  }
  const model = await SimCLRModel.create({ backbone, stem });
  const step = createTrainStep(model, { optimizer: 'sgd', momentum: 0.9, weightDecay: 5e-4, temperature: 0.2, precision, memoryFormat });
  const views = Tensor.randn([2 * batch, 3, size, size]);
  const run = () => step.step(views, 0.01);
  await run();
  return (n) => medianSeconds(run, n);
}

async function compare(config, mode, precision, memoryFormat, pairs, threads) {
  const stem = config.size <= 32 ? 'cifar' : 'imagenet';
  const c = { ...config, stem };
  const ours = await ourRunner(c, mode, precision, memoryFormat);
  const peer = new PeerServer('steps.py', { ...c, mode, precision, memoryFormat, threads });
  const { version } = await peer.ready();
  const iterations = mode === 'eval' ? 3 : 2;
  const r = await alternate({ ours, peer: (n) => peer.time(n), pairs, iterations });
  peer.close();
  return { ...r, version };
}

async function main() {
  const pairs = Number(process.argv[3] || 7);
  const quick = process.env.SIMCLR_BENCH_QUICK === '1';
  const threads = getNumThreads();
  console.log(`encoders: ${pairs} alternating pairs per row, threads ${threads}, load before: ${loadAverage()}`);
  const rows = [];
  let version = '';
  for (const config of quick ? CONFIGS.slice(0, 1) : CONFIGS) {
    for (const mode of ['eval', 'train']) {
      const r = await compare(config, mode, 'fp32', 'contiguous', pairs, threads);
      version = r.version;
      const images = mode === 'train' ? 2 * config.batch : config.batch;
      const row = { backbone: config.backbone, px: config.size, batch: config.batch, mode, precision: 'fp32',
        'simclr img/s': fmt(images / r.ours, 1), 'pytorch img/s': fmt(images / r.peer, 1), 'ratio (min-max)': ratioText(r) };
      rows.push(row);
      console.log(`  ${Object.values(row).join('  ')}`);
    }
  }

  const cpu = cpuBf16Support();
  const nativeBf16 = cpu.avx512bf16 || cpu.amxBf16;
  const forced = process.env.SIMCLR_BENCH_BF16 === '1';
  const precisionRows = [];
  const precisionConfigs = quick ? [] : nativeBf16 || forced ? PRECISION_CONFIGS : [{ backbone: 'resnet18', size: 32, batch: 16 }];
  const precisionPairs = nativeBf16 || forced ? pairs : 1;
  if (!nativeBf16 && !forced && !quick) {
    console.log('  this CPU has no native bf16 (no avx512_bf16 or amx_bf16 in /proc/cpuinfo): bf16 rows at resnet18 32 px, 1 pair');
  }
  for (const config of precisionConfigs) {
    const fp32 = await ourRunner({ ...config, stem: config.size <= 32 ? 'cifar' : 'imagenet' }, 'train', 'fp32', 'contiguous');
    const bf16 = await ourRunner({ ...config, stem: config.size <= 32 ? 'cifar' : 'imagenet' }, 'train', 'bf16', 'channelsLast');
    const self = await alternate({ ours: bf16, peer: fp32, pairs: precisionPairs, iterations: 2 });
    const peer = await compare(config, 'train', 'bf16', 'channelsLast', precisionPairs, threads);
    const images = 2 * config.batch;
    const row = { backbone: config.backbone, px: config.size, batch: config.batch, 'simclr bf16 img/s': fmt(images / self.ours, 1),
      'simclr fp32 img/s': fmt(images / self.peer, 1), 'bf16 / our fp32': ratioText(self),
      'pytorch bf16 channels-last img/s': fmt(images / peer.peer, 1), 'bf16 vs pytorch bf16': ratioText(peer) };
    precisionRows.push(row);
    console.log(`  ${Object.values(row).join('  ')}`);
  }

  console.log(`\nencoders: peer torch ${version}, threads ${threads}, load after: ${loadAverage()}; ` +
    'eval = forward without autograd; train = SimCLR step (2B views forward, NT-Xent, backward, SGD)');
  printTable(rows);
  console.log('ratio = PyTorch time / simclr time (> 1: simclr is faster), median of the pairs (min-max)');
  if (precisionRows.length) {
    console.log('\nprecision: training step, simclr bf16 autocast + channels-last');
    printTable(precisionRows);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
