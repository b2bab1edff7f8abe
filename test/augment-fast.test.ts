/**
 * The CPU paths of the views: the vectorised (AVX2) kernels against the scalar kernels they must equal bit for bit, and
 * against the generic ATen ops (what a GPU runs) within float rounding; the uint8 batch they start from.
 */
import { Tensor, setNumThreads, getNumThreads, stackImages } from '../src';
import { native, NativeViewParams, NativeViewGroup } from '../src/native';

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

// Smooth colour fields with noise, a gray block (max == min: the hue edge case) and saturated stripes.
function images(batch: number, height: number, width: number): Tensor {
  const random = generator(5);
  const data = new Uint8Array(batch * height * width * 3);
  for (let n = 0; n < batch; n++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < 3; c++) {
          let v = 128 + 100 * Math.sin((x + 7 * n) / (5 + c)) * Math.cos((y - n) / (9 - c)) + 30 * (random() - 0.5);
          if (x < 6 && y < 6) v = 40 * n + 20;
          if (y % 11 === 0) v = c === n % 3 ? 255 : 0;
          data[((n * height + y) * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
        }
      }
    }
  }
  return Tensor.fromTypedArray(data, [batch, height, width, 3]);
}

// Parameters for every view of `batch` images: any whole-pixel box (1 x 1 up to the whole image), all jitter orders,
// factors to the ends of their ranges, and blur sigmas from those whose kernel has zero taps (0.1) to 2.
function params(batch: number, views: number, height: number, width: number, seed: number): NativeViewParams {
  const random = generator(seed);
  const n = batch * views;
  const p: NativeViewParams = {
    boxes: new Float64Array(4 * n), flip: new Uint8Array(n), jitterApply: new Uint8Array(n),
    jitterFactors: new Float32Array(4 * n), jitterOrder: new Uint8Array(4 * n), grayscale: new Uint8Array(n), blurSigma: new Float32Array(n),
  };
  for (let k = 0; k < n; k++) {
    const h = 1 + Math.floor(random() * height);
    const w = 1 + Math.floor(random() * width);
    p.boxes.set([Math.floor(random() * (height - h + 1)), Math.floor(random() * (width - w + 1)), h, w], 4 * k);
    p.flip[k] = random() < 0.5 ? 1 : 0;
    p.jitterApply[k] = random() < 0.8 ? 1 : 0;
    const extreme = k % 7 === 0;
    p.jitterFactors.set(extreme ? [0, 2, 0, 0.5] : [2 * random(), 2 * random(), 2 * random(), random() - 0.5], 4 * k);
    const order = [0, 1, 2, 3];
    for (let i = 3; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    p.jitterOrder.set(order, 4 * k);
    p.grayscale[k] = random() < 0.25 ? 1 : 0;
    p.blurSigma[k] = random() < 0.6 ? (k % 5 === 0 ? 0.1 : 0.1 + 1.9 * random()) : 0;
  }
  return p;
}

type Kernels = { scalar?: boolean; generic?: boolean; dtype?: 'float32' | 'bfloat16' | 'float16' };

async function runTyped(batch: Tensor, p: NativeViewParams, groups: NativeViewGroup[], kernels: Kernels = {}) {
  const out = await native.augmentViewGroups(batch.handle, p, { groups, mean: MEAN, std: STD, ...kernels });
  return out.map((t) => {
    const tensor = new Tensor(t);
    const values = { dtype: tensor.dtype, values: tensor.toFloat32Array() };
    tensor.dispose();
    return values;
  });
}

async function run(batch: Tensor, p: NativeViewParams, groups: NativeViewGroup[], kernels: Kernels = {}) {
  return (await runTyped(batch, p, groups, kernels)).map((g) => g.values);
}

// float32 values rounded to bfloat16 (nearest even, as c10::BFloat16 and ATen's .to() round) and back.
function bf16Round(values: Float32Array): Float32Array {
  const bits = new Uint32Array(Float32Array.from(values).buffer);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    bits[i] = Number.isNaN(values[i]) ? 0x7FC00000 : ((b + ((b >>> 16) & 1) + 0x7FFF) >>> 16) * 0x10000;
  }
  return new Float32Array(bits.buffer);
}

