/**
 * TensorBoard event files of a run: the step and epoch records of metrics.jsonl as scalars, for `tensorboard --logdir
 * <out>`. Each record is one `tensorboard.Event`, encoded by protobufjs from TensorBoard's own event.proto
 * (proto/tensorboard/), in a TFRecord frame: u64 length, masked CRC-32C of the length, the event, masked CRC-32C of the
 * event. A file starts with `file_version: "brain.Event:2"`; each training session writes a file of its own
 * (`events.out.tfevents.<unix seconds>.<host>`), which TensorBoard reads in name order as one run.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import type { EpochRecord, MetricsRecord, StepRecord } from './report';

/** crc-32's CRC-32C (Castagnoli), as a signed 32-bit integer. */
const CRC32C = require('crc-32/crc32c') as { buf(data: Uint8Array, seed?: number): number };

/** What TensorBoard reads event files by: a name that holds `tfevents`. Ours sort by the time their session started. */
const EVENT_FILE = /^events\.out\.tfevents\.(\d+)\./;

/** The tags of each record's fields, as TensorBoard shows them (a chart per tag, grouped by what comes before `/`). */
const STEP_TAGS = { loss: 'train/loss', lr: 'train/lr', imagesPerSecond: 'train/images_per_s' } as const;
const EPOCH_TAGS = { loss: 'epoch/loss', knnAccuracy: 'epoch/knn_top1' } as const;

let eventType: protobuf.Type | undefined;

/** TensorBoard's Event message (loaded once; the .proto files import each other by their path in TensorBoard's repository). */
function eventMessage(): protobuf.Type {
  if (!eventType) {
    // From src/train/ (ts-jest) and dist/train/ alike.
    const folder = path.join(__dirname, '..', '..', 'proto');
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => path.join(folder, target);
    eventType = root.loadSync('tensorboard/compat/proto/event.proto').lookupType('tensorboard.Event');
  }
  return eventType;
}

/** TFRecord's masked CRC-32C: the CRC rotated right by 15 bits plus a constant (a CRC of data holding CRCs stays strong). */
function maskedCrc32c(bytes: Uint8Array): number {
  const crc = CRC32C.buf(bytes) >>> 0;
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

/** `data` framed as one TFRecord. */
export function tfRecord(data: Uint8Array): Buffer {
  const frame = Buffer.alloc(12 + data.length + 4);
  frame.writeBigUInt64LE(BigInt(data.length), 0);
  frame.writeUInt32LE(maskedCrc32c(frame.subarray(0, 8)), 8);
  frame.set(data, 12);
  frame.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return frame;
}

/** The TFRecords of `bytes`, each with where its frame ends; a record cut short or failing its CRC ends the list. */
function* tfRecords(bytes: Buffer): Generator<{ data: Buffer; end: number }> {
  for (let at = 0; at + 12 <= bytes.length;) {
    const length = bytes.readBigUInt64LE(at);
    if (bytes.readUInt32LE(at + 8) !== maskedCrc32c(bytes.subarray(at, at + 8)) || length > BigInt(bytes.length - at - 16)) return;
    const data = bytes.subarray(at + 12, at + 12 + Number(length));
    const end = at + 16 + data.length;
    if (bytes.readUInt32LE(end - 4) !== maskedCrc32c(data)) return;
    yield { data, end };
    at = end;
  }
}

function isStepRecord(record: MetricsRecord): record is StepRecord {
  return (record as StepRecord).step !== undefined;
}

/** The event of a metrics record: a step's at its step, an epoch's at its epoch (1 = the first), as metrics.jsonl numbers them. */
function eventOf(record: MetricsRecord, wallTime: number): Uint8Array {
  const values = isStepRecord(record)
    ? (Object.keys(STEP_TAGS) as (keyof typeof STEP_TAGS)[]).map((field) => ({ tag: STEP_TAGS[field], simpleValue: record[field] }))
    : (Object.keys(EPOCH_TAGS) as (keyof typeof EPOCH_TAGS)[]).filter((field) => (record as EpochRecord)[field] !== undefined)
      .map((field) => ({ tag: EPOCH_TAGS[field], simpleValue: (record as EpochRecord)[field] }));
  const Event = eventMessage();
  return Event.encode(Event.fromObject({ wallTime, step: isStepRecord(record) ? record.step : record.epoch, summary: { value: values } })).finish();
}

/** The event files in `folder` (names only), in the order TensorBoard reads them. */
export function eventFiles(folder: string): string[] {
  const names = fs.existsSync(folder) ? fs.readdirSync(folder) : [];
  return names.filter((name) => EVENT_FILE.test(name)).sort();
}

/** Removes the event files of a previous run in `folder` (a run started afresh there). */
export async function removeEventFiles(folder: string): Promise<void> {
  for (const name of eventFiles(folder)) await fs.promises.rm(path.join(folder, name), { force: true });
}

/**
 * Cuts the event files in `folder` back to what a checkpoint at `step` (and `epoch` epochs done) had logged, as
 * metrics.jsonl is cut on resume: the records of a run killed later would otherwise show twice. Records are written in
 * order, so what is kept is the start of each file, up to its first later record (or one cut short by a kill).
 */
export async function truncateEventFiles(folder: string, at: { step: number; epoch: number }): Promise<void> {
  const Event = eventMessage();
  for (const name of eventFiles(folder)) {
    const file = path.join(folder, name);
    const bytes = await fs.promises.readFile(file);
    let kept = 0;
    for (const { data, end } of tfRecords(bytes)) {
      const event = Event.toObject(Event.decode(data), { longs: Number }) as { step?: number; summary?: { value?: { tag?: string }[] } };
      const tag = event.summary?.value?.[0]?.tag;
      const epochEvent = tag?.startsWith('epoch/') ?? false;
      if (tag !== undefined && (event.step ?? 0) > (epochEvent ? at.epoch : at.step)) break;
      kept = end;
    }
    if (kept < bytes.length) await fs.promises.truncate(file, kept);
  }
}

/** One training session's event file: records are appended as they come, so a run killed keeps what it logged. */
export class EventFileWriter {
  private constructor(readonly file: string) {}

  /**
   * Starts a new event file in `folder`, named after every one there: TensorBoard reads a run's files in name order,
   * and a resumed session's records must come after those it continues (even when the clock says otherwise).
   */
  static async create(folder: string, wallTime = Date.now() / 1000): Promise<EventFileWriter> {
    const newest = eventFiles(folder).map((name) => Number(EVENT_FILE.exec(name)![1])).reduce((a, b) => Math.max(a, b), -1);
    const seconds = Math.max(Math.floor(wallTime), newest + 1);
    const writer = new EventFileWriter(path.join(folder, `events.out.tfevents.${seconds}.${os.hostname()}`));
    const Event = eventMessage();
    const header = Event.fromObject({ wallTime, fileVersion: 'brain.Event:2', sourceMetadata: { writer: 'simclr' } });
    await fs.promises.writeFile(writer.file, tfRecord(Event.encode(header).finish()), { flag: 'wx' });
    return writer;
  }

  /** Appends the event of a step or epoch record. */
  async write(record: MetricsRecord, wallTime = Date.now() / 1000): Promise<void> {
    await fs.promises.appendFile(this.file, tfRecord(eventOf(record, wallTime)));
  }
}
