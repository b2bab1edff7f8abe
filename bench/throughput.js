'use strict';
// Throughput of the whole pipeline, files -> decode -> augment -> training step, simclr vs the PyTorch script with its
// DataLoader, on a folder of PNG files made from Fashion-MNIST, with the quickstart's recipe at batch 64. Each side runs
// with its best precision on this machine ('auto': bf16 + channels-last where the CPU has native bf16, else fp32).
// The first pair runs the peer with 0 and 2 DataLoader workers and keeps the better; then ours and the peer alternate
// (`pairs`, default 7, each a fresh run of `steps` steps timed from step 10): the median of the per-pair ratios is
// printed with its min-max. Each pair also runs ours with multi-crop (4 small views besides the two). Memory: one run of 500 steps, RSS after 500 vs after 50 (no leak: within 5 %), also as
// means over the 10 steps up to each.
// Usage: npm run bench -- throughput [pairs] [steps per pair]   (SIMCLR_BENCH_QUICK=1: no memory run)
const fs = require('fs');
const os = require('os');
const path = require('path');
const sharp = require('sharp');
const { runTraining, validateRunConfig, getNumThreads, openDataset } = require('../dist');
const { QUICKSTART_CONFIG } = require('../dist/quickstart');
const { resolveRun } = require('../dist/run/resolve');
const { DEFAULT_RUN_CONFIG } = require('../dist/run/config');
const { runPeer, printTable, fmt, median, loadAverage } = require('./common');

const TIME_FROM = 10;

async function makeFolder(dir, count) {
  const source = openDataset('fashion-mnist', 'train', null);
  for (let i = 0; i < count; i++) {
    const sample = await source.get(i);
    const classDir = path.join(dir, `class${sample.label}`);
    fs.mkdirSync(classDir, { recursive: true });
    await sharp(Buffer.from(sample.image), { raw: { width: sample.width, height: sample.height, channels: 3 } }).png().toFile(path.join(classDir, `${i}.png`));
  }
}

/** Images per second of one run of ours (timed from step TIME_FROM), with RSS samples. */
async function ours(config) {
  let t0;
  let images = 0;
  const rss = {};
  const rssWindow = { 50: [], [config.maxSteps]: [] };
  await runTraining(config, {
    progress: 'none',
    overwrite: true,
    onStep: (r) => {
      if (r.step === TIME_FROM) t0 = process.hrtime.bigint();
      else if (r.step > TIME_FROM) images += config.batchSize;
      for (const end of [50, config.maxSteps]) if (r.step > end - 10 && r.step <= end) rssWindow[end].push(process.memoryUsage().rss);
      if (r.step === 50 || r.step === config.maxSteps) rss[r.step] = process.memoryUsage().rss;
    },
  });
  return { imagesPerSecond: images / (Number(process.hrtime.bigint() - t0) / 1e9), rss, rssWindow };
}