describe('the fused CPU kernels', () => {
  const [B, H, W] = [5, 45, 61];
  const input = images(B, H, W);
  // Sizes that are and are not multiples of the 8-float vectors; kernels from 1 tap to nearly twice the size.
  const cases: [string, NativeViewGroup[]][] = [
    ['two views of 32 px, 7 taps', [{ views: 2, size: 32, blurKernel: 7 }]],
    ['two views of 19 px, 23 taps', [{ views: 2, size: 19, blurKernel: 23 }]],
    ['multi-crop: 2 x 40 px + 4 x 13 px', [{ views: 2, size: 40, blurKernel: 5 }, { views: 4, size: 13, blurKernel: 1 }]],
  ];

  it.each(cases)('vectorised = scalar, bit for bit: %s', async (_, groups) => {
    const views = groups.reduce((sum, g) => sum + g.views, 0);
    const p = params(B, views, H, W, 17);
    const fast = await run(input, p, groups);
    const scalar = await run(input, p, groups, { scalar: true });
    expect(fast.map((f) => f.length)).toEqual(groups.map((g) => g.views * B * 3 * g.size * g.size));
    fast.forEach((f, g) => {
      const differing = f.filter((v, i) => !Object.is(v, scalar[g][i])).length;
      expect(differing).toBe(0);
    });
  });

  it.each(cases)('equal the generic ATen ops (the GPU path) within 1e-4 (normalised): %s', async (_, groups) => {
    const views = groups.reduce((sum, g) => sum + g.views, 0);
    const p = params(B, views, H, W, 23);
    const fast = await run(input, p, groups);
    const generic = await run(input, p, groups, { generic: true });
    // Measured up to 6.1e-5 over the bench's batches: the generic path's whole-batch ops round differently (its blur
    // is a convolution, its hue goes through fmod); 1e-4 here is about 2.3e-5 on [0, 1] pixels.
    fast.forEach((f, g) => {
      let max = 0;
      for (let i = 0; i < f.length; i++) max = Math.max(max, Math.abs(f[i] - generic[g][i]));
      expect(max).toBeLessThanOrEqual(1e-4);
    });
  });

  it.each([['vectorised', {}], ['scalar', { scalar: true }], ['generic', { generic: true }]] as const)(
    'bfloat16 views are the float32 views rounded to nearest even, bit for bit: %s kernels', async (_, kernels) => {
      const groups = cases[2][1];
      const p = params(B, 6, H, W, 37);
      const float32 = await runTyped(input, p, groups, kernels);
      const bf16 = await runTyped(input, p, groups, { ...kernels, dtype: 'bfloat16' });
      expect(float32.map((g) => g.dtype)).toEqual(['float32', 'float32']);
      expect(bf16.map((g) => g.dtype)).toEqual(['bfloat16', 'bfloat16']);
      bf16.forEach((g, i) => {
        const expected = bf16Round(float32[i].values);
        expect(g.values.filter((v, j) => !Object.is(v, expected[j])).length).toBe(0);
        // Rounding moved values, so the comparison above is not float32 against itself.
        expect(expected.filter((v, j) => v !== float32[i].values[j]).length).toBeGreaterThan(expected.length / 2);
      });
    });

  it('float16 views are the float32 views within float16 rounding, on the CPU too', async () => {
    const groups = cases[0][1];
    const p = params(B, 2, H, W, 41);
    const [float32] = await runTyped(input, p, groups);
    const [half] = await runTyped(input, p, groups, { dtype: 'float16' });
    expect(half.dtype).toBe('float16');
    let worst = 0;
    float32.values.forEach((v, j) => { worst = Math.max(worst, Math.abs(half.values[j] - v) / Math.max(Math.abs(v), 2 ** -14)); });
    expect(worst).toBeLessThanOrEqual(2 ** -11);
    expect(worst).toBeGreaterThan(0);
  });

  it('give the same views on 1 and 2 threads', async () => {
    const groups = cases[2][1];
    const p = params(B, 6, H, W, 29);
    const threads = getNumThreads();
    try {
      setNumThreads(1);
      const one = await run(input, p, groups);
      setNumThreads(2);
      const two = await run(input, p, groups);
      one.forEach((v, g) => expect(Buffer.from(v.buffer).equals(Buffer.from(two[g].buffer))).toBe(true));
    } finally {
      setNumThreads(threads);
    }
  });

  it('reject boxes that are not whole pixels inside the image, and too many or empty groups', async () => {
    const p = params(B, 2, H, W, 31);
    p.boxes.set([0, 0.5, 10, 10], 0);
    await expect(run(input, p, [{ views: 2, size: 8, blurKernel: 3 }])).toRejectKind('RangeError', /box 0 is not a whole-pixel box/);
    p.boxes.set([40, 0, 10, 10], 0);
    await expect(run(input, p, [{ views: 2, size: 8, blurKernel: 3 }])).toRejectKind('RangeError', /box 0/);
    expect(() => native.augmentViewGroups(input.handle, params(B, 2, H, W, 1), { groups: [], mean: MEAN, std: STD }))
      .toThrowKind('RangeError', /1 to 16 view groups/);
    expect(() => native.augmentViewGroups(input.handle, params(B, 2, H, W, 1), { groups: [{ views: 3, size: 8, blurKernel: 3 }], mean: MEAN, std: STD }))
      .toThrowKind('RangeError', /params.boxes/);
    expect(() => native.augmentViewGroups(input.handle, params(B, 2, H, W, 1), { groups: [{ views: 2, size: 8, blurKernel: 3 }], mean: MEAN, std: STD, scalar: true, generic: true }))
      .toThrowKind('RangeError', /at most one/);
    expect(() => native.augmentViewGroups(input.handle, params(B, 2, H, W, 1), { groups: [{ views: 2, size: 8, blurKernel: 3 }], mean: MEAN, std: STD, dtype: 'int8' as never }))
      .toThrowKind('RangeError', /one of 'float32', 'bfloat16', 'float16' for options.dtype/);
  });
});

describe('stackImages', () => {
  it('copies decoded images into one uint8 batch B x H x W x 3, in order', () => {
    const a = Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => i);
    const b = Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => 100 + i);
    const batch = stackImages([a, b], 2, 3);
    expect(batch.shape).toEqual([2, 2, 3, 3]);
    expect(batch.dtype).toBe('uint8');
    expect(Array.from(batch.toTypedArray() as Uint8Array)).toEqual([...a, ...b]);
  });

  it('names the image that is not height x width RGB', () => {
    const good = new Uint8Array(2 * 3 * 3);
    expect(() => stackImages([good, new Uint8Array(5)], 2, 3)).toThrowKind('RangeError', /18 bytes .* for images\[1\]/);
    expect(() => stackImages([good, new Float32Array(18) as unknown as Uint8Array], 2, 3)).toThrowKind('TypeError', /images\[1\]/);
    expect(() => stackImages([good], 0, 3)).toThrowKind('RangeError', 'height');
  });
});
