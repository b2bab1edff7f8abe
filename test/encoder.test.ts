import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Backbones, Encoder, STEMS, SimCLRModel, Tensor, cuda, manualSeed, readStateDict, writeStateDict } from '../src';
import { native } from '../src/native';
import { spawnSync } from 'child_process';
import { CraftedTensor, deflatedZeros, stateDictZip, statePickle, zipOf } from './helpers/crafted-files';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-encoder-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const images = (n: number, size: number) => Tensor.randn([n, 3, size, size]);
const values = (t: Tensor) => Array.from(t.toFloat32Array());
/** Math's functions, looked up once: a global lookup in jest's sandbox is ~100x slower than in node, per element here. */
const { abs, max } = Math;
const maxAbsDiff = (a: Tensor, b: Tensor) => {
  const x = a.toFloat32Array();
  const y = b.toFloat32Array();
  expect(x.length).toBe(y.length);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = max(m, abs(x[i] - y[i]));
  return m;
};

describe('Backbones', () => {
  it('lists the five torchvision ResNets', () => {
    expect(Backbones.names).toEqual(['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152']);
    expect(Backbones.featureDim('resnet34')).toBe(512);
    expect(Backbones.featureDim('resnet101')).toBe(2048);
  });

  it('rejects an unknown backbone with an error that lists the known ones', async () => {
    await expect(Encoder.create({ backbone: 'resnet19' as never, outDim: 0 })).rejects.toThrow(
      "Backbone 'resnet19' not recognized. Available backbones: resnet18, resnet34, resnet50, resnet101, resnet152",
    );
    expect(() => native.createModel({ backbone: 'vgg16', outDim: 0, stem: 'imagenet', zeroInitResidual: false })).toThrowKind('RangeError', 'Expected one of resnet18, resnet34');
  });

  it('knows the same backbones as the native factory', () => {
    expect([...Backbones.names]).toEqual([...native.backboneNames]);
  });

  it('knows the same stems as the native factory', () => {
    expect([...STEMS]).toEqual([...native.stemNames]);
    const options = { backbone: 'resnet18', outDim: 0, zeroInitResidual: false };
    expect(() => native.createModel({ ...options, stem: 'tiny' })).toThrowKind('RangeError', "Expected one of 'imagenet', 'cifar' for options.stem");
  });

  it('the native factory has no defaults of its own: a missing option is an error naming it', () => {
    expect(() => native.createModel({ backbone: 'resnet18', outDim: 0, zeroInitResidual: false } as never)).toThrowKind('TypeError', 'options.stem');
    const head = { layers: 2, batchNorm: false };
    expect(() => native.createModel({ backbone: 'resnet18', outDim: 0, stem: 'imagenet', zeroInitResidual: false, head } as never)).toThrowKind('TypeError', 'outDim');
  });
});