async function main() {
  const pairs = Number(process.argv[3] || 7);
  const steps = Number(process.argv[4] || 60);
  const dir = path.join(os.tmpdir(), 'simclr-throughput-images');
  if (!fs.existsSync(dir)) await makeFolder(dir, 4096);
  const config = validateRunConfig({ ...QUICKSTART_CONFIG, data: dir, subset: undefined, batchSize: 64, epochs: 1000, maxSteps: steps,
    knnEvery: 0, precision: 'auto', memoryFormat: 'auto', out: path.join(os.tmpdir(), 'simclr-throughput') });
  const precision = resolveRun({ ...DEFAULT_RUN_CONFIG, device: 'cpu' }).precision;
  console.log(`throughput: ${pairs} pairs of ${steps} steps, precision ${precision} on both sides, threads ${getNumThreads()}, load before: ${loadAverage()}`);
  const peerArgs = (workers) => ({ config, folder: dir, threads: getNumThreads(), workers, timeFromStep: TIME_FROM, precision });

  const mine = [];
  const theirs = [];
  // Multi-crop (issue 14): the same run with 4 small views per image besides the two (SwAV's 96/224 of the size), ours
  // only (the peer script has no multi-crop); alternated with the pairs, as images/s and as a share of two views'.
  const multiCropConfig = validateRunConfig({ ...config, smallCrops: 4 });
  const multiCrop = [];
  let workers = 0;
  let version = '';
  const firstPeer = {};
  for (let i = 0; i < pairs; i++) {
    mine.push((await ours(config)).imagesPerSecond);
    multiCrop.push((await ours(multiCropConfig)).imagesPerSecond);
    if (i === 0) {
      for (const w of [0, 2]) firstPeer[w] = runPeer('simclr_train.py', peerArgs(w));
      workers = firstPeer[2].imagesPerSecond > firstPeer[0].imagesPerSecond ? 2 : 0;
      version = firstPeer[0].version;
      theirs.push(firstPeer[workers].imagesPerSecond);
    } else {
      theirs.push(runPeer('simclr_train.py', peerArgs(workers)).imagesPerSecond);
    }
    console.log(`  pair ${i + 1}: simclr ${fmt(mine[i], 1)} img/s (multi-crop ${fmt(multiCrop[i], 1)}), PyTorch (${workers} workers) ${fmt(theirs[i], 1)} img/s`);
  }
  const ratios = mine.map((m, i) => m / theirs[i]);

  const memory = process.env.SIMCLR_BENCH_QUICK === '1' ? undefined : await ours({ ...config, maxSteps: 500 });
  console.log(`\nthroughput: ${config.backbone} ${config.stem} stem, batch ${config.batchSize}, ${config.imageSize} px views of 28 px PNGs, ` +
    `precision ${precision}, threads ${getNumThreads()}, peer torch ${version}, load after: ${loadAverage()}`);
  printTable([
    { pipeline: 'simclr', 'img/s (median)': fmt(median(mine), 1), 'ratio (min-max)': `${fmt(median(ratios))}x (${fmt(Math.min(...ratios))}-${fmt(Math.max(...ratios))})` },
    { pipeline: `PyTorch, DataLoader ${workers} workers`, 'img/s (median)': fmt(median(theirs), 1), 'ratio (min-max)': '' },
    { pipeline: `simclr, multi-crop 2 x ${config.imageSize} + 4 x ${multiCropConfig.smallCropSize ?? Math.max(1, Math.round(config.imageSize * 96 / 224))} px`, 'img/s (median)': fmt(median(multiCrop), 1),
      'ratio (min-max)': `${fmt(median(multiCrop.map((m, i) => m / mine[i])))}x of two views (${fmt(Math.min(...multiCrop.map((m, i) => m / mine[i])))}-${fmt(Math.max(...multiCrop.map((m, i) => m / mine[i])))})` },
    { pipeline: `PyTorch, DataLoader ${2 - workers} workers (pair 1)`, 'img/s (median)': fmt(firstPeer[2 - workers].imagesPerSecond, 1), 'ratio (min-max)': '' },
  ]);
  console.log('ratio = simclr / the better PyTorch DataLoader, median of the pairs (target >= 1.5)');
  if (!memory) return;
  const { rss, rssWindow } = memory;
  const growth = rss[500] / rss[50] - 1;
  console.log(`memory: RSS after 50 steps ${fmt(rss[50] / 2 ** 20, 0)} MiB, after 500 ${fmt(rss[500] / 2 ** 20, 0)} MiB: ${fmt(100 * growth, 1)}% (target within 5%)`);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const windowGrowth = mean(rssWindow[500]) / mean(rssWindow[50]) - 1;
  console.log(`memory, mean of the 10 steps up to each: ${fmt(mean(rssWindow[50]) / 2 ** 20, 0)} MiB, ${fmt(mean(rssWindow[500]) / 2 ** 20, 0)} MiB: ${fmt(100 * windowGrowth, 1)}%`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
