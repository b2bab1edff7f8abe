/**
 * The CUDA path end to end (issue 13, item 1), on the device SIMCLR_TEST_DEVICE names ('cpu' by default; bench/gpu/run.sh
 * runs the suite with 'cuda'). The CPU is the reference for results computed on a GPU (the CPU path itself is checked
 * against PyTorch by the other test files); behaviours that only a GPU shows are skipped, with the reason in the name,
 * where the tests run on the CPU.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  Augmenter, Encoder, SimCLRModel, Tensor, cuda, knnPredict, linearProbe, manualSeed, readCheckpoint, writeCheckpoint,
} from '../src';
import { native } from '../src/native';
import { createTrainStep, TrainStepConfig } from '../src/ops/train-step';
import { splitTrainingTensors, trainingTensors } from '../src/train/checkpoint';
import { onCuda, testDevice } from './helpers/device';
import { relativeError } from './helpers/numerics';

const gpuOnly = onCuda ? it : it.skip;
const cpuMachineOnly = cuda.isAvailable() ? it.skip : it;

const relative = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

function randomBytes(length: number, seed: number): Uint8Array {
  let state = seed >>> 0;
  return Uint8Array.from({ length }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state >>> 24;
  });
}

/** A small SimCLR model (ResNet-18, CIFAR stem) with the same weights on every device. */
async function smallModel(device: string, init?: Record<string, Tensor>): Promise<SimCLRModel> {
  manualSeed(11);
  const model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar', head: { hiddenDim: 64, outDim: 32 }, device });
  if (init) await model.loadStateDict(init, { strict: true });
  return model;
}

/** Views drawn on the CPU (the same numbers for every device), then placed on `device`. */
function views(device: string, batch = 4, size = 16): Tensor {
  manualSeed(5);
  return Tensor.randn([2 * batch, 3, size, size]).to(device);
}

// Small enough that rounding differences between two implementations stay at rounding level over a few steps on the
// same views (at 0.05 the loss falls fast and a 1e-7 difference after two steps grows to 5e-4 at the third).
const LR = 0.005;
const SGD: TrainStepConfig = { optimizer: 'sgd', momentum: 0.9, weightDecay: 1e-4, temperature: 0.5, precision: 'fp32', memoryFormat: 'contiguous' };

describe('CUDA settings and host memory', () => {
  // First in this file: once the program has chosen (cuda.setCudnnBenchmark), placing a model changes nothing.
  it(`a model placed on ${testDevice} turns benchmark mode on only if that is a CUDA device`, async () => {
    native.setCudnnBenchmark(false); // the native setter: not a choice of the program's
    await Encoder.create({ backbone: 'resnet18', outDim: 0, stem: 'cifar', device: testDevice });
    expect(cuda.cudnnBenchmark()).toBe(onCuda);
  });

  it("cuDNN's benchmark mode is a process setting the program reads and changes, and then keeps", async () => {
    cuda.setCudnnBenchmark(false);
    expect(cuda.cudnnBenchmark()).toBe(false);
    await Encoder.create({ backbone: 'resnet18', outDim: 0, stem: 'cifar', device: testDevice });
    expect(cuda.cudnnBenchmark()).toBe(false);
    cuda.setCudnnBenchmark(true);
    expect(cuda.cudnnBenchmark()).toBe(true);
    expect(() => cuda.setCudnnBenchmark(1 as never)).toThrowKind('TypeError', 'enabled');
  });

  cpuMachineOnly('refuses pinned host memory clearly where there is no CUDA', () => {
    expect(() => Tensor.fromTypedArray(new Uint8Array(6), [2, 3], { pinMemory: true })).toThrowKind('RangeError', 'pinMemory needs CUDA');
    expect(Tensor.fromTypedArray(new Uint8Array(6), [2, 3]).pinned).toBe(false);
    expect(() => Tensor.fromTypedArray(new Uint8Array(6), [2, 3], { pinMemory: 'yes' as never })).toThrowKind('TypeError', 'pinMemory');
  });

  gpuOnly('puts a batch in pinned host memory and uploads it unchanged', () => {
    const data = randomBytes(2 * 5 * 7 * 3, 1);
    const pinned = Tensor.fromTypedArray(data, [2, 5, 7, 3], { pinMemory: true });
    expect(pinned.pinned).toBe(true);
    expect(pinned.device).toBe('cpu');
    expect(Tensor.fromTypedArray(data, [2, 5, 7, 3]).pinned).toBe(false);
    const uploaded = pinned.to(testDevice);
    expect(uploaded.device).toMatch(/^cuda/);
    expect(uploaded.pinned).toBe(false);
    expect(uploaded.toTypedArray()).toEqual(data);
    expect(() => Tensor.fromTypedArray(data, [2, 5, 7, 3], { device: testDevice, pinMemory: true })).toThrowKind('RangeError', 'CPU tensors');
  });

  it('synchronize and the memory statistics take CUDA devices only', () => {
    expect(() => cuda.synchronize('cpu')).toThrowKind('RangeError', "'cuda' or 'cuda:<index>'");
    expect(() => cuda.memoryStats('cpu')).toThrowKind('RangeError', "'cuda' or 'cuda:<index>'");
    expect(() => cuda.resetPeakMemoryStats(3 as never)).toThrowKind('TypeError', 'device');
    if (!cuda.isAvailable()) expect(() => cuda.synchronize()).toThrow(/CUDA/);
  });

  gpuOnly("counts a tensor's bytes in the allocator's statistics, with a peak that resets", () => {
    cuda.synchronize(testDevice);
    const start = cuda.memoryStats(testDevice);
    const t = Tensor.zeros([1 << 20], { device: testDevice }); // 4 MiB
    const held = cuda.memoryStats(testDevice);
    expect(held.allocated - start.allocated).toBeGreaterThanOrEqual(4 << 20);
    expect(held.peakAllocated).toBeGreaterThanOrEqual(held.allocated);
    expect(held.reserved).toBeGreaterThanOrEqual(held.allocated);
    t.dispose();
    cuda.resetPeakMemoryStats(testDevice);
    const after = cuda.memoryStats(testDevice);
    expect(after.peakAllocated).toBe(after.allocated);
    expect(after.allocated).toBeLessThan(held.allocated);
  });
});

