/**
 * Precision and memory format of forward passes and training steps, gradient accumulation, and several view
 * resolutions in one step. The bf16 step's agreement with PyTorch autocast is in trainer.test.ts.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Augmenter, Encoder, SimCLRModel, Tensor, manualSeed, ntXent, runTraining, RunConfig } from '../src';
import { Optimizer, trainStep, createTrainStep } from '../src/ops/train-step';
import { cpuBf16Support, resolveRun } from '../src/run/resolve';
import { DEFAULT_RUN_CONFIG } from '../src/run/config';

/** What a run with these settings resolves to. */
const resolved = (settings: Partial<RunConfig>) => resolveRun({ ...DEFAULT_RUN_CONFIG, ...settings } as RunConfig);
import { relativeError as sharedRelativeError } from './helpers/numerics';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-precision-'));

/**
 * Math's functions, looked up once: in jest's sandbox every global lookup goes through the context's interceptors and
 * is about 100x slower than in node, which in the loops below over a ResNet-18's 11M weights cost seconds a call.
 */
const { abs, max } = Math;

/** Float32 data copied into an array of this realm (jest's): loops over the addon's own typed arrays are slow here. */
function values(a: Tensor): Float32Array {
  const out = new Float32Array(a.numel);
  a.copyTo(out);
  return out;
}

function maxAbsDiff(a: Tensor, b: Tensor): number {
  const x = values(a);
  const y = values(b);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = max(m, abs(x[i] - y[i]));
  return m;
}

function maxAbs(a: Tensor): number {
  return values(a).reduce((m, v) => max(m, abs(v)), 0);
}

/** ||a - b|| / ||a|| (Frobenius). */
function relativeError(a: Tensor, b: Tensor): number {
  return sharedRelativeError(values(b), values(a));
}

async function stateDiff(a: SimCLRModel, b: SimCLRModel): Promise<{ diff: number; scale: number }> {
  const sa = await a.stateDict();
  const sb = await b.stateDict();
  let diff = 0;
  let scale = 0;
  for (const key of Object.keys(sa)) {
    if (sa[key].dtype !== 'float32') continue;
    const x = values(sa[key]);
    const y = values(sb[key]);
    for (let i = 0; i < x.length; i++) {
      const d = abs(x[i] - y[i]);
      if (d > diff) diff = d;
      const m = abs(x[i]);
      if (m > scale) scale = m;
    }
  }
  return { diff, scale };
}

/** Two models with the same initial weights. */
async function twins(seed: number): Promise<[SimCLRModel, SimCLRModel]> {
  manualSeed(seed);
  const a = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
  const b = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
  await b.loadStateDict(await a.stateDict());
  return [a, b];
}

describe("'auto' precision and memory format, resolved once by resolveRun", () => {
  it('is bf16 on a CPU exactly when it has AVX-512 BF16 or AMX, and bf16 on CUDA', () => {
    const cpu = cpuBf16Support();
    expect(resolved({ device: 'cpu' }).precision).toBe(cpu.avx512bf16 || cpu.amxBf16 ? 'bf16' : 'fp32');
    expect(resolved({ device: 'cuda:1' }).precision).toBe('bf16');
    expect(resolved({ device: 'cpu', precision: 'bf16' }).precision).toBe('bf16');
  });

  it('refuses fp16 on the CPU and unknown names', () => {
    expect(() => resolved({ device: 'cpu', precision: 'fp16' })).toThrow(/'fp16' needs a CUDA device/);
    expect(resolved({ device: 'cuda', precision: 'fp16' }).precision).toBe('fp16');
    expect(() => resolved({ precision: 'fp8' as never })).toThrow(RangeError);
    expect(() => resolveRun(null as never)).toThrow(/Expected an object of run settings for config but received null/);
    expect(() => resolveRun({ batchSize: 1 } as never)).toThrow(/for batchSize/);
  });

  it('is channels-last on GPUs and with bf16, contiguous for fp32 on the CPU', () => {
    expect(resolved({ device: 'cpu', precision: 'fp32' }).memoryFormat).toBe('contiguous');
    expect(resolved({ device: 'cpu', precision: 'bf16' }).memoryFormat).toBe('channelsLast');
    expect(resolved({ device: 'cuda', precision: 'fp32' }).memoryFormat).toBe('channelsLast');
    expect(resolved({ device: 'cuda', precision: 'bf16', memoryFormat: 'contiguous' }).memoryFormat).toBe('contiguous');
  });

  it('leaves a resolved config as it is, and building blocks refuse an unresolved \'auto\'', async () => {
    const once = resolved({ device: 'cpu' });
    expect(resolveRun(once)).toBe(once);
    expect(once.distBackend).toBe('gloo');
    const model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
    await expect(model.forward(Tensor.zeros([2, 3, 8, 8]), { precision: 'auto' as never })).rejects.toThrow(/'auto' is a run setting/);
  });
});

