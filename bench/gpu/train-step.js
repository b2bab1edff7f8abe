'use strict';
// The SimCLR training step on the GPU against PyTorch eager with the same settings (issue 13 target: >= 1.0x): ResNet-50,
// 224 px, batch 256 (512 views), bf16 autocast, channels-last, cuDNN benchmark mode, SGD with momentum, NT-Xent in
// float32; images/s and peak CUDA memory (tensors) of each side. The peer reads the loss every step (loss.item(), a host
// synchronisation, as PyTorch loops do); ours queues step k+1 before it reads step k's loss (the Trainer's overlapSteps,
// its default on CUDA), and is also timed reading every loss at once ("sync"). Ours and the peer alternate in pairs;
// the ratio is the median of the pairs.
const { SimCLRModel, Tensor, manualSeed, cuda } = require('../../dist');
const { createTrainStep } = require('../../dist/ops/train-step');
const { DRY, DEVICE, ON_CUDA, record, resetPeak, peakBytes, median, seconds, Peer } = require('./lib');

const CONFIG = DRY
  ? { backbone: 'resnet18', size: 32, batch: 4, precision: 'fp32', memoryFormat: 'contiguous', pairs: 2, steps: 2, warmup: 1 }
  : { backbone: 'resnet50', size: 224, batch: 256, precision: 'bf16', memoryFormat: 'channelsLast', pairs: 3, steps: 6, warmup: 3 };
const OPTIMIZER = { optimizer: 'sgd', momentum: 0.9, weightDecay: 1e-6, temperature: 0.2 };
const LR = 1e-3;

async function main() {
  const c = CONFIG;
  if (ON_CUDA) cuda.setCudnnBenchmark(true);
  manualSeed(0);
  const model = await SimCLRModel.create({ backbone: c.backbone, device: DEVICE });
  const step = createTrainStep(model, { ...OPTIMIZER, precision: c.precision, memoryFormat: c.memoryFormat });
  const views = Tensor.randn([2 * c.batch, 3, c.size, c.size], { device: DEVICE });
  const peer = new Peer('train_step.py', { ...c, ...OPTIMIZER, lr: LR });
  const ready = await peer.next();
  // Seconds a step over `n` steps, each loss read after the next step is queued (overlap) or before (sync).
  const oursSteps = async (n, overlap) => {
    const start = process.hrtime.bigint();
    let previous;
    for (let i = 0; i < n; i++) {
      const launched = await step.launch(views, LR);
      if (previous) await previous.result();
      previous = launched;
      if (!overlap) {
        await previous.result();
        previous = undefined;
      }
    }
    if (previous) await previous.result(); // the last step's loss: its GPU work is done
    return seconds(start) / n;
  };
  await oursSteps(c.warmup, true);
  await peer.ask({ steps: c.warmup });
  resetPeak(); // after the warm-up, whose cuDNN autotuning takes workspaces of its own
  const ours = [];
  const oursSync = [];
  const theirs = [];
  let peerPeak = null;
  for (let pair = 0; pair < c.pairs; pair++) {
    ours.push(await oursSteps(c.steps, true));
    oursSync.push(await oursSteps(c.steps, false));
    const answer = await peer.ask({ steps: c.steps, resetPeak: pair === 0 });
    theirs.push(answer.seconds);
    peerPeak = answer.peakBytes;
    console.log(`  pair ${pair + 1}: simclr ${(c.batch / ours[pair]).toFixed(1)} img/s (sync ${(c.batch / oursSync[pair]).toFixed(1)}), ` +
      `PyTorch ${(c.batch / theirs[pair]).toFixed(1)} img/s`);
  }
  peer.close();
  const ratios = ours.map((s, i) => theirs[i] / s);
  record('train-step', {
    config: c,
    torch: ready.version,
    cudnnBenchmark: cuda.cudnnBenchmark(),
    oursSecondsPerStep: median(ours),
    oursSyncSecondsPerStep: median(oursSync),
    peerSecondsPerStep: median(theirs),
    oursImagesPerSecond: c.batch / median(ours),
    peerImagesPerSecond: c.batch / median(theirs),
    ratio: median(ratios),
    ratioMin: Math.min(...ratios),
    ratioMax: Math.max(...ratios),
    oursPeakBytes: peakBytes(),
    peerPeakBytes: peerPeak,
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
