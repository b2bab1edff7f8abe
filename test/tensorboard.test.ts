/**
 * TensorBoard event files (src/train/tensorboard.ts), read back by TensorBoard's own reader (the tensorboard package
 * from PyPI, in .venv-tools): the TFRecord frames and their CRCs, and a run's scalars against its metrics.jsonl, a
 * resumed run's included.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { RunConfig, runTraining } from '../src';
import { checkFreshFolder } from '../src/run/run-folder';
import { EventFileWriter, eventFiles, tfRecord } from '../src/train/tensorboard';
import { describeWithPythonTools } from './helpers/python-tools';
import { describeWithFashionMnist } from './helpers/tools';
import { scratchFolders } from './helpers/scratch';

const tmp = scratchFolders('tensorboard');

/** Every record of a TFRecord file as TensorBoard's record reader returns it (hex), and the error that ended it, if any. */
const READ_RECORDS = `
import json, sys
from tensorboard.compat.tensorflow_stub import errors
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New
reader = PyRecordReader_New(sys.argv[1])
records, error = [], None
try:
    while True:
        reader.GetNext()
        records.append(reader.record().hex())
except errors.OutOfRangeError:
    pass
except errors.DataLossError as e:
    error = e.message
print(json.dumps({"records": records, "error": error}))
`;

/** The events of each file, parsed by TensorBoard's event file loader. */
const READ_EVENTS = `
import json, sys
from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
print(json.dumps([[{"wall_time": e.wall_time, "step": e.step, "file_version": e.file_version,
                    "values": [[v.tag, v.simple_value] for v in e.summary.value]}
                   for e in LegacyEventFileLoader(f).Load()] for f in sys.argv[1:]]))
`;

/** A run folder as TensorBoard's scalars dashboard gets it: each tag the scalars plugin claims, with its (step, value)s. */
const READ_SCALARS = `
import json, sys
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.util import tensor_util
acc = pea.EventAccumulator(sys.argv[1], size_guidance={pea.TENSORS: 0})
acc.Reload()
print(json.dumps({tag: [[e.step, float(tensor_util.make_ndarray(e.tensor_proto))] for e in acc.Tensors(tag)]
                  for tag in acc.PluginTagToContent("scalars")}))
`;

interface ReadEvent {
  wall_time: number;
  step: number;
  file_version: string;
  values: [string, number][];
}

