'use strict';
// End to end from JPEG files: decode (sharp on libuv's pool, UV_THREADPOOL_SIZE threads; 16 on the GPU machine) ->
// Loader (seeded shuffle, prefetch) -> Augmenter.views on the GPU -> training step (ResNet-50, two 128 px views, batch
// 256, bf16, channels-last), the next batch decoded and augmented while a step runs, as the Trainer does. Peer: the
// usual PyTorch script, ImageFolder + PIL + torchvision transforms in a DataLoader with 16 workers, pin_memory, the same
// model and step. Reported per side: images/s over the timed steps, and the share of the time the GPU waited for data,
// two ways: (a) measured in the loop, the time from a step's end (its loss read) to the next step's start, over the
// total; (b) 1 - the GPU's mean utilisation sampled by nvidia-smi over the timed steps.
const fs = require('fs');
const os = require('os');
const path = require('path');
const sharp = require('sharp');
const { Augmenter, ImageFolder, Loader, SimCLRModel, manualSeed, cuda } = require('../../dist');
const { createTrainStep } = require('../../dist/ops/train-step');
const { DRY, DEVICE, ON_CUDA, record, seconds, Peer, gpuSampler } = require('./lib');

const C = DRY
  ? { files: 48, base: 64, size: 32, batch: 8, backbone: 'resnet18', precision: 'fp32', memoryFormat: 'contiguous', warmup: 2, steps: 6, workers: 2, concurrency: 8 }
  : { files: 4096, base: 256, size: 128, batch: 256, backbone: 'resnet50', precision: 'bf16', memoryFormat: 'channelsLast', warmup: 4, steps: 32, workers: 16, concurrency: 64 };
const OPTIMIZER = { optimizer: 'sgd', momentum: 0.9, weightDecay: 1e-6, temperature: 0.2 };
const LR = 1e-3;

/** A folder of `count` JPEGs (10 class folders), base x base, smooth content with noise, quality 90. */
async function makeFolder(dir, count, base) {
  const marker = path.join(dir, `.complete-${count}-${base}`);
  if (fs.existsSync(marker)) return;
  fs.rmSync(dir, { recursive: true, force: true });
  for (let c = 0; c < 10; c++) fs.mkdirSync(path.join(dir, `class${c}`), { recursive: true });
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const pixels = Buffer.alloc(base * base * 3);
      let state = (i * 2654435761) >>> 0;
      for (let y = 0; y < base; y++) {
        for (let x = 0; x < base; x++) {
          state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
          const o = (y * base + x) * 3;
          pixels[o] = (x * (1 + (i % 3)) + (state >>> 29)) & 255;
          pixels[o + 1] = (y * (1 + (i % 5)) + (state >>> 27)) & 255;
          pixels[o + 2] = ((x + y + i * 7) + (state >>> 28)) & 255;
        }
      }
      await sharp(pixels, { raw: { width: base, height: base, channels: 3 } }).jpeg({ quality: 90 })
        .toFile(path.join(dir, `class${i % 10}`, `${i}.jpg`));
    }
  };
  await Promise.all(Array.from({ length: os.availableParallelism() }, worker));
  fs.writeFileSync(marker, '');
}

async function ours(dir) {
  if (ON_CUDA) cuda.setCudnnBenchmark(true);
  manualSeed(0);
  const model = await SimCLRModel.create({ backbone: C.backbone, device: DEVICE });
  const step = createTrainStep(model, { ...OPTIMIZER, precision: C.precision, memoryFormat: C.memoryFormat });
  const loader = new Loader(new ImageFolder(dir, { size: null }), { batchSize: C.batch, dropLast: true, prefetch: 2, concurrency: C.concurrency });
  const augmenter = new Augmenter({ size: C.size }, { seed: 0 });
  async function* batches() {
    for (let epoch = 0; ; epoch++) yield* loader.epoch(epoch);
  }
  const iterator = batches();
  const nextViews = async () => {
    const { value } = await iterator.next();
    const views = await augmenter.views(value.images, { device: DEVICE });
    value.images.dispose();
    return views;
  };
  let pending = await nextViews();
  let start;
  let waited = 0;
  let sampler;
  for (let s = 0; s < C.warmup + C.steps; s++) {
    if (s === C.warmup) {
      start = process.hrtime.bigint();
      sampler = gpuSampler();
      waited = 0;
    }
    const stepDone = step.step(pending, LR);
    const upcoming = nextViews();
    await stepDone; // the loss was read: the GPU has finished this step
    const idleFrom = process.hrtime.bigint();
    pending.dispose();
    pending = await upcoming;
    waited += seconds(idleFrom);
  }
  const total = seconds(start);
  const utilisation = await sampler.stop();
  pending.dispose();
  await iterator.return(); // stops the loader's prefetching
  return { imagesPerSecond: (C.steps * C.batch) / total, seconds: total, waitFraction: waited / total, utilisation };
}

async function main() {
  const dir = path.join(os.tmpdir(), `simclr-gpu-jpegs-${C.base}`);
  const made = process.hrtime.bigint();
  await makeFolder(dir, C.files, C.base);
  console.log(`  ${C.files} JPEGs of ${C.base} px ready in ${seconds(made).toFixed(1)} s (${dir})`);
  const mine = await ours(dir);
  console.log(`  simclr: ${mine.imagesPerSecond.toFixed(1)} img/s, GPU waiting ${(100 * mine.waitFraction).toFixed(1)} % of the time`);
  const peer = new Peer('end_to_end.py', { ...C, ...OPTIMIZER, lr: LR, folder: dir });
  const ready = await peer.next();
  const theirs = await peer.ask({ run: true });
  peer.close();
  const busy = (u) => (u === null ? null : 1 - u);
  record('end-to-end', {
    config: { ...C, threadpool: Number(process.env.UV_THREADPOOL_SIZE) || 4 },
    torch: ready.version,
    oursImagesPerSecond: mine.imagesPerSecond,
    peerImagesPerSecond: theirs.imagesPerSecond,
    ratio: mine.imagesPerSecond / theirs.imagesPerSecond,
    oursGpuWaitFraction: mine.waitFraction,
    peerGpuWaitFraction: theirs.waitFraction,
    oursGpuIdleFromUtilisation: busy(mine.utilisation),
    peerGpuIdleFromUtilisation: busy(theirs.utilisation),
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
