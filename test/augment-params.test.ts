/** The Augmenter's sampled parameters follow the configured distributions, and the seed fixes them. */
import { Augmenter, resolveAugmentConfig, SEED_AUGMENTATION, SIMCLR_IMAGENET_AUGMENTATION, AUGMENT_DEFAULTS, RUN_SETTINGS, defaultBlurKernel, Tensor } from '../src';
import { describeWithOracle, runPython } from './helpers/oracle';

const IMAGES = 3000; // 6000 views: a probability's standard error is at most 0.0065
const [H, W] = [224, 256];

describe('Augmenter parameter sampling', () => {
  const params = new Augmenter(SIMCLR_IMAGENET_AUGMENTATION, { seed: 11 }).sample(IMAGES, H, W);
  const n = 2 * IMAGES;
  const rate = (flags: Uint8Array) => flags.reduce((a, b) => a + b, 0) / flags.length;

  it('defaults to the recipe at 32 px, the same as the run settings', () => {
    expect(resolveAugmentConfig()).toMatchObject({
      size: 32, flipProbability: 0.5, grayscaleProbability: 0.2,
      crop: { scale: [0.2, 1], ratio: [3 / 4, 4 / 3] },
      colorJitter: { probability: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 },
      blur: { probability: 0, kernelSize: 3, sigma: [0.1, 2] },
    });
    expect(AUGMENT_DEFAULTS).toMatchObject({
      size: RUN_SETTINGS.imageSize.default, minScale: RUN_SETTINGS.minScale.default,
      jitterStrength: RUN_SETTINGS.jitterStrength.default, blurProbability: RUN_SETTINGS.blurProbability.default,
      smallCropScale: [RUN_SETTINGS.smallCropMinScale.default, RUN_SETTINGS.smallCropMaxScale.default],
    });
    // One frozen object, nested parts too: a default cannot be changed from outside.
    expect([Object.isFrozen(AUGMENT_DEFAULTS), Object.isFrozen(AUGMENT_DEFAULTS.normalize.mean), Object.isFrozen(AUGMENT_DEFAULTS.cropRatio)]).toEqual([true, true, true]);
  });

  it('has SimCLR\'s ImageNet values as a preset, and the seed variant is expressible', () => {
    const config = resolveAugmentConfig(SIMCLR_IMAGENET_AUGMENTATION);
    expect(config).toMatchObject({
      size: 224, flipProbability: 0.5, grayscaleProbability: 0.2,
      crop: { scale: [0.08, 1], ratio: [3 / 4, 4 / 3] },
      colorJitter: { probability: 0.8, brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2 },
      blur: { probability: 0.5, kernelSize: 23, sigma: [0.1, 2] },
    });
    expect(defaultBlurKernel(128)).toBe(13);
    expect(resolveAugmentConfig({ jitterStrength: 0.5 }).colorJitter).toMatchObject({ brightness: 0.4, hue: 0.1 });
    expect(resolveAugmentConfig(SEED_AUGMENTATION)).toMatchObject({ size: 128, crop: { scale: [0.08, 1] }, colorJitter: { probability: 0.5, brightness: 0.8 }, blur: { probability: 1, kernelSize: 23 } });
  });

  it('flips, jitters, grays and blurs with the configured probabilities (within 4 standard errors)', () => {
    const close = (observed: number, p: number) => expect(Math.abs(observed - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / n));
    close(rate(params.flip), 0.5);
    close(rate(params.jitterApply), 0.8);
    close(rate(params.grayscale), 0.2);
    close(params.blurSigma.filter((s) => s > 0).length / n, 0.5);
  });

  it('draws blur sigma uniformly from [0.1, 2]', () => {
    const sigmas = Array.from(params.blurSigma).filter((s) => s > 0);
    expect(Math.min(...sigmas)).toBeGreaterThanOrEqual(0.1);
    expect(Math.max(...sigmas)).toBeLessThanOrEqual(2);
    const mean = sigmas.reduce((a, b) => a + b, 0) / sigmas.length;
    expect(Math.abs(mean - 1.05)).toBeLessThan(4 * (1.9 / Math.sqrt(12)) / Math.sqrt(sigmas.length));
  });

  it('draws jitter factors from their ranges, identity when jitter is off, in all 24 orders', () => {
    const orders = new Map<string, number>();
    const bounds = [[0.2, 1.8], [0.2, 1.8], [0.2, 1.8], [-0.2, 0.2]];
    const wrong: string[] = [];
    for (let k = 0; k < n; k++) {
      const f = Array.from(params.jitterFactors.subarray(4 * k, 4 * k + 4));
      const order = Array.from(params.jitterOrder.subarray(4 * k, 4 * k + 4));
      if ([...order].sort().join('') !== '0123') wrong.push(`order ${order} of view ${k}`);
      if (!params.jitterApply[k]) {
        if (f.join() !== '1,1,1,0') wrong.push(`factors ${f} of unjittered view ${k}`);
        continue;
      }
      f.forEach((v, j) => {
        if (v < bounds[j][0] - 1e-6 || v > bounds[j][1] + 1e-6) wrong.push(`factor ${j} = ${v} of view ${k}`);
      });
      orders.set(order.join(''), (orders.get(order.join('')) ?? 0) + 1);
    }
    expect(wrong).toEqual([]);
    expect(orders.size).toBe(24);
    const expected = rate(params.jitterApply) * n / 24;
    for (const count of orders.values()) expect(Math.abs(count - expected)).toBeLessThan(5 * Math.sqrt(expected));
  });

  it('crops boxes inside the image with area in [0.08, 1] and aspect ratio in [3/4, 4/3]', () => {
    const wrong: string[] = [];
    for (let k = 0; k < n; k++) {
      const [top, left, h, w] = params.boxes.subarray(4 * k, 4 * k + 4);
      const integral = [top, left, h, w].every(Number.isInteger);
      const inside = top >= 0 && left >= 0 && top + h <= H && left + w <= W;
      // Rounding w and h to pixels moves area and ratio slightly past the bounds.
      const shaped = h * w / (H * W) > 0.08 * 0.97 && w / h > 0.75 * 0.97 && w / h < 4 / 3 / 0.97;
      if (!integral || !inside || !shaped) wrong.push(`box ${[top, left, h, w]} of view ${k}`);
    }
    expect(wrong).toEqual([]);
  });

  it('repeats exactly for the same seed and after getState/setState', () => {
    const a = new Augmenter({}, { seed: 5 });
    const b = new Augmenter({}, { seed: 5 });
    expect(a.sample(8, 32, 32)).toEqual(b.sample(8, 32, 32));
    const state = a.getState();
    const next = a.sample(8, 32, 32);
    expect(next).not.toEqual(new Augmenter({}, { seed: 6 }).sample(8, 32, 32));
    b.setState(state);
    expect(b.sample(8, 32, 32)).toEqual(next);
  });

  it('rejects bad configs and inputs with uniform messages', async () => {
    expect(() => new Augmenter({ size: 0 })).toThrowKind('RangeError', 'Expected an integer between 1 and 8192 for size');
    expect(() => new Augmenter({ blur: { kernelSize: 4 } })).toThrowKind('RangeError', /blur.kernelSize/);
    expect(() => new Augmenter({ colorJitter: { hue: 0.7 } })).toThrowKind('RangeError', /colorJitter.hue/);
    expect(() => new Augmenter({ crop: { scale: [0.9, 0.1] } })).toThrowKind('RangeError', /crop.scale/);
    expect(() => new Augmenter({}, { seed: -1 })).toThrowKind('RangeError', /seed/);
    const augmenter = new Augmenter({ size: 8 });
    await expect(augmenter.views(Tensor.zeros([2, 3, 8, 8]))).rejects.toThrow(/uint8 Tensor B x H x W x 3/);
  });
});

