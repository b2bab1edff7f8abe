/**
 * simclr/preprocess, the model input without LibTorch, against the LibTorch path it stands in for
 * (imagesToModelInput: the datasets' decoding, then toModelInput): the same bytes and floats where both decode alike,
 * and how far apart where they cannot (JPEGs the addon scales on load), measured on the input and on the features of
 * a ResNet-18. And that importing it loads no native addon of ours and no LibTorch.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { SimCLRModel, Tensor, exportOnnx, fashionMnist, imagesToModelInput, manualSeed, resizeImage, toModelInput } from '../src';
import { hasJpegDecoder } from '../src/augment/image-batch';
import { SampleError, checkInputSpec, imageToOnnxInput, readOnnxInputSpec, readOnnxMetadata } from '../src/preprocess';
import { decodeImage } from '../src/preprocess/onnx-input';
import { resizeBilinearAntialias, writeEvalView } from '../src/preprocess/resize';
import { describeWithFashionMnist } from './helpers/tools';
import { describeWithOracle, runPython } from './helpers/oracle';
import { scratchFolders } from './helpers/scratch';

const ROOT = path.join(__dirname, '..');
const tmp = scratchFolders('preprocess');
const IMAGENET = { mean: [0.485, 0.456, 0.406] as [number, number, number], std: [0.229, 0.224, 0.225] as [number, number, number] };

function seeded(seed: number): () => number {
  let s = seed;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** The lowest cosine similarity between the rows of two N x D feature arrays. */
function worstCosine(a: Float32Array, b: Float32Array, dim: number): number {
  let worst = 1;
  for (let r = 0; r < a.length / dim; r++) {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let j = r * dim; j < (r + 1) * dim; j++) {
      dot += a[j] * b[j];
      na += a[j] * a[j];
      nb += b[j] * b[j];
    }
    worst = Math.min(worst, dot / Math.sqrt(na * nb));
  }
  return worst;
}

describe('the evaluation path\'s resizes in TypeScript', () => {
  it('resizeBilinearAntialias gives the addon\'s resizeImage bytes (PIL\'s BILINEAR): shrinking, growing, both, one side', async () => {
    const random = seeded(7);
    const sizes: [number, number][] = [[32, 20], [77, 30], [20, 53], [150, 99], [1, 1], [100, 40], [300, 52], [20, 60], [28, 28], [16, 16]];
    let checked = 0;
    for (const [width, height] of [[77, 53], [28, 28], [224, 224], [5, 3], [300, 17]]) {
      const pixels = Uint8Array.from({ length: width * height * 3 }, () => Math.floor(random() * 256));
      for (const [w, h] of [...sizes, [width, height]]) {
        expect(Buffer.from(resizeBilinearAntialias(pixels, width, height, w, h)).equals(Buffer.from(await resizeImage(pixels, width, height, w, h)))).toBe(true);
        checked++;
      }
    }
    expect(checked).toBe(55);
  });

  // Bound: 1e-6 on values of magnitude up to 2.7, a few float32 ulps. The TypeScript rounds to float32 at each step as
  // the addon does and fuses the resize's multiply-adds as LibTorch's vectorised grid_sampler does on x86-64 (equal
  // floats there); a LibTorch build that does not fuse them may differ in the last bit.
  it('writeEvalView gives toModelInput\'s floats, at the model\'s size and resized to it (within 1e-6)', async () => {
    const random = seeded(11);
    const found: string[] = [];
    for (const [side, size] of [[16, 16], [20, 16], [16, 20], [28, 16], [7, 32], [224, 28]]) {
      const pixels = Uint8Array.from({ length: side * side * 3 }, () => Math.floor(random() * 256));
      const expected = (await toModelInput(Tensor.fromTypedArray(pixels, [1, side, side, 3]), { size })).toTypedArray() as Float32Array;
      const out = new Float32Array(3 * size * size);
      writeEvalView(pixels, side, side, size, IMAGENET.mean, IMAGENET.std, out, 0);
      const difference = maxDifference(out, expected);
      found.push(`${side} -> ${size}: ${difference}`);
      expect(difference).toBeLessThanOrEqual(1e-6);
    }
    console.log(`evaluation view, TypeScript vs the addon, max |diff|: ${found.join('; ')}`);
  });
});

