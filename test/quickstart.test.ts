/**
 * The main job's probe protocol (fixed in code, the same splits for its three rows and for the kNN curve) and its
 * report, which sets SimCLR's numbers beside the baselines'.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DEFAULT_RUN_CONFIG, evaluationSplits, validateRunConfig, writeReport } from '../src';
import type { Evaluation, EvaluationSplits, MetricsRecord } from '../src';
import { readConfigFile } from '../src/run/config';
import { resolveRun } from '../src/run/resolve';
import { QUICKSTART_CONFIG, QUICKSTART_PROTOCOL, quickstart, quickstartConfig, quickstartReport, quickstartSplits } from '../src/quickstart';
import { describeWithFashionMnist } from './helpers/tools';

describeWithFashionMnist('quickstart probe protocol', () => {
  const config = validateRunConfig({ ...QUICKSTART_CONFIG });

  it('fits on 10 000 training-split images and scores on the 10 000 official test images', () => {
    const { bank, query } = quickstartSplits(config);
    expect(QUICKSTART_PROTOCOL.trainImages).toBeGreaterThanOrEqual(10000);
    expect(bank.length).toBe(QUICKSTART_PROTOCOL.trainImages);
    expect(query.length).toBe(10000);
    const drawn = new Set(Array.from({ length: bank.length }, (_, i) => bank.source!(i)));
    expect(drawn.size).toBe(bank.length);
  });

  it('is the split the kNN monitor of the quickstart run uses, so the curve ends at the kNN row', () => {
    const ours = quickstartSplits(config);
    const monitor = evaluationSplits(config)!;
    expect(monitor.bank.length).toBe(ours.bank.length);
    expect(monitor.query.length).toBe(ours.query.length);
    for (let i = 0; i < ours.bank.length; i += 997) expect(monitor.bank.source!(i)).toBe(ours.bank.source!(i));
  });

  it('does not change with the recipe: only the seed picks the training images', () => {
    const other = quickstartSplits(validateRunConfig({ ...DEFAULT_RUN_CONFIG, ...QUICKSTART_CONFIG, batchSize: 32, epochs: 1, subset: 100 }));
    const ours = quickstartSplits(config);
    for (let i = 0; i < ours.bank.length; i += 997) expect(other.bank.source!(i)).toBe(ours.bank.source!(i));
  });

  it.each([[{ evalSubset: 5000 }], [{ evalData: 'x.csv' }], [{ data: '/tmp/images' }]])('refuses to change the protocol: %j', async (overrides) => {
    await expect(quickstart(overrides, 'none')).rejects.toThrow(/fixed protocol \(10 000 training \/ 10 000 test images\)/);
  });
});

describe("the quickstart's budget", () => {
  it('is 2 epochs of 50 000 images in fp32 and 4 epochs of all 60 000 in bf16; only the budget differs', () => {
    const fp32 = quickstartConfig({ precision: 'fp32' });
    const bf16 = quickstartConfig({ precision: 'bf16' });
    expect([fp32.subset, fp32.epochs]).toEqual([50000, 2]);
    expect([bf16.subset, bf16.epochs]).toEqual([60000, 4]);
    expect({ ...bf16, subset: fp32.subset, epochs: fp32.epochs, precision: 'fp32' }).toEqual(fp32);
  });

  it("follows what precision 'auto' means on the device, and leaves the user's own settings alone", () => {
    const auto = quickstartConfig({});
    expect(auto.epochs).toBe(resolveRun(DEFAULT_RUN_CONFIG).precision === 'bf16' ? 4 : 2);
    expect(quickstartConfig({ precision: 'bf16', epochs: 1, subset: 1000 })).toMatchObject({ epochs: 1, subset: 1000 });
  });
});

describe('examples/fashion-mnist-30min.json', () => {
  const example = readConfigFile(path.join(__dirname, '..', 'examples', 'fashion-mnist-30min.json'));

  it('is a valid run config: simclr train --config takes it as it is', () => {
    expect(() => validateRunConfig(example)).not.toThrow();
  });

  it("is the quickstart's recipe on the whole training split for more epochs, so its probe compares with the quickstart's", () => {
    const config = validateRunConfig(example);
    const quick = validateRunConfig({ ...QUICKSTART_CONFIG });
    expect(config.subset).toBeUndefined();
    expect(config.epochs).toBeGreaterThan(quick.epochs);
    const { subset: _s, epochs: _e, out: _o, ...recipe } = quick;
    for (const [key, value] of Object.entries(recipe)) expect([key, config[key as keyof typeof config]]).toEqual([key, value]);
  });
});

describe("the quickstart's report", () => {
  it('draws the baselines as labelled lines on the kNN chart and lists them and the three probes in its table', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-quickstart-report-'));
    try {
      // Two epochs of a run, then the quickstart's three rows as the numbers it printed (made up here: only the
      // report's wiring is under test, not the training).
      const records: MetricsRecord[] = [
        { step: 1, epoch: 1, loss: 5.2, lr: 0.06, imagesPerSecond: 90, images: 256 },
        { step: 2, epoch: 1, loss: 5.0, lr: 0.05, imagesPerSecond: 90, images: 256 },
        { epoch: 1, loss: 5.1, knnAccuracy: 0.7012 },
        { step: 3, epoch: 2, loss: 4.9, lr: 0.02, imagesPerSecond: 90, images: 256 },
        { step: 4, epoch: 2, loss: 4.8, lr: 0.01, imagesPerSecond: 90, images: 256 },
        { epoch: 2, loss: 4.85, knnAccuracy: 0.7668 },
      ];
      const evaluation = (knnAccuracy: number, probe: number): Evaluation =>
        ({ knnAccuracy, linearProbe: { trainAccuracy: probe, testAccuracy: probe, weightDecay: 0 }, bankSize: 10000, querySize: 10000 });
      const rows: [string, Evaluation][] = [
        ['SimCLR encoder (h)', evaluation(0.7668, 0.8012)], ['raw pixels', evaluation(0.7644, 0.8311)], ['random encoder', evaluation(0.7382, 0.8105)],
      ];
      const splits = { bank: { length: 10000 }, query: { length: 10000 } } as EvaluationSplits; // the report reads their sizes only
      const config = validateRunConfig({ ...QUICKSTART_CONFIG, out });
      await writeReport(out, records, quickstartReport(config, rows, splits, 514));
      const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');

      // The kNN chart's baseline labels: name and value (to the chart's precision).
      for (const label of [/>raw pixels 76(\.\d+)?%<\/text>/, />random encoder 7[34](\.\d+)?%<\/text>/]) expect(html).toMatch(label);
      // The table: the baselines' kNN accuracies, the three probes, the probe split and the pretraining time.
      const text = html.replace(/<svg[\s\S]*<\/svg>/, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
      for (const row of [
        'kNN accuracy of raw pixels 76.44%', 'kNN accuracy of random encoder 73.82%',
        'linear probe: SimCLR encoder (h) 80.12%', 'linear probe: raw pixels 83.11%', 'linear probe: random encoder 81.05%',
        'probe split 10000 train / 10000 test images',
      ]) expect(text).toContain(row);
      expect(text).toContain('pretraining wall time 8m34s');
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