describeWithOracle('crop boxes follow torchvision RandomResizedCrop.get_params', (python) => {
  it('has the same mean and spread of area fraction and log aspect ratio (within 5 standard errors)', () => {
    const stats = (rows: number[][]) => {
      const area = rows.map(([, , h, w]) => (h * w) / (H * W));
      const logRatio = rows.map(([, , h, w]) => Math.log(w / h));
      const m = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const sd = (xs: number[]) => Math.sqrt(m(xs.map((x) => (x - m(xs)) ** 2)));
      return { area: m(area), areaSd: sd(area), logRatio: m(logRatio), logRatioSd: sd(logRatio) };
    };
    const params = new Augmenter(SIMCLR_IMAGENET_AUGMENTATION, { seed: 2 }).sample(IMAGES, H, W);
    const ours = stats(Array.from({ length: 2 * IMAGES }, (_, k) => Array.from(params.boxes.subarray(4 * k, 4 * k + 4))));
    const theirs = stats(JSON.parse(runPython(python, String.raw`
import json, sys, torch
import torchvision.transforms as T
a = json.loads(sys.argv[1]); torch.manual_seed(0)
img = torch.zeros(3, a['H'], a['W'])
print(json.dumps([list(T.RandomResizedCrop.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3])) for _ in range(a['n'])]))
`, { H, W, n: 2 * IMAGES })));
    const se = (sd: number) => sd / Math.sqrt(2 * IMAGES);
    expect(Math.abs(ours.area - theirs.area)).toBeLessThan(5 * Math.SQRT2 * se(theirs.areaSd));
    expect(Math.abs(ours.logRatio - theirs.logRatio)).toBeLessThan(5 * Math.SQRT2 * se(theirs.logRatioSd));
    expect(Math.abs(ours.areaSd - theirs.areaSd)).toBeLessThan(0.1 * theirs.areaSd);
  });
});