describe('Encoder', () => {
  // torchvision's parameter counts with the 1000-way fc (sum of p.numel() over model.parameters()).
  it.each([
    ['resnet18', 11_689_512],
    ['resnet34', 21_797_672],
    ['resnet50', 25_557_032],
    ['resnet101', 44_549_160],
    ['resnet152', 60_192_808],
  ] as const)('%s with a 1000-way fc has %d parameters, as torchvision', async (backbone, count) => {
    const encoder = await Encoder.create({ backbone, outDim: 1000 });
    expect(encoder.parameterCount()).toBe(count);
  });

  it('replaces fc by Linear(in_features, outDim), or keeps the pooled features with outDim 0', async () => {
    const x = images(2, 64);
    expect((await (await Encoder.create({ backbone: 'resnet18', outDim: 10 })).forward(x)).shape).toEqual([2, 10]);
    const pooled = await Encoder.create({ backbone: 'resnet50', outDim: 0 });
    expect((await pooled.forward(x)).shape).toEqual([2, 2048]);
    expect(Object.keys(await pooled.stateDict()).some((k) => k.startsWith('fc.'))).toBe(false);
    expect(pooled.describe()).toMatchObject({ backbone: 'resnet50', featureDim: 2048, outDim: 0, stem: 'imagenet', head: null });
  });

  it('has torchvision state-dict keys and shapes, including BatchNorm buffers and downsample.0/1', async () => {
    const state = await (await Encoder.create({ backbone: 'resnet18', outDim: 10 })).stateDict();
    expect(Object.keys(state).length).toBe(122);
    expect(Object.keys(state).slice(0, 7)).toEqual([
      'conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked',
      'layer1.0.conv1.weight',
    ]);
    expect(state['conv1.weight'].shape).toEqual([64, 3, 7, 7]);
    expect(state['layer2.0.downsample.0.weight'].shape).toEqual([128, 64, 1, 1]);
    expect(state['layer2.0.downsample.1.running_var'].shape).toEqual([128]);
    expect(state['bn1.num_batches_tracked'].dtype).toBe('int64');
    expect(state['fc.weight'].shape).toEqual([10, 512]);
  });

  it('uses torchvision initialisation: BatchNorm weight 1 bias 0, Kaiming fan-out convolutions', async () => {
    manualSeed(3);
    const state = await (await Encoder.create({ backbone: 'resnet50', outDim: 0 })).stateDict();
    expect(new Set(values(state['layer1.0.bn3.weight']))).toEqual(new Set([1]));
    expect(new Set(values(state['bn1.bias']))).toEqual(new Set([0]));
    // kaiming_normal_(mode='fan_out', relu): std = sqrt(2 / (out_channels * k * k)) = sqrt(2 / (256 * 9)) for layer3 conv2
    const w = values(state['layer3.0.conv2.weight']);
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(std).toBeCloseTo(Math.sqrt(2 / (256 * 9)), 3);
  });

  it('zeroInitResidual zeroes the last BatchNorm weight of every residual branch', async () => {
    const basic = await (await Encoder.create({ backbone: 'resnet18', outDim: 0, zeroInitResidual: true })).stateDict();
    expect(new Set(values(basic['layer3.1.bn2.weight']))).toEqual(new Set([0]));
    expect(new Set(values(basic['layer3.1.bn1.weight']))).toEqual(new Set([1]));
    const bottleneck = await (await Encoder.create({ backbone: 'resnet50', outDim: 0, zeroInitResidual: true })).stateDict();
    expect(new Set(values(bottleneck['layer4.2.bn3.weight']))).toEqual(new Set([0]));
  });

  it("stem 'cifar' is a 3x3 stride-1 first convolution without max-pool", async () => {
    const encoder = await Encoder.create({ backbone: 'resnet18', outDim: 0, stem: 'cifar' });
    expect((await encoder.stateDict())['conv1.weight'].shape).toEqual([64, 3, 3, 3]);
    expect((await encoder.forward(images(2, 32))).shape).toEqual([2, 512]);
    expect(encoder.describe().stem).toBe('cifar');
  });

  it('updates BatchNorm running statistics in train mode only; embed runs in eval mode and keeps the mode', async () => {
    const encoder = await Encoder.create({ backbone: 'resnet18', outDim: 4 });
    expect(encoder.training).toBe(true);
    const x = images(4, 32);
    const runningMean = async () => values((await encoder.stateDict())['bn1.running_mean']);
    const before = await runningMean();
    await encoder.eval().forward(x);
    expect(await runningMean()).toEqual(before);
    const evalOut = await encoder.forward(x);
    await encoder.train().forward(x);
    const afterTrain = await runningMean();
    expect(afterTrain).not.toEqual(before);
    expect((await encoder.stateDict())['bn1.num_batches_tracked'].toTypedArray()).toEqual(new BigInt64Array([1n]));
    const h = await encoder.embed(x);
    expect(encoder.training).toBe(true);
    expect(await runningMean()).toEqual(afterTrain);
    // embed gives h = encoder(x) in eval mode: the same as an eval-mode forward, and the running statistics moved.
    expect(h.shape).toEqual([4, 4]);
    expect(maxAbsDiff(h, evalOut)).toBeGreaterThan(0);
    expect(maxAbsDiff(h, await encoder.eval().forward(x))).toBe(0);
  });

  it('reports and changes its device; CUDA is refused clearly where there is none', async () => {
    const encoder = await Encoder.create({ backbone: 'resnet18', outDim: 0, device: 'cpu' });
    expect(encoder.to('cpu').device).toBe('cpu');
    if (!cuda.isAvailable()) expect(() => encoder.to('cuda')).toThrow(/CUDA/);
  });

  it('casts to float64 and back with to(device, { dtype }); a float64 model takes float32 input and keeps its values', async () => {
    const encoder = await Encoder.create({ backbone: 'resnet18', outDim: 8, stem: 'cifar' });
    encoder.eval();
    const x = Tensor.randn([2, 3, 16, 16]);
    const before = (await encoder.forward(x)).toTypedArray() as Float32Array;
    expect(encoder.dtype).toBe('float32');
    expect(encoder.to('cpu', { dtype: 'float64' }).dtype).toBe('float64');
    expect((await encoder.stateDict())['conv1.weight'].dtype).toBe('float64');
    const exact = (await encoder.forward(x)).toTypedArray() as Float32Array;
    exact.forEach((v, i) => expect(Math.abs(v - before[i])).toBeLessThan(1e-4 * (1 + Math.abs(before[i]))));
    expect(encoder.to('cpu').dtype).toBe('float64'); // a move keeps the type
    expect(encoder.to('cpu', { dtype: 'float32' }).dtype).toBe('float32');
    expect(() => encoder.to('cpu', { dtype: 'int32' as never })).toThrowKind('RangeError', 'dtype');
  });

  it('rejects bad arguments with TypeError or RangeError', async () => {
    await expect(Encoder.create({ backbone: 'resnet18', outDim: -1 })).rejects.toThrow(RangeError);
    await expect(Encoder.create({ backbone: 'resnet18', outDim: 1.5 })).rejects.toThrow(RangeError);
    await expect(Encoder.create({ backbone: 'resnet18' } as never)).rejects.toThrow(TypeError);
    await expect(Encoder.create({ backbone: 'resnet18', outDim: 0, stem: 'tiny' as never })).rejects.toThrow(RangeError);
    await expect(Encoder.create({ backbone: 'resnet18', outDim: 0, device: 'tpu' })).toRejectKind('RangeError', 'device');
    const encoder = await Encoder.create({ backbone: 'resnet18', outDim: 0 });
    await expect(encoder.forward([1, 2] as never)).rejects.toThrow(TypeError);
    await expect(encoder.forward(Tensor.randn([2, 1, 32, 32]))).toRejectKind('Error', 'N x 3 x H x W');
    expect(() => encoder.to('gpu')).toThrowKind('RangeError');
    await expect(encoder.loadStateDict({ 'conv1.weight': 3 } as never)).rejects.toThrow(TypeError);
  });
});

