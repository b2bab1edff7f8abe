/**
 * The pieces of a custom training loop through the public API: Optimizer.create and trainStep start from the run
 * settings' recipe when options are left out, and an optimiser's state saved in a checkpoint lets a new model and
 * optimiser continue exactly where the original would have.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  DEFAULT_RUN_CONFIG, NT_XENT_DEFAULT_TEMPERATURE, OPTIMIZER_DEFAULTS, OPTIMIZERS, Optimizer, SimCLRModel, Tensor, manualSeed,
  readCheckpoint, trainStep, writeCheckpoint,
} from '../src';
import type { OptimizerName, StateDict } from '../src';

const folders: string[] = [];
afterAll(() => {
  for (const folder of folders) fs.rmSync(folder, { recursive: true, force: true });
});
const tmp = () => {
  folders.push(fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-custom-loop-')));
  return folders[folders.length - 1];
};

/** A small SimCLR model: ResNet-18 with the CIFAR stem (no downsampling up front, so 16 px views go through it). */
async function smallModel(seed: number): Promise<SimCLRModel> {
  manualSeed(seed);
  return SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
}

/** 4 images, two 16 px views each. */
const viewsOf = (seed: number) => {
  manualSeed(seed);
  return Tensor.randn([8, 3, 16, 16]);
};

// fp32 and contiguous: the same kernels on every machine, so twins that compute the same thing agree bit for bit.
const EXACT = { precision: 'fp32', memoryFormat: 'contiguous' } as const;

const bytes = (t: Tensor) => {
  const out = new Uint8Array(t.byteLength);
  t.copyTo(out);
  return out;
};

/** The state-dict entries (weights and buffers) in which two models differ at all. */
async function differingEntries(a: SimCLRModel, b: SimCLRModel): Promise<string[]> {
  const sa = await a.stateDict();
  const sb = await b.stateDict();
  expect(Object.keys(sb).sort()).toEqual(Object.keys(sa).sort());
  return Object.keys(sa).filter((key) => Buffer.compare(bytes(sa[key]), bytes(sb[key])) !== 0);
}

describe("the custom loop's defaults", () => {
  it('are the run settings\' (RUN_SETTINGS): optimiser, momentum, Nesterov, weight decay and temperature', () => {
    const d = DEFAULT_RUN_CONFIG;
    expect(OPTIMIZER_DEFAULTS).toMatchObject({ optimizer: d.optimizer, momentum: d.momentum, nesterov: d.nesterov, weightDecay: d.weightDecay });
    expect(NT_XENT_DEFAULT_TEMPERATURE).toBe(d.temperature);
  });

  it('train as the run settings spelled out: Optimizer.create(model) and trainStep without a temperature', async () => {
    const d = DEFAULT_RUN_CONFIG;
    const bare = await smallModel(3);
    const spelledOut = await smallModel(3);
    const bareOptimizer = Optimizer.create(bare);
    const spelledOutOptimizer = Optimizer.create(spelledOut, { optimizer: d.optimizer, momentum: d.momentum, nesterov: d.nesterov, weightDecay: d.weightDecay });
    // Two steps: the second one also uses the momentum the first left.
    for (const seed of [4, 5]) {
      const views = viewsOf(seed);
      const a = await trainStep(bare, views, { optimizer: bareOptimizer, lr: 0.1, ...EXACT });
      const b = await trainStep(spelledOut, views, { optimizer: spelledOutOptimizer, lr: 0.1, temperature: d.temperature, ...EXACT });
      expect(a.loss).toBe(b.loss);
    }
    expect(await differingEntries(bare, spelledOut)).toEqual([]);
  });
});

describe.each(OPTIMIZERS)('the %s optimiser\'s state, saved in a checkpoint', (name: OptimizerName) => {
  it('lets a twin model and a new Optimizer (loadState) take the next step with the same loss and weights as the original', async () => {
    const lr = name === 'adamw' ? 1e-3 : 0.1;
    const original = await smallModel(11);
    const optimizer = Optimizer.create(original, { optimizer: name });
    for (const seed of [12, 13]) await trainStep(original, viewsOf(seed), { optimizer, lr, ...EXACT });

    // The model's state dict and the optimiser's state in one checkpoint, under prefixes of our choosing.
    const state = optimizer.state();
    expect(state.steps).toBe(2);
    expect(Object.keys(state.tensors).length).toBeGreaterThan(0);
    const file = path.join(tmp(), `${name}.ckpt`);
    const prefixed = (prefix: string, tensors: StateDict) => Object.fromEntries(Object.entries(tensors).map(([key, t]) => [`${prefix}${key}`, t]));
    await writeCheckpoint(file, {
      meta: { optimizerSteps: state.steps },
      tensors: { ...prefixed('model/', await original.stateDict()), ...prefixed('optimizer/', state.tensors) },
    });

    const saved = await readCheckpoint<{ optimizerSteps: number }>(file);
    const unprefixed = (prefix: string) => Object.fromEntries(Object.entries(saved.tensors)
      .filter(([key]) => key.startsWith(prefix)).map(([key, t]) => [key.slice(prefix.length), t]));
    const twin = await smallModel(99); // other initial weights, replaced by the checkpoint's
    await twin.loadStateDict(unprefixed('model/'));
    const restored = Optimizer.create(twin, { optimizer: name });
    restored.loadState({ tensors: unprefixed('optimizer/'), steps: saved.meta.optimizerSteps });
    // The control: the same weights with a fresh optimiser, which must end elsewhere for the comparison to mean anything.
    const fresh = await smallModel(99);
    await fresh.loadStateDict(unprefixed('model/'));
    const freshOptimizer = Optimizer.create(fresh, { optimizer: name });

    const next = viewsOf(14);
    const expected = await trainStep(original, next, { optimizer, lr, ...EXACT });
    const continued = await trainStep(twin, next, { optimizer: restored, lr, ...EXACT });
    await trainStep(fresh, next, { optimizer: freshOptimizer, lr, ...EXACT });
    expect(continued.loss).toBe(expected.loss);
    expect(await differingEntries(twin, original)).toEqual([]);
    expect(restored.state().steps).toBe(3);
    expect((await differingEntries(fresh, original)).length).toBeGreaterThan(0);
  });
});
