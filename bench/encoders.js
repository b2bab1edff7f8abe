'use strict';
// ResNet encoders: eval forward and train forward+backward throughput (images/s), simclr vs PyTorch eager in the same
// run, on the same threads, alternating per configuration so that load changes on a shared machine hit both sides.
// Usage: npm run bench -- encoders   (after dist/ is built; SIMCLR_BENCH_QUICK=1 for one small configuration)
const { Encoder, Tensor, getNumThreads, manualSeed } = require('../dist');
const { runPeer, timeIt, printTable, fmt } = require('./common');

// Batches sized so that the default run stays within a few minutes on 2 CPU cores; 32 px uses the CIFAR stem.
const CONFIGS = [
  { backbone: 'resnet18', size: 32, batch: 64 },
  { backbone: 'resnet18', size: 96, batch: 32 },
  { backbone: 'resnet18', size: 224, batch: 16 },
  { backbone: 'resnet50', size: 32, batch: 32 },
  { backbone: 'resnet50', size: 96, batch: 16 },
  { backbone: 'resnet50', size: 224, batch: 8 },
];
const REPEATS = 3;

async function measure({ backbone, size, batch }) {
  manualSeed(0);
  const stem = size <= 32 ? 'cifar' : 'imagenet';
  const encoder = await Encoder.create({ backbone, outDim: 0, stem });
  const x = Tensor.randn([batch, 3, size, size]);
  encoder.eval();
  const evalSeconds = await timeIt(() => encoder.forward(x), { repeats: REPEATS });
  encoder.train();
  const grad = Tensor.randn([batch, backbone === 'resnet18' ? 512 : 2048]);
  const trainSeconds = await timeIt(async () => {
    await encoder.forwardBackward(x, grad);
    encoder.zeroGrad();
  }, { repeats: REPEATS });
  return { evalSeconds, trainSeconds, stem };
}

async function main() {
  const configs = process.env.SIMCLR_BENCH_QUICK === '1' ? CONFIGS.slice(0, 1) : CONFIGS;
  const threads = getNumThreads();
  const rows = [];
  let version = '';
  for (const config of configs) {
    const ours = await measure(config);
    const peer = runPeer('encoders.py', { ...config, stem: ours.stem, repeats: REPEATS, threads });
    version = peer.version;
    const ips = (seconds) => config.batch / seconds;
    for (const mode of ['eval', 'train']) {
      const mine = mode === 'eval' ? ours.evalSeconds : ours.trainSeconds;
      const theirs = mode === 'eval' ? peer.evalSeconds : peer.trainSeconds;
      const row = {
        backbone: config.backbone, px: config.size, batch: config.batch, mode,
        'simclr img/s': fmt(ips(mine), 1), 'pytorch img/s': fmt(ips(theirs), 1), ratio: fmt(theirs / mine),
      };
      rows.push(row);
      console.log(`  ${Object.values(row).join('  ')}`); // progress: a loaded machine can make the run long
    }
  }
  console.log(`encoders: median of ${REPEATS} runs after 1 warm-up, threads ${threads}, peer torch ${version}; ` +
    'eval = forward without autograd, train = forward + backward (train-mode BatchNorm)');
  printTable(rows);
  console.log('ratio = PyTorch time / simclr time (> 1: simclr is faster)');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
