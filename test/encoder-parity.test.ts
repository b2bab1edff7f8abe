/**
 * Parity with torchvision: weights made by torchvision load here and give the same outputs and gradients, and what we
 * save loads into torchvision with strict=True. The oracle writes its fixtures at test time (random init, no download).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Encoder, SimCLRModel, Tensor, readStateDict, writeStateDict } from '../src';
import { describeWithOracle, runPython } from './helpers/oracle';

const FIXTURES = String.raw`
import collections, copy, json, sys
import torch, torch.nn as nn, torchvision
args = json.loads(sys.argv[1])
out = args["dir"]
torch.manual_seed(0)

def settle(model, size):
    # A few train-mode batches so that BatchNorm running statistics are not their initial 0 / 1.
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 3, size, size))
    model.eval()

for name in ["resnet18", "resnet50"]:
    model = getattr(torchvision.models, name)(num_classes=10)
    settle(model, 64)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        y = model(x)
        model_fc, model.fc = model.fc, nn.Identity()
        h = model(x)
        model.fc = model_fc
    torch.save(model.state_dict(), f"{out}/{name}.pth")
    torch.save({"x": x, "y": y, "h": h}, f"{out}/{name}-io.pt")
    if name == "resnet18":
        torch.save(model.state_dict(), f"{out}/{name}-legacy.pth", _use_new_zipfile_serialization=False)

# Train mode: forward + backward of a given output gradient, in float32 and in float64 (the exact answer the float32
# results are measured against). With the ImageNet stem, 32 px and 16 px images reach layer4 (and layer3) at 2x2 and
# 1x1, where convolutions have a 1x1 output (simclr computes those as matrix products), and train-mode BatchNorm over
# so few values amplifies float32 rounding: torchvision's own float32 error there is the yardstick.
for name, size in [("resnet18", 32), ("resnet50", 32), ("resnet18", 16)]:
    tag = f"{name}-{size}"
    model = getattr(torchvision.models, name)(num_classes=8)
    torch.save(model.state_dict(), f"{out}/grad-{tag}-init.pth")
    exact = copy.deepcopy(model).double().train()
    x = torch.randn(8, 3, size, size)
    g = torch.randn(8, 8)
    model.train()
    y = model(x)
    y.backward(g)
    y64 = exact(x.double())
    y64.backward(g.double())
    torch.save({"x": x, "g": g, "y": y.detach(), "y64": y64.detach()}, f"{out}/grad-{tag}-io.pt")
    torch.save({n: p.grad for n, p in model.named_parameters()}, f"{out}/grad-{tag}-grads.pt")
    torch.save({n: p.grad for n, p in exact.named_parameters()}, f"{out}/grad-{tag}-grads64.pt")
    torch.save(model.state_dict(), f"{out}/grad-{tag}-after.pth")

# The SimCLR model with the CIFAR stem and the SimCLRv2 head, written as plain PyTorch modules.
class SimCLR(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = torchvision.models.resnet18()
        self.encoder.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.encoder.maxpool = nn.Identity()
        self.encoder.fc = nn.Identity()
        self.head = nn.Sequential(nn.Linear(512, 512, bias=False), nn.BatchNorm1d(512), nn.ReLU(),
                                  nn.Linear(512, 512, bias=False), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 128))
    def forward(self, x):
        h = self.encoder(x)
        return h, self.head(h)

model = SimCLR()
torch.save(model.state_dict(), f"{out}/simclr-init.pth")
x = torch.randn(4, 3, 32, 32)
g = torch.randn(4, 128)
model.train()
h, z = model(x)
z.backward(g)
torch.save({"x": x, "g": g, "z": z.detach()}, f"{out}/simclr-io.pt")
torch.save({n: p.grad for n, p in model.named_parameters()}, f"{out}/simclr-grads.pt")

# Not a state dict: an object whose class the reader must refuse.
torch.save({"counts": collections.Counter("abc")}, f"{out}/counter.pt")
`;

const LOAD_EXPORT = String.raw`
import json, sys
import torch, torchvision
args = json.loads(sys.argv[1])
state = torch.load(args["state"])
if args["outDim"] > 0:
    model = getattr(torchvision.models, args["backbone"])(num_classes=args["outDim"])
else:  # outDim 0: the pooled features, i.e. torchvision's model with fc = Identity
    model = getattr(torchvision.models, args["backbone"])()
    model.fc = torch.nn.Identity()
model.load_state_dict(state, strict=True)
model.eval()
io = torch.load(args["io"])
with torch.no_grad():
    y = model(io["x"])
print(json.dumps({"maxDiff": (y - io["y"]).abs().max().item(), "type": type(state).__name__}))
`;

/**
 * Math's functions, looked up once: in jest's sandbox every global lookup (Math included) goes through the context's
 * interceptors and is about 100x slower than in plain node, which made the loops below most of this file's time (56 of
 * the resnet50 gradient test's 62 s, profiled).
 */
