import { Tensor, manualSeed, ntXent, NT_XENT_DEFAULT_TEMPERATURE } from '../src';
import { native } from '../src/native';
import { describeWithOracle, runPython } from './helpers/oracle';
import { onCuda, testDevice } from './helpers/device';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { relativeError } from './helpers/numerics';

type Method = 'fused' | 'autograd' | 'reference';

/** Drawn on the CPU (the same numbers whatever the device), then placed on the test device. */
function randn(rows: number, d: number, dtype: 'float32' | 'float64' = 'float32', seed = 7): Tensor {
  manualSeed(seed);
  return Tensor.randn([rows, d], { dtype }).to(testDevice);
}

function values(t: Tensor): number[] {
  return Array.from(t.toTypedArray() as Float32Array | Float64Array);
}

async function run(z: Tensor, temperature: number, views: number, method: Method) {
  const out = await native.ntXent(z.handle, temperature, views, method);
  return { loss: out.loss, grad: values(new Tensor(out.grad)) };
}

function rows(data: number[], d: number): number[][] {
  return Array.from({ length: data.length / d }, (_, r) => data.slice(r * d, (r + 1) * d));
}

/** Runs ORACLE on the cases; they travel in a file, since thousands of numbers exceed the limit of one argv string. */
function oracle(python: string, cases: { z: number[]; d: number; temperature: number; views: number }[]): OracleResult[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-nt-xent-'));
  try {
    const file = path.join(dir, 'cases.json');
    fs.writeFileSync(file, JSON.stringify(cases));
    return JSON.parse(runPython(python, ORACLE, { path: file }));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

interface OracleResult {
  loss: number;
  grad: number[];
  crossEntropyLoss?: number;
  crossEntropyGrad?: number[];
}

// Plain autograd in float64, written independently of the native code: the SupCon L_out form for any V, and for V = 2
// also the paper's form as cross_entropy against the other view's index (the "lean" PyTorch form).
const ORACLE = `
import json, sys, torch, torch.nn.functional as F
out = []
for case in json.load(open(json.loads(sys.argv[1])["path"])):
    z = torch.tensor(case["z"], dtype=torch.float64).view(-1, case["d"]).requires_grad_(True)
    t, views = case["temperature"], case["views"]
    rows = z.shape[0]; images = rows // views
    u = F.normalize(z, dim=1, eps=1e-4)
    self_mask = torch.eye(rows, dtype=torch.bool)
    s = (u @ u.T / t).masked_fill(self_mask, float("-inf"))
    log_prob = s - torch.logsumexp(s, dim=1, keepdim=True)
    image = torch.arange(rows) % images
    positive = (image[:, None] == image[None, :]) & ~self_mask
    loss = -log_prob[positive].view(rows, views - 1).mean(1).mean()
    grad, = torch.autograd.grad(loss, z, retain_graph=True)
    result = {"loss": loss.item(), "grad": grad.flatten().tolist()}
    if views == 2:
        ce = F.cross_entropy(s, (torch.arange(rows) + images) % rows)
        result["crossEntropyLoss"] = ce.item()
        result["crossEntropyGrad"] = torch.autograd.grad(ce, z)[0].flatten().tolist()
    out.append(result)
print(json.dumps(out))
`;

describeWithOracle('ntXent against PyTorch autograd', (python) => {
  const cases = [
    { images: 4, d: 8, temperature: 0.5, views: 2 },
    { images: 33, d: 16, temperature: 0.1, views: 2 },
    { images: 64, d: 128, temperature: 0.07, views: 2 },
    { images: 5, d: 3, temperature: 1.0, views: 3 },
    { images: 17, d: 32, temperature: 0.2, views: 4 },
    { images: 600, d: 8, temperature: 0.3, views: 2 }, // 1200 rows: a full-width tile
    { images: 1500, d: 8, temperature: 0.5, views: 2 }, // 3000 rows: tiles of 1398, 1398 and 204 rows
  ];
  let expected: OracleResult[];
  const inputs = cases.map((c, i) => randn(c.images * c.views, c.d, 'float32', 100 + i));

  beforeAll(() => {
    const payload = cases.map((c, i) => ({ z: values(inputs[i]), d: c.d, temperature: c.temperature, views: c.views }));
    expected = oracle(python, payload);
  });

  it.each(cases.map((c, i) => [i, c] as const))('case %i %j: loss and gradient within 1e-5 relative, float32', async (i, c) => {
    const { loss, grad } = await ntXent(inputs[i], { temperature: c.temperature, views: c.views });
    expect(grad.shape).toEqual(inputs[i].shape);
    expect(grad.dtype).toBe('float32');
    expect(Math.abs(loss - expected[i].loss) / expected[i].loss).toBeLessThan(1e-5);
    expect(relativeError(values(grad), expected[i].grad)).toBeLessThan(1e-5);
  });

  it('with two views equals the paper form (cross_entropy against the other view)', async () => {
    for (const i of [0, 1, 2]) {
      const { loss, grad } = await ntXent(inputs[i], { temperature: cases[i].temperature });
      expect(Math.abs(loss - expected[i].crossEntropyLoss!) / expected[i].crossEntropyLoss!).toBeLessThan(1e-5);
      expect(relativeError(values(grad), expected[i].crossEntropyGrad!)).toBeLessThan(1e-5);
    }
  });

  it('agrees to 1e-12 in float64', async () => {
    const c = cases[4];
    const z = randn(c.images * c.views, c.d, 'float64', 104);
    const [reference] = oracle(python, [{ z: values(z), d: c.d, temperature: c.temperature, views: c.views }]);
    const { loss, grad } = await ntXent(z, { temperature: c.temperature, views: c.views });
    expect(grad.dtype).toBe('float64');
    expect(Math.abs(loss - reference.loss) / reference.loss).toBeLessThan(1e-12);
    expect(relativeError(values(grad), reference.grad)).toBeLessThan(1e-12);
  });
});

describe('ntXent against the unfused ATen version', () => {
  it.each([
    ['float32', 2, 0.5, 8, 4],
    ['float32', 3, 0.2, 11, 16],
    ['float32', 2, 0.01, 50, 16], // tiny temperature: the max-shifted exponent path in float32
    ['float32', 2, 0.1, 2100, 8], // 4200 rows: several tiles, the last one partial
    ['float64', 2, 0.001, 20, 6], // the max-shifted path in float64
    ['float64', 5, 0.3, 9, 7],
  ] as const)('%s, %i views, temperature %d, %i images, d %i: fused and autograd paths match it', async (dtype, views, temperature, images, d) => {
    const z = randn(images * views, d, dtype, images);
    const reference = await run(z, temperature, views, 'reference');
    const tolerance = dtype === 'float64' ? 1e-12 : 1e-5;
    for (const method of ['fused', 'autograd'] as const) {
      const out = await run(z, temperature, views, method);
      expect(Math.abs(out.loss - reference.loss) / reference.loss).toBeLessThan(tolerance);
      expect(relativeError(out.grad, reference.grad)).toBeLessThan(tolerance);
    }
  });

  it('matches it on rows shorter than the normalisation eps (the clamped branch)', async () => {
    const data = Float64Array.from(values(randn(8, 5, 'float64', 3)));
    for (let j = 0; j < 5; j++) data[2 * 5 + j] *= 1e-6; // row 2 has norm ~2e-6 < 1e-4
    const z = Tensor.fromTypedArray(data, [8, 5]);
    const reference = await run(z, 0.5, 2, 'reference');
    const fused = await run(z, 0.5, 2, 'fused');
    expect(Math.abs(fused.loss - reference.loss) / reference.loss).toBeLessThan(1e-12);
    expect(relativeError(fused.grad, reference.grad)).toBeLessThan(1e-12);
  });
});

describe('ntXent gradient', () => {
  it.each([
    [2, 3, 4, 0.5],
    [3, 2, 3, 0.2],
    [2, 4, 5, 0.05],
  ])('passes a float64 finite-difference gradcheck (%i views, %i images, d %i, temperature %d)', async (views, images, d, temperature) => {
    const base = Float64Array.from(values(randn(views * images, d, 'float64', 11)));
    const { grad } = await ntXent(Tensor.fromTypedArray(base, [views * images, d]), { temperature, views });
    const analytic = values(grad);
    const h = 1e-6;
    for (let i = 0; i < base.length; i++) {
      const plus = Float64Array.from(base);
      const minus = Float64Array.from(base);
      plus[i] += h;
      minus[i] -= h;
      const up = await ntXent(Tensor.fromTypedArray(plus, [views * images, d]), { temperature, views });
      const down = await ntXent(Tensor.fromTypedArray(minus, [views * images, d]), { temperature, views });
      const numeric = (up.loss - down.loss) / (2 * h);
      expect(Math.abs(numeric - analytic[i])).toBeLessThan(1e-7 + 1e-5 * Math.abs(numeric));
    }
  });

  it('is unchanged in loss, and scaled by 1/c in gradient, when a row is multiplied by c', async () => {
    const d = 6;
    const original = values(randn(12, d, 'float64', 5));
    const scales = Array.from({ length: 12 }, (_, r) => [0.01, 0.5, 3, 100][r % 4]);
    const scaled = Float64Array.from(original, (v, i) => v * scales[Math.floor(i / d)]);
    const a = await ntXent(Tensor.fromTypedArray(Float64Array.from(original), [12, d]), { temperature: 0.2, views: 3 });
    const b = await ntXent(Tensor.fromTypedArray(scaled, [12, d]), { temperature: 0.2, views: 3 });
    expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-12 * a.loss);
    const expectedGrad = values(a.grad).map((g, i) => g / scales[Math.floor(i / d)]);
    expect(relativeError(values(b.grad), expectedGrad)).toBeLessThan(1e-12);
  });

  it.each([2, 3])('is symmetric in the order of the views (%i views): reordering them reorders the gradient the same way', async (views) => {
    const images = 7;
    const d = 5;
    const z = rows(values(randn(views * images, d, 'float64', 9)), d);
    // Rotate the view blocks: view v moves to position v + 1.
    const rotated = z.map((_, r) => z[((Math.floor(r / images) + views - 1) % views) * images + (r % images)]);
    const a = await ntXent(Tensor.fromTypedArray(Float64Array.from(z.flat()), [views * images, d]), { temperature: 0.3, views });
    const b = await ntXent(Tensor.fromTypedArray(Float64Array.from(rotated.flat()), [views * images, d]), { temperature: 0.3, views });
    expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-12 * a.loss);
    const gradA = rows(values(a.grad), d);
    const expectedB = gradA.map((_, r) => gradA[((Math.floor(r / images) + views - 1) % views) * images + (r % images)]);
    expect(relativeError(values(b.grad), expectedB.flat())).toBeLessThan(1e-12);
  });

  it('sums to zero over each row direction: the gradient is orthogonal to its row (scale invariance)', async () => {
    const d = 9;
    const z = values(randn(10, d, 'float64', 2));
    const { grad } = await ntXent(Tensor.fromTypedArray(Float64Array.from(z), [10, d]), { temperature: 0.4 });
    const g = values(grad);
    for (let r = 0; r < 10; r++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += z[r * d + j] * g[r * d + j];
      expect(Math.abs(dot)).toBeLessThan(1e-12);
    }
  });
});