describe('channels-last', () => {
  it('gives the same encoder outputs as contiguous, to float32 rounding', async () => {
    manualSeed(5);
    const encoder = await Encoder.create({ backbone: 'resnet18', outDim: 0, stem: 'imagenet' });
    const x = Tensor.randn([4, 3, 40, 40]);
    encoder.eval();
    const plain = await encoder.forward(x, { precision: 'fp32', memoryFormat: 'contiguous' });
    const nhwc = await encoder.forward(x, { precision: 'fp32', memoryFormat: 'channelsLast' });
    expect(nhwc.shape).toEqual(plain.shape);
    expect(maxAbsDiff(plain, nhwc)).toBeLessThan(1e-5 * Math.max(1, maxAbs(plain)));
    // The model's weights stay usable both ways, and its state dict is unchanged in content.
    expect(maxAbsDiff(plain, await encoder.forward(x, { precision: 'fp32', memoryFormat: 'contiguous' }))).toBeLessThan(1e-5 * Math.max(1, maxAbs(plain)));
  });

  it('gives the same training step as contiguous, to float32 rounding', async () => {
    const [start] = await twins(6);
    const [a, b] = await twins(6);
    const views = Tensor.randn([8, 3, 16, 16]);
    const config = { optimizer: 'sgd', temperature: 0.5, precision: 'fp32' } as const;
    const lossA = (await createTrainStep(a, { ...config, memoryFormat: 'contiguous' }).step(views, 0.05)).loss;
    const lossB = (await createTrainStep(b, { ...config, memoryFormat: 'channelsLast' }).step(views, 0.05)).loss;
    expect(Math.abs(lossA - lossB)).toBeLessThan(1e-5 * lossA);
    // Each layout has its own convolution kernels (oneDNN's on an Intel CPU with AVX-512 gave 3e-4 apart after this
    // step, where an AVX2 CPU gives 1e-7): the two steps agree to a small share of the change the step makes.
    const { diff } = await stateDiff(a, b);
    const { diff: change } = await stateDiff(start, a);
    expect(change).toBeGreaterThan(1e-3);
    expect(diff).toBeLessThan(1e-2 * change);
  });
});

describe('bf16 forward', () => {
  it('returns float32 features close to the float32 ones (bfloat16 keeps 8 significant bits)', async () => {
    manualSeed(7);
    const encoder = await Encoder.create({ backbone: 'resnet18', outDim: 0, stem: 'cifar' });
    const x = Tensor.randn([4, 3, 8, 8]);
    const fp32 = await encoder.embed(x, { precision: 'fp32' });
    const bf16 = await encoder.embed(x, { precision: 'bf16', memoryFormat: 'contiguous' });
    expect(bf16.dtype).toBe('float32');
    // Relative to the features' norm. PyTorch's own torch.autocast('cpu', bfloat16) on this model (random weights, eval
    // mode, 8 px inputs) is off by 4.8-5.0 % (measured with torch 1.13): each of the ~20 layers rounds to 8 bits.
    const err = relativeError(fp32, bf16);
    expect(err).toBeGreaterThan(0);
    expect(err).toBeLessThan(0.08);
  });
});

describe('gradient accumulation', () => {
  it('applies the update on the k-th call only, with the mean gradient of the k micro-batches', async () => {
    const [a, b] = await twins(8);
    const views = Tensor.randn([8, 3, 8, 8]);
    const fixed = { temperature: 0.5, precision: 'fp32', memoryFormat: 'contiguous' } as const;
    const single = Optimizer.create(a, { optimizer: 'sgd', momentum: 0 });
    expect((await trainStep(a, views, { ...fixed, optimizer: single, lr: 0.1 })).applied).toBe(true);
    const accumulating = Optimizer.create(b, { optimizer: 'sgd', momentum: 0 });
    const first = await trainStep(b, views, { ...fixed, optimizer: accumulating, lr: 0.1, accumulationSteps: 2 });
    expect(first.applied).toBe(false);
    const second = await trainStep(b, views, { ...fixed, optimizer: accumulating, lr: 0.1, accumulationSteps: 2 });
    expect(second.applied).toBe(true);
    expect(accumulating.state().steps).toBe(1);
    // Two equal micro-batches: their mean gradient is the single batch's (BatchNorm's running statistics differ, its
    // weights and biases do not).
    const sa = await a.stateDict();
    const sb = await b.stateDict();
    for (const key of Object.keys(sa).filter((k) => !/running_|num_batches/.test(k))) {
      expect(maxAbsDiff(sa[key], sb[key])).toBeLessThan(1e-5 * Math.max(1, maxAbs(sa[key])));
    }
  });
});

