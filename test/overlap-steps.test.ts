/**
 * Overlapped steps (Trainer's overlapSteps, on by default on a GPU): step k+1 is queued before step k's loss is read,
 * so the device never waits for the host. On the CPU the switch shows that nothing else changes: the same losses and
 * the same weights, bit for bit, and checkpoints that hold the model as their step left it.
 */
import * as fs from 'fs';
import * as path from 'path';
import { RunConfig, runTraining, StateDict, Tensor } from '../src';
import { launchTrainStep, Optimizer } from '../src/ops/train-step';
import { SimCLRModel } from '../src/models/simclr-model';
import { describeWithFashionMnist } from './helpers/tools';
import { scratchFolders } from './helpers/scratch';

const tmp = scratchFolders('overlap');

const stepLosses = (dir: string) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean)
  .map((l) => JSON.parse(l) as { step?: number; loss: number }).filter((r) => r.step !== undefined).map((r) => [r.step, r.loss]);

async function weights(state: StateDict): Promise<Record<string, number[]>> {
  return Object.fromEntries(Object.entries(state).map(([name, t]) => [name, Array.from(t.toTypedArray() as ArrayLike<number | bigint>, Number)]));
}

describeWithFashionMnist('overlapped steps', () => {
  const base: Partial<RunConfig> = {
    data: 'fashion-mnist', subset: 40, batchSize: 8, epochs: 2, baseSize: 16, imageSize: 16, stem: 'cifar',
    knnEvery: 0, workers: 1, seed: 5, lr: 0.3, precision: 'fp32',
  };

  it('train to the same losses and weights, bit for bit, as reading each loss before the next step', async () => {
    const plain = await runTraining({ ...base, out: tmp() }, { progress: 'none', overlapSteps: false });
    const overlapped = await runTraining({ ...base, out: tmp() }, { progress: 'none', overlapSteps: true });
    expect(overlapped.steps).toBe(10);
    expect(stepLosses(overlapped.config.out)).toEqual(stepLosses(plain.config.out));
    expect(overlapped.lastLoss).toBe(plain.lastLoss);
    expect(await weights(await overlapped.model.stateDict())).toEqual(await weights(await plain.model.stateDict()));
  });

  it('write checkpoints of the model as their step left it: a run resumed from one ends where a straight run does', async () => {
    const whole = tmp();
    const parts = tmp();
    await runTraining({ ...base, out: whole }, { progress: 'none', overlapSteps: false });
    const stop = new AbortController();
    // Stopped from the record of step 3, which with overlap arrives once step 4 is queued: the stop comes one step later.
    const first = await runTraining({ ...base, out: parts, checkpointEvery: '2' }, {
      progress: 'none', overlapSteps: true, signal: stop.signal, onStep: (r) => r.step === 3 && stop.abort(),
    });
    expect([first.interrupted, first.steps]).toEqual([true, 4]);
    const second = await runTraining({ ...base, out: parts, checkpointEvery: '2' }, { progress: 'none', overlapSteps: true, resume: true });
    expect(second.steps).toBe(10);
    expect(stepLosses(parts)).toEqual(stepLosses(whole));
  });

  it('launchTrainStep queues a step and reads its loss on request, the same loss trainStep gives', async () => {
    const make = async () => {
      const { manualSeed } = await import('../src');
      manualSeed(9);
      const model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
      return { model, optimizer: Optimizer.create(model, { optimizer: 'sgd', momentum: 0.9 }) };
    };
    const views = Tensor.randn([8, 3, 8, 8]);
    const a = await make();
    const first = await launchTrainStep(a.model, views, { optimizer: a.optimizer, lr: 0.05 });
    const second = await launchTrainStep(a.model, views, { optimizer: a.optimizer, lr: 0.05 });
    expect(first.images).toBe(4);
    const [r1, r2] = [await first.result(), await second.result()];
    expect(await first.result()).toBe(r1); // read once
    const b = await make();
    const { trainStep } = await import('../src/ops/train-step');
    const s1 = await trainStep(b.model, views, { optimizer: b.optimizer, lr: 0.05 });
    const s2 = await trainStep(b.model, views, { optimizer: b.optimizer, lr: 0.05 });
    expect([r1, r2]).toEqual([s1, s2]);
    expect(r1).toEqual({ loss: expect.any(Number), localLoss: r1.loss, images: 4, applied: true, stop: false });
  });
});
