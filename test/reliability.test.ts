/**
 * What a cluster does to a run: kill -9 at random moments, SIGTERM, a second run on the same folder, a stale lock, a
 * finished run started again, a resume with other settings or from another folder. Each is done to `simclr train` as
 * a user runs it (node dist/cli.js, built by the test setup), on 24 Fashion-MNIST images (6 steps an epoch).
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { readCheckpoint, readCheckpointHeader, CheckpointMeta } from '../src';
import { RunFolderLock } from '../src/train/folder-lock';
import { eventFiles } from '../src/train/tensorboard';
import { scratchFolders } from './helpers/scratch';

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');
const TINY = ['--data', 'fashion-mnist', '--subset', '24', '--batch-size', '4', '--epochs', '2', '--base-size', '16',
  '--image-size', '16', '--workers', '1', '--knn-every', '0', '--seed', '5', '--progress', 'none'];
const STEPS = 12;
/** TINY as one epoch of 12 steps: a kill after a few steps lands mid-epoch, where epoch-end checkpoints have none. */
const ONE_LONG_EPOCH = TINY.map((arg, i) => (TINY[i - 1] === '--subset' ? '48' : TINY[i - 1] === '--epochs' ? '1' : arg));
const tmp = scratchFolders('rel');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts `simclr <args>`; `exit` resolves when it ends. */
function start(args: string[], cwd?: string): { child: ChildProcess; exit: Promise<Exit> } {
  // A hung command (as --out /proc/x once was) is killed rather than left spinning.
  const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exit = new Promise<Exit>((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, exit };
}

const simclr = (args: string[], cwd?: string) => start(args, cwd).exit;

/** The records of `<out>/metrics.jsonl` (a partial line left out). */
function records(out: string): Record<string, number>[] {
  const file = path.join(out, 'metrics.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').flatMap((line) => {
    try {
      return line ? [JSON.parse(line)] : [];
    } catch {
      return [];
    }
  });
}
/** What must repeat exactly: step, epoch, loss and learning rate of each step; epoch and mean loss of each epoch. */
const steps = (out: string) => records(out).filter((r) => r.step !== undefined).map(({ step, epoch, loss, lr }) => ({ step, epoch, loss, lr }));
const epochs = (out: string) => records(out).filter((r) => r.step === undefined && r.epoch !== undefined);

async function until(condition: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const leftovers = (out: string) => fs.readdirSync(out).filter((name) => name.endsWith('.tmp') || name.startsWith('.lock'));
const meta = async (out: string) => (await readCheckpointHeader<CheckpointMeta>(path.join(out, 'last.ckpt'))).meta;

/** A whole checkpoint: its tensors read, which a partial file fails. */
async function readable(file: string): Promise<boolean> {
  const { tensors } = await readCheckpoint(file);
  for (const t of Object.values(tensors)) t.dispose();
  return true;
}

let reference: string;
beforeAll(async () => {
  reference = tmp();
  const run = await simclr(['train', ...TINY, '--out', reference]);
  expect(run.code).toBe(0);
  expect(steps(reference)).toHaveLength(STEPS);
});

describe('simclr train under kills and signals', () => {
  it('kill -9 at random moments: each resume continues from the last checkpoint, and the whole equals an uninterrupted run', async () => {
    const out = tmp();
    const fresh = ['train', ...TINY, '--checkpoint-every', '1', '--out', out];
    const resume = ['train', '--resume', '--progress', 'none', '--out', out];
    // Milliseconds after the run logs a new step: inside a step, a checkpoint write or best.ckpt's link.
    for (const delay of [30, 260, 0, 120, 75]) {
      const before = steps(out).length;
      const { child, exit } = start(fs.existsSync(path.join(out, 'last.ckpt')) ? resume : [...fresh, '--overwrite']);
      await until(() => steps(out).length > before || child.exitCode !== null, 'a step');
      await sleep(delay);
      child.kill('SIGKILL');
      const killed = await exit;
      if (killed.code === 0) break; // it finished first
      expect(killed.signal).toBe('SIGKILL');
      // What a kill leaves: a stale lock, maybe temporary files; checkpoints always whole.
      for (const name of ['last.ckpt', 'best.ckpt']) {
        if (fs.existsSync(path.join(out, name))) expect(await readable(path.join(out, name))).toBe(true);
      }
    }
    const last = await simclr(resume);
    expect(last.stderr).toBe('');
    expect(last.code).toBe(0);
    expect(steps(out)).toEqual(steps(reference));
    expect(epochs(out)).toEqual(epochs(reference));
    expect(leftovers(out)).toEqual([]);
    expect(fs.existsSync(path.join(out, 'report.html'))).toBe(true);
  });

  it('SIGTERM stops after the step in flight, saves last.ckpt where it stopped and exits 143', async () => {
    const out = tmp();
    const { child, exit } = start(['train', ...TINY, '--checkpoint-every', 'epoch', '--out', out]);
    await until(() => steps(out).length >= 2, 'two steps');
    child.kill('SIGTERM');
    const stopped = await exit;
    expect(stopped.signal).toBeNull();
    expect(stopped.code).toBe(143);
    expect(JSON.parse(stopped.stdout).interrupted).toBe(true);
    const done = steps(out).length;
    expect(done).toBeLessThan(6); // mid-epoch, where epoch checkpoints would have saved nothing
    expect(await meta(out)).toMatchObject({ epoch: 0, batchInEpoch: done, step: done });
    expect((await simclr(['train', '--resume', '--progress', 'none', '--out', out])).code).toBe(0);
    expect(steps(out)).toEqual(steps(reference));
    expect(epochs(out)).toEqual(epochs(reference));
  });

  it.each([
    // Saved after steps 2, 4, ...: with k steps logged, the save after step k may not have finished.
    ['2', (k: number) => [2 * Math.floor((k - 1) / 2), 2 * Math.floor(k / 2)]],
    // Saved after every step (the interval, 0.6 ms, is shorter than a step).
    ['0.00001m', (k: number) => [k - 1, k]],
  ])('--checkpoint-every %s saves within the epoch: a kill -9 loses only the steps since the last save', async (every, savedAfter) => {
    const out = tmp();
    const { child, exit } = start(['train', ...ONE_LONG_EPOCH, '--checkpoint-every', every, '--out', out]);
    await until(() => steps(out).length >= 3, 'three steps');
    child.kill('SIGKILL');
    expect((await exit).signal).toBe('SIGKILL');
    const logged = steps(out).length;
    expect(logged).toBeLessThan(12);
    const saved = await meta(out);
    expect(savedAfter(logged)).toContain(saved.step);
    expect(saved).toMatchObject({ epoch: 0, batchInEpoch: saved.step });
    expect(saved.step).toBeGreaterThanOrEqual(2);
  });

  it('a partial last line in metrics.jsonl (a kill mid-write) and leftover temporary files are cleared on resume', async () => {
    const out = tmp();
    expect((await simclr(['train', ...TINY, '--max-steps', '2', '--out', out])).code).toBe(0);
    fs.appendFileSync(path.join(out, 'metrics.jsonl'), '{"step":3,"epoch":1,"lo');
    fs.writeFileSync(path.join(out, '.last.ckpt.12345.0123abcd.tmp'), 'a leftover of a killed write');
    const resumed = await simclr(['train', '--resume', '--max-steps', '6', '--progress', 'none', '--out', out]);
    expect(resumed.stderr).not.toMatch(/Error/);
    expect(resumed.code).toBe(0);
    expect(fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')).not.toContain('"lo\n');
    expect(steps(out).map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(fs.existsSync(path.join(out, 'report.html'))).toBe(true);
    expect(leftovers(out)).toEqual([]);
  });
});

describe('run folders', () => {
  it('a second run on a folder in use fails at once, naming the first; the first is undisturbed', async () => {
    const out = tmp();
    const first = start(['train', ...TINY, '--out', out]);
    await until(() => steps(out).length >= 1, 'the first run to train');
    // Paused, the first run cannot finish (and free the folder) before the second has tried it.
    first.child.kill('SIGSTOP');
    const second = await simclr(['train', ...TINY, '--overwrite', '--out', out]);
    first.child.kill('SIGCONT');
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`is in use by another run: process ${first.child.pid} on ${os.hostname()}`);
    expect((await first.exit).code).toBe(0);
    expect(steps(out)).toEqual(steps(reference));
  });

  it('a lock whose process is gone, or whose pid now belongs to another process, is taken over', async () => {
    const out = tmp();
    const gone = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, ['-e', '0']);
      child.once('exit', () => resolve(child.pid!));
    });
    const lock = (owner: object) => fs.writeFileSync(path.join(out, '.lock'), JSON.stringify({ host: os.hostname(), since: 'then', ...owner }));
    lock({ pid: gone });
    await (await RunFolderLock.acquire(out)).release();
    // This process's pid, but a start time that is not its own: the pid was reused after the run died.
    lock({ pid: process.pid, processStart: '1' });
    await (await RunFolderLock.acquire(out)).release();
    expect(leftovers(out)).toEqual([]);
  });

  it('a lock held on another host is never taken over: the error says whose it is and how to clear it', async () => {
    const out = tmp();
    fs.writeFileSync(path.join(out, '.lock'), JSON.stringify({ pid: 1, host: 'node-17', since: '2024-01-01T00:00:00Z' }));
    await expect(RunFolderLock.acquire(out)).rejects.toThrow(/in use by another run: process 1 on node-17 .*delete .*\.lock/);
  });

  it('starting over a finished run needs --resume or --overwrite; without them nothing is touched', async () => {
    const out = tmp();
    fs.cpSync(reference, out, { recursive: true });
    const metricsBefore = fs.readFileSync(path.join(out, 'metrics.jsonl'));
    const again = await simclr(['train', ...TINY, '--out', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/holds a previous run \(last\.ckpt, best\.ckpt, metrics\.jsonl, report\.html, report\.svg, events\.out\.tfevents\.\*\): continue it with --resume, start over with --overwrite/);
    expect(fs.readFileSync(path.join(out, 'metrics.jsonl'))).toEqual(metricsBefore);
    expect(eventFiles(out)).toHaveLength(1);
    const over = await simclr(['train', ...TINY, '--max-steps', '2', '--overwrite', '--out', out]);
    expect(over.code).toBe(0);
    expect(steps(out).map((s) => s.step)).toEqual([1, 2]);
    // The new run's event file alone: the previous run's is gone.
    expect(eventFiles(out)).toHaveLength(1);
  });

  it('best.ckpt is the epoch with the best score (the lowest loss without a kNN monitor), a link to that last.ckpt', async () => {
    const losses = epochs(reference).map((e) => e.loss);
    expect(losses).toHaveLength(2);
    const bestEpoch = losses.indexOf(Math.min(...losses)) + 1; // the first of equals stays best
    const best = (await readCheckpointHeader<CheckpointMeta>(path.join(reference, 'best.ckpt'))).meta;
    expect(best).toMatchObject({ epoch: bestEpoch, batchInEpoch: 0, step: 6 * bestEpoch });
    const inode = (name: string) => fs.statSync(path.join(reference, name)).ino;
    expect(inode('best.ckpt') === inode('last.ckpt')).toBe(bestEpoch === 2);
  });

  it('a folder with fewer than 2 readable images is an error (exit 1) naming the skipped file, not a run of 0 steps', async () => {
    const data = tmp();
    fs.mkdirSync(path.join(data, 'a'));
    await sharp(Buffer.alloc(16 * 16 * 3, 90), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(path.join(data, 'a', 'good.png'));
    fs.writeFileSync(path.join(data, 'a', 'bad.png'), 'not an image');
    const run = await simclr(['train', '--data', data, '--batch-size', '2', '--epochs', '1', '--base-size', '16', '--image-size', '16',
      '--workers', '1', '--knn-every', '0', '--progress', 'none', '--out', path.join(tmp(), 'run')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/bad\.png/);
    expect(run.stderr).toMatch(/epoch 1 gave no batch of at least 2 readable images/);
  });

  it('an unusable --out is a clear error at once', async () => {
    const file = path.join(tmp(), 'a-file');
    fs.writeFileSync(file, '');
    for (const out of ['/proc/simclr-run', path.join(file, 'run')]) {
      const started = Date.now();
      const run = await simclr(['train', ...TINY, '--out', out]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`cannot use ${out} as the run folder`);
      expect(Date.now() - started).toBeLessThan(20_000);
    }
  });
});

describe('simclr train --resume', () => {
  let stopped: string; // a run stopped by --max-steps 4, mid-epoch 0

  beforeAll(async () => {
    stopped = tmp();
    expect((await simclr(['train', ...TINY, '--max-steps', '4', '--out', stopped])).code).toBe(0);
  });

  it('a run stopped by --max-steps mid-epoch is saved there: resuming trains the rest of that epoch', async () => {
    expect(await meta(stopped)).toMatchObject({ epoch: 0, batchInEpoch: 4, step: 4 });
    expect(epochs(stopped)).toEqual([]); // epoch 0 has not ended
    const out = tmp();
    fs.cpSync(stopped, out, { recursive: true });
    const resumed = await simclr(['train', '--resume', '--max-steps', '12', '--progress', 'none', '--out', out]);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/resuming with --max-steps 12 \(the run had 4\)/);
    // metrics.jsonl numbers epochs from 1 (the checkpoint's position counts epochs done, from 0).
    expect(steps(out).map((s) => [s.step, s.epoch])).toEqual([[1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [6, 1], [7, 2], [8, 2], [9, 2], [10, 2], [11, 2], [12, 2]]);
    // The first epoch's mean covers its 6 steps, 4 of them trained before the resume.
    const first = steps(out).filter((s) => s.epoch === 1);
    expect(epochs(out)[0].loss).toBeCloseTo(first.reduce((a, s) => a + s.loss, 0) / 6, 12);
  });

  it('--max-steps 0 drops the run\'s step cap: the resumed run trains its epochs x batches', async () => {
    const out = tmp();
    fs.cpSync(stopped, out, { recursive: true });
    const resumed = await simclr(['train', '--resume', '--max-steps', '0', '--progress', 'none', '--out', out]);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/resuming with --max-steps 0 \(the run had 4\): no step cap/);
    expect(steps(out).map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect((await meta(out)).config.maxSteps).toBe(0);
  });

  it.each([
    ['data', ['--data', path.join(os.tmpdir(), 'other-images')]],
    ['lr', ['--lr', '0.5']],
    ['backbone', ['--backbone', 'resnet34']],
    ['batchSize', ['--batch-size', '6']],
    ['optimizer', ['--optimizer', 'adamw']],
    ['seed', ['--seed', '6']],
  ])('a changed %s is an error naming it, and nothing is touched', async (name, flags) => {
    const before = fs.readFileSync(path.join(stopped, 'metrics.jsonl'));
    const run = await simclr(['train', '--resume', ...flags, '--out', stopped]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`--resume continues the run in .* but ${name} \\(${flags[0]}\\) is .* but the run has`));
    expect(fs.readFileSync(path.join(stopped, 'metrics.jsonl'))).toEqual(before);
  });

  it('the same settings given again are no change: a resume with the whole command line works', async () => {
    const out = tmp();
    fs.cpSync(stopped, out, { recursive: true });
    const run = await simclr(['train', ...TINY, '--max-steps', '5', '--resume', '--out', out]);
    expect(run.stderr).toMatch(/resuming with --max-steps 5/);
    expect(run.code).toBe(0);
    expect(steps(out)).toHaveLength(5);
  });

  it('a run started with a relative --data resumes from any working folder: the data path is stored absolute', async () => {
    const work = tmp();
    for (const [cls, shade] of [['a', 40], ['b', 200]] as const) {
      fs.mkdirSync(path.join(work, 'images', cls), { recursive: true });
      for (let i = 0; i < 4; i++) {
        await sharp(Buffer.alloc(16 * 16 * 3, shade + i), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(path.join(work, 'images', cls, `${i}.png`));
      }
    }
    const out = path.join(work, 'run');
    const common = ['--batch-size', '4', '--epochs', '2', '--base-size', '16', '--image-size', '16', '--workers', '1', '--knn-every', '0', '--progress', 'none'];
    expect((await simclr(['train', '--data', 'images', ...common, '--max-steps', '1', '--out', 'run'], work)).code).toBe(0);
    expect((await meta(out)).config.data).toBe(path.join(work, 'images'));
    const resumed = await simclr(['train', '--resume', '--max-steps', '4', '--progress', 'none', '--out', out], os.homedir());
    expect(resumed.stderr).not.toMatch(/Error|does not exist/);
    expect(resumed.code).toBe(0);
    expect(steps(out)).toHaveLength(4);
  });

  it('--epochs may change, with a note of what it means', async () => {
    const out = tmp();
    fs.cpSync(reference, out, { recursive: true });
    const run = await simclr(['train', '--resume', '--epochs', '3', '--progress', 'none', '--out', out]);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/resuming with --epochs 3 \(the run had 2\): the learning-rate schedule is stretched/);
    expect(steps(out)).toHaveLength(18);
    expect(steps(out).slice(0, STEPS)).toEqual(steps(reference));
  });
});
