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

/**
 * The names of the tensors whose bytes differ between two state dicts (and those only one has): bit for bit. Compared
 * as bytes rather than with toEqual on arrays of numbers, which for a ResNet-18's 11M weights took seconds in jest.
 */
function differingTensors(a: StateDict, b: StateDict): string[] {
  const bytes = (t: Tensor) => {
    const data = t.toTypedArray();
    return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  };
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return names.filter((name) => !(name in a) || !(name in b) || !bytes(a[name]).equals(bytes(b[name])));
}

describeWithFashionMnist('overlapped steps', () => {
  const base: Partial<RunConfig> = {
    data: 'fashion-mnist', subset: 40, batchSize: 8, epochs: 2, baseSize: 16, imageSize: 16,
    knnEvery: 0, workers: 1, seed: 5, lr: 0.3, precision: 'fp32',
  };

  // The straight run without overlap, trained once for the two tests that compare with it (whichever runs first).
  let straight: ReturnType<typeof runTraining> | undefined;
  const plainRun = () => (straight ??= runTraining({ ...base, out: tmp() }, { progress: 'none', overlapSteps: false }));

  it('train to the same losses and weights, bit for bit, as reading each loss before the next step', async () => {
    const plain = await plainRun();
    const overlapped = await runTraining({ ...base, out: tmp() }, { progress: 'none', overlapSteps: true });
    expect(overlapped.steps).toBe(10);
    expect(stepLosses(overlapped.config.out)).toEqual(stepLosses(plain.config.out));
    expect(overlapped.lastLoss).toBe(plain.lastLoss);
    const state = await overlapped.model.stateDict();
    expect(Object.keys(state).length).toBeGreaterThan(100);
    expect(differingTensors(state, await plain.model.stateDict())).toEqual([]);
  });

  it('write checkpoints of the model as their step left it: a run resumed from one ends where a straight run does', async () => {
    const whole = (await plainRun()).config.out;
    const parts = tmp();
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
