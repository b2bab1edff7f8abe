import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Tensor, knnEvaluate, knnPredict, writeNpy } from '../src';
import { describeWithOracle, runPython } from './helpers/oracle';
import { clusters } from './helpers/synthetic-features';

const labelsOf = (t: Tensor) => Array.from(t.toTypedArray() as BigInt64Array, Number);

describe('kNN monitor', () => {
  it('with k = 1 predicts the label of the most cosine-similar bank row', async () => {
    const bank = {
      features: Tensor.fromTypedArray(new Float32Array([1, 0, 0, 1, -1, 0]), [3, 2]),
      labels: Tensor.fromTypedArray(new BigInt64Array([0n, 1n, 2n]), [3]),
    };
    // Lengths differ wildly, directions decide: (10, 1) is nearest to (1, 0), (0.01, 0.2) to (0, 1), (-3, 0.5) to (-1, 0).
    const query = Tensor.fromTypedArray(new Float32Array([10, 1, 0.01, 0.2, -3, 0.5]), [3, 2]);
    expect(labelsOf(await knnPredict(bank, query, { k: 1 }))).toEqual([0, 1, 2]);
  });

  it('weights votes by exp(similarity / temperature), so one close neighbour can outvote two far ones', async () => {
    const bank = {
      features: Tensor.fromTypedArray(new Float32Array([1, 0, 0.6, 0.8, 0.6, -0.8]), [3, 2]),
      labels: Tensor.fromTypedArray(new BigInt64Array([0n, 1n, 1n]), [3]),
    };
    const query = Tensor.fromTypedArray(new Float32Array([1, 0]), [1, 2]);
    // Similarities 1, 0.6, 0.6. At t = 0.1: e^10 > 2 e^6, class 0 wins. At t = 10: e^0.1 < 2 e^0.06, class 1 wins.
    expect(labelsOf(await knnPredict(bank, query, { k: 3, temperature: 0.1 }))).toEqual([0]);
    expect(labelsOf(await knnPredict(bank, query, { k: 3, temperature: 10 }))).toEqual([1]);
  });

  it('gives the same predictions whatever the query chunk size, and clamps k to the bank size', async () => {
    const bank = clusters(300, 16, 5, 1.5, 11);
    const query = clusters(97, 16, 5, 1.5, 12);
    const whole = labelsOf(await knnPredict(bank, query.features, { chunkSize: 4096 }));
    const chunked = labelsOf(await knnPredict(bank, query.features, { chunkSize: 7 }));
    expect(chunked).toEqual(whole);
    const huge = labelsOf(await knnPredict(bank, query.features, { k: 100000 }));
    const exact = labelsOf(await knnPredict(bank, query.features, { k: 300 }));
    expect(huge).toEqual(exact);
  });

  it('reports top-1 accuracy against the query labels', async () => {
    const bank = clusters(400, 8, 4, 0.05, 21);
    const query = clusters(40, 8, 4, 0.05, 22);
    const result = await knnEvaluate(bank, query, { k: 20 });
    expect(result.accuracy).toBe(1);
    expect(result.predictions.shape).toEqual([40]);
    expect(result.predictions.dtype).toBe('int64');
    // Labels shifted by one class are all wrong.
    const shifted = Tensor.fromTypedArray(query.labelData.map((l) => (l + 1n) % 4n), [40]);
    expect((await knnEvaluate(bank, { features: query.features, labels: shifted }, { k: 20 })).accuracy).toBe(0);
  });

  it('refuses NaN or infinite features, naming the split and the first bad row', async () => {
    const labels = Tensor.fromTypedArray(new BigInt64Array([0n, 1n, 0n]), [3]);
    const good = { features: Tensor.fromTypedArray(new Float32Array([1, 0, 0, 1, 1, 1]), [3, 2]), labels };
    const nan = { features: Tensor.fromTypedArray(new Float32Array([1, 0, NaN, 1, 1, 1]), [3, 2]), labels };
    const inf = { features: Tensor.fromTypedArray(new Float32Array([1, 0, 0, 1, 1, -Infinity]), [3, 2]), labels };
    await expect(knnEvaluate(nan, good)).toRejectKind('RangeError', 'kNN bank features hold NaN or infinite values (first at row 1)');
    await expect(knnEvaluate(good, inf)).toRejectKind('RangeError', 'kNN query features hold NaN or infinite values (first at row 2)');
  });

  it('rejects bad arguments with errors naming them', async () => {
    const bank = clusters(10, 4, 2, 1, 1);
    const floatLabels = Tensor.ones([10]);
    await expect(knnPredict({ features: bank.features, labels: floatLabels }, bank.features)).toRejectKind('TypeError', 'bankLabels');
    await expect(knnPredict({ features: bank.features, labels: Tensor.fromTypedArray(new BigInt64Array(9), [9]) }, bank.features))
      .toRejectKind('RangeError', 'one label per feature row');
    await expect(knnPredict({ features: bank.features, labels: Tensor.fromTypedArray(new BigInt64Array(10).fill(-1n), [10]) }, bank.features))
      .toRejectKind('RangeError', 'labels >= 0');
    await expect(knnPredict(bank, bank.features, { numClasses: 1 })).toRejectKind('RangeError', 'below numClasses');
    await expect(knnPredict(bank, Tensor.ones([3, 5]))).toRejectKind('RangeError', 'dims');
    await expect(knnPredict(bank, Tensor.ones([3, 4, 1]))).toRejectKind('RangeError', '2-D');
    await expect(knnPredict(bank, bank.features, { temperature: 0 })).toRejectKind('RangeError', 'temperature');
    await expect(knnPredict(bank, bank.features, { k: 0 })).toRejectKind('RangeError', 'k');
    await expect(knnPredict(bank, [1, 2] as never)).toRejectKind('TypeError', 'queryFeatures');
    await expect(knnPredict({ features: bank.features } as never, bank.features)).toRejectKind('TypeError', 'bank.labels');
    await expect(knnEvaluate(bank, { features: bank.features, labels: Tensor.fromTypedArray(new BigInt64Array(3), [3]) }))
      .toRejectKind('RangeError', 'query.labels');
  });
});