function runPython<T>(python: string, script: string, args: string[]): T {
  const run = spawnSync(python, ['-c', script, ...args], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`python failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

interface Records {
  steps: { step: number; epoch: number; loss: number; lr: number; imagesPerSecond: number }[];
  epochs: { epoch: number; loss: number; knnAccuracy?: number }[];
}

function metrics(out: string): Records {
  const records = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
  return { steps: records.filter((r) => r.step !== undefined), epochs: records.filter((r) => r.step === undefined && r.epoch !== undefined) };
}

/** The scalars TensorBoard should show for metrics.jsonl's records: float32 values at their steps and epochs. */
function expectedScalars({ steps, epochs }: Records): Record<string, [number, number][]> {
  const at = <R>(records: R[], x: (r: R) => number, y: (r: R) => number | undefined) =>
    records.filter((r) => y(r) !== undefined).map((r): [number, number] => [x(r), Math.fround(y(r)!)]);
  return {
    'train/loss': at(steps, (r) => r.step, (r) => r.loss),
    'train/lr': at(steps, (r) => r.step, (r) => r.lr),
    'train/images_per_s': at(steps, (r) => r.step, (r) => r.imagesPerSecond),
    'epoch/loss': at(epochs, (r) => r.epoch, (r) => r.loss),
    'epoch/knn_top1': at(epochs, (r) => r.epoch, (r) => r.knnAccuracy),
  };
}

describe('TensorBoard event files in a run folder', () => {
  it('count as a previous run: a fresh run there needs --overwrite, which removes them', async () => {
    const out = tmp();
    const writer = await EventFileWriter.create(out);
    expect(eventFiles(out)).toEqual([path.basename(writer.file)]);
    await expect(checkFreshFolder(out, false)).rejects.toThrow('holds a previous run (events.out.tfevents.*): continue it with --resume');
    await checkFreshFolder(out, true);
    expect(eventFiles(out)).toEqual([]);
  });

  it('are named events.out.tfevents.<seconds>.<host>, each after those already there (TensorBoard reads them in name order)', async () => {
    const out = tmp();
    const first = await EventFileWriter.create(out, 1_800_000_000.5);
    const second = await EventFileWriter.create(out, 1_800_000_000.7); // the same second: the next name
    const third = await EventFileWriter.create(out, 1_700_000_000); // a clock set back: still after them
    expect([first, second, third].map((w) => path.basename(w.file).split('.').slice(0, 4).join('.')))
      .toEqual(['events.out.tfevents.1800000000', 'events.out.tfevents.1800000001', 'events.out.tfevents.1800000002']);
    expect(eventFiles(out)).toEqual([first, second, third].map((w) => path.basename(w.file)));
  });
});

describeWithPythonTools('TensorBoard event files, read by TensorBoard', (python) => {
  it('frame records as TFRecords whose lengths and masked CRC-32Cs TensorBoard\'s reader checks', () => {
    const file = path.join(tmp(), 'records');
    const payloads = [Buffer.alloc(0), Buffer.from('brain.Event:2'), Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) % 256))];
    fs.writeFileSync(file, Buffer.concat(payloads.map((p) => tfRecord(p))));
    expect(runPython(python, READ_RECORDS, [file])).toEqual({ records: payloads.map((p) => p.toString('hex')), error: null });

    const bytes = fs.readFileSync(file);
    const flipped = Buffer.from(bytes);
    flipped[bytes.length - 20] ^= 1; // in the last record's data
    fs.writeFileSync(file, flipped);
    expect(runPython(python, READ_RECORDS, [file])).toEqual({ records: payloads.slice(0, 2).map((p) => p.toString('hex')), error: expect.stringContaining('failed event crc32 check') });
    const badLength = Buffer.from(bytes);
    badLength[16] ^= 1; // the second record's length
    fs.writeFileSync(file, badLength);
    expect(runPython<{ error: string | null }>(python, READ_RECORDS, [file]).error).toEqual(expect.stringContaining('failed header crc32 check'));
  });

  it('start with file_version brain.Event:2 and hold one event per record, at its step (or epoch) and wall time', async () => {
    const out = tmp();
    const writer = await EventFileWriter.create(out, 1_800_000_000.25);
    await writer.write({ step: 7, epoch: 2, loss: 5.25, lr: 0.1, imagesPerSecond: 1234.5, images: 8 }, 1_800_000_001.5);
    await writer.write({ epoch: 2, loss: 4.75 }, 1_800_000_002);
    await writer.write({ epoch: 3, loss: 4.5, knnAccuracy: 0.625 }, 1_800_000_003);
    const [events] = runPython<ReadEvent[][]>(python, READ_EVENTS, [writer.file]);
    expect(events).toEqual([
      { wall_time: 1_800_000_000.25, step: 0, file_version: 'brain.Event:2', values: [] },
      { wall_time: 1_800_000_001.5, step: 7, file_version: '', values: [['train/loss', 5.25], ['train/lr', Math.fround(0.1)], ['train/images_per_s', 1234.5]] },
      { wall_time: 1_800_000_002, step: 2, file_version: '', values: [['epoch/loss', 4.75]] },
      { wall_time: 1_800_000_003, step: 3, file_version: '', values: [['epoch/loss', 4.5], ['epoch/knn_top1', 0.625]] },
    ]);
  });
});

describeWithFashionMnist('a run\'s TensorBoard event files', () => {
  describeWithPythonTools('read by TensorBoard', (python) => {
    const base: Partial<RunConfig> = {
      data: 'fashion-mnist', subset: 40, batchSize: 8, epochs: 2, baseSize: 16, imageSize: 16,
      knnEvery: 1, evalSubset: 24, workers: 1, seed: 5, lr: 0.3, precision: 'fp32', checkpointEvery: '3',
    };
    /** A run of 2 epochs (10 steps), with its last.ckpt of step 6 (checkpointEvery 3) kept aside as `step6`. */
    let whole: Promise<{ out: string; step6: string }> | undefined;
    const wholeRun = () => (whole ??= (async () => {
      const out = tmp();
      const step6 = path.join(tmp(), 'step6.ckpt');
      // Step 7's record comes after step 6's checkpoint.
      await runTraining({ ...base, out }, { progress: 'none', onStep: (r) => r.step === 7 && fs.copyFileSync(path.join(out, 'last.ckpt'), step6) });
      return { out, step6 };
    })());

    it('hold every step\'s loss, lr and images/s and every epoch\'s loss and kNN accuracy, as metrics.jsonl has them', async () => {
      const { out } = await wholeRun();
      const records = metrics(out);
      expect(records.steps.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(records.epochs.map((r) => [r.epoch, typeof r.knnAccuracy])).toEqual([[1, 'number'], [2, 'number']]);
      expect(eventFiles(out)).toHaveLength(1);
      expect(runPython(python, READ_SCALARS, [out])).toEqual(expectedScalars(records));
    });

    it('of a resumed run: the earlier file is cut back to the checkpoint (as metrics.jsonl is), and a new one continues it', async () => {
      // A run killed after step 10 whose last checkpoint was step 6's, with half a record written when it was killed.
      const { out: whole, step6 } = await wholeRun();
      const out = tmp();
      for (const name of fs.readdirSync(whole)) fs.copyFileSync(path.join(whole, name), path.join(out, name));
      fs.copyFileSync(step6, path.join(out, 'last.ckpt'));
      const [first] = eventFiles(out);
      fs.appendFileSync(path.join(out, first), tfRecord(Buffer.from('cut short by a kill')).subarray(0, 20));

      await runTraining({ ...base, out }, { progress: 'none', resume: true });
      const records = metrics(out);
      expect(records.steps.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      const files = eventFiles(out);
      expect(files).toHaveLength(2);
      expect(files[0]).toBe(first);
      const [before, after] = runPython<ReadEvent[][]>(python, READ_EVENTS, files.map((name) => path.join(out, name)));
      const stepsOf = (events: ReadEvent[]) => events.map((e) => [e.values[0]?.[0].split('/')[0] ?? e.file_version, e.step]);
      expect(stepsOf(before)).toEqual([['brain.Event:2', 0], ...[1, 2, 3, 4, 5].map((s) => ['train', s]), ['epoch', 1], ['train', 6]]);
      expect(stepsOf(after)).toEqual([['brain.Event:2', 0], ...[7, 8, 9, 10].map((s) => ['train', s]), ['epoch', 2]]);
      expect(after[0].wall_time).toBeGreaterThan(before[before.length - 1].wall_time);
      // The cut file reads to its end without an error (no partial record left).
      expect(runPython<{ error: string | null }>(python, READ_RECORDS, [path.join(out, first)]).error).toBeNull();
      expect(runPython(python, READ_SCALARS, [out])).toEqual(expectedScalars(records));
    });
  });
});
