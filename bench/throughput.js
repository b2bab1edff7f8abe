'use strict';
// Throughput of the whole pipeline, files -> decode -> augment -> training step, simclr vs the PyTorch script with its
// DataLoader (0 and 2 workers), on a folder of PNG files made from Fashion-MNIST; and memory: RSS after 500 steps vs
// after 50 (no leak: within 5%), also as means over the 10 steps up to each (RSS moves by ~10 MB from step to step).
// Usage: npm run bench -- throughput [steps]
const fs = require('fs');
const os = require('os');
const path = require('path');
const sharp = require('sharp');
const { runTraining, validateRunConfig, getNumThreads, openDataset } = require('../dist');
const { QUICKSTART_CONFIG } = require('../dist/quickstart');
const { runPeer, printTable, fmt } = require('./common');

async function makeFolder(dir, count) {
  const source = openDataset('fashion-mnist', 'train', null);
  for (let i = 0; i < count; i++) {
    const sample = await source.get(i);
    const classDir = path.join(dir, `class${sample.label}`);
    fs.mkdirSync(classDir, { recursive: true });
    await sharp(Buffer.from(sample.image), { raw: { width: sample.width, height: sample.height, channels: 3 } }).png().toFile(path.join(classDir, `${i}.png`));
  }
}

async function main() {
  const steps = Number(process.argv[3] || 500);
  const dir = path.join(os.tmpdir(), 'simclr-throughput-images');
  if (!fs.existsSync(dir)) await makeFolder(dir, 4096);
  const config = validateRunConfig({ ...QUICKSTART_CONFIG, data: dir, subset: undefined, batchSize: 64, epochs: 1000, maxSteps: steps, knnEvery: 0, out: path.join(os.tmpdir(), 'simclr-throughput') });
  const timeFrom = 20;
  const rss = {};
  const rssWindow = { 50: [], [steps]: [] };
  let t0;
  let images = 0;
  await runTraining(config, {
    progress: 'none',
    overwrite: true,
    onStep: (r) => {
      if (r.step === timeFrom) t0 = process.hrtime.bigint();
      else if (r.step > timeFrom) images += config.batchSize;
      for (const end of [50, steps]) if (r.step > end - 10 && r.step <= end) rssWindow[end].push(process.memoryUsage().rss);
      if (r.step === 50 || r.step === steps) rss[r.step] = process.memoryUsage().rss;
    },
  });
  const ours = images / (Number(process.hrtime.bigint() - t0) / 1e9);
  const peerArgs = (workers) => ({ config: { ...config, maxSteps: Math.min(steps, 120) }, folder: dir, threads: getNumThreads(), workers, timeFromStep: timeFrom });
  const peer0 = runPeer('simclr_train.py', peerArgs(0));
  const peer2 = runPeer('simclr_train.py', peerArgs(2));
  const best = Math.max(peer0.imagesPerSecond, peer2.imagesPerSecond);
  console.log(`throughput: ${config.backbone} ${config.stem} stem, batch ${config.batchSize}, ${config.imageSize} px views of 28 px PNGs, threads ${getNumThreads()}, peer torch ${peer0.version}`);
  printTable([
    { pipeline: 'simclr', 'img/s': fmt(ours, 1), ratio: fmt(ours / best) },
    { pipeline: 'PyTorch, DataLoader 0 workers', 'img/s': fmt(peer0.imagesPerSecond, 1), ratio: '' },
    { pipeline: 'PyTorch, DataLoader 2 workers', 'img/s': fmt(peer2.imagesPerSecond, 1), ratio: '' },
  ]);
  console.log(`ratio = simclr / better peer (target >= 1.5)`);
  if (rss[50] && rss[steps]) {
    const growth = rss[steps] / rss[50] - 1;
    console.log(`memory: RSS after 50 steps ${fmt(rss[50] / 2 ** 20, 0)} MiB, after ${steps} ${fmt(rss[steps] / 2 ** 20, 0)} MiB: ${fmt(100 * growth, 1)}% (target within 5%)`);
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const windowGrowth = mean(rssWindow[steps]) / mean(rssWindow[50]) - 1;
    console.log(`memory, mean of the 10 steps up to each: ${fmt(mean(rssWindow[50]) / 2 ** 20, 0)} MiB, ${fmt(mean(rssWindow[steps]) / 2 ** 20, 0)} MiB: ${fmt(100 * windowGrowth, 1)}%`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
