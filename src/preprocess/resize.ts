/**
 * The two resizes of simclr's evaluation path, in plain TypeScript: PIL's BILINEAR on uint8 RGB (decoding to the base
 * size, native/core/image_resize.cc) and the evaluation view's bilinear on float pixels (toModelInput, EvalView in
 * native/core/augment.cc), each written to give the addon's numbers.
 */

const BITS = 22; // fixed-point weights, as PIL and the addon
const HALF = 1 << (BITS - 1);

/** For each output position: the first input position, how many follow, and their fixed-point weights. */
interface Taps {
  taps: number;
  first: Int32Array;
  count: Int32Array;
  weight: Int32Array;
}

// PIL's triangle filter widened by the scale when shrinking, weights normalised per output and rounded to 22 bits.
function triangle(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const support = Math.max(scale, 1);
  const inverse = 1 / support; // PIL multiplies by this (dividing would round differently)
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weight = new Int32Array(outSize * taps);
  const real = new Float64Array(taps);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    let total = 0;
    for (let j = 0; j < hi - lo; j++) {
      const x = Math.abs((j + lo - center + 0.5) * inverse);
      real[j] = x < 1 ? 1 - x : 0;
      total += real[j];
    }
    for (let j = 0; j < hi - lo; j++) {
      const r = total !== 0 ? real[j] / total : real[j];
      weight[o * taps + j] = Math.trunc(r < 0 ? -0.5 + r * (1 << BITS) : 0.5 + r * (1 << BITS));
    }
    first[o] = lo;
    count[o] = hi - lo;
  }
  return { taps, first, count, weight };
}

const round8 = (sum: number) => Math.min(Math.max(sum >> BITS, 0), 255);

// Rows [rowFirst, rowLast) of `input` (`width` pixels) resampled along x to `outWidth` pixels.
function horizontal(input: Uint8Array, width: number, rowFirst: number, rowLast: number, xs: Taps, outWidth: number): Uint8Array {
  const out = new Uint8Array((rowLast - rowFirst) * outWidth * 3);
  for (let y = rowFirst; y < rowLast; y++) {
    const line = y * width * 3;
    const o = (y - rowFirst) * outWidth * 3;
    for (let x = 0; x < outWidth; x++) {
      const k = x * xs.taps;
      let p = line + xs.first[x] * 3;
      let r = HALF;
      let g = HALF;
      let b = HALF;
      for (let j = 0; j < xs.count[x]; j++, p += 3) {
        const w = xs.weight[k + j];
        r += input[p] * w;
        g += input[p + 1] * w;
        b += input[p + 2] * w;
      }
      out[o + 3 * x] = round8(r);
      out[o + 3 * x + 1] = round8(g);
      out[o + 3 * x + 2] = round8(b);
    }
  }
  return out;
}

// `rows` holds input rows rowFirst, rowFirst + 1, ... of `rowBytes` bytes; resampled along y to ys's output rows.
function vertical(rows: Uint8Array, rowFirst: number, rowBytes: number, ys: Taps, outHeight: number): Uint8Array {
  const out = new Uint8Array(outHeight * rowBytes);
  for (let y = 0; y < outHeight; y++) {
    const k = y * ys.taps;
    const start = (ys.first[y] - rowFirst) * rowBytes;
    for (let x = 0; x < rowBytes; x++) {
      let sum = HALF;
      for (let j = 0, p = start + x; j < ys.count[y]; j++, p += rowBytes) sum += rows[p] * ys.weight[k + j];
      out[y * rowBytes + x] = round8(sum);
    }
  }
  return out;
}

/**
 * An RGB image (`height x width x 3`, uint8, row-major) resized to `outHeight` x `outWidth` as PIL's
 * `Image.resize((w, h), BILINEAR)`: the same bytes as simclr's `resizeImage` (the addon's), in plain TypeScript, on the
 * calling thread. Integer arithmetic throughout (every sum stays below 2^31), passes in current Pillow's order.
 */
