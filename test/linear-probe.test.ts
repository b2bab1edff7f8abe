import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Tensor, linearProbe, writeNpy } from '../src';
import { describeWithOracle, runPython } from './helpers/oracle';
import { clusters } from './helpers/synthetic-features';
import { fashionMnistPixels } from './helpers/fashion-mnist-pixels';
import { describeWithFashionMnist } from './helpers/tools';

describe('linear probe', () => {
  it('separates well-separated classes completely', async () => {
    const train = clusters(600, 20, 4, 0.3, 1);
    const test = clusters(200, 20, 4, 0.3, 2);
    const result = await linearProbe(train, test, { epochs: 50, learningRate: 0.01, weightDecay: 0 });
    expect(result.trainAccuracy).toBe(1);
    expect(result.testAccuracy).toBe(1);
    expect(result.trainLoss).toBeLessThan(0.05);
  });

  it('learns a class boundary that is linear but not aligned with any feature scale', async () => {
    // Class = sign of x0 - x1, with x1 on a 1000x larger scale: standardisation makes this as easy as equal scales.
    const rows = 400;
    const data = new Float32Array(rows * 2);
    const labels = new BigInt64Array(rows);
    for (let i = 0; i < rows; i++) {
      const a = Math.sin(i * 12.9898) * 2;
      const b = Math.cos(i * 78.233) * 2;
      data[2 * i] = a;
      data[2 * i + 1] = b * 1000;
      labels[i] = a - b > 0 ? 1n : 0n;
    }
    const split = { features: Tensor.fromTypedArray(data, [rows, 2]), labels: Tensor.fromTypedArray(labels, [rows]) };
    const result = await linearProbe(split, split, { epochs: 200, learningRate: 0.05 });
    expect(result.trainAccuracy).toBeGreaterThan(0.97);
  });

  it('returns weights and bias that classify the raw features as its predictions do', async () => {
    const train = clusters(300, 6, 3, 1.0, 3);
    const test = clusters(90, 6, 3, 1.0, 4);
    const result = await linearProbe(train, test, { epochs: 10 });
    expect(result.weights.shape).toEqual([3, 6]);
    expect(result.bias.shape).toEqual([3]);
    const w = result.weights.toFloat32Array();
    const b = result.bias.toFloat32Array();
    const predicted = Array.from({ length: 90 }, (_, r) => {
      const logits = [0, 1, 2].map((c) => b[c] + [0, 1, 2, 3, 4, 5].reduce((sum, d) => sum + w[c * 6 + d] * test.data[r * 6 + d], 0));
      return logits.indexOf(Math.max(...logits));
    });
    expect(Array.from(result.testPredictions.toTypedArray() as BigInt64Array, Number)).toEqual(predicted);
    const correct = predicted.filter((p, r) => BigInt(p) === test.labelData[r]).length;
    expect(result.testAccuracy).toBeCloseTo(correct / 90, 10);
  });

  it('is reproducible for a seed', async () => {
    const train = clusters(300, 8, 3, 2.0, 5);
    const test = clusters(60, 8, 3, 2.0, 6);
    const first = await linearProbe(train, test, { epochs: 3, seed: 7 });
    const again = await linearProbe(train, test, { epochs: 3, seed: 7 });
    expect(again.weights.toFloat32Array()).toEqual(first.weights.toFloat32Array());
    const other = await linearProbe(train, test, { epochs: 3, seed: 8 });
    expect(other.weights.toFloat32Array()).not.toEqual(first.weights.toFloat32Array());
  });

  it('applies weight decay to the weights', async () => {
    const train = clusters(200, 8, 2, 0.5, 9);
    const norm = (t: Tensor) => Math.hypot(...t.toFloat32Array());
    // Separable data: without decay the weights keep growing; with it they settle at a smaller norm.
    const free = await linearProbe(train, train, { epochs: 100, learningRate: 0.05, weightDecay: 0 });
    const decayed = await linearProbe(train, train, { epochs: 100, learningRate: 0.05, weightDecay: 0.1 });
    expect(norm(decayed.weights)).toBeLessThan(0.5 * norm(free.weights));
  });

  it('chooses the weight decay on held-out training rows and refits on all of them with it', async () => {
    // Few noisy rows in many dimensions: without a penalty the probe fits the noise.
    const train = clusters(200, 400, 2, 6, 11);
    const test = clusters(2000, 400, 2, 6, 12);
    const candidates = [0, 1e-3, 1e-2, 1e-1, 1];
    const chosen = await linearProbe(train, test, { weightDecay: candidates });
    expect(chosen.validation.map((v) => v.weightDecay)).toEqual(candidates);
    const best = Math.max(...chosen.validation.map((v) => v.accuracy));
    // The most accurate on the held-out rows, the larger penalty of a tie.
    expect(chosen.weightDecay).toBe(Math.max(...chosen.validation.filter((v) => v.accuracy === best).map((v) => v.weightDecay)));
    const refit = await linearProbe(train, test, { weightDecay: chosen.weightDecay });
    expect(refit.validation).toEqual([]);
    expect(refit.weights.toFloat32Array()).toEqual(chosen.weights.toFloat32Array());
    expect(refit.testAccuracy).toBe(chosen.testAccuracy);
    const free = await linearProbe(train, test, { weightDecay: 0 });
    console.log(`probe on 200 noisy rows x 400 dims: no penalty train ${free.trainAccuracy} test ${free.testAccuracy}; ` +
      `chosen ${chosen.weightDecay} (held-out ${chosen.validation.map((v) => v.accuracy.toFixed(3)).join(' ')}) test ${chosen.testAccuracy}`);
    expect(free.trainAccuracy).toBe(1);
    expect(chosen.weightDecay).toBeGreaterThan(0);
    expect(chosen.testAccuracy).toBeGreaterThan(free.testAccuracy);
  });

  it('fits the candidate penalties independently of one another', async () => {
    // The candidates are fitted side by side in one pass; each must score as if fitted without the others. A candidate
    // listed twice is a search whose other candidate cannot influence it except through a leak between the probes. The
    // largest penalty holds its probe's weights near zero, so a leak of penalties between probes would show.
    const train = clusters(300, 200, 3, 4, 11);
    const test = clusters(60, 200, 3, 4, 12);
    const candidates = [0, 1e-2, 1000];
    const together = await linearProbe(train, test, { weightDecay: candidates });
    const heldOutRows = Math.round(300 * 0.2);
    const rows = (accuracy: number) => Math.round(accuracy * heldOutRows);
    for (const [i, decay] of candidates.entries()) {
      const alone = await linearProbe(train, test, { weightDecay: [decay, decay] });
      expect(alone.validation[0].accuracy).toBe(alone.validation[1].accuracy);
      // Stacked products may round differently from a lone one, which can move a row that sits on the boundary.
      expect(Math.abs(rows(alone.validation[0].accuracy) - rows(together.validation[i].accuracy))).toBeLessThanOrEqual(1);
    }
    console.log(`candidates ${candidates.join(', ')}: held-out ${together.validation.map((v) => v.accuracy.toFixed(3)).join(' ')}`);
    expect(rows(together.validation[0].accuracy) - rows(together.validation[2].accuracy)).toBeGreaterThan(5);
  });

  it('refuses NaN or infinite features instead of reporting an accuracy, naming the split and the first bad row', async () => {
    const labels = Tensor.fromTypedArray(new BigInt64Array([0n, 1n, 0n, 1n]), [4]);
    const good = { features: Tensor.fromTypedArray(new Float32Array([1, 0, 0, 1, 1, 0.1, 0.1, 1]), [4, 2]), labels };
    const nan = { features: Tensor.fromTypedArray(new Float32Array([1, 0, 0, 1, 1, 0.1, NaN, 1]), [4, 2]), labels };
    const inf = { features: Tensor.fromTypedArray(new Float32Array([Infinity, 0, 0, 1, 1, 0.1, 0.1, 1]), [4, 2]), labels };
    await expect(linearProbe(nan, good, { epochs: 1 })).toRejectKind('RangeError', 'probe train features hold NaN or infinite values (first at row 3)');
    await expect(linearProbe(good, inf, { epochs: 1 })).toRejectKind('RangeError', 'probe test features hold NaN or infinite values (first at row 0)');
  });

  it('rejects bad arguments with errors naming them', async () => {
    const split = clusters(20, 4, 2, 1, 1);
    await expect(linearProbe(split, split, { epochs: -1 })).rejects.toThrow(RangeError);
    await expect(linearProbe(split, split, { learningRate: 0 })).rejects.toThrow(/learningRate/);
    await expect(linearProbe(split, split, { batchSize: 1.5 })).rejects.toThrow(/batchSize/);
    await expect(linearProbe(split, { features: Tensor.ones([5, 3]), labels: Tensor.fromTypedArray(new BigInt64Array(5), [5]) }))
      .toRejectKind('RangeError', 'dims');
    await expect(linearProbe(split, { features: split.features, labels: Tensor.ones([20]) })).toRejectKind('TypeError', 'testLabels');
    await expect(linearProbe({ features: Tensor.zeros([0, 4]), labels: Tensor.fromTypedArray(new BigInt64Array(0), [0]) }, split))
      .toRejectKind('RangeError', 'at least one row');
    await expect(linearProbe(split, split, { numClasses: 1 })).toRejectKind('RangeError', 'numClasses');
    await expect(linearProbe(null as never, split)).toRejectKind('TypeError', 'train');
    await expect(linearProbe(split, split, { weightDecay: [] })).toRejectKind('TypeError', 'weightDecay');
    await expect(linearProbe(split, split, { weightDecay: [0, -1] })).toRejectKind('RangeError', 'weightDecay[1]');
    await expect(linearProbe(split, split, { weightDecay: 'auto' as never })).toRejectKind('TypeError', 'weightDecay');
    await expect(linearProbe(split, split, { validationFraction: 0 })).toRejectKind('RangeError', 'validationFraction');
    // Holding out all rows (or none) leaves nothing to fit or to validate on.
    await expect(linearProbe(split, split, { validationFraction: 1 })).toRejectKind('RangeError', 'single weightDecay');
    await expect(linearProbe(clusters(2, 4, 2, 1, 1), split, { validationFraction: 0.1 })).toRejectKind('RangeError', 'single weightDecay');
  });
});

