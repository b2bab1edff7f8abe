/**
 * Multi-crop (SwAV): the config of the small views, their sampling, the views of every resolution group against the
 * same parameters composed in torchvision, the layout a training step's loss needs, the trainer's data side and its
 * training steps.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { Augmenter, resolveAugmentConfig, viewGroups, Tensor, ntXent, ImageFolder, DEFAULT_RUN_CONFIG, trainingData, Trainer, createModel, manualSeed, validateRunConfig, resolveRun } from '../src';
import { describeWithOracle, runPython } from './helpers/oracle';
import { distributedTrainingData } from '../src/run/distributed-data';

const SMALL = { views: 4, size: 12, scale: [0.05, 0.14] as [number, number] };

describe('multi-crop config', () => {
  it('adds K small views to the two large ones, with SwAV defaults for what is left out', () => {
    expect(resolveAugmentConfig().smallCrops).toBeNull();
    const config = resolveAugmentConfig({ size: 224, crop: { scale: [0.14, 1] }, smallCrops: { views: 6 } });
    expect(config.smallCrops).toEqual({ views: 6, size: 96, scale: [0.05, 0.14], blurKernel: 9 });
    expect(viewGroups(config)).toEqual([
      { views: 2, size: 224, scale: [0.14, 1], blurKernel: 23 },
      { views: 6, size: 96, scale: [0.05, 0.14], blurKernel: 9 },
    ]);
    // The small views' side follows the large ones' (96/224 of it), as a run's --small-crop-size does.
    expect(resolveAugmentConfig({ size: 160, smallCrops: { views: 4 } }).smallCrops).toMatchObject({ size: 69, blurKernel: 7 });
    expect(new Augmenter({ smallCrops: { views: 6 } }).viewsPerImage).toBe(8);
  });

  it('checks the small views like the large ones', () => {
    expect(() => resolveAugmentConfig({ smallCrops: { views: 0 } })).toThrowKind('RangeError', 'smallCrops.views');
    expect(() => resolveAugmentConfig({ smallCrops: {} as never })).toThrowKind('TypeError', 'smallCrops.views');
    expect(() => resolveAugmentConfig({ smallCrops: { views: 2, scale: [0.5, 0.1] } })).toThrowKind('RangeError', 'smallCrops.scale');
    expect(() => resolveAugmentConfig({ smallCrops: { views: 2, size: 8, blurKernel: 16 } })).toThrowKind('RangeError', 'smallCrops.blurKernel');
  });
});

describe('multi-crop sampling', () => {
  const [B, H, W] = [400, 96, 128];
  const plain = new Augmenter({}, { seed: 4 }).sample(B, H, W);
  const multi = new Augmenter({ smallCrops: { views: 3, size: 32 } }, { seed: 4 }).sample(B, H, W);

  it('draws the two large views first, exactly as without small crops', () => {
    expect(multi.boxes.length).toBe(4 * 5 * B);
    expect(multi.boxes.subarray(0, 4 * 2 * B)).toEqual(plain.boxes);
    expect(multi.jitterFactors.subarray(0, 4 * 2 * B)).toEqual(plain.jitterFactors);
    expect(multi.blurSigma.subarray(0, 2 * B)).toEqual(plain.blurSigma);
  });

  it("crops the small views with their own scale (SwAV's [0.05, 0.14] of the image area)", () => {
    const areas = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => {
      const [h, w] = multi.boxes.subarray(4 * (from + k) + 2, 4 * (from + k) + 4);
      return (h * w) / (H * W);
    });
    const small = areas(2 * B, 5 * B);
    // Rounding the crop's sides to whole pixels moves the area a little past the drawn fraction.
    expect(Math.min(...small)).toBeGreaterThan(0.04);
    expect(Math.max(...small)).toBeLessThan(0.16);
    expect(Math.max(...areas(0, 2 * B))).toBeGreaterThan(0.5);
  });
});

// Each image a flat colour: every view of it (crop, flip, resize, normalise; no colour ops) is that colour, so the
// rows of the views say which image they came from.
function flatImages(colours: number[][], side: number): Tensor {
  const data = new Uint8Array(colours.length * side * side * 3);
  colours.forEach((rgb, n) => {
    for (let p = 0; p < side * side; p++) data.set(rgb, (n * side * side + p) * 3);
  });
  return Tensor.fromTypedArray(data, [colours.length, side, side, 3]);
}

describe('multi-crop views', () => {
  const colours = [[250, 10, 10], [10, 250, 10], [10, 10, 250]];
  const noColour = { colorJitter: { probability: 0 }, grayscaleProbability: 0, blur: { probability: 0 } };

  it('are one tensor per group, view-major; the groups one after the other are view-major over all 2 + K views', async () => {
    const augmenter = new Augmenter({ size: 20, ...noColour, smallCrops: SMALL }, { seed: 2 });
    const groups = await augmenter.viewGroups(flatImages(colours, 32));
    expect(groups.map((g) => g.shape)).toEqual([[6, 3, 20, 20], [12, 3, 12, 12]]);
    // The first pixel's red channel of every row, group after group: row v * B + i is a view of image i.
    const red = groups.flatMap((g) => {
      const values = g.toFloat32Array();
      const row = values.length / g.shape[0];
      return Array.from({ length: g.shape[0] }, (_, r) => values[r * row]);
    });
    const expected = colours.map(([r]) => (r / 255 - 0.485) / 0.229);
    red.forEach((v, row) => expect(v).toBeCloseTo(expected[row % colours.length], 4));
  });

  it("are what ntXent with views = 2 + K takes: each view's positives are its image's other views", async () => {
    const augmenter = new Augmenter({ size: 20, ...noColour, smallCrops: SMALL }, { seed: 2 });
    const groups = await augmenter.viewGroups(flatImages(colours, 32));
    // A stand-in for the encoder: each view's mean colour.
    const embeddings = groups.flatMap((g) => {
      const values = g.toFloat32Array();
      const plane = g.shape[2] * g.shape[3];
      return Array.from({ length: g.shape[0] }, (_, r) => [0, 1, 2].map((c) => {
        let sum = 0;
        for (let i = 0; i < plane; i++) sum += values[(3 * r + c) * plane + i];
        return sum / plane;
      }));
    });
    const V = augmenter.viewsPerImage;
    const z = Tensor.fromTypedArray(Float32Array.from(embeddings.flat()), [embeddings.length, 3]);
    const { loss } = await ntXent(z, { temperature: 0.1, views: V });
    // Every positive of every anchor is an identical embedding and the negatives are far: the loss is at its floor,
    // log(V - 1) (each positive competes with the other V - 2).
    expect(loss).toBeCloseTo(Math.log(V - 1), 2);
    // The same rows read image-major (as if the groups were not view-major): positives from other images.
    const B = colours.length;
    const imageMajor = Array.from({ length: V * B }, (_, r) => embeddings[(r % V) * B + Math.floor(r / V)]);
    const { loss: wrong } = await ntXent(Tensor.fromTypedArray(Float32Array.from(imageMajor.flat()), [V * B, 3]), { temperature: 0.1, views: V });
    expect(wrong).toBeGreaterThan(loss + 1);
  });

  it('views() asks for viewGroups() when there are small crops', async () => {
    const augmenter = new Augmenter({ size: 20, smallCrops: SMALL });
    await expect(augmenter.views(flatImages(colours, 32))).rejects.toThrow(/2 view groups .*viewGroups\(\)/);
  });
});

const COMPOSE_ORACLE = String.raw`
import json, sys, numpy as np, torch
import torchvision.transforms.functional as F
a = json.loads(sys.argv[1])
imgs = torch.from_numpy(np.fromfile(a['input'], dtype=np.uint8).reshape(a['shape'])).permute(0, 3, 1, 2).float() / 255
B = imgs.shape[0]
ops = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue]
k = 0
for g, group in enumerate(a['groups']):
    out = []
    for local in range(group['views'] * B):
        x = imgs[local % B]
        t, l, h, w = [int(v) for v in a['boxes'][4 * k: 4 * k + 4]]
        x = F.resized_crop(x, t, l, h, w, [group['size'], group['size']], antialias=False)
        if a['flip'][k]: x = F.hflip(x)
        if a['jitterApply'][k]:
            for o in a['jitterOrder'][4 * k: 4 * k + 4]:
                x = ops[o](x, a['jitterFactors'][4 * k + o])
        if a['grayscale'][k]: x = F.rgb_to_grayscale(x, 3)
        if a['blurSigma'][k] > 0: x = F.gaussian_blur(x, [group['blurKernel']] * 2, [a['blurSigma'][k]] * 2)
        out.append(F.normalize(x, a['mean'], a['std']))
        k += 1
    torch.stack(out).numpy().astype(np.float32).tofile(a['output'] + str(g))
`;

describeWithOracle('multi-crop views match the same parameters composed in torchvision', (python) => {
  it('each group, with its own size and blur kernel', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-multicrop-'));
    const B = 4;
    const [h, w] = [44, 36];
    const data = Uint8Array.from({ length: B * h * w * 3 }, (_, i) => (i * 29 + Math.floor(i / 89) * 13) % 256);
    const images = Tensor.fromTypedArray(data, [B, h, w, 3]);
    const augmenter = new Augmenter({ size: 22, grayscaleProbability: 0.5, blur: { probability: 0.7 }, smallCrops: { views: 3, size: 10, scale: [0.1, 0.3] } }, { seed: 8 });
    const state = augmenter.getState();
    const params = augmenter.sample(B, h, w);
    augmenter.setState(state);
    const groups = await augmenter.viewGroups(images);
    const input = path.join(dir, 'in.u8');
    fs.writeFileSync(input, data);
    const output = path.join(dir, 'out');
    const { mean, std } = augmenter.config.normalize;
    runPython(python, COMPOSE_ORACLE, {
      input, output, shape: [B, h, w, 3], groups: augmenter.groups, mean, std,
      boxes: Array.from(params.boxes), flip: Array.from(params.flip), jitterApply: Array.from(params.jitterApply),
      jitterOrder: Array.from(params.jitterOrder), jitterFactors: Array.from(params.jitterFactors),
      grayscale: Array.from(params.grayscale), blurSigma: Array.from(params.blurSigma),
    });
    groups.forEach((group, g) => {
      const bytes = fs.readFileSync(output + g);
      const expected = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      const ours = group.toFloat32Array();
      expect(ours.length).toBe(expected.length);
      let max = 0;
      for (let i = 0; i < ours.length; i++) max = Math.max(max, Math.abs(ours[i] - expected[i]));
      // The tolerance of the two-view test in test/augment.test.ts (about 5e-6 on [0, 1] pixels).
      expect(max).toBeLessThanOrEqual(2e-5);
    });
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe("multi-crop in a run's data side", () => {
  it('trainingData with small crops yields one tensor per group and counts 2 + K views per image', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-multicrop-data-'));
    for (let i = 0; i < 3; i++) {
      await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 60 * i, g: 100, b: 200 - 50 * i } } })
        .png().toFile(path.join(dir, `${i}.png`));
    }
    const config = { ...DEFAULT_RUN_CONFIG, batchSize: 3, baseSize: 32, imageSize: 16, smallCrops: 2, smallCropSize: 8 };
    const data = trainingData(new ImageFolder(dir, { labels: 'none', size: 32 }), config);
    expect(data.viewsPerImage).toBe(4);
    for await (const batch of data.batches(0, 0)) {
      const views = await data.views(batch.images);
      expect(Array.isArray(views) ? views.map((v) => v.shape) : views.shape).toEqual([[6, 3, 16, 16], [6, 3, 8, 8]]);
    }
    const plain = trainingData(new ImageFolder(dir, { labels: 'none', size: 32 }), { ...config, smallCrops: 0 });
    expect(plain.viewsPerImage).toBe(2);
    // A data-parallel rank's data side alike (rank 0 of 2: 2 of the 3 images, the sampler padding the epoch to 4).
    const rank = distributedTrainingData(new ImageFolder(dir, { labels: 'none', size: 32 }), { ...config, batchSize: 2 }, 0, 2);
    expect(rank.viewsPerImage).toBe(4);
    for await (const batch of rank.batches(0, 0)) {
      const views = await rank.views(batch.images);
      expect(Array.isArray(views) ? views.map((v) => v.shape) : views.shape).toEqual([[4, 3, 16, 16], [4, 3, 8, 8]]);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('multi-crop in training', () => {
  it("the Trainer's step on 2 + K views per image has the loss of NT-Xent over all views of the model's embeddings", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-multicrop-train-'));
    for (let i = 0; i < 4; i++) {
      const pixels = Buffer.alloc(32 * 32 * 3);
      for (let j = 0; j < pixels.length; j++) pixels[j] = (j * (i + 3) + (j >> 5) * 7) & 255;
      await sharp(pixels, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(path.join(dir, `${i}.png`));
    }
    const config = validateRunConfig({
      batchSize: 4, baseSize: 32, imageSize: 16, stem: 'cifar', epochs: 1, lr: 0.1, precision: 'fp32', memoryFormat: 'contiguous',
      temperature: 0.5, knnEvery: 0, seed: 7, smallCrops: 2, smallCropSize: 8,
    });
    const data = () => trainingData(new ImageFolder(dir, { labels: 'none', size: 32 }), config);
    manualSeed(1);
    const model = await createModel(config);
    // The views the Trainer's first step gets (the same seeds), embedded by the model as it is before that step.
    const first = data();
    let expected = NaN;
    for await (const batch of first.batches(0, 0)) {
      const groups = (await first.views(batch.images)) as Tensor[];
      model.train();
      const z = await Promise.all(groups.map(async (g) => (await model.forward(g, { precision: 'fp32', memoryFormat: 'contiguous' })).z.toFloat32Array()));
      const all = Tensor.fromTypedArray(Float32Array.from([...z[0], ...z[1]]), [16, z[0].length / 8]);
      expected = (await ntXent(all, { temperature: 0.5, views: 4 })).loss;
      break;
    }
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-multicrop-run-'));
    const result = await new Trainer(model, data(), { ...resolveRun(config), out, progress: 'none' }).fit();
    const steps = result.records.filter((r) => 'step' in r) as { loss: number; images: number }[];
    expect(steps.map((r) => r.images)).toEqual([4]);
    expect(Math.abs(steps[0].loss - expected)).toBeLessThan(1e-5 * expected);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(out, { recursive: true, force: true });
  });
});