const { abs, max } = Math;

/** Float data viewed from this realm (jest's): loops over the addon's own typed arrays are slow here. */
function values(a: Tensor): Float32Array | Float64Array {
  const data = a.toTypedArray() as Float32Array | Float64Array;
  const View = data.BYTES_PER_ELEMENT === 8 ? Float64Array : Float32Array;
  return new View(data.buffer as ArrayBuffer, data.byteOffset, data.length);
}

function maxAbsDiff(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  const x = values(a);
  const y = values(b);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = max(m, abs(x[i] - y[i]));
  return m;
}

function maxAbs(a: Tensor): number {
  let m = 0;
  for (const v of values(a)) m = max(m, abs(v));
  return m;
}

describeWithOracle('parity with torchvision', (python) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-parity-'));
  const file = (name: string) => path.join(dir, name);
  beforeAll(() => runPython(python, FIXTURES, { dir }), 300_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each(['resnet18', 'resnet50'] as const)('%s: torchvision weights give the same eval output (max abs diff <= 1e-4)', async (backbone) => {
    const encoder = await Encoder.create({ backbone, outDim: 10 });
    expect(await encoder.loadStateDict(file(`${backbone}.pth`))).toEqual({ missingKeys: [], unexpectedKeys: [] });
    const io = await readStateDict(file(`${backbone}-io.pt`));
    expect(maxAbsDiff(await encoder.eval().forward(io.x), io.y)).toBeLessThanOrEqual(1e-4);
  });

  it('loads torchvision weights through the weights option before replacing fc', async () => {
    const io = await readStateDict(file('resnet50-io.pt'));
    const pooled = await Encoder.create({ backbone: 'resnet50', outDim: 0, weights: file('resnet50.pth') });
    expect(maxAbsDiff(await pooled.embed(io.x), io.h)).toBeLessThanOrEqual(1e-4);
    const replaced = await Encoder.create({ backbone: 'resnet50', outDim: 3, weights: file('resnet50.pth') });
    expect((await replaced.eval().forward(io.x)).shape).toEqual([2, 3]);
    const simclr = await SimCLRModel.create({ backbone: 'resnet50', weights: file('resnet50.pth') });
    expect(maxAbsDiff(await simclr.embed(io.x), io.h)).toBeLessThanOrEqual(1e-4);
    await expect(Encoder.create({ backbone: 'resnet18', outDim: 0, weights: file('resnet50.pth') })).rejects.toThrow('Shape mismatch for layer1.0.conv1.weight: the model has [64, 64, 3, 3], the state dict has [64, 64, 1, 1]');
  });

  it('reads the legacy (non-zip) torch.save format', async () => {
    const encoder = await Encoder.create({ backbone: 'resnet18', outDim: 10 });
    await encoder.loadStateDict(file('resnet18-legacy.pth'));
    const io = await readStateDict(file('resnet18-io.pt'));
    expect(maxAbsDiff(await encoder.eval().forward(io.x), io.y)).toBeLessThanOrEqual(1e-4);
  });

  it.each([
    ['resnet18', 32],
    ['resnet50', 32],
    ['resnet18', 16],
  ] as const)('train mode, %s at %d px: output, parameter gradients and running statistics as exact as torchvision\'s', async (backbone, size) => {
    const tag = `${backbone}-${size}`;
    const encoder = await Encoder.create({ backbone, outDim: 8 });
    await encoder.loadStateDict(file(`grad-${tag}-init.pth`));
    const io = await readStateDict(file(`grad-${tag}-io.pt`));
    const y = await encoder.train().forwardBackward(io.x, io.g);
    // Our float32 error against float64 is at most torchvision's own float32 error (x4) plus 1e-4 of the scale.
    const tolerance = (torchvision: Tensor, exact: Tensor) => 1e-4 * Math.max(1, maxAbs(exact)) + 4 * maxAbsDiff(torchvision, exact);
    expect(maxAbsDiff(y, io.y64)).toBeLessThanOrEqual(tolerance(io.y, io.y64));
    const expected = await readStateDict(file(`grad-${tag}-grads.pt`));
    const exact = await readStateDict(file(`grad-${tag}-grads64.pt`));
    const grads = encoder.gradients();
    expect(Object.keys(grads).sort()).toEqual(Object.keys(expected).sort());
    const worse = Object.entries(exact)
      .map(([name, grad]) => ({ name, diff: maxAbsDiff(grads[name], grad), tolerance: tolerance(expected[name], grad) }))
      .filter((r) => r.diff > r.tolerance);
    expect(worse).toEqual([]);
    const after = await readStateDict(file(`grad-${tag}-after.pth`));
    const state = await encoder.stateDict();
    for (const key of ['layer3.0.bn1.running_var', 'layer4.1.bn2.running_var', 'layer4.0.downsample.1.running_mean']) {
      expect(maxAbsDiff(state[key], after[key])).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(after[key])));
    }
    encoder.zeroGrad();
    expect(encoder.gradients()).toEqual({});
  });

  it('SimCLR model (CIFAR stem, SimCLRv2 head): same z and gradients as the PyTorch modules with the same names', async () => {
    const model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar', head: { layers: 3, batchNorm: true } });
    expect(await model.loadStateDict(file('simclr-init.pth'))).toEqual({ missingKeys: [], unexpectedKeys: [] });
    const io = await readStateDict(file('simclr-io.pt'));
    const z = await model.train().forwardBackward(io.x, io.g);
    expect(maxAbsDiff(z, io.z)).toBeLessThanOrEqual(1e-4);
    const expected = await readStateDict(file('simclr-grads.pt'));
    const grads = model.gradients();
    expect(Object.keys(grads).sort()).toEqual(Object.keys(expected).sort());
    for (const [name, grad] of Object.entries(expected)) {
      expect(maxAbsDiff(grads[name], grad)).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(grad)));
    }
  });

  it.each([
    ['resnet18', 10],
    ['resnet50', 0],
  ] as const)('%s (outDim %d): saveStateDict writes what torchvision loads with strict=True (fc = Identity for outDim 0)', async (backbone, outDim) => {
    const encoder = await Encoder.create({ backbone, outDim });
    await encoder.train().forward(Tensor.randn([4, 3, 32, 32])); // non-trivial running statistics
    const x = Tensor.randn([2, 3, 48, 48]);
    const y = await encoder.eval().forward(x);
    await encoder.saveStateDict(file(`export-${backbone}.pt`));
    await writeStateDict(file(`export-${backbone}-io.pt`), { x, y });
    const result = JSON.parse(runPython(python, LOAD_EXPORT, {
      state: file(`export-${backbone}.pt`), io: file(`export-${backbone}-io.pt`), backbone, outDim,
    }).trim().split('\n').pop()!);
    expect(result.maxDiff).toBeLessThanOrEqual(1e-4);
  });

  it('refuses a torch.save file holding anything but tensors in dicts', async () => {
    await expect(readStateDict(file('counter.pt'))).toRejectKind('Error', "refusing to load the global 'collections.Counter'");
  });
});
