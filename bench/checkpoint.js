'use strict';
// What a checkpoint costs: the default run's model (ResNet-18, CIFAR stem, 2-layer head) with its SGD momentum, saved
// as the Trainer saves last.ckpt (state copy, atomic write, fsync) and linked to best.ckpt, against PyTorch's
// torch.save of the same state (with fsync); and the default training step (batch 256, 32 px), to put the write
// beside a step. With checkpoints every 10 minutes (--checkpoint-every's default) the cost per step is the write
// time over the steps in 10 minutes.
// Usage: npm run bench -- checkpoint   (after npm test or npm start has built dist/)
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Tensor, getNumThreads, validateRunConfig, createModel, writeCheckpoint } = require('../dist');
const { createTrainStep } = require('../dist/ops/train-step');
const { trainingTensors } = require('../dist/train/checkpoint');
const { linkFileAtomic } = require('../dist/atomic-file');
const { runPeer, timeIt, printTable, fmt } = require('./common');

async function main() {
  const config = validateRunConfig({});
  const model = await createModel(config);
  const step = createTrainStep(model, { optimizer: config.optimizer, momentum: config.momentum, weightDecay: config.weightDecay, temperature: config.temperature });
  const views = Tensor.randn([2 * config.batchSize, 3, config.imageSize, config.imageSize]);
  const stepSeconds = await timeIt(() => step.step(views, 0.01), { repeats: 3 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-bench-ckpt-'));
  const last = path.join(dir, 'last.ckpt');
  let bytes = 0;
  const save = async () => {
    const state = await model.stateDict();
    const optimizer = step.optimizerState();
    const tensors = trainingTensors(state, optimizer.tensors);
    await writeCheckpoint(last, { meta: { step: 1 }, tensors });
    for (const t of Object.values(tensors)) t.dispose();
    bytes = fs.statSync(last).size;
  };
  const saveSeconds = await timeIt(save, { repeats: 7 });
  const linkSeconds = await timeIt(() => linkFileAtomic(last, path.join(dir, 'best.ckpt')), { repeats: 7 });
  const stateFile = path.join(dir, 'init.pt');
  await model.saveStateDict(stateFile);
  const peer = runPeer('checkpoint.py', { state: stateFile, out: path.join(dir, 'peer.pt'), threads: getNumThreads() });
  fs.rmSync(dir, { recursive: true, force: true });
  const stepsIn10Minutes = 600 / stepSeconds;
  console.log(`checkpoint: ${config.backbone} (${config.stem} stem) + head + SGD momentum, ${fmt(bytes / 2 ** 20, 1)} MiB; ` +
    `training step batch ${config.batchSize} at ${config.imageSize} px: ${fmt(stepSeconds, 3)} s; threads ${getNumThreads()}, peer torch ${peer.version}`);
  printTable([
    { measure: 'last.ckpt save (s)', simclr: fmt(saveSeconds, 3), pytorch: fmt(peer.save, 3), ratio: fmt(peer.save / saveSeconds) },
    { measure: 'best.ckpt from last.ckpt (ms)', simclr: fmt(linkSeconds * 1e3, 2), pytorch: '-', ratio: '-' },
    { measure: 'save / one step', simclr: fmt(saveSeconds / stepSeconds, 3), pytorch: '-', ratio: '-' },
    { measure: 'per step at every 10m (%)', simclr: fmt((100 * saveSeconds) / 600, 3), pytorch: '-', ratio: '-' },
    { measure: 'per step at every 100 steps (%)', simclr: fmt((100 * saveSeconds) / (100 * stepSeconds), 2), pytorch: '-', ratio: '-' },
  ]);
  console.log(`steps in 10 minutes: ${fmt(stepsIn10Minutes, 0)}; ratio = PyTorch time / simclr time (> 1: simclr is faster)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