describe('augmentation options are checked, not skipped over', () => {
  it('a misspelt or unknown option is an error naming it and the keys there are, at every level', () => {
    expect(() => new Augmenter({ blurProbability: NaN } as never)).toThrowKind('TypeError',
      "Expected one of the keys size, crop, flipProbability, jitterStrength, colorJitter, grayscaleProbability, blur, normalize, smallCrops for augment options but received 'blurProbability'");
    expect(() => resolveAugmentConfig({ blur: { probabilty: 0.5 } as never })).toThrowKind('TypeError', "keys probability, kernelSize, sigma for blur but received 'probabilty'");
    expect(() => resolveAugmentConfig({ crop: { min: 0.2 } as never })).toThrowKind('TypeError', "for crop but received 'min'");
    expect(() => resolveAugmentConfig({ colorJitter: { strength: 1 } as never })).toThrowKind('TypeError', "for colorJitter but received 'strength'");
    expect(() => resolveAugmentConfig({ normalize: { means: [0, 0, 0] } as never })).toThrowKind('TypeError', "for normalize but received 'means'");
    expect(() => resolveAugmentConfig({ smallCrops: { views: 2, sizes: 96 } as never })).toThrowKind('TypeError', "for smallCrops but received 'sizes'");
    expect(() => resolveAugmentConfig({ blur: 0.5 as never })).toThrowKind('TypeError', 'an options object for blur');
  });

  it('a corrupt state is named as a state, not blamed on the seed', () => {
    const augmenter = new Augmenter({}, { seed: 1 });
    for (const state of ['oops', { 0: 1 }, 7, null]) {
      expect(() => augmenter.setState(state as never)).toThrowKind('TypeError', 'Expected a state of 4 integers (from getState) for state');
    }
    expect(() => augmenter.setState([1, 2, 3] as never)).toThrowKind('RangeError', 'a state of 4 integers for state');
  });

  it('a NaN where a number belongs is an error too', () => {
    expect(() => resolveAugmentConfig({ blur: { probability: NaN } })).toThrowKind('RangeError', 'blur.probability');
    expect(() => resolveAugmentConfig({ flipProbability: NaN })).toThrowKind('RangeError', 'flipProbability');
  });
});
