/**
 * The pieces fit together as a user wires them: a Loader batch's Int32Array labels go straight into kNN and the
 * linear probe, its uint8 NHWC images become model input through toModelInput, and every typed array a user holds
 * makes a Tensor of the matching dtype.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import {
  Augmenter, AugmenterState, ImageFolder, Loader, SimCLRModel, Tensor, knnEvaluate, knnPredict, linearProbe, toModelInput,
} from '../src';
import { clusters } from './helpers/synthetic-features';

describe('Tensor.fromTypedArray takes every typed array a user holds', () => {
  it.each([
    ['int32', Int32Array.from([1, -2, 3, 2 ** 31 - 1])],
    ['uint8', Uint8Array.from([0, 1, 254, 255])],
    ['float64', Float64Array.from([0.5, -1, 1e300, 3])],
    ['int64', BigInt64Array.from([1n, -2n, 2n ** 40n, 4n])],
  ] as const)('%s: the dtype follows the array, the data round-trips, the shape defaults to 1-D', (dtype, data) => {
    const t = Tensor.fromTypedArray(data);
    expect([t.dtype, t.shape, t.byteLength]).toEqual([dtype, [4], data.byteLength]);
    expect(t.toTypedArray()).toEqual(data);
  });

  it('makes int32 zeros by dtype name', () => {
    expect(Tensor.zeros([2], { dtype: 'int32' }).toTypedArray()).toEqual(new Int32Array(2));
  });
});

describe('labels as Int32Array or Tensor', () => {
  const train = clusters(200, 8, 4, 0.3, 1);
  const test = clusters(80, 8, 4, 0.3, 2);
  const int32 = (labels: BigInt64Array) => Int32Array.from(labels, Number);

  it('kNN gives the same predictions for Int32Array, int32 and int64 labels', async () => {
    const ofTensor = await knnPredict(train, test.features, { k: 5 });
    const ofArray = await knnPredict({ features: train.features, labels: int32(train.labelData) }, test.features, { k: 5 });
    const ofInt32 = await knnPredict({ features: train.features, labels: Tensor.fromTypedArray(int32(train.labelData)) }, test.features, { k: 5 });
    expect(ofArray.toTypedArray()).toEqual(ofTensor.toTypedArray());
    expect(ofInt32.toTypedArray()).toEqual(ofTensor.toTypedArray());
    const evaluated = await knnEvaluate({ features: train.features, labels: int32(train.labelData) }, { features: test.features, labels: int32(test.labelData) }, { k: 5 });
    expect(evaluated.accuracy).toBeGreaterThan(0.9);
  });

  it('the linear probe takes Int32Array labels', async () => {
    const result = await linearProbe({ features: train.features, labels: int32(train.labelData) }, { features: test.features, labels: int32(test.labelData) }, { epochs: 20 });
    expect(result.testAccuracy).toBeGreaterThan(0.9);
  });

  it('rejects labels that are neither, naming the field', async () => {
    await expect(knnPredict({ features: train.features, labels: [0, 1] as never }, test.features)).toRejectKind('TypeError', 'bank.labels');
  });
});

describe('toModelInput: a Loader batch as model input', () => {
  let root: string;
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-types-'));
    for (const [name, colour] of [['a', { r: 255, g: 0, b: 0 }], ['b', { r: 0, g: 0, b: 255 }]] as const) {
      fs.mkdirSync(path.join(root, name));
      for (let i = 0; i < 3; i++) {
        await sharp({ create: { width: 20, height: 20, channels: 3, background: colour } }).png().toFile(path.join(root, name, `${i}.png`));
      }
    }
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('turns uint8 NHWC into normalised float32 NCHW (ImageNet statistics), at the images\' size or a given one', async () => {
    const loader = new Loader(new ImageFolder(root), { batchSize: 6, shuffle: false });
    for await (const batch of loader) {
      const x = await toModelInput(batch);
      expect([x.dtype, x.shape]).toEqual(['float32', [6, 3, 32, 32]]); // ImageFolder's default base size
      const pixels = x.toFloat32Array();
      const plane = 32 * 32;
      // Image 0 is red: (1 - 0.485) / 0.229 in channel 0, (0 - 0.456) / 0.224 in channel 1.
      expect(pixels[0]).toBeCloseTo((1 - 0.485) / 0.229, 4);
      expect(pixels[plane]).toBeCloseTo(-0.456 / 0.224, 4);
      expect((await toModelInput(batch.images, { size: 16 })).shape).toEqual([6, 3, 16, 16]);
      const model = await SimCLRModel.create({ backbone: 'resnet18' });
      model.eval();
      const { h, z } = await model.forward(x);
      expect([h.shape, z.shape]).toEqual([[6, 512], [6, 128]]);
    }
  });

  it('model.forward on a raw batch says to use toModelInput', async () => {
    const model = await SimCLRModel.create({ backbone: 'resnet18' });
    const raw = Tensor.zeros([2, 32, 32, 3], { dtype: 'uint8' });
    await expect(model.forward(raw)).toRejectKind('TypeError', 'toModelInput(batch)');
    await expect(model.embed(raw)).toRejectKind('TypeError', 'toModelInput(batch)');
  });

  it('rejects what is not a uint8 batch, and asks for a size for non-square images', async () => {
    await expect(toModelInput(Tensor.zeros([2, 3, 8, 8]))).toRejectKind('TypeError', 'uint8 Tensor B x H x W x 3');
    await expect(toModelInput(Tensor.zeros([2, 8, 10, 3], { dtype: 'uint8' }))).toRejectKind('TypeError', 'a size for these 8 x 10 images');
    await expect(toModelInput({} as never)).toRejectKind('TypeError', 'batch');
  });
});

describe('typed augmenter state', () => {
  it('getState returns an AugmenterState that setState takes back without a cast, and that survives JSON', () => {
    const a = new Augmenter({}, { seed: 4 });
    const state: AugmenterState = a.getState();
    const next = a.sample(2, 32, 32);
    const b = new Augmenter({}, { seed: 99 });
    b.setState(JSON.parse(JSON.stringify(state)) as AugmenterState);
    expect(b.sample(2, 32, 32)).toEqual(next);
  });
});