export function resizeBilinearAntialias(pixels: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Uint8Array {
  if (outWidth === width && outHeight === height) return pixels.slice();
  const ys = triangle(height, outHeight);
  const rowBytes = width * 3;
  if (outWidth === width) return vertical(pixels, 0, rowBytes, ys, outHeight);
  const xs = triangle(width, outWidth);
  if (outHeight === height) return horizontal(pixels, width, 0, height, xs, outWidth);
  // Pillow runs the vertical pass first when the width grows and the height shrinks (both round to uint8 between).
  if (outWidth > width && outHeight < height) {
    return horizontal(vertical(pixels, 0, rowBytes, ys, outHeight), width, 0, outHeight, xs, outWidth);
  }
  // The horizontal pass covers only the input rows the vertical pass reads.
  const rowFirst = ys.first[0];
  const rowLast = ys.first[outHeight - 1] + ys.count[outHeight - 1];
  return vertical(horizontal(pixels, width, rowFirst, rowLast, xs, outWidth), rowFirst, outWidth * 3, ys, outHeight);
}

const f32 = Math.fround;

/**
 * Where output pixel i of an axis samples the input: bilinear with align_corners=False (ATen's source index, clamped
 * to the image), as the addon computes it for grid_sampler (normalised to [-1, 1] in float32, then back).
 */
function sourceAxis(outLen: number, inLen: number): { low: Int32Array; frac: Float32Array } {
  const scale = inLen / outLen;
  const low = new Int32Array(outLen);
  const frac = new Float32Array(outLen);
  const half = f32((inLen - 1) / 2);
  for (let i = 0; i < outLen; i++) {
    const source = Math.max((i + 0.5) * scale - 0.5, 0);
    const pixel = Math.min(source, inLen - 1);
    const normalised = inLen > 1 ? f32(2 * pixel / (inLen - 1) - 1) : 0;
    // grid_sampler, align_corners=True, border padding: ((g + 1) * (size - 1) / 2), clipped to [0, size - 1].
    const x = Math.min(Math.max(f32(f32(normalised + 1) * half), 0), inLen - 1);
    low[i] = Math.floor(x);
    frac[i] = f32(x - low[i]);
  }
  return { low, frac };
}

/**
 * The evaluation view of one decoded image: RGB uint8 (`height x width x 3`) scaled to [0, 1], resized to `size` x
 * `size` (bilinear, align_corners=False, no antialias: what the addon's toModelInput does when the decoded size is not
 * the model's), then (x - mean) / std per channel, written as float32 CHW into `out` at `offset`. float32 rounding at
 * each step as the addon's, and the resize's sums as fused multiply-adds, which is what LibTorch's vectorised
 * grid_sampler compiles to on x86-64 (the same floats there, tested); a build that does not fuse them may differ in the
 * last bit.
 */
export function writeEvalView(
  pixels: Uint8Array, width: number, height: number, size: number,
  mean: readonly [number, number, number], std: readonly [number, number, number], out: Float32Array, offset: number,
): void {
  const plane = size * size;
  const means = mean.map(f32);
  const stds = std.map(f32);
  if (width === size && height === size) {
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < plane; i++) out[offset + c * plane + i] = f32(f32(f32(pixels[3 * i + c] / 255) - means[c]) / stds[c]);
    }
    return;
  }
  const xs = sourceAxis(size, width);
  const ys = sourceAxis(size, height);
  const value = (x: number, y: number, c: number) => (x < width && y < height ? f32(pixels[3 * (y * width + x) + c] / 255) : 0);
  for (let c = 0; c < 3; c++) {
    for (let oy = 0; oy < size; oy++) {
      const n = ys.frac[oy];
      const s = f32(1 - n);
      const y = ys.low[oy];
      for (let ox = 0; ox < size; ox++) {
        const w = xs.frac[ox];
        const e = f32(1 - w);
        const x = xs.low[ox];
        // grid_sampler's corner weights (south x east, ...) and sum, in its order, with fused multiply-adds.
        const v = f32(value(x + 1, y + 1, c) * f32(n * w) + f32(value(x, y + 1, c) * f32(n * e) +
          f32(value(x + 1, y, c) * f32(s * w) + f32(value(x, y, c) * f32(s * e)))));
        out[offset + c * plane + oy * size + ox] = f32(f32(v - means[c]) / stds[c]);
      }
    }
  }
}