describe('ntXent arguments and edge cases', () => {
  const z = randn(8, 4);

  it('takes a short last batch (any N >= 2), where code with a fixed batch size crashes', async () => {
    for (const images of [2, 3, 5]) {
      const { loss, grad } = await ntXent(randn(2 * images, 4), { temperature: 0.5 });
      expect(Number.isFinite(loss)).toBe(true);
      expect(grad.shape).toEqual([2 * images, 4]);
    }
  });

  it('gives log(2N - 1) for identical rows: every similarity is equal', async () => {
    const { loss } = await ntXent(Tensor.ones([10, 3]), { temperature: 0.5 });
    expect(loss).toBeCloseTo(Math.log(9), 6);
  });

  it('rejects temperatures that are not finite and > 1e-8', async () => {
    for (const temperature of [0, 1e-8, -0.5, NaN, Infinity]) {
      await expect(ntXent(z, { temperature })).toRejectKind('RangeError', /Expected a finite number > 1e-8 for temperature/);
    }
    await expect(ntXent(z, { temperature: '0.5' as never })).toRejectKind('TypeError', 'temperature');
    // Left out, the temperature is the recipe's (NT_XENT_DEFAULT_TEMPERATURE), as everywhere else.
    expect((await ntXent(z, {})).loss).toBe((await ntXent(z, { temperature: NT_XENT_DEFAULT_TEMPERATURE })).loss);
    expect((await ntXent(z)).loss).toBe((await ntXent(z, { temperature: NT_XENT_DEFAULT_TEMPERATURE })).loss);
    await expect(ntXent(z, { temperature: 2e-8 })).resolves.toHaveProperty('loss');
  });

  it('rejects bad views, row counts, shapes and dtypes with a clear error', async () => {
    await expect(ntXent(z, { temperature: 0.5, views: 1 })).toRejectKind('RangeError', 'views');
    await expect(ntXent(z, { temperature: 0.5, views: 2.5 })).toRejectKind('RangeError', 'views');
    await expect(ntXent(z, { temperature: 0.5, views: 3 })).toRejectKind('RangeError', 'not a multiple of views = 3');
    await expect(ntXent(z, { temperature: 0.5, views: 8 })).toRejectKind('RangeError', 'at least 2 images');
    await expect(ntXent(randn(2, 4), { temperature: 0.5 })).toRejectKind('RangeError', 'at least 2 images');
    await expect(ntXent(Tensor.ones([8]), { temperature: 0.5 })).toRejectKind('RangeError', '2-D');
    await expect(ntXent(Tensor.ones([2, 4, 4]), { temperature: 0.5 })).toRejectKind('RangeError', '2-D');
    await expect(ntXent(Tensor.zeros([8, 0]), { temperature: 0.5 })).toRejectKind('RangeError', 'feature column');
    await expect(ntXent(Tensor.zeros([8, 4], { dtype: 'int64' }), { temperature: 0.5 })).toRejectKind('TypeError', 'floating-point');
    await expect(ntXent(Tensor.zeros([8, 4], { dtype: 'uint8' }), { temperature: 0.5 })).toRejectKind('TypeError', 'floating-point');
    await expect(ntXent([1, 2] as never, { temperature: 0.5 })).toRejectKind('TypeError', 'Expected a Tensor for z');
    await expect(ntXent(z, null as never)).toRejectKind('TypeError', 'options');
    const disposed = randn(8, 4);
    disposed.dispose();
    await expect(ntXent(disposed, { temperature: 0.5 })).toRejectKind('Error', 'disposed');
  });

  it('rejects bad arguments at the native entry point too', async () => {
    expect(() => native.ntXent(z.handle, 0, 2)).toThrowKind('RangeError', 'temperature');
    expect(() => native.ntXent(z.handle, 0.5, 3)).toThrowKind('RangeError', 'multiple of views');
    expect(() => native.ntXent(z.handle, 0.5, 2, 'fast' as never)).toThrowKind('RangeError', 'method');
    expect(() => native.ntXent({} as never, 0.5, 2)).toThrowKind('TypeError', 'z');
  });

  it('documents NaN and Inf input: the loss and the whole gradient become NaN, nothing throws', async () => {
    for (const bad of [NaN, Infinity]) {
      const data = Float32Array.from(values(z));
      data[5] = bad;
      const { loss, grad } = await ntXent(Tensor.fromTypedArray(data, [8, 4]), { temperature: 0.5 });
      expect(loss).toBeNaN();
      expect(values(grad).every(Number.isNaN)).toBe(true);
    }
  });

  (onCuda ? it : it.skip)('gives the same result on CUDA as on the CPU', async () => {
    const cpu = await ntXent(z.to('cpu'), { temperature: 0.5 });
    const gpu = await ntXent(z.to(testDevice), { temperature: 0.5 });
    expect(gpu.grad.device).toMatch(/^cuda/);
    expect(Math.abs(gpu.loss - cpu.loss) / cpu.loss).toBeLessThan(1e-5);
    expect(relativeError(values(gpu.grad), values(cpu.grad))).toBeLessThan(1e-5);
  });
});