describeWithFashionMnist('imageToOnnxInput against imagesToModelInput (the LibTorch path), on Fashion-MNIST test images', () => {
  /** Fashion-MNIST test images 0..count-1 as RGB 28 x 28, encoded as `format` at `side` px (resized by sharp). */
  async function encoded(format: 'png' | 'jpeg' | 'webp', side: number, count = 12, tint = false): Promise<Buffer[]> {
    const dataset = fashionMnist('test', { size: null });
    return Promise.all(Array.from({ length: count }, async (_, i) => {
      const { image } = await dataset.get(i);
      let pipeline = sharp(Buffer.from(image), { raw: { width: 28, height: 28, channels: 3 } });
      if (side !== 28) pipeline = pipeline.resize(side, side);
      if (tint) pipeline = pipeline.tint({ r: 255, g: 120, b: 40 });
      return format === 'png' ? pipeline.png().toBuffer() : format === 'jpeg' ? pipeline.jpeg({ quality: 90 }).toBuffer() : pipeline.webp({ quality: 80 }).toBuffer();
    }));
  }

  async function bothInputs(images: Buffer[], size: number, baseSize: number): Promise<{ libtorch: Tensor; onnx: Tensor }> {
    const libtorch = await imagesToModelInput(images, { size, baseSize });
    const onnx = await imageToOnnxInput(images, { size, baseSize, ...IMAGENET });
    expect(onnx.dims).toEqual([images.length, 3, size, size]);
    return { libtorch, onnx: Tensor.fromTypedArray(onnx.data, onnx.dims) };
  }

  // The same decoding (sharp's libvips, or the same libjpeg-turbo IDCT as the addon's for a JPEG not scaled on load)
  // and the same resizes (above): equal inputs, within the evaluation view's 1e-6 when the base size is not the model's.
  it('PNG, WebP, and JPEGs under twice the base size: the same input (max |diff| <= 1e-6)', async () => {
    const found: string[] = [];
    for (const [format, side] of [['png', 28], ['png', 100], ['webp', 28], ['webp', 100], ['jpeg', 28], ['jpeg', 40]] as const) {
      const images = await encoded(format, side, 6);
      for (const [size, baseSize] of [[16, 16], [28, 28], [16, 20], [32, 24]]) {
        if (format === 'jpeg' && side >= 2 * baseSize) continue; // scaled on load by the addon: the next test
        const { libtorch, onnx } = await bothInputs(images, size, baseSize);
        const difference = maxDifference(onnx.toTypedArray() as Float32Array, libtorch.toTypedArray() as Float32Array);
        found.push(`${format} ${side} px -> ${baseSize} -> ${size}: ${difference}`);
        expect(difference).toBeLessThanOrEqual(1e-6);
      }
    }
    console.log(`model input, simclr/preprocess vs imagesToModelInput, max |diff|:\n  ${found.join('\n  ')}`);
  });

  // JPEGs at least twice the base size: the addon's libjpeg scales them on load by 1/2, 1/4 or 1/8 (PIL's draft);
  // sharp cannot be asked to, so simclr/preprocess decodes them whole and averages blocks of that scale. What that
  // cannot give back is libjpeg's chroma: decoded at the scale it was stored at (4:2:0), where sharp's full decode
  // interpolates it first. Measured here, worst of 12 images per line, at 56, 84, 112 and 224 px to 28 px:
  //   grey images: inputs within 4.1 grey levels, features (a ResNet-18) at cosine >= 0.999992;
  //   tinted (saturated colour edges, the hardest case for the chroma): within 39.7, 19.3, 15.3 and 6.1 grey levels,
  //   cosine >= 0.99918 (at 2x; >= 0.99985 beyond).
  // Bounds asserted, with room for other images and LibTorch builds: grey 8 levels and cosine 0.9999; tinted 48
  // levels and cosine 0.998. Where the addon has no libjpeg (the pip prebuilds), simclr decodes these JPEGs with sharp
  // and no scale on load, which departs from PIL's draft itself (cosine 0.9969 to this path's input, measured): there
  // only cosine >= 0.99 is asserted.
  it('JPEGs at least twice the base size: close input and features (ResNet-18, 28 px)', async () => {
    manualSeed(0);
    const model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'imagenet' });
    model.eval();
    const libjpeg = hasJpegDecoder();
    const found: string[] = [];
    for (const side of [56, 84, 112, 224]) {
      for (const tint of [false, true]) {
        const { libtorch, onnx } = await bothInputs(await encoded('jpeg', side, 12, tint), 28, 28);
        // In grey levels: the normalised difference times 255 x the largest std.
        const levels = maxDifference(onnx.toTypedArray() as Float32Array, libtorch.toTypedArray() as Float32Array) * 255 * 0.229;
        const h = [await model.embed(libtorch), await model.embed(onnx)].map((t) => t.toTypedArray() as Float32Array);
        const cosine = worstCosine(h[1], h[0], 512);
        found.push(`${side} px${tint ? ' tinted' : ''}: ${levels.toFixed(1)} grey levels, cosine ${cosine.toFixed(6)}`);
        if (libjpeg) {
          expect(levels).toBeLessThanOrEqual(tint ? 48 : 8);
          expect(cosine).toBeGreaterThanOrEqual(tint ? 0.998 : 0.9999);
        } else {
          expect(cosine).toBeGreaterThanOrEqual(0.99);
        }
      }
    }
    console.log(`JPEGs >= 2x the base size, simclr/preprocess vs imagesToModelInput (${libjpeg ? 'libjpeg' : 'sharp'}), worst of 12 each:\n  ${found.join('\n  ')}`);
  });

  describeWithOracle('against PIL', (python) => {
    // PIL (Image.open → draft → convert('RGB') → resize BILINEAR) is what the addon's libjpeg path gives byte for
    // byte (decode.test.ts): the reference on every build, the pip prebuilds' too. Measured: grey 4 levels, tinted 39
    // (at 2x, see above); asserted 6 and 48.
    it('decodes JPEGs at least twice the size close to PIL\'s draft and resize (Fashion-MNIST, 56-224 px, grey and tinted)', async () => {
      const folder = tmp();
      const jobs: { file: string; size: [number, number]; tint: boolean }[] = [];
      for (const side of [56, 84, 112, 224]) {
        for (const tint of [false, true]) {
          for (const [i, bytes] of (await encoded('jpeg', side, 6, tint)).entries()) {
            const file = path.join(folder, `${side}-${tint}-${i}.jpg`);
            fs.writeFileSync(file, bytes);
            jobs.push({ file, size: [28, 28], tint });
          }
        }
      }
      const pil = JSON.parse(runPython(python, `
import json, sys
from PIL import Image
out = []
for job in json.loads(sys.argv[1]):
    im = Image.open(job['file'])
    im.draft('RGB', tuple(job['size']))
    out.append(im.convert('RGB').resize(tuple(job['size']), Image.BILINEAR).tobytes().hex())
print(json.dumps(out))`, jobs)) as string[];
      const worst = { grey: 0, tinted: 0 };
      for (const [i, job] of jobs.entries()) {
        const decoded = await decodeImage(fs.readFileSync(job.file), job.size, job.file);
        const key = job.tint ? 'tinted' : 'grey';
        worst[key] = Math.max(worst[key], maxDifference(decoded.image, Buffer.from(pil[i], 'hex')));
      }
      console.log(`decodeImage vs PIL's draft + resize, JPEGs 56-224 px to 28 px, max grey levels: ${JSON.stringify(worst)}`);
      expect(worst.grey).toBeLessThanOrEqual(6);
      expect(worst.tinted).toBeLessThanOrEqual(48);
    });
  });
});