describe(`end to end on ${testDevice}`, () => {
  it('keeps tensor data exact through the device and back', () => {
    const data = Float64Array.from({ length: 24 }, (_, i) => Math.sin(i) * 1e3);
    const t = Tensor.fromTypedArray(data, [2, 3, 4], { device: testDevice });
    expect(t.device).toBe(testDevice === 'cuda' ? 'cuda:0' : testDevice);
    expect(t.to('cpu').toTypedArray()).toEqual(data);
    expect(t.to('cpu').to(testDevice).toTypedArray()).toEqual(data);
  });

  it('augments a uint8 batch on the device (the batched ATen path) as the fused CPU kernels do', async () => {
    const [B, h, w] = [5, 40, 36];
    const data = randomBytes(B * h * w * 3, 2);
    const augmenter = new Augmenter({ size: 24, grayscaleProbability: 0.5 }, { seed: 4 });
    const state = augmenter.getState();
    const fused = await augmenter.views(Tensor.fromTypedArray(data, [B, h, w, 3]));
    augmenter.setState(state);
    const params = augmenter.sample(B, h, w);
    const { size, blur, normalize } = augmenter.config;
    const options = { size, blurKernel: blur.kernelSize, mean: normalize.mean, std: normalize.std, device: testDevice, generic: true };
    const source = onCuda ? Tensor.fromTypedArray(data, [B, h, w, 3], { pinMemory: true }) : Tensor.fromTypedArray(data, [B, h, w, 3]);
    const onDevice = new Tensor(await native.augmentViews(source.handle, params, options));
    expect(onDevice.shape).toEqual([2 * B, 3, 24, 24]);
    expect(onDevice.device.startsWith(testDevice)).toBe(true);
    // As test/augment.test.ts measured for the generic path against torchvision: 6.2e-5 on normalised values.
    const expected = fused.toFloat32Array();
    const diff = Math.max(...Array.from(onDevice.toFloat32Array(), (v, i) => Math.abs(v - expected[i])));
    expect(diff).toBeLessThanOrEqual(1e-4);
  });

  it('takes three SGD steps in channels-last on the device with the losses of contiguous steps on the CPU', async () => {
    const reference = await smallModel('cpu');
    const init = await reference.stateDict();
    const subject = await smallModel(testDevice, init);
    const cpuStep = createTrainStep(reference, SGD);
    const deviceStep = createTrainStep(subject, { ...SGD, memoryFormat: 'channelsLast' });
    for (let i = 0; i < 3; i++) {
      const expected = (await cpuStep.step(views('cpu'), LR)).loss;
      const actual = (await deviceStep.step(views(testDevice), LR)).loss;
      // float32 on both. The first step is a forward of the same weights: rounding only (1e-7 on the CPU). After an
      // update the difference is BatchNorm's: its bias gradients are sums of cancelling terms, 1e-3 relative from
      // float32 rounding alone (4.7e-3 between LibTorch's fp32 BatchNorm and float64 on a model like this one). With
      // torch 2.15 on 2 CPU threads the NHWC and NCHW backward reduce in different orders: bias gradients 2.8e-3
      // apart after one step, losses 1.2e-7, 2.4e-5, 7.6e-4 apart over three (1 thread: 1.2e-7, 1.6e-6, 3.3e-7;
      // LibTorch 1.13: below 1e-6). A GPU's convolutions may use TF32 (LibTorch's default for cuDNN), ~1e-3 relative.
      expect(relative(actual, expected)).toBeLessThan(i === 0 && !onCuda ? 1e-5 : 1e-2);
    }
  });

  gpuOnly('trains in bf16 and in fp16 (with its loss scaler) under autocast, following the float32 losses', async () => {
    const reference = await smallModel('cpu');
    const init = await reference.stateDict();
    const cpuStep = createTrainStep(reference, SGD);
    const expected: number[] = [];
    for (let i = 0; i < 3; i++) expected.push((await cpuStep.step(views('cpu'), LR)).loss);
    for (const precision of ['bf16', 'fp16'] as const) {
      const step = createTrainStep(await smallModel(testDevice, init), { ...SGD, precision, memoryFormat: 'channelsLast' });
      const results = [];
      for (let i = 0; i < 3; i++) results.push(await step.step(views(testDevice), LR));
      // The first loss is the forward pass alone (bf16 keeps 8 bits of mantissa, fp16 11); later ones follow the
      // updates, which fp16 skips while its loss scaler finds its range (an overflowing step is not applied).
      expect(relative(results[0].loss, expected[0])).toBeLessThan(precision === 'bf16' ? 3e-2 : 1e-2);
      results.forEach((r) => expect(Number.isFinite(r.loss)).toBe(true));
      const applied = results.filter((r) => r.applied).length;
      expect(applied).toBeGreaterThanOrEqual(precision === 'bf16' ? 3 : 2);
      if (applied === 3) results.forEach((r, i) => expect(relative(r.loss, expected[i])).toBeLessThan(5e-2));
    }
  });

  it('resumes a checkpoint written on the device on the CPU, and one written on the CPU on the device', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-device-'));
    const save = async (file: string, model: SimCLRModel, step: ReturnType<typeof createTrainStep>) => {
      const optimizer = step.optimizerState();
      await writeCheckpoint(file, { meta: { steps: optimizer.steps }, tensors: trainingTensors(await model.stateDict(), optimizer.tensors) });
    };
    const resume = async (file: string, device: string) => {
      const { tensors, meta } = await readCheckpoint<{ steps: number }>(file);
      const state = splitTrainingTensors(tensors);
      const model = await smallModel(device, state.model);
      const step = createTrainStep(model, SGD);
      step.loadOptimizerState({ tensors: state.optimizer, steps: meta.steps });
      return { model, step };
    };
    // Uninterrupted: five steps on the device, a checkpoint after the second.
    const model = await smallModel(testDevice);
    const step = createTrainStep(model, SGD);
    const uninterrupted: number[] = [];
    for (let i = 0; i < 5; i++) {
      uninterrupted.push((await step.step(views(testDevice), LR)).loss);
      if (i === 1) await save(path.join(dir, 'device.ckpt'), model, step);
    }
    // Steps 3 and 4 on the CPU from the device's checkpoint, then step 5 back on the device from the CPU's.
    const onCpu = await resume(path.join(dir, 'device.ckpt'), 'cpu');
    const resumed = [(await onCpu.step.step(views('cpu'), LR)).loss, (await onCpu.step.step(views('cpu'), LR)).loss];
    await save(path.join(dir, 'cpu.ckpt'), onCpu.model, onCpu.step);
    const back = await resume(path.join(dir, 'cpu.ckpt'), testDevice);
    expect(back.model.device.startsWith(testDevice)).toBe(true);
    resumed.push((await back.step.step(views(testDevice), LR)).loss);
    fs.rmSync(dir, { recursive: true, force: true });
    resumed.forEach((loss, i) => expect(relative(loss, uninterrupted[i + 2])).toBeLessThan(onCuda ? 5e-3 : 1e-6));
  });

  gpuOnly('embeds on the device as on the CPU (eval mode, float32)', async () => {
    const reference = await smallModel('cpu');
    const subject = await smallModel(testDevice, await reference.stateDict());
    const x = views('cpu', 3, 24);
    const expected = await reference.eval().embed(x, { precision: 'fp32', memoryFormat: 'contiguous' });
    const actual = await subject.eval().embed(x.to(testDevice), { precision: 'fp32', memoryFormat: 'contiguous' });
    expect(actual.device.startsWith(testDevice)).toBe(true);
    expect(relativeError(actual.toFloat32Array(), expected.toFloat32Array())).toBeLessThan(5e-3);
  });

  gpuOnly('evaluates on the device (kNN monitor, linear probe) as on the CPU', async () => {
    manualSeed(3);
    const features = Tensor.randn([200, 16]);
    const labels = Tensor.fromTypedArray(BigInt64Array.from({ length: 200 }, (_, i) => BigInt(i % 4)), [200]);
    const query = Tensor.randn([50, 16]);
    const queryLabels = Tensor.fromTypedArray(BigInt64Array.from({ length: 50 }, (_, i) => BigInt(i % 4)), [50]);
    const cpu = await knnPredict({ features, labels }, query, { k: 5 });
    const gpu = await knnPredict({ features: features.to(testDevice), labels: labels.to(testDevice) }, query.to(testDevice), { k: 5 });
    expect(gpu.toTypedArray()).toEqual(cpu.toTypedArray());
    const split = (f: Tensor, l: Tensor, device: string) => ({ features: f.to(device), labels: l.to(device) });
    const probeCpu = await linearProbe(split(features, labels, 'cpu'), split(query, queryLabels, 'cpu'), { epochs: 5 });
    const probeGpu = await linearProbe(split(features, labels, testDevice), split(query, queryLabels, testDevice), { epochs: 5 });
    expect(Math.abs(probeGpu.trainAccuracy - probeCpu.trainAccuracy)).toBeLessThanOrEqual(0.02);
  });
});
