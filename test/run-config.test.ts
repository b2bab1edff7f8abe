/** The run settings table: one default, one range and one list of choices per setting, used at every edge. */
import { Backbones, resolveRun, DEFAULT_RUN_CONFIG, NT_XENT_MIN_TEMPERATURE, RUN_SETTINGS, RunConfig, SimCLRModel, Tensor, validateRunConfig } from '../src';
import { checkpointInterval } from '../src/run/config';
import { markChecked, wasChecked } from '../src/errors';
import { createTrainStep } from '../src/ops/train-step';
import { augmenterFor } from '../src/run/training-data';
import { Trainer, TrainerOptions, TrainingData } from '../src/train/trainer';

const messageOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a throw');
};

describe('run settings', () => {
  it('the defaults are the settings that have one, and pass their own checks', () => {
    const withDefault = Object.entries(RUN_SETTINGS).filter(([, s]) => 'default' in s).map(([name]) => name);
    expect(Object.keys(DEFAULT_RUN_CONFIG)).toEqual(withDefault);
    expect(validateRunConfig({})).toEqual(DEFAULT_RUN_CONFIG);
  });

  it('checks the backbone against the encoder\'s own names', () => {
    expect(RUN_SETTINGS.backbone.choices).toBe(Backbones.names);
    expect(() => validateRunConfig({ backbone: 'vgg16' as never })).toThrowKind('RangeError', Backbones.names.join(', '));
  });

  it('reads --checkpoint-every as steps, minutes (the default, 10m) or epoch ends only', () => {
    expect(RUN_SETTINGS.checkpointEvery.default).toBe('10m');
    expect(checkpointInterval('10m')).toEqual({ minutes: 10 });
    expect(checkpointInterval('0.5m')).toEqual({ minutes: 0.5 });
    expect(checkpointInterval('500')).toEqual({ steps: 500 });
    expect(checkpointInterval('epoch')).toEqual({});
    expect(checkpointInterval('0')).toEqual({});
    for (const bad of ['10 m', '-1', '1h', '', 'm']) expect(() => checkpointInterval(bad)).toThrow(/checkpointEvery/);
  });

  it('takes the temperature bound from NT-Xent', () => {
    expect(() => validateRunConfig({ temperature: NT_XENT_MIN_TEMPERATURE })).toThrowKind('RangeError', 'temperature');
    expect(validateRunConfig({ temperature: NT_XENT_MIN_TEMPERATURE * 2 }).temperature).toBe(NT_XENT_MIN_TEMPERATURE * 2);
  });

  it("multi-crop's small views: SwAV's size ratio and scale range unless set, and a range that is not empty", () => {
    const groups = (overrides: Partial<RunConfig>) => augmenterFor(validateRunConfig(overrides), 0).groups.map(({ views, size, scale }) => ({ views, size, scale }));
    expect(groups({ imageSize: 224 })).toEqual([{ views: 2, size: 224, scale: [DEFAULT_RUN_CONFIG.minScale, 1] }]);
    expect(groups({ imageSize: 224, smallCrops: 6 })[1]).toEqual({ views: 6, size: 96, scale: [0.05, 0.14] });
    expect(groups({ imageSize: 32, smallCrops: 4 })[1]).toEqual({ views: 4, size: 14, scale: [0.05, 0.14] });
    expect(groups({ imageSize: 32, smallCrops: 4, smallCropSize: 16, smallCropMinScale: 0.1, smallCropMaxScale: 0.3 })[1])
      .toEqual({ views: 4, size: 16, scale: [0.1, 0.3] });
    expect(() => validateRunConfig({ smallCrops: 2, smallCropMinScale: 0.5, smallCropMaxScale: 0.2 })).toThrowKind('RangeError', 'smallCropMaxScale');
    expect(() => validateRunConfig({ smallCrops: -1 })).toThrowKind('RangeError', 'smallCrops');
  });

  it('accepts only its own keys (what a JSON config may hold)', () => {
    expect(() => validateRunConfig({ epochs: 1, learningRate: 0.1 } as never)).toThrowKind('RangeError', 'Unknown config keys: learningRate');
  });

  it('the Trainer checks its options with the same entries, so the same messages', async () => {
    const model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
    const data: TrainingData = {
      batchesPerEpoch: 1, batches: async function* () {}, views: async (x: Tensor) => x, getAugmentState: () => [], setAugmentState: () => {},
    };
    const options: TrainerOptions = { ...resolveRun(DEFAULT_RUN_CONFIG), progress: 'none' };
    for (const bad of [{ batchSize: 1 }, { temperature: 0 }, { optimizer: 'rmsprop' }, { momentum: 1 }, { lrScaling: 'cubic' }, { maxSteps: -1 }]) {
      const message = messageOf(() => validateRunConfig(bad as never));
      expect(() => new Trainer(model, data, { ...options, ...bad } as never)).toThrow(message);
    }
  });

  it('a validated config is checked once: frozen and marked, so the Trainer and its step take it as it is', async () => {
    const config = validateRunConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect([wasChecked(config), wasChecked({ ...config })]).toEqual([true, false]);
    // A bad value in options the run layer vouches for reaches the native precondition (the one other check) unchecked
    // by TypeScript; the same value from a user is stopped at the TypeScript edge.
    const model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
    const views = Tensor.randn([4, 3, 8, 8]);
    const vouched = createTrainStep(model, markChecked({ temperature: 0, precision: 'fp32', memoryFormat: 'contiguous' }));
    await expect(vouched.step(views, 0.1)).rejects.toThrow(/Expected .* for (options\.)?temperature but received 0/);
    expect(() => createTrainStep(model, { temperature: 0 })).toThrow(messageOf(() => validateRunConfig({ temperature: 0 })));
  });
});
