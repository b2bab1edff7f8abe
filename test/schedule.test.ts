import { learningRate, peakLearningRate, checkSchedule, ScheduleConfig } from '../src/train/schedule';

const base: ScheduleConfig = { baseLr: 0.3, scaling: 'linear', batchSize: 512, warmupSteps: 10, totalSteps: 110 };

describe('learning-rate schedule', () => {
  it('scales the base rate with the batch size as SimCLR does', () => {
    expect(peakLearningRate(base)).toBeCloseTo(0.6);
    expect(peakLearningRate({ ...base, scaling: 'sqrt', baseLr: 0.075 })).toBeCloseTo(0.075 * Math.sqrt(512));
    expect(peakLearningRate({ ...base, scaling: 'none' })).toBeCloseTo(0.3);
  });

  it('warms up linearly to the peak, then decays along a cosine to zero', () => {
    expect(learningRate(0, base)).toBeCloseTo(0.06);
    expect(learningRate(9, base)).toBeCloseTo(0.6);
    expect(learningRate(10, base)).toBeCloseTo(0.6);
    expect(learningRate(60, base)).toBeCloseTo(0.3);
    expect(learningRate(110, base)).toBeCloseTo(0);
    for (let s = 10; s < 110; s++) expect(learningRate(s + 1, base)).toBeLessThanOrEqual(learningRate(s, base) + 1e-12);
  });

  it('rejects bad settings', () => {
    expect(() => checkSchedule({ ...base, baseLr: 0 })).toThrow(RangeError);
    expect(() => checkSchedule({ ...base, scaling: 'cubic' as never })).toThrow(/linear, sqrt, none/);
    expect(() => checkSchedule({ ...base, totalSteps: 0 })).toThrow(RangeError);
  });
});