describe('views at several resolutions (multi-crop)', () => {
  it('computes NT-Xent over every view of an image as positives, whatever its resolution', async () => {
    manualSeed(9);
    const model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
    const large = Tensor.randn([8, 3, 16, 16]); // 2 views of 4 images
    const small = Tensor.randn([8, 3, 8, 8]); // 2 more views of the same 4 images
    model.train();
    const z1 = (await model.forward(large, { precision: 'fp32', memoryFormat: 'contiguous' })).z;
    const z2 = (await model.forward(small, { precision: 'fp32', memoryFormat: 'contiguous' })).z;
    const z = Tensor.fromTypedArray(Float32Array.from([...z1.toFloat32Array(), ...z2.toFloat32Array()]), [16, z1.shape[1]]);
    const expected = (await ntXent(z, { temperature: 0.5, views: 4 })).loss;
    const optimizer = Optimizer.create(model, { optimizer: 'sgd' });
    const { loss } = await trainStep(model, [large, small], { optimizer, lr: 0.1, temperature: 0.5, views: 4, precision: 'fp32', memoryFormat: 'contiguous' });
    expect(Math.abs(loss - expected)).toBeLessThan(1e-5 * expected);
  });

  it('rejects groups whose rows do not divide into the same images', async () => {
    const model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
    const optimizer = Optimizer.create(model, { optimizer: 'sgd' });
    await expect(trainStep(model, [Tensor.randn([8, 3, 8, 8]), Tensor.randn([6, 3, 8, 8])], { optimizer, lr: 0.1, temperature: 0.5, views: 4, precision: 'fp32' }))
      .rejects.toThrow(/not a multiple of|views of at least/);
  });
});

describe('bf16 views', () => {
  const images = Tensor.fromTypedArray(Uint8Array.from({ length: 4 * 12 * 12 * 3 }, (_, i) => (i * 37 + (i >> 5)) % 256), [4, 12, 12, 3]);
  const augment = { size: 8, blur: { probability: 0.5 } };

  it('train a bf16 step exactly as the float32 views that autocast rounds to bf16: same loss, same weights', async () => {
    const float32 = await new Augmenter(augment, { seed: 2 }).views(images);
    const bf16 = await new Augmenter(augment, { seed: 2 }).views(images, { dtype: 'bfloat16' });
    expect([float32.dtype, bf16.dtype]).toEqual(['float32', 'bfloat16']);
    expect(bf16.byteLength).toBe(float32.byteLength / 2);
    const step = async (views: Tensor, precision: 'fp32' | 'bf16') => {
      manualSeed(6);
      const model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
      const optimizer = Optimizer.create(model, { optimizer: 'sgd' });
      const { loss } = await trainStep(model, [views], { optimizer, lr: 0.1, temperature: 0.5, precision, memoryFormat: 'contiguous' });
      return { loss, weights: values((await model.stateDict())['encoder.conv1.weight']) };
    };
    const fromFloat32 = await step(float32, 'bf16');
    const fromBf16 = await step(bf16, 'bf16');
    expect(fromBf16.loss).toBe(fromFloat32.loss);
    expect(Buffer.from(fromBf16.weights.buffer).equals(Buffer.from(fromFloat32.weights.buffer))).toBe(true);
    // An fp32 step takes bf16 views too (widened to float32): the loss of the rounded inputs, close to the float32 one.
    const fp32 = await step(float32, 'fp32');
    const fp32FromBf16 = await step(bf16, 'fp32');
    expect(fp32FromBf16.loss).not.toBe(fp32.loss);
    expect(Math.abs(fp32FromBf16.loss - fp32.loss)).toBeLessThan(0.02 * fp32.loss);
  });

  it('are asked for by name: an unknown dtype is a RangeError that lists the three', async () => {
    await expect(new Augmenter(augment, { seed: 2 }).views(images, { dtype: 'int8' as never }))
      .rejects.toThrow(/Expected one of float32, bfloat16, float16 for dtype/);
  });
});

describe('a bf16 run', () => {
  it('resumed after an interruption gives the same losses as an uninterrupted run', async () => {
    const base: Partial<RunConfig> = {
      data: 'fashion-mnist', subset: 16, batchSize: 8, epochs: 2, baseSize: 8, imageSize: 8, stem: 'cifar',
      knnEvery: 0, workers: 1, seed: 4, lr: 0.3, precision: 'bf16', memoryFormat: 'channelsLast',
    };
    const losses = (dir: string) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean)
      .map((l) => JSON.parse(l)).filter((r) => r.step !== undefined).map((r) => [r.step, r.loss]);
    const whole = tmp();
    const parts = tmp();
    await runTraining({ ...base, out: whole }, { progress: 'none' });
    const stop = new AbortController();
    // Stopped mid-epoch 1 (2 steps an epoch): the resume restores the bf16 model, optimiser and data position there.
    await runTraining({ ...base, out: parts }, { progress: 'none', signal: stop.signal, onStep: (r) => r.step === 1 && stop.abort() });
    await runTraining({ ...base, out: parts }, { progress: 'none', resume: true });
    expect(losses(parts)).toEqual(losses(whole));
    expect(losses(whole).length).toBe(4);
  });
});