describe('the model\'s input spec, from its metadata', () => {
  it('readOnnxInputSpec reads what exportOnnx wrote: size, the base size and the normalisation', async () => {
    const model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
    model.eval();
    const folder = tmp();
    const plain = path.join(folder, 'plain.onnx');
    const based = path.join(folder, 'based.onnx');
    await exportOnnx(model, plain, { imageSize: 16 });
    await exportOnnx(model, based, { imageSize: 16, baseSize: 20, normalize: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } });
    expect(readOnnxInputSpec(fs.readFileSync(plain))).toEqual({
      name: 'images', layout: 'NCHW', channels: 'RGB', size: 16, baseSize: 16, scale: 1 / 255, ...IMAGENET,
      resize: 'whole image to baseSize x baseSize when decoded (PIL bilinear), then to size x size (bilinear), no crop',
    });
    expect(readOnnxInputSpec(fs.readFileSync(based))).toMatchObject({ size: 16, baseSize: 20, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
    expect(readOnnxMetadata(fs.readFileSync(plain))).toMatchObject({ 'simclr.backbone': 'resnet18', 'simclr.stem': 'cifar' });
  });

  it('says what is wrong with a file that is not a model of ours, or a spec that cannot be', () => {
    expect(() => readOnnxInputSpec(Buffer.from('not an onnx file at all'))).toThrow(/Cannot read the ONNX model's metadata: .*not an \.onnx file/);
    expect(() => readOnnxInputSpec(new Uint8Array(0))).toThrow(/no simclr.input metadata: export it with simclr export --format onnx/);
    expect(() => readOnnxInputSpec('m.onnx' as unknown as Uint8Array)).toThrow(/Expected the bytes of an .onnx file \(a Uint8Array\) for model but received 'm.onnx'/);
    expect(() => checkInputSpec({ size: 0, ...IMAGENET })).toThrow(/Expected an integer between 1 and 8192 for spec.size but received 0/);
    expect(() => checkInputSpec({ size: 16, mean: [0, 0], std: [1, 1, 1] })).toThrow(/Expected an array of 3 numbers for spec.mean/);
    expect(() => checkInputSpec({ size: 16, mean: [0, 0, 0], std: [1, 0, 1] })).toThrow(/Expected a non-zero number for spec.std\[1\] but received 0/);
    expect(() => checkInputSpec({ size: 16, ...IMAGENET, layout: 'NHWC' })).toThrow(/Expected 'NCHW' for spec.layout/);
    expect(() => checkInputSpec(null)).toThrow(/Expected the model's simclr.input metadata/);
  });

  it('may be a readonly literal (as const): its mean and std are checked, not typed, as triples', async () => {
    const spec = { size: 4, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } as const;
    const png = await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: 255, g: 0, b: 255 } } }).png().toBuffer();
    const { data, dims } = await imageToOnnxInput(png, spec);
    expect(dims).toEqual([1, 3, 4, 4]);
    expect([data[0], data[16], data[32]]).toEqual([2, -2, 2]);
  });
});