describe('SimCLRModel', () => {
  it('gives h from the encoder and z from the default head Linear(d, d) -> ReLU -> Linear(d, 128)', async () => {
    const model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
    const { h, z } = await model.forward(images(3, 32));
    expect(h.shape).toEqual([3, 512]);
    expect(z.shape).toEqual([3, 128]);
    const state = await model.stateDict();
    expect(state['encoder.conv1.weight'].shape).toEqual([64, 3, 3, 3]);
    expect(state['head.0.weight'].shape).toEqual([512, 512]);
    expect(state['head.2.weight'].shape).toEqual([128, 512]);
    expect(Object.keys(state).filter((k) => k.startsWith('head.'))).toEqual(['head.0.weight', 'head.0.bias', 'head.2.weight', 'head.2.bias']);
    expect(model.parameterCount()).toBe(11_689_512 - 513_000 - (9408 - 1728) + 512 * 512 + 512 + 512 * 128 + 128);
  });

  it('builds the SimCLRv2 head: three Linear layers with BatchNorm, sizes as asked', async () => {
    const model = await SimCLRModel.create({ backbone: 'resnet50', head: { layers: 3, batchNorm: true, hiddenDim: 256, outDim: 64 } });
    const keys = Object.keys(await model.stateDict()).filter((k) => k.startsWith('head.'));
    expect(keys).toEqual([
      'head.0.weight', 'head.1.weight', 'head.1.bias', 'head.1.running_mean', 'head.1.running_var', 'head.1.num_batches_tracked',
      'head.3.weight', 'head.4.weight', 'head.4.bias', 'head.4.running_mean', 'head.4.running_var', 'head.4.num_batches_tracked',
      'head.6.weight', 'head.6.bias',
    ]);
    expect(model.describe().head).toEqual({ inDim: 2048, hiddenDim: 256, outDim: 64, layers: 3, batchNorm: true });
    expect((await model.forward(images(2, 32))).z.shape).toEqual([2, 64]);
  });

  it('embed gives h in eval mode', async () => {
    const model = await SimCLRModel.create({ backbone: 'resnet18' });
    const x = images(2, 32);
    const h = await model.embed(x);
    model.eval();
    expect(maxAbsDiff(h, (await model.forward(x)).h)).toBe(0);
    expect(model.training).toBe(false);
  });
});

