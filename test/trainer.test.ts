/**
 * The training step and loop: one native step equals PyTorch (same weights, views, loss and optimiser), a resumed run
 * equals an uninterrupted one, and a short last batch trains end to end.
 */
import * as fs from 'fs';
import * as path from 'path';
import { native } from '../src/native';
import { createTrainStep, MAX_ACCUMULATION_STEPS, MAX_MOMENTUM, OPTIMIZERS, Optimizer, TrainStepConfig, trainStep } from '../src/ops/train-step';
import { RUN_SETTINGS } from '../src/run/config';
import sharp from 'sharp';
import { Tensor, manualSeed, SimCLRModel, runTraining, RunConfig, writeNpy, Trainer, createModel, trainingData, validateRunConfig, fashionMnist, Subset, resolveRun, readSessions, readCheckpointHeader, CheckpointMeta, getNumThreads } from '../src';
import { describeWithOracle, runPython } from './helpers/oracle';
import { evaluate, evaluationSplits, featuresOf } from '../src/run/evaluate';
import { scratchFolders } from './helpers/scratch';

const tmp = scratchFolders('train');

const ORACLE = String.raw`
import json, sys
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F, torchvision
a = json.loads(sys.argv[1])
torch.set_num_threads(1)
o = a["options"]; wd = o.get("weightDecay", 0.0)
def loss_of(z, t):
    z = F.normalize(z, dim=1); n = z.shape[0] // 2
    s = z @ z.T / t; s.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(s, target)

def run(dtype, autocast=False):
    """The 3 steps in PyTorch; float64 gives the exact answer that float32 results are measured against. With
    autocast, the model runs under torch.autocast('cpu', bfloat16) and the loss in float32, as simclr's bf16 step."""
    m = torchvision.models.resnet18()
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False); m.maxpool = nn.Identity(); m.fc = nn.Identity()
    model = nn.Module(); model.encoder = m; model.head = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 128))
    model.load_state_dict(torch.load(a["init"]), strict=True)
    model.to(dtype).train()
    views = torch.from_numpy(np.load(a["views"])).to(dtype)
    params = [p for p in model.parameters()]
    decay = [p for p in params if p.dim() > 1]; no_decay = [p for p in params if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
    if o["optimizer"] == "sgd":
        opt = torch.optim.SGD(groups, lr=1.0, momentum=o["momentum"], nesterov=o.get("nesterov", False))
    elif o["optimizer"] == "adamw":
        opt = torch.optim.AdamW(groups, lr=1.0, betas=(0.9, 0.999), eps=o.get("eps", 1e-8))
    else:
        opt = None
        bufs = {id(p): torch.zeros_like(p) for p in params}
    losses = []
    for lr in a["lrs"]:
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            z = model.head(model.encoder(views))
        loss = loss_of(z.float() if autocast else z, o["temperature"])
        loss.backward(); losses.append(loss.item())
        if opt is not None:
            for g in opt.param_groups: g["lr"] = lr
            opt.step()
        else:
            with torch.no_grad():
                for p in params:
                    d = p.grad.clone(); scaled = lr
                    if p.dim() > 1:
                        d += wd * p
                        pn, gn = p.norm(), d.norm()
                        if pn > 0 and gn > 0: scaled = lr * 0.001 * (pn / gn).item()
                    bufs[id(p)].mul_(o["momentum"]).add_(d * scaled)
                    p.sub_(bufs[id(p)])
    return losses, model.state_dict()

ours = torch.load(a["ours"])
def max_diff(state, ref):
    return max((state[k].double() - ref[k].double()).abs().max().item() for k in ref if ref[k].is_floating_point())
if a.get("precision") == "bf16":
    # The yardstick of a bf16 step is PyTorch's own bf16 step against its float32 one.
    losses16, ref16 = run(torch.float32, autocast=True)
    losses32, ref32 = run(torch.float32)
    scale = max(ref32[k].abs().max().item() for k in ref32 if ref32[k].is_floating_point())
    print(json.dumps({"losses16": losses16, "losses32": losses32, "maxDiff": max_diff(ours, ref16),
                      "torchMaxDiff": max_diff(ref16, ref32), "scale": scale}))
else:
    losses32, ref32 = run(torch.float32)
    losses64, ref = run(torch.float64)
    scale = max(ref[k].abs().max().item() for k in ref if ref[k].is_floating_point())
    print(json.dumps({"losses32": losses32, "losses64": losses64, "maxDiff": max_diff(ours, ref), "torchMaxDiff": max_diff(ref32, ref), "scale": scale}))
`;