describe('bad image bytes', () => {
  it('are a SampleError naming the image, on both paths; bytes that are no Uint8Array a TypeError', async () => {
    const good = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 9, g: 99, b: 199 } } }).png().toBuffer();
    const spec = { size: 8, ...IMAGENET };
    for (const bad of [Buffer.from('garbage'), good.subarray(0, 40), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3])]) {
      await expect(imageToOnnxInput([good, bad], spec)).rejects.toThrow(SampleError);
      await expect(imageToOnnxInput([good, bad], spec)).rejects.toThrow(/^Cannot read image 'image 1': /);
      await expect(imagesToModelInput([good, bad], { size: 8 })).rejects.toThrow(SampleError);
      await expect(imagesToModelInput([good, bad], { size: 8 })).rejects.toThrow(/^Cannot read image 'image 1': /);
    }
    await expect(imageToOnnxInput([], spec)).rejects.toThrow(/Expected image bytes \(a Uint8Array\) or a non-empty array of them for images/);
    await expect(imageToOnnxInput(['x.png'] as unknown as Uint8Array[], spec)).rejects.toThrow(TypeError);
    await expect(imagesToModelInput([good], {} as { size: number })).rejects.toThrow(/Expected an integer for size but received undefined/);
  });
});

describe('simclr/preprocess in a fresh process', () => {
  it('loads neither an addon of ours nor LibTorch: only sharp\'s and protobufjs\' code, also after decoding and reading a model', async () => {
    const folder = tmp();
    const png = path.join(folder, 'a.png');
    await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toFile(png);
    const model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
    const onnx = path.join(folder, 'm.onnx');
    await exportOnnx(model, onnx, { imageSize: 16 });
    // `simclr/preprocess` as a user's program names it: the package's own exports map, from its folder (dist/).
    const script = `
      const fs = require('fs');
      const { imageToOnnxInput, readOnnxInputSpec } = require('simclr/preprocess');
      (async () => {
        const spec = readOnnxInputSpec(fs.readFileSync(${JSON.stringify(onnx)}));
        const input = await imageToOnnxInput(fs.readFileSync(${JSON.stringify(png)}), spec);
        const maps = fs.readFileSync('/proc/self/maps', 'utf8');
        console.log(JSON.stringify({
          dims: input.dims,
          libraries: [...new Set(maps.split('\\n').map((l) => l.split(/\\s+/)[5]).filter((f) => f && /libtorch|libc10|\\.node$/.test(f)))],
          modules: Object.keys(require.cache).filter((m) => m.startsWith(${JSON.stringify(path.join(ROOT, 'dist') + path.sep)})).map((m) => m.slice(${path.join(ROOT, 'dist').length + 1})).sort(),
        }));
      })();`;
    const run = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const report = JSON.parse(run.stdout) as { dims: number[]; libraries: string[]; modules: string[] };
    expect(report.dims).toEqual([1, 3, 16, 16]);
    expect(report.libraries.filter((f) => !/[\\/]sharp-[^\\/]*\.node$/.test(f))).toEqual([]);
    // Of dist/: the entry's own folder and errors.js, never native.js or tensor.js.
    expect(report.modules).toContain('preprocess/index.js');
    expect(report.modules.filter((m) => !/^(preprocess\/|errors\.js$)/.test(m))).toEqual([]);
  });
});