// lightly.utils.benchmarking.knn_predict, verbatim, on unit-normalised features (as lightly's KNN callback does).
const LIGHTLY_KNN = `
import json, sys
import numpy as np
import torch
import torch.nn.functional as F

def knn_predict(feature, feature_bank, feature_labels, num_classes, knn_k=200, knn_t=0.1):
    sim_matrix = torch.mm(feature, feature_bank)
    sim_weight, sim_indices = sim_matrix.topk(k=knn_k, dim=-1)
    sim_labels = torch.gather(feature_labels.expand(feature.size(0), -1), dim=-1, index=sim_indices)
    sim_weight = (sim_weight / knn_t).exp()
    one_hot_label = torch.zeros(feature.size(0) * knn_k, num_classes, device=sim_labels.device)
    one_hot_label = one_hot_label.scatter(dim=-1, index=sim_labels.view(-1, 1), value=1.0)
    pred_scores = torch.sum(one_hot_label.view(feature.size(0), -1, num_classes) * sim_weight.unsqueeze(dim=-1), dim=1)
    pred_labels = pred_scores.argsort(dim=-1, descending=True)
    return pred_labels

args = json.loads(sys.argv[1])
bank = F.normalize(torch.from_numpy(np.load(args['bank'])), dim=1)
labels = torch.from_numpy(np.load(args['labels']))
query = F.normalize(torch.from_numpy(np.load(args['query'])), dim=1)
pred = knn_predict(query, bank.t().contiguous(), labels, args['classes'], args['k'], args['t'])[:, 0]
print(json.dumps(pred.tolist()))
`;

describeWithOracle('kNN monitor against lightly knn_predict in PyTorch', (python) => {
  it.each([
    [200, 0.1],
    [20, 0.5],
  ])('matches on clustered random features (k = %s, t = %s)', async (k, t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-knn-'));
    try {
      const bank = clusters(1500, 32, 10, 2.0, 31);
      const query = clusters(400, 32, 10, 2.0, 32);
      const files = { bank: path.join(dir, 'bank.npy'), labels: path.join(dir, 'labels.npy'), query: path.join(dir, 'query.npy') };
      await writeNpy(files.bank, bank.data, [1500, 32]);
      await writeNpy(files.labels, bank.labelData, [1500]);
      await writeNpy(files.query, query.data, [400, 32]);
      const expected: number[] = JSON.parse(runPython(python, LIGHTLY_KNN, { ...files, classes: 10, k, t }));
      const result = await knnEvaluate(bank, query, { k, temperature: t, chunkSize: 64 });
      expect(labelsOf(result.predictions)).toEqual(expected);
      // The features overlap enough that kNN is neither trivial nor chance.
      expect(result.accuracy).toBeGreaterThan(0.3);
      expect(result.accuracy).toBeLessThan(0.99);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