describe('state dicts', () => {
  it('round-trips the whole model through bytes', async () => {
    manualSeed(11);
    const a = await SimCLRModel.create({ backbone: 'resnet18', head: { layers: 3, batchNorm: true } });
    await a.forward(images(4, 32)); // moves BatchNorm statistics away from their initial values
    const b = await SimCLRModel.create({ backbone: 'resnet18', head: { layers: 3, batchNorm: true } });
    expect(await b.loadStateDictBytes(await a.stateDictBytes())).toEqual({ missingKeys: [], unexpectedKeys: [] });
    const x = images(2, 32);
    a.eval();
    b.eval();
    expect(maxAbsDiff((await a.forward(x)).z, (await b.forward(x)).z)).toBe(0);
  });

  it('round-trips through a file and through objects of tensors', async () => {
    const a = await Encoder.create({ backbone: 'resnet18', outDim: 7 });
    const file = path.join(tmp, 'roundtrip.pt');
    await a.saveStateDict(file);
    const fromFile = await readStateDict(file);
    const live = await a.stateDict();
    expect(Object.keys(fromFile)).toEqual(Object.keys(live));
    expect(maxAbsDiff(fromFile['layer4.1.conv2.weight'], live['layer4.1.conv2.weight'])).toBe(0);
    const b = await Encoder.create({ backbone: 'resnet18', outDim: 7 });
    await b.loadStateDict(fromFile);
    const x = images(2, 32);
    expect(maxAbsDiff(await a.eval().forward(x), await b.eval().forward(x))).toBe(0);
    await writeStateDict(path.join(tmp, 'x.pt'), { x });
    expect(maxAbsDiff((await readStateDict(path.join(tmp, 'x.pt'))).x, x)).toBe(0);
  });

  it('reports missing and unexpected keys when not strict, and refuses them when strict', async () => {
    const encoder = await Encoder.create({ backbone: 'resnet18', outDim: 7 });
    const state = await encoder.stateDict();
    const partial = { ...state, 'extra.weight': Tensor.zeros([2]) };
    delete (partial as Record<string, Tensor>)['fc.bias'];
    expect(await encoder.loadStateDict(partial, { strict: false })).toEqual({ missingKeys: ['fc.bias'], unexpectedKeys: ['extra.weight'] });
    await expect(encoder.loadStateDict(partial)).toRejectKind('Error', /1 missing key\(s\) \(fc\.bias\) and 1 unexpected key\(s\) \(extra\.weight\)/);
  });

  it('refuses a shape mismatch, naming the key and both shapes', async () => {
    const encoder = await Encoder.create({ backbone: 'resnet18', outDim: 7 });
    const state = await encoder.stateDict();
    state['fc.weight'] = Tensor.zeros([5, 512]);
    await expect(encoder.loadStateDict(state, { strict: false })).toRejectKind('Error', 'Shape mismatch for fc.weight: the model has [7, 512], the state dict has [5, 512]');
  });

  it('never runs code named in a file: a pickle calling posix.system is refused', async () => {
    // pickle.dumps of os.system('true') at protocol 2: GLOBAL posix.system, the argument, REDUCE.
    const hostile = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from('cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.', 'latin1')]);
    const file = path.join(tmp, 'hostile.pt');
    fs.writeFileSync(file, hostile);
    await expect(readStateDict(file)).toRejectKind('Error', "refusing to load the global 'posix.system'");
    await expect(native.readStateDict(Buffer.from('PK\x03\x04garbage'))).toRejectKind('Error');
    await expect(native.readStateDict(Buffer.from('hello world'))).toRejectKind('Error', 'not a torch.save file');
    await expect(native.readStateDict(hostile.subarray(0, 10))).toRejectKind('Error', 'truncated');
  });
});