describeWithOracle('native training step against PyTorch', (python) => {
  it.each([
    ['SGD with Nesterov momentum and weight decay', { optimizer: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 5e-4, temperature: 0.5 }],
    // A larger eps: with the default 1e-8, Adam's first steps turn rounding noise in near-zero gradients into full
    // ±lr updates, which no two implementations share.
    ['AdamW', { optimizer: 'adamw', weightDecay: 0.05, eps: 1e-3, temperature: 0.2 }],
    ['LARS', { optimizer: 'lars', momentum: 0.9, weightDecay: 1e-6, temperature: 0.1 }],
  ] as [string, TrainStepConfig][])('%s: losses and updated weights match after 3 steps', async (_name, options) => {
    const dir = tmp();
    manualSeed(11);
    const model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
    await model.saveStateDict(path.join(dir, 'init.pt'));
    const views = Tensor.randn([8, 3, 8, 8]);
    await writeNpy(path.join(dir, 'views.npy'), Float32Array.from(views.toFloat32Array()), views.shape);
    const trainer = createTrainStep(model, { ...options, precision: 'fp32', memoryFormat: 'contiguous' });
    // Moderate rates: a small batch with BatchNorm amplifies float rounding differences step by step at large ones.
    const lrs = options.optimizer === 'adamw' ? [1e-3, 2e-3, 5e-4] : [0.01, 0.02, 0.005];
    const losses: number[] = [];
    for (const lr of lrs) losses.push((await trainer.step(views, lr)).loss);
    await model.saveStateDict(path.join(dir, 'ours.pt'));
    const ref = JSON.parse(runPython(python, ORACLE, {
      init: path.join(dir, 'init.pt'), views: path.join(dir, 'views.npy'), ours: path.join(dir, 'ours.pt'), options, lrs,
    }));
    // Our float32 error against float64 is at most PyTorch's own float32 error (x4) plus 1e-4 (of the weights' scale):
    // BatchNorm over a batch of 8 at 1x1 in layer4 amplifies rounding, in any implementation.
    for (let i = 0; i < lrs.length; i++) {
      expect(Math.abs(losses[i] - ref.losses64[i])).toBeLessThan(1e-4 + 4 * Math.abs(ref.losses32[i] - ref.losses64[i]));
    }
    expect(ref.maxDiff).toBeLessThan(1e-4 * Math.max(1, ref.scale) + 4 * ref.torchMaxDiff);
  });

  it('bf16: losses and updated weights match torch.autocast(cpu, bfloat16) after 3 SGD steps', async () => {
    const dir = tmp();
    manualSeed(12);
    const model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
    await model.saveStateDict(path.join(dir, 'init.pt'));
    const views = Tensor.randn([8, 3, 8, 8]);
    await writeNpy(path.join(dir, 'views.npy'), Float32Array.from(views.toFloat32Array()), views.shape);
    const options = { optimizer: 'sgd', momentum: 0.9, weightDecay: 5e-4, temperature: 0.5 } as const;
    const trainer = createTrainStep(model, { ...options, precision: 'bf16', memoryFormat: 'contiguous' });
    const lrs = [0.01, 0.02, 0.005];
    const losses: number[] = [];
    for (const lr of lrs) losses.push((await trainer.step(views, lr)).loss);
    await model.saveStateDict(path.join(dir, 'ours.pt'));
    const ref = JSON.parse(runPython(python, ORACLE, {
      init: path.join(dir, 'init.pt'), views: path.join(dir, 'views.npy'), ours: path.join(dir, 'ours.pt'), options, lrs, precision: 'bf16',
    }));
    // bfloat16 keeps 8 significant bits (relative rounding up to 2^-8 = 0.4 % per cast), and two implementations round
    // different intermediate values (our 1x1-output convolutions are matrix products), so ours is held to PyTorch's
    // own bf16 error against float32, twice over, plus 1e-3 of the weights' scale; the losses to 2 % of the loss.
    for (let i = 0; i < lrs.length; i++) {
      expect(Math.abs(losses[i] - ref.losses16[i])).toBeLessThan(0.02 * ref.losses32[i] + 2 * Math.abs(ref.losses16[i] - ref.losses32[i]));
    }
    expect(ref.maxDiff).toBeLessThan(1e-3 * Math.max(1, ref.scale) + 2 * ref.torchMaxDiff);
    // And bf16 is really in use: its losses are not the float32 ones.
    expect(losses.some((l, i) => l !== ref.losses32[i])).toBe(true);
  });
});

