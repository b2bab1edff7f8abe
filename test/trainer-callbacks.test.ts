/**
 * The Trainer as a library user drives it: options left out take the run settings' defaults, onStep and onEpoch see
 * every record (epochs numbered from 1) and are awaited, and a custom learning-rate function replaces the schedule.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  DEFAULT_RUN_CONFIG, EpochRecord, StepRecord, Subset, Trainer, createModel, fashionMnist, learningRate, readCheckpointHeader, trainingData,
  validateRunConfig, resolveRun,
} from '../src';
import { describeWithFashionMnist } from './helpers/tools';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-callbacks-'));

describeWithFashionMnist('Trainer callbacks and defaults', () => {
  // 48 images in batches of 16: 3 steps per epoch, 2 epochs.
  const config = validateRunConfig({ subset: 48, batchSize: 16, epochs: 2, baseSize: 16, imageSize: 16, workers: 1, knnEvery: 0 });
  const data = () => trainingData(Subset.random(fashionMnist('train', { size: 16 }), 48, 0), config);

  it("a stop asked for during the epoch's monitor says it waits for the monitor, and the run ends after it", async () => {
    const waits: string[] = [];
    const notice = (waitsFor: 'step' | 'monitor') => {
      waits.push(waitsFor);
      return `simclr: stopping after the ${waitsFor}`;
    };
    const trainer: Trainer = new Trainer(await createModel(config), data(), {
      ...resolveRun(config), out: tmp(), progress: 'none',
      monitor: async () => {
        trainer.requestStop(notice);
        return 0.5;
      },
    });
    const result = await trainer.fit();
    expect(waits).toEqual(['monitor']);
    expect([result.epochsCompleted, result.interrupted, result.steps]).toEqual([1, true, 3]);
  });

  it('a resume links best.ckpt again when a kill left it an epoch behind the best checkpoint', async () => {
    const out = tmp();
    const accuracy = [0.5, 0.6];
    const trainer = async (epochs: number) => new Trainer(await createModel(config), data(), {
      ...resolveRun(config), epochs, out, progress: 'none', monitor: async (epoch) => accuracy[epoch - 1],
    });
    await (await trainer(1)).fit();
    const epochOne = path.join(out, 'best-epoch-1.ckpt');
    fs.copyFileSync(path.join(out, 'best.ckpt'), epochOne);
    await (await trainer(2)).fit(path.join(out, 'last.ckpt'));
    expect((await readCheckpointHeader<{ epoch: number }>(path.join(out, 'best.ckpt'))).meta.epoch).toBe(2);
    // As if killed between epoch 2's save and its link: best.ckpt still holds epoch 1 (0.5), last.ckpt the best (0.6).
    // best.ckpt is a hard link of last.ckpt: it is removed first, or copying onto it would overwrite last.ckpt too.
    const epochOf = async (name: string) => (await readCheckpointHeader<{ epoch: number; bestMetric: number }>(path.join(out, name))).meta;
    fs.rmSync(path.join(out, 'best.ckpt'));
    fs.copyFileSync(epochOne, path.join(out, 'best.ckpt'));
    expect([(await epochOf('last.ckpt')).epoch, (await epochOf('best.ckpt')).epoch]).toEqual([2, 1]);
    // The run is complete: the resume trains nothing, and links best.ckpt to the best checkpoint again.
    const resumed = await (await trainer(2)).fit(path.join(out, 'last.ckpt'));
    expect([resumed.steps, resumed.records]).toEqual([6, []]);
    expect(await epochOf('best.ckpt')).toMatchObject({ epoch: 2, bestMetric: 0.6 });
  });

  it('fills every option it is not given from the run settings', async () => {
    const trainer = new Trainer(await createModel(config), data(), { out: tmp() });
    // lr 0.06 scaled linearly by the default batch of 256: 0.06.
    expect(trainer.peakLearningRate).toBeCloseTo(DEFAULT_RUN_CONFIG.lr * DEFAULT_RUN_CONFIG.batchSize / 256, 12);
  });

  it('calls onStep after every step and onEpoch after every epoch, awaiting them, with epochs numbered from 1', async () => {
    const events: string[] = [];
    const steps: StepRecord[] = [];
    const epochs: EpochRecord[] = [];
    const trainer = new Trainer(await createModel(config), data(), {
      ...resolveRun(config), out: tmp(), progress: 'none',
      onStep: async (record) => {
        events.push(`step ${record.step} start`);
        await new Promise((resolve) => setTimeout(resolve, 20));
        steps.push(record);
        events.push(`step ${record.step} end`);
      },
      onEpoch: (record) => {
        epochs.push(record);
        events.push(`epoch ${record.epoch}`);
      },
    });
    const result = await trainer.fit();
    expect(result.steps).toBe(6);
    expect(steps.map((r) => [r.step, r.epoch, r.images])).toEqual([[1, 1, 16], [2, 1, 16], [3, 1, 16], [4, 2, 16], [5, 2, 16], [6, 2, 16]]);
    expect(epochs.map((r) => r.epoch)).toEqual([1, 2]);
    expect(events).toEqual([
      'step 1 start', 'step 1 end', 'step 2 start', 'step 2 end', 'step 3 start', 'step 3 end', 'epoch 1',
      'step 4 start', 'step 4 end', 'step 5 start', 'step 5 end', 'step 6 start', 'step 6 end', 'epoch 2',
    ]);
    // metrics.jsonl holds the same records.
    expect(result.records).toEqual([...steps.slice(0, 3), epochs[0], ...steps.slice(3), epochs[1]]);
  });

  it('takes the learning rate of every step from lrSchedule, which sees the built-in schedule', async () => {
    const asked: { step: number; stepsPerEpoch: number; totalSteps: number; scheduled: number }[] = [];
    const trainer = new Trainer(await createModel(config), data(), {
      ...resolveRun(config), out: tmp(), progress: 'none',
      lrSchedule: (step, context) => {
        asked.push({ step, ...context });
        return step < 3 ? 0.01 : 0.001; // a step schedule
      },
    });
    const result = await trainer.fit();
    expect(result.records.filter((r): r is StepRecord => 'step' in r).map((r) => r.lr)).toEqual([0.01, 0.01, 0.01, 0.001, 0.001, 0.001]);
    const schedule = { baseLr: config.lr, scaling: config.lrScaling, batchSize: config.batchSize, warmupSteps: 0, totalSteps: 6 };
    expect(asked).toEqual([0, 1, 2, 3, 4, 5].map((step) => ({ step, stepsPerEpoch: 3, totalSteps: 6, scheduled: learningRate(step, schedule) })));
  });

  it('accumulates gradients over accumulationSteps batches: one update per group, lr scaled by the effective batch', async () => {
    const out = tmp();
    const trainer = new Trainer(await createModel(config), data(), { ...resolveRun(config), accumulationSteps: 2, out, progress: 'none' });
    expect(trainer.peakLearningRate).toBeCloseTo(config.lr * (2 * config.batchSize) / 256, 12);
    const result = await trainer.fit();
    expect(result.steps).toBe(6); // steps are batches
    const { meta } = await readCheckpointHeader<{ optimizerSteps: number }>(path.join(out, 'last.ckpt'));
    expect(meta.optimizerSteps).toBe(3);
  });

  it('rejects an lrSchedule that is not a function, or returns a bad rate, naming it', async () => {
    const model = await createModel(config);
    expect(() => new Trainer(model, data(), { out: tmp(), lrSchedule: 0.1 as never })).toThrowKind('TypeError', 'lrSchedule');
    const trainer = new Trainer(model, data(), { ...resolveRun(config), out: tmp(), progress: 'none', lrSchedule: () => Number.NaN });
    await expect(trainer.fit()).rejects.toThrow(/lrSchedule\(0\)/);
  });
});