describe('state dict files from hostile sources', () => {
  const w: CraftedTensor = { name: 'w', key: '0', numel: 6, offset: 0, sizes: [2, 3], strides: [3, 1] };
  const read = (bytes: Buffer) => native.readStateDict(bytes);

  it('reads a well-formed crafted file as torch.load would: views share their storage by offset and strides', async () => {
    const state = await readStateDict(write('crafted.pt', stateDictZip([w, { ...w, name: 'v', offset: 1, sizes: [2], strides: [2] }])));
    expect(state.w.shape).toEqual([2, 3]);
    expect(values(state.w)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(values(state.v)).toEqual([1, 3]);
  });

  it.each([
    ['a negative storage offset', { offset: -1 }, 'storage offset -1 lies outside its storage of 6 elements'],
    ['an offset past its storage', { offset: 7, sizes: [0], strides: [1] }, 'storage offset 7 lies outside'],
    ['a negative stride', { strides: [-3, 1] }, 'bad size or stride'],
    ['sizes times strides that overflow int64', { sizes: [2 ** 39, 2 ** 39], strides: [2 ** 39, 2 ** 39] }, 'reaches past the end of its storage'],
    ['a view past the end of its storage', { sizes: [3, 3] }, 'reaches past the end of its storage'],
    ['more elements than its storage (overlapping strides)', { sizes: [4, 3], strides: [0, 1] }, 'a tensor of 12 elements over a storage of 6'],
  ] as const)('refuses a tensor with %s', async (_what, change, message) => {
    await expect(read(stateDictZip([{ ...w, ...change } as CraftedTensor]))).toRejectKind('Error', message);
  });

  it('refuses a storage record whose size differs from what its tensors declare', async () => {
    const pickle = statePickle([w]);
    const short = zipOf([{ name: 'data.pkl', data: pickle }, { name: 'data/0', data: Buffer.alloc(20) }, { name: 'version', data: Buffer.from('3\n') }]);
    await expect(read(short)).toRejectKind('Error', 'record data/0 holds 20 bytes but its tensors declare 24');
    const twice = zipOf([{ name: 'data.pkl', data: pickle }, { name: 'data/0', data: Buffer.alloc(24) }, { name: 'DATA/0', data: Buffer.alloc(24) }]);
    await expect(read(twice)).toRejectKind('Error', 'two records named archive/DATA/0');
  });

  it('refuses a deflated record that expands more than 64x, even when its tensors declare that size, before expanding it', () => {
    // 1 GiB of zeros that a float32 tensor of 2^28 elements declares: the sizes agree, the file is ~1 MB.
    const gib = deflatedZeros(1 << 30);
    const big = { ...w, numel: 2 ** 28, sizes: [2 ** 28], strides: [1] };
    const file = write('bomb-declared.pt', zipOf([{ name: 'data.pkl', data: statePickle([big]) }, { name: 'data/0', ...gib }, { name: 'version', data: Buffer.from('3\n') }]));
    expect(fs.statSync(file).size).toBeLessThan(2e6);
    const script = `
      const { readStateDict } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
      readStateDict(${JSON.stringify(file)}).then(() => 'read', (e) => e.message).then((message) => {
        const peakKiB = Number(/VmHWM:\\s+(\\d+) kB/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]);
        console.log(JSON.stringify({ message, maxRssMiB: peakKiB / 1024 }));
      });`;
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(child.status).toBe(0);
    const { message, maxRssMiB } = JSON.parse(child.stdout);
    expect(message).toMatch(/record data\/0 would expand from \d+ to 1073741824 bytes, more than 64x: refused \(torch\.save stores records uncompressed\)/);
    expect(maxRssMiB).toBeLessThan(700);
  });

  it('bounds memory by the declared sizes: records that deflate to 1 GiB are refused before they are expanded', () => {
    const gib = deflatedZeros(1 << 30);
    const pickle = statePickle([{ ...w, numel: 4, sizes: [4], strides: [1] }]);
    const version = { name: 'version', data: Buffer.from('3\n') };
    const files = {
      storage: write('bomb-storage.pt', zipOf([{ name: 'data.pkl', data: pickle }, { name: 'data/0', ...gib }, version])),
      pickle: write('bomb-pickle.pt', zipOf([{ name: 'data.pkl', ...gib }, version])),
      version: write('bomb-version.pt', zipOf([{ name: 'data.pkl', data: pickle }, { name: 'data/0', data: Buffer.alloc(16) }, { name: 'version', ...gib }])),
    };
    expect(Math.max(...Object.values(files).map((f) => fs.statSync(f).size))).toBeLessThan(2e6);
    // In a child process, so that its peak memory is its own.
    const script = `
      const { readStateDict } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
      (async () => {
        const messages = {};
        for (const [name, file] of Object.entries(${JSON.stringify(files)})) {
          messages[name] = await readStateDict(file).then(() => 'read', (e) => e.message);
        }
        // VmHWM: the peak of this process's own memory (getrusage's maxRSS would carry over jest's, from before exec).
        const peakKiB = Number(/VmHWM:\\s+(\\d+) kB/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]);
        console.log(JSON.stringify({ messages, maxRssMiB: peakKiB / 1024 }));
      })();`;
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(child.status).toBe(0);
    const { messages, maxRssMiB } = JSON.parse(child.stdout);
    expect(messages.storage).toMatch('record data/0 holds 1073741824 bytes but its tensors declare 16');
    expect(messages.pickle).toMatch('record data.pkl holds 1073741824 bytes, more than a state dict\'s pickle ever need');
    expect(messages.version).toMatch('record version holds 1073741824 bytes');
    // Loading the addon takes about 250 MiB; expanding any of these records would take 1024 more.
    expect(maxRssMiB).toBeLessThan(700);
  });
});

function write(name: string, bytes: Buffer): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, bytes);
  return file;
}