// The same recipe written the usual PyTorch way: nn.Linear (zero init), CrossEntropyLoss, torch.optim.Adam,
// CosineAnnealingLR stepped per batch, on features standardised with the training mean and population std.
const TORCH_PROBE = `
import json, sys
import numpy as np
import torch
args = json.loads(sys.argv[1])
torch.set_num_threads(2)
x = torch.from_numpy(np.load(args['trainX'])); y = torch.from_numpy(np.load(args['trainY']))
tx = torch.from_numpy(np.load(args['testX'])); ty = torch.from_numpy(np.load(args['testY']))
mean = x.mean(0); std = x.std(0, unbiased=False); std = torch.where(std > 1e-8, std, torch.ones_like(std))
x = (x - mean) / std; tx = (tx - mean) / std
model = torch.nn.Linear(x.shape[1], 10)
torch.nn.init.zeros_(model.weight); torch.nn.init.zeros_(model.bias)
batch, epochs = args['batchSize'], args['epochs']
steps = epochs * ((len(x) + batch - 1) // batch)
opt = torch.optim.Adam(model.parameters(), lr=args['lr'])
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
gen = torch.Generator().manual_seed(0)
for epoch in range(epochs):
    order = torch.randperm(len(x), generator=gen)
    for start in range(0, len(x), batch):
        idx = order[start:start + batch]
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
with torch.no_grad():
    print(json.dumps({'train': (model(x).argmax(1) == y).float().mean().item(), 'test': (model(tx).argmax(1) == ty).float().mean().item()}))
`;

