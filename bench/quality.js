'use strict';
// Quality: simclr pretraining vs the PyTorch script bench/peers/simclr_train.py with the same recipe (architecture,
// stem, views, optimiser, schedule, epochs, batch, subset sizes), both evaluated by the same linear probe on frozen
// features, plus the raw-pixel and random-encoder probes. Target: simclr >= PyTorch - 0.5 points. The recipe is the
// quickstart's on this machine (quickstartConfig: its budget follows the precision) and the probe protocol the
// quickstart's (10 000 training-split images, the 10 000 test images); the peer is given simclr's training subset and
// probe splits by index, so both see the same images, and the precision simclr's run resolved to (the quickstart's
// 'auto': bf16 autocast + channels-last where the CPU has native bf16, else fp32), so both train in the same arithmetic.
// Usage: npm run bench -- quality [json overrides of the recipe, e.g. '{"epochs":2,"subset":5000}']
const { runTraining, evaluate, createModel, getNumThreads, SEED_STREAMS } = require('../dist');
const { Subset, openDataset } = require('../dist/data');
const { maybeSubset } = require('../dist/data/open');
const { quickstartConfig, quickstartSplits } = require('../dist/quickstart');
const { resolveRun } = require('../dist/run/resolve');
const { runPeer, printTable, fmt } = require('./common');
const os = require('os');
const path = require('path');

async function main() {
  const overrides = process.argv[3] ? JSON.parse(process.argv[3]) : {};
  const config = quickstartConfig({ knnEvery: 0, out: path.join(os.tmpdir(), 'simclr-quality'), ...overrides });
  const started = Date.now();
  const run = await runTraining(config, { progress: 'plain', overwrite: true });
  const oursSeconds = (Date.now() - started) / 1000;
  const splits = quickstartSplits(run.config);
  run.model.eval();
  const ours = await evaluate(run.model, run.config, splits);
  const raw = await evaluate(undefined, run.config, splits);
  const random = await createModel({ ...run.config, seed: run.config.seed + SEED_STREAMS.randomEncoder });
  random.eval();
  const randomEval = await evaluate(random, run.config, splits);
  const indices = (dataset) => (dataset instanceof Subset ? Array.from(dataset.indices) : Array.from({ length: dataset.length }, (_, i) => i));
  const trainSet = maybeSubset(openDataset(config.data, 'train', config.baseSize), config.subset, config.seed + SEED_STREAMS.subset);
  const precision = resolveRun({ ...run.config, device: 'cpu' }).precision;
  const peer = runPeer('simclr_train.py', {
    config: run.config, threads: getNumThreads(), workers: 0, probe: true, precision,
    trainIndices: indices(trainSet), bankIndices: indices(splits.bank), queryIndices: indices(splits.query),
  });
  console.log(`quality: ${config.backbone} ${config.stem} stem, ${config.subset ?? 60000} images x ${config.epochs} epochs, batch ${config.batchSize}, ` +
    `${config.imageSize} px, ${config.optimizer} lr ${config.lr}, tau ${config.temperature}, ${precision} on both sides; probe ${ours.bankSize} train / ${ours.querySize} test; peer torch ${peer.version}`);
  printTable([
    { features: 'simclr pretraining', 'linear probe': fmt(100 * ours.linearProbe.testAccuracy), 'pretrain s': fmt(oursSeconds, 0), 'final loss': fmt(run.lastLoss, 3) },
    { features: 'PyTorch pretraining', 'linear probe': fmt(100 * peer.linearProbe), 'pretrain s': fmt(peer.seconds, 0), 'final loss': fmt(peer.lastLoss, 3) },
    { features: 'raw pixels', 'linear probe': fmt(100 * raw.linearProbe.testAccuracy), 'pretrain s': '-', 'final loss': '-' },
    { features: 'random encoder', 'linear probe': fmt(100 * randomEval.linearProbe.testAccuracy), 'pretrain s': '-', 'final loss': '-' },
  ]);
  const gap = 100 * (ours.linearProbe.testAccuracy - peer.linearProbe);
  console.log(`simclr - PyTorch = ${fmt(gap)} points (target >= -0.5): ${gap >= -0.5 ? 'met' : 'MISSED'}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
