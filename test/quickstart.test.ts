/** The main job's probe protocol: fixed in code, the same splits for its three rows and for the kNN curve. */
import * as path from 'path';
import { DEFAULT_RUN_CONFIG, evaluationSplits, validateRunConfig } from '../src';
import { readConfigFile } from '../src/train/config';
import { QUICKSTART_CONFIG, QUICKSTART_PROTOCOL, quickstart, quickstartSplits } from '../src/quickstart';
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