describe('native training step arguments', () => {
  it('takes the optimiser names and the limits from native code, where each is defined once', () => {
    expect([...OPTIMIZERS]).toEqual([...native.optimizerNames]);
    expect([MAX_MOMENTUM, MAX_ACCUMULATION_STEPS]).toEqual([0.999999, 2 ** 20]);
    expect([MAX_MOMENTUM, MAX_ACCUMULATION_STEPS]).toEqual([native.maxMomentum, native.maxAccumulationSteps]);
    expect([RUN_SETTINGS.momentum.max, RUN_SETTINGS.accumulationSteps.max]).toEqual([MAX_MOMENTUM, MAX_ACCUMULATION_STEPS]);
  });

  it('rejects bad options and inputs with clear errors', async () => {
    const model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
    // The native side takes complete options (no defaults of its own); the facade fills them the same way.
    const optimizerOptions = { optimizer: 'sgd', momentum: 0.9, nesterov: false, weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, trustCoefficient: 0.001 };
    const stepOptions = { lr: 0.1, temperature: 0.5, views: 2, precision: 'fp32', memoryFormat: 'contiguous', accumulationSteps: 1, stopRequested: false } as const;
    expect(() => native.createOptimizer(model.handle, { ...optimizerOptions, optimizer: 'rmsprop' })).toThrowKind('RangeError', "'sgd', 'adamw', 'lars'");
    expect(() => native.createOptimizer({} as never, optimizerOptions)).toThrowKind('TypeError');
    const optimizer = native.createOptimizer(model.handle, optimizerOptions);
    const step = (views: unknown, options: object = stepOptions) => native.trainStep(model.handle, optimizer, views as never, options as never);
    expect(() => step([Tensor.randn([4, 3, 8, 8]).handle], { ...stepOptions, temperature: 0 })).toThrowKind('RangeError', 'temperature');
    expect(() => step([Tensor.randn([3, 3, 8, 8]).handle])).toThrowKind('RangeError', '2 views of at least 2 images');
    expect(() => step([Tensor.randn([4, 1, 8, 8]).handle])).toThrowKind('RangeError', 'x 3 x H x W');
    expect(() => step([Tensor.randn([4, 3, 8, 8]).handle], { ...stepOptions, lr: -1 })).toThrowKind('RangeError', 'lr');
    expect(() => step([{}])).toThrowKind('TypeError', 'views');
    // The model's device is read under its lock, on the worker: an fp16 request on the CPU rejects the promise.
    await expect(step([Tensor.randn([4, 3, 8, 8]).handle], { ...stepOptions, precision: 'fp16' })).rejects.toThrow(/'fp16' needs a CUDA device/);
    expect(() => step([Tensor.randn([4, 3, 8, 8]).handle], { ...stepOptions, precision: 'fp8' })).toThrowKind('RangeError', "'fp32', 'bf16', 'fp16'");
    const other = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
    expect(() => native.trainStep(other.handle, optimizer, [Tensor.randn([4, 3, 8, 8]).handle], stepOptions)).toThrowKind('RangeError', 'another model');
    await expect(trainStep(model, Tensor.randn([4, 3, 8, 8]), { optimizer: Optimizer.create(model, { optimizer: 'sgd' }), lr: 0.1, temperature: 0.5, precision: 'fp16' }))
      .rejects.toThrow(/needs a CUDA device/);
  });
});