describeWithOracle('linear probe on raw Fashion-MNIST pixels against PyTorch', (python) => {
  describeWithFashionMnist('on Fashion-MNIST', () => it('reaches the expected accuracy on a 10k / 2k subset, within a point of the same recipe in PyTorch', async () => {
    const train = fashionMnistPixels('train', 10000);
    const test = fashionMnistPixels('t10k', 2000);
    const recipe = { epochs: 30, batchSize: 256, learningRate: 1e-3, weightDecay: 0 };
    const started = Date.now();
    const ours = await linearProbe(
      { features: Tensor.fromTypedArray(train.pixels, [10000, 784]), labels: Tensor.fromTypedArray(train.labels, [10000]) },
      { features: Tensor.fromTypedArray(test.pixels, [2000, 784]), labels: Tensor.fromTypedArray(test.labels, [2000]) },
      recipe);
    const seconds = (Date.now() - started) / 1000;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-probe-'));
    try {
      const files = { trainX: path.join(dir, 'tx.npy'), trainY: path.join(dir, 'ty.npy'), testX: path.join(dir, 'vx.npy'), testY: path.join(dir, 'vy.npy') };
      await writeNpy(files.trainX, train.pixels, [10000, 784]);
      await writeNpy(files.trainY, train.labels, [10000]);
      await writeNpy(files.testX, test.pixels, [2000, 784]);
      await writeNpy(files.testY, test.labels, [2000]);
      const reference = JSON.parse(runPython(python, TORCH_PROBE, { ...files, batchSize: recipe.batchSize, epochs: recipe.epochs, lr: recipe.learningRate }));
      console.log(`raw-pixel probe 10k/2k: ours ${ours.testAccuracy.toFixed(4)} (train ${ours.trainAccuracy.toFixed(4)}, ${seconds.toFixed(1)} s), ` +
        `PyTorch ${reference.test.toFixed(4)} (train ${reference.train.toFixed(4)})`);
      expect(ours.testAccuracy).toBeGreaterThan(0.8);
      expect(Math.abs(ours.testAccuracy - reference.test)).toBeLessThanOrEqual(0.01);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }));
});