describe('training loop', () => {
  const base: Partial<RunConfig> = {
    data: 'fashion-mnist', subset: 40, batchSize: 8, epochs: 2, baseSize: 16, imageSize: 16,
    knnEvery: 0, workers: 1, seed: 3, lr: 0.3,
  };
  const stepLosses = (dir: string) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean)
    .map((l) => JSON.parse(l)).filter((r) => r.step !== undefined).map((r) => [r.step, r.loss]);

  it('resumed after an interruption mid-epoch, gives the same losses as an uninterrupted run', async () => {
    const whole = tmp();
    const parts = tmp();
    await runTraining({ ...base, out: whole }, { progress: 'none' });
    const stop = new AbortController();
    const first = await runTraining({ ...base, out: parts }, { progress: 'none', signal: stop.signal, onStep: (r) => r.step === 3 && stop.abort() });
    expect(first.interrupted).toBe(true);
    expect(first.steps).toBe(3);
    const second = await runTraining({ ...base, out: parts }, { progress: 'none', resume: true });
    expect(second.interrupted).toBe(false);
    expect(second.steps).toBe(10);
    expect(stepLosses(parts)).toEqual(stepLosses(whole));
    expect(fs.existsSync(path.join(parts, 'best.ckpt'))).toBe(true);
    expect(fs.existsSync(path.join(parts, 'report.html'))).toBe(true);
    // What 'auto' resolved to is recorded once per session: in metrics.jsonl, in the checkpoint beside the run's own
    // settings (kept as given, so that a resume elsewhere resolves afresh), and in the report, named beside 'auto'.
    const resolved = resolveRun(validateRunConfig({ ...base, out: parts }));
    const expected = { device: 'cpu', precision: resolved.precision, memoryFormat: resolved.memoryFormat, distBackend: 'gloo', threads: getNumThreads() };
    expect(readSessions(parts).map((r) => r.session)).toEqual([{ step: 0, ...expected }, { step: 3, ...expected }]);
    expect(readSessions(whole).map((r) => r.session)).toEqual([{ step: 0, ...expected }]);
    const { meta } = await readCheckpointHeader<CheckpointMeta>(path.join(parts, 'last.ckpt'));
    expect(meta.resolved).toEqual(expected);
    expect(meta.config).toMatchObject({ precision: 'auto', memoryFormat: 'auto', distBackend: 'auto' });
    const report = fs.readFileSync(path.join(whole, 'report.html'), 'utf8');
    expect(report).toContain(`<tr><th>precision</th><td>${resolved.precision} (auto)</td></tr>`);
    expect(report).toContain(`<tr><th>memoryFormat</th><td>${resolved.memoryFormat} (auto)</td></tr>`);
    expect(report).toContain(`<tr><th>threads</th><td>${getNumThreads()}</td></tr>`);
  });

  it('a run that fails before writing anything leaves no empty --out behind, and keeps a folder it found', async () => {
    const out = path.join(tmp(), 'new-run');
    await expect(runTraining({ ...base, data: path.join(tmp(), 'no-such-data'), subset: undefined, out }, { progress: 'none' })).rejects.toThrow();
    expect(fs.existsSync(out)).toBe(false);
    const existing = tmp();
    await expect(runTraining({ ...base, data: path.join(tmp(), 'no-such-data'), subset: undefined, out: existing }, { progress: 'none' })).rejects.toThrow();
    expect(fs.existsSync(existing)).toBe(true);
  });

  it('a run that fails before its first step leaves nothing that blocks the same command once the data is fixed', async () => {
    // The data opens, but no image of epoch 1 can be read: the run has begun its metrics and event file by then.
    const data = tmp();
    fs.mkdirSync(path.join(data, 'a'));
    for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(data, 'a', `${i}.png`), 'not a png');
    const out = path.join(tmp(), 'run');
    const config = { ...base, data, labels: 'none' as const, subset: undefined, knnEvery: 0, batchSize: 2, out };
    await expect(runTraining(config, { progress: 'none' })).rejects.toThrow(/no image of epoch 1 could be read/);
    expect(fs.existsSync(out)).toBe(false);
    // Nor in a folder it found: it keeps the folder and what else is there, not the stub of the failed run.
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
    await expect(runTraining(config, { progress: 'none' })).rejects.toThrow(/no image of epoch 1 could be read/);
    expect(fs.readdirSync(out)).toEqual(['notes.txt']);
    // A stub left by a kill before step 1 (metrics.jsonl with its session record alone, an event file) blocks no retry.
    fs.writeFileSync(path.join(out, 'metrics.jsonl'), '{"session":{"step":0}}\n');
    fs.writeFileSync(path.join(out, 'events.out.tfevents.1.host'), '');
    for (let i = 0; i < 6; i++) await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 40 * i, g: 9, b: 9 } } }).png().toFile(path.join(data, 'a', `${i}.png`));
    const run = await runTraining({ ...config, epochs: 1 }, { progress: 'none' });
    expect(run.steps).toBe(3);
  });

  it('resuming a finished run trains nothing and says so, with the loss it ended on', async () => {
    const out = tmp();
    const whole = await runTraining({ ...base, epochs: 1, out }, { progress: 'none' });
    const files = () => fs.readdirSync(out).filter((f) => f.startsWith('events.')).map((f) => [f, fs.readFileSync(path.join(out, f))]);
    const [metrics, events] = [fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8'), files()];
    const again = await runTraining({ ...base, epochs: 1, out }, { progress: 'none', resume: true });
    expect([again.alreadyComplete, again.steps, again.interrupted]).toEqual([true, whole.steps, false]);
    // It leaves no trace in the run's records: no session record, no event file.
    expect(fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')).toBe(metrics);
    expect(files()).toEqual(events);
    expect(again.lastLoss).toBe(whole.lastLoss);
    expect(whole.alreadyComplete).toBeUndefined();
  });

  it('refuses to resume on data that changed, or with another number of workers, saying which and how to resume', async () => {
    const folder = tmp();
    for (const name of ['a', 'b']) fs.mkdirSync(path.join(folder, name));
    const image = (i: number) => sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 9 * i, g: 255 - 9 * i, b: 3 * i } } }).png().toBuffer();
    for (let i = 0; i < 24; i++) fs.writeFileSync(path.join(folder, i % 2 ? 'a' : 'b', `${i}.png`), await image(i));
    const config = { ...base, data: folder, subset: undefined, out: tmp() };
    const stop = new AbortController();
    const first = await runTraining(config, { progress: 'none', signal: stop.signal, onStep: (r) => r.step === 1 && stop.abort() });
    expect(first.interrupted).toBe(true);
    // Another worker count: the checkpoint's record rewritten as a 2-worker run's (header and its checksum).
    const last = path.join(config.out, 'last.ckpt');
    const original = fs.readFileSync(last);
    const headerBytes = Number(original.readBigUInt64LE(16));
    const header = original.toString('utf8', 24, 24 + headerBytes);
    expect(JSON.parse(header).meta).toMatchObject({ worldSize: 1, images: 24 });
    const twoWorkers = Buffer.from(header.replace('"worldSize":1,', '"worldSize":2,'));
    const prefix = Buffer.from(original.subarray(0, 24));
    prefix.writeUInt32LE(require('zlib').crc32(twoWorkers), 12);
    fs.writeFileSync(last, Buffer.concat([prefix, twoWorkers, original.subarray(24 + headerBytes)]));
    await expect(runTraining(config, { progress: 'none', resume: true })).rejects
      .toThrow(/was written by a run of 2 worker\(s\), and this one has 1: the images per step, and with them the learning rate, would change mid-run\. Resume with 2 worker\(s\) \(--nproc-per-node 2\)/);
    fs.writeFileSync(last, original);
    // Images added to the folder since.
    fs.writeFileSync(path.join(folder, 'a', 'new.png'), await image(30));
    await expect(runTraining(config, { progress: 'none', resume: true })).rejects
      .toThrow('--resume: the run trained on 24 images and its data now has 25: images were added since it started');
    fs.rmSync(path.join(folder, 'a', 'new.png'));
    expect((await runTraining(config, { progress: 'none', resume: true })).steps).toBe(6);

    // Behind a --subset the size stays 16 when images are added, but the seeded draw holds other images.
    const subset = { ...config, subset: 16, out: tmp() };
    const stopSubset = new AbortController();
    await runTraining(subset, { progress: 'none', signal: stopSubset.signal, onStep: (r) => r.step === 1 && stopSubset.abort() });
    fs.writeFileSync(path.join(folder, 'b', 'new.png'), await image(31));
    await expect(runTraining(subset, { progress: 'none', resume: true })).rejects
      .toThrow('--resume: the run drew its 16 images (--subset) from 24 and its data now has 25: images were added since it started, so the subset would hold other images');
    fs.rmSync(path.join(folder, 'b', 'new.png'));
    expect((await runTraining(subset, { progress: 'none', resume: true })).steps).toBe(4);
  });

  it("keeps the final kNN monitor's features on request: those of the trained model, which evaluate then reuses", async () => {
    const config = { ...base, knnEvery: 1, evalSubset: 24, out: tmp() };
    const run = await runTraining(config, { progress: 'none', keepMonitorFeatures: true });
    const kept = run.monitorFeatures!;
    expect(kept.bank.features.shape).toEqual([24, 512]);
    run.model.eval();
    const splits = evaluationSplits(run.config)!;
    const fresh = await featuresOf(run.model, splits, run.config);
    expect(kept.bank.features.toFloat32Array()).toEqual(fresh.bank.features.toFloat32Array());
    expect(kept.query.features.toFloat32Array()).toEqual(fresh.query.features.toFloat32Array());
    expect(kept.query.labels.toTypedArray()).toEqual(fresh.query.labels.toTypedArray());
    const last = run.records.filter((r) => !('step' in r)).pop() as { knnAccuracy: number };
    const reused = await evaluate(run.model, run.config, splits, kept);
    expect(reused).toEqual(await evaluate(run.model, run.config, splits));
    expect(reused.knnAccuracy).toBe(last.knnAccuracy);
    expect(kept.bank.features.disposed && kept.query.features.disposed).toBe(true); // evaluate freed what it was given
    // Without the option the monitor frees its features (one epoch: the monitor runs at its end all the same).
    expect((await runTraining({ ...config, epochs: 1, subset: 16, out: tmp() }, { progress: 'none' })).monitorFeatures).toBeUndefined();
  });

  it('drops the short last batch by default (10 images in batches of 4: 4, 4)', async () => {
    const out = tmp();
    const run = await runTraining({ ...base, subset: 10, batchSize: 4, epochs: 1, out }, { progress: 'none' });
    expect(run.steps).toBe(2);
    expect(run.records.filter((r) => 'step' in r).map((r) => (r as { images?: number }).images)).toEqual([4, 4]);
  });

  it('trains through a short last batch with dropLast false (10 images in batches of 4: 4, 4, 2)', async () => {
    const out = tmp();
    const run = await runTraining({ ...base, subset: 10, batchSize: 4, epochs: 1, dropLast: false, out }, { progress: 'none' });
    expect(run.steps).toBe(3);
    expect(Number.isFinite(run.lastLoss)).toBe(true);
  });

  describe('one model, one fit', () => {
    const config = validateRunConfig({ ...base, epochs: 1 });
    const dataset = () => Subset.random(fashionMnist('train', { size: config.baseSize }), config.subset!, config.seed);
    const trainerFor = async (model: SimCLRModel, out: string, onStep?: () => void) =>
      new Trainer(model, trainingData(dataset(), config), { ...resolveRun(config), out, progress: 'none', onStep });
    const losses = (result: { records: { step?: number; loss: number }[] }) => result.records.filter((r) => r.step !== undefined).map((r) => r.loss);
    // The undisturbed fit both tests compare with, trained once (by whichever test runs first).
    let undisturbed: ReturnType<Trainer['fit']> | undefined;
    const quietFit = async () => (undisturbed ??= (await trainerFor(await createModel(config), tmp())).fit());

    it('eval(), train() and embed() during fit leave its losses unchanged: each step runs in train mode, under the model lock', async () => {
      const quiet = await quietFit();
      const model = await createModel(config);
      const probe = Tensor.randn([2, 3, 16, 16]);
      const pending: Promise<unknown>[] = [];
      // Between steps the model is left in eval mode, embeds (which switch to eval mode inside) race the next step,
      // and the mode flips all the while.
      const hammer = setInterval(() => {
        model.train();
        model.eval();
      }, 1);
      const busy = await (await trainerFor(model, tmp(), () => {
        model.eval();
        pending.push(model.embed(probe).then((h) => h.dispose()), model.embed(probe).then((h) => h.dispose()));
      })).fit().finally(() => clearInterval(hammer));
      await Promise.all(pending);
      expect(pending.length).toBeGreaterThan(0);
      expect(losses(busy)).toEqual(losses(quiet));
    });

    it('a second fit on a model already in a fit is an error; the first trains on undisturbed', async () => {
      const quiet = await quietFit();
      const model = await createModel(config);
      const first = (await trainerFor(model, tmp())).fit();
      await expect((await trainerFor(model, tmp())).fit()).rejects.toThrow(/already being trained by another fit/);
      expect(losses(await first)).toEqual(losses(quiet));
      // Once the first has ended, the model trains again.
      expect((await (await trainerFor(model, tmp())).fit()).steps).toBe(quiet.steps);
    });
  });

  describe('unreadable images', () => {
    // `good` readable 16 px images in class folder 'x', then `bad` files that are not images.
    const folder = async (good: number, bad: number) => {
      const dir = tmp();
      fs.mkdirSync(path.join(dir, 'x'));
      for (let i = 0; i < good; i++) {
        await sharp(Buffer.alloc(16 * 16 * 3, 40 * i), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(path.join(dir, 'x', `${i}.png`));
      }
      for (let i = 0; i < bad; i++) fs.writeFileSync(path.join(dir, 'x', `bad${i}.png`), 'not a png');
      return dir;
    };
    // dropLast false: every file is read in every epoch, the unreadable one included.
    const run = (data: string, epochs: number) => runTraining({ ...base, data, subset: undefined, epochs, batchSize: 4, dropLast: false, out: tmp() }, { progress: 'none' });

    it('are reported when first skipped, once: later epochs that skip the same files say nothing', async () => {
      const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
      try {
        await run(await folder(6, 1), 3);
        const reports = warn.mock.calls.map((c) => String(c[0])).filter((m) => /skipped 1 unreadable image/.test(m));
        expect(reports).toHaveLength(1);
        expect(reports[0]).toMatch(/^simclr: skipped 1 unreadable image\(s\), e\.g\.:\n {2}.*bad0\.png[\s\S]*later epochs that skip the same files say nothing/);
      } finally {
        warn.mockRestore();
      }
    });

    it('in the kNN monitor\'s splits are reported once, naming the split, not an epoch', async () => {
      const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
      try {
        const data = await folder(9, 1);
        const run = await runTraining({ ...base, data, subset: undefined, epochs: 2, batchSize: 4, knnEvery: 1, evalSubset: 5, out: tmp() }, { progress: 'none' });
        // What an evaluation reports counts the images it used: the 9 readable ones.
        const evaluation = await evaluate(undefined, run.config);
        expect(evaluation.bankSize + evaluation.querySize).toBe(9);
        const said = warn.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('bad0.png'));
        // evalSubset 5: bank and queries hold all 10 files between them. The training loader's epoch-end report once, and
        // the monitor's (two epochs, the same splits each time) once.
        const monitor = said.filter((m) => / left out /.test(m));
        expect(monitor).toHaveLength(1);
        expect(monitor[0]).toMatch(/^simclr: the (kNN bank|evaluation queries) left out 1 unreadable image\(s\), e\.g\.:\n {2}\S*bad0\.png: /);
        expect(said.filter((m) => !/ left out /.test(m))).toHaveLength(1);
      } finally {
        warn.mockRestore();
      }
    });

    it('leaving fewer than 2 readable images is an error, not a run of 0 steps', async () => {
      const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
      try {
        await expect(run(await folder(1, 1), 1)).rejects.toThrow(/epoch 1 gave no batch of at least 2 readable images/);
        await expect(run(await folder(0, 2), 1)).rejects.toThrow(/no image of epoch 1 could be read/);
      } finally {
        warn.mockRestore();
      }
    });
  });
});
