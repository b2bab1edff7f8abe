/**
 * Data-parallel training on c10d (Gloo on 127.0.0.1): the distributed sampler; 2 workers with batch B against 1
 * process with batch 2B in float64 (the same parameters after 3 steps, to 1e-10; the float32 comparisons, and the two
 * mistakes that break them, are in data-parallel.test.ts); the launcher when a worker dies; a 2-worker run stopped by
 * Ctrl-C and resumed. Workers run the built package (dist/), as users do.
 */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DistributedSampler, doctor } from '../src';
import { describeWithTool } from './helpers/tools';
import { sweepStaleResumeCopies } from '../src/run/resume-copies';
import { eventFiles } from '../src/train/tensorboard';
import { freePort, launch } from '../src/run/launch';
import { scratchFolders } from './helpers/scratch';
import { distance, train, trainTwoReferences, WorkerResult } from './helpers/data-parallel';

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');
const tmp = scratchFolders('dist');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('DistributedSampler', () => {
  it('gives the ranks disjoint shards that cover the epoch, padded to the same length', () => {
    const shards = [0, 1, 2].map((rank) => Array.from(new DistributedSampler(10, { rank, worldSize: 3, seed: 4 }).indices(2)));
    expect(shards.map((s) => s.length)).toEqual([4, 4, 4]);
    const all = shards.flat();
    expect(new Set(all)).toEqual(new Set(Array.from({ length: 10 }, (_, i) => i)));
    // 12 places for 10 samples: exactly 2 repeat (the padding), every other index appears once.
    expect(all.length - new Set(all).size).toBe(2);
  });

  it('drops the tail with dropLast: disjoint shards of equal length', () => {
    const shards = [0, 1, 2].map((rank) => Array.from(new DistributedSampler(10, { rank, worldSize: 3, dropLast: true }).indices(0)));
    expect(shards.map((s) => s.length)).toEqual([3, 3, 3]);
    expect(new Set(shards.flat()).size).toBe(9);
  });

  it('shuffles by (seed, epoch) alone: every rank draws the same order, another epoch or seed another', () => {
    const order = (seed: number, epoch: number) => [0, 1].flatMap((rank) => Array.from(new DistributedSampler(50, { rank, worldSize: 2, seed }).indices(epoch)));
    expect(order(1, 3)).toEqual(order(1, 3));
    expect(order(1, 3)).not.toEqual(order(1, 4));
    expect(order(1, 3)).not.toEqual(order(2, 3));
  });

  it('rejects bad options', () => {
    expect(() => new DistributedSampler(10, { rank: 2, worldSize: 2 })).toThrow(RangeError);
    expect(() => new DistributedSampler(1, { rank: 0, worldSize: 2, dropLast: true })).toThrow(/no sample/);
    expect(() => new DistributedSampler(0, { rank: 0, worldSize: 1 })).toThrow(/datasetLength/);
  });
});

describe('resume copies of a checkpoint on the other ranks', () => {
  it('of a process that is gone are removed by the next resume; those of live processes are kept', () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-sweep-'));
    try {
      const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
      const deadPid = Number(gone.stdout);
      for (const pid of [deadPid, process.pid, process.ppid]) {
        fs.mkdirSync(path.join(folder, `simclr-resume-${pid}-x1`));
        fs.writeFileSync(path.join(folder, `simclr-resume-${pid}-x1`, 'last.ckpt'), 'bytes');
      }
      fs.mkdirSync(path.join(folder, 'simclr-other-1'));
      sweepStaleResumeCopies(folder);
      expect(fs.readdirSync(folder).sort()).toEqual([`simclr-resume-${process.pid}-x1`, `simclr-resume-${process.ppid}-x1`, 'simclr-other-1'].sort());
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});

describe('2 Gloo workers with batch B against 1 process with batch 2B, in float64', () => {
  // Exactness does not depend on the image size: 16 px views (8 px small ones) rather than data-parallel.test.ts's 32
  // (16), a quarter of the float64 work, which has no fast kernels. float32 rounding hides nothing here: the gradients
  // of the two paths agree to the last bits (2.5e-16 apart, measured at 32 px).
  const exact = { float64: true, size: 16 };
  const multiCrop = { ...exact, smallViews: 2, smallSize: 8 };

  let single: WorkerResult;
  let multiCropSingle: WorkerResult;
  beforeAll(async () => {
    // The two one-process references at once (one single-threaded process each: the 2 cores a 2-worker run takes).
    [single, multiCropSingle] = await trainTwoReferences(tmp, exact, multiCrop);
  }, 600_000);

  it.each([
    ['2 views per image', exact, () => single],
    ['multi-crop (2 large + 2 small views per image)', multiCrop, () => multiCropSingle],
  ] as const)('with %s, reach the losses and parameters of 1 process within 1e-10', async (name, options, reference) => {
    const dp = await train(tmp, 2, options);
    const d = distance(dp.params, reference().params);
    process.stdout.write(`float64, ${name}, 2 workers vs 1 process: parameters ‖Δ‖/‖θ‖ ${d.relative.toExponential(2)}, max |Δ| ${d.maxAbs.toExponential(2)}, ` +
      `losses ${dp.losses.map((l, i) => Math.abs(l / reference().losses[i] - 1).toExponential(1)).join(', ')} apart (relative)\n`);
    expect(d.relative).toBeLessThan(1e-10);
    dp.losses.forEach((loss, i) => expect(Math.abs(loss - reference().losses[i])).toBeLessThan(1e-10 * reference().losses[i]));
  }, 300_000);
});

/** `simclr train <args>` as a user starts it; resolves with its exit code, signal and output. */
function simclr(args: string[]) {
  const child = spawn(process.execPath, [CLI, 'train', ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, exit };
}

/** 24 Fashion-MNIST images, 2 workers x 4 per step: 3 steps an epoch. */
const TINY = ['--nproc-per-node', '2', '--data', 'fashion-mnist', '--subset', '24', '--batch-size', '4', '--base-size', '16',
  '--image-size', '16', '--workers', '1', '--knn-every', '0', '--seed', '5', '--progress', 'none'];

const stepRecords = (out: string) => (fs.existsSync(path.join(out, 'metrics.jsonl')) ? fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8') : '')
  .split('\n').flatMap((line) => {
    try {
      const r = JSON.parse(line);
      return r.step !== undefined ? [{ step: r.step, loss: r.loss, lr: r.lr }] : [];
    } catch {
      return [];
    }
  });

/** The pids of `parent`'s child processes (the launcher's workers). */
function childrenOf(parent: number): number[] {
  const tasks = fs.readdirSync(`/proc/${parent}/task`);
  return tasks.flatMap((t) => fs.readFileSync(`/proc/${parent}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
}

function rankOf(pid: number): number {
  const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  return Number(env.find((v) => v.startsWith('RANK='))!.slice(5));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie has exited: only its parent has not reaped it yet.
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return !/\) [ZX] /.test(stat);
}

async function until(condition: () => boolean, what: string, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A 2-worker run of many epochs once it has stepped: the launcher's run, its workers' pids and rank 1's. */
async function runningWorkers(distTimeout: number) {
  const out = tmp();
  const run = simclr([...TINY, '--epochs', '200', '--dist-timeout', String(distTimeout), '--out', out]);
  await until(() => stepRecords(out).length >= 2, 'the first steps');
  const workers = childrenOf(run.child.pid!);
  expect(workers).toHaveLength(2);
  return { run, workers, rank1: workers.find((pid) => rankOf(pid) === 1)! };
}

describe('the launcher, told to stop', () => {
  // Workers that log each signal they get and exit as simclr's do: rank 1 at once, rank 0 after saving (a while).
  const WORKER = String.raw`
const fs = require('fs');
const log = (line) => fs.appendFileSync(process.env.SIGNAL_LOG, process.env.RANK + ' ' + line + '\n');
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
  process.on(signal, () => { log(signal); setTimeout(() => process.exit(code), process.env.RANK === '1' ? 0 : 800); });
}
log('ready');
setInterval(() => {}, 1000);
`;

  it.each([['SIGTERM', 143], ['SIGINT', 130]] as const)('by %s, forwards it once to each worker and exits %i once they stopped', async (signal, code) => {
    const signalLog = path.join(tmp(), 'signals.log');
    fs.writeFileSync(signalLog, '');
    const lines = () => fs.readFileSync(signalLog, 'utf8').split('\n').filter(Boolean);
    const exit = launch({ nprocPerNode: 2, command: process.execPath, args: ['-e', WORKER], env: { ...process.env, SIGNAL_LOG: signalLog }, log: () => undefined });
    await until(() => lines().filter((l) => l.endsWith('ready')).length === 2, 'the workers to start', 30_000);
    process.emit(signal);
    expect(await exit).toBe(code);
    // Rank 1's exit is the stop asked for, not a failure that would signal rank 0 again (which then quits unsaved).
    expect(lines().filter((l) => !l.endsWith('ready')).sort()).toEqual([`0 ${signal}`, `1 ${signal}`]);
  }, 60_000);
});

describe('workers started by hand', () => {
  it('with different settings (--batch-size) all fail before the first step, the odd one naming the setting', async () => {
    const port = await freePort();
    const out = tmp();
    const worker = (rank: number, batchSize: string) => {
      const args = TINY.filter((a, i) => a !== '--nproc-per-node' && TINY[i - 1] !== '--nproc-per-node')
        .map((a, i, list) => (list[i - 1] === '--batch-size' ? batchSize : a));
      const child = spawn(process.execPath, [CLI, 'train', ...args, '--out', out, '--dist-timeout', '60'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), LOCAL_RANK: String(rank) },
      });
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += d));
      return new Promise<{ code: number | null; stderr: string }>((resolve) => child.once('close', (code) => resolve({ code, stderr })));
    };
    const started = Date.now();
    const [rank0, rank1] = await Promise.all([worker(0, '4'), worker(1, '2')]);
    expect(rank1.code).not.toBe(0);
    expect(rank1.stderr).toContain('rank 1: its settings differ from rank 0\'s (batchSize 2, rank 0 4): every worker of a run takes the same settings');
    expect(rank0.code).not.toBe(0);
    expect(rank0.stderr).toContain('rank 0: 1 worker(s) run with settings that differ from rank 0\'s');
    expect(stepRecords(out)).toEqual([]);
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 120_000);
});

describe('a worker whose MASTER_PORT is another program\'s', () => {
  // Rank 1 alone, told that rank 0's store is at `port` (spawned, not spawnSync: the server runs in this process).
  const rank1 = async (port: number) => {
    const args = TINY.filter((a, i) => a !== '--nproc-per-node' && TINY[i - 1] !== '--nproc-per-node');
    const started = Date.now();
    const child = spawn(process.execPath, [CLI, 'train', ...args, '--out', tmp(), '--dist-timeout', '5'], {
      stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000,
      env: { ...process.env, RANK: '1', WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), LOCAL_RANK: '1' },
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    return { code, stderr, seconds: (Date.now() - started) / 1000 };
  };
  const listening = (server: import('net').Server) => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as import('net').AddressInfo).port)));

  it('a web server: says another program listens there (not that RANK 1 is taken)', async () => {
    const server = (await import('http')).createServer((_, res) => res.end('hello'));
    try {
      const result = await rank1(await listening(server));
      expect(result.code).toBe(1);
      // LibTorch 1.x's client takes the server's first reply for an answer, which our probe finds wrong at once; 2.x's
      // pings the server itself and retries until its timeout, and either its failed ping or the rendezvous's deadline
      // (a tenth later) ends the wait first, depending on the load.
      expect(result.stderr).toMatch(/is not a rendezvous store \(c10d's TCPStore\): another program listens on MASTER_PORT|took the connection but did not answer within 5 s\. Is another program listening on MASTER_PORT\?/);
      expect(result.stderr).not.toContain('is taken');
      expect(result.stderr).not.toContain('could not reach the master');
      expect(result.seconds).toBeLessThan(5 + 0.5 + 6);
    } finally {
      server.close();
    }
  }, 90_000);

  it('a server that takes the connection and stays silent: gives up after --dist-timeout (5 s), not twice that', async () => {
    const sockets: import('net').Socket[] = [];
    const server = (await import('net')).createServer((socket) => sockets.push(socket.on('data', () => undefined)));
    try {
      const result = await rank1(await listening(server));
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('took the connection but did not answer within 5 s');
      // The timeout, its small margin (a tenth of it) and the start of a process that loads LibTorch, on a loaded machine
      // (the margin was the timeout itself: twice the timeout and the start).
      expect(result.seconds).toBeLessThan(5 + 0.5 + 6);
    } finally {
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  }, 90_000);
});

describe('simclr train --nproc-per-node 2', () => {
  it('ends every worker and the launcher, non-zero and naming the rank, when one worker is killed', async () => {
    const { run, workers, rank1 } = await runningWorkers(60);
    const killedAt = Date.now();
    process.kill(rank1, 'SIGKILL');
    const result = await run.exit;
    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stderr).toMatch(/rank 1 \(pid \d+\) was killed by SIGKILL/);
    // Well within the collective timeout (60 s): a dead peer's closed connection fails the collective at once.
    expect(Date.now() - killedAt).toBeLessThan(30_000);
    for (const pid of workers) expect(alive(pid)).toBe(false);
  }, 240_000);

  it('a worker that hangs fails the others after --dist-timeout, naming it; the launcher ends it and exits non-zero', async () => {
    const { run, workers, rank1 } = await runningWorkers(5);
    const stoppedAt = Date.now();
    process.kill(rank1, 'SIGSTOP');
    const result = await run.exit;
    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stderr).toMatch(new RegExp(`failed on rank 0 of 2 after the collective timeout \\(5 s\\): rank 1 \\(pid ${rank1}\\) is stopped`));
    // The launcher's SIGTERM comes with SIGCONT: the stopped rank wakes and ends itself, saying why (rather than waiting,
    // stopped, for SIGKILL after the grace period of 10 s).
    expect(result.stderr).toMatch(/distributed .* failed on rank 1 of 2/);
    expect(Date.now() - stoppedAt).toBeLessThan(60_000);
    for (const pid of workers) expect(alive(pid)).toBe(false);
  }, 240_000);

  it('a killed launcher takes its workers with it', async () => {
    const { run, workers } = await runningWorkers(60);
    run.child.kill('SIGKILL');
    await run.exit;
    await until(() => workers.every((pid) => !alive(pid)), 'the workers to exit', 30_000);
  }, 240_000);

  it('stops every worker on Ctrl-C with last.ckpt saved, and resumes to the losses of an uninterrupted run', async () => {
    const straight = tmp();
    const full = await simclr([...TINY, '--epochs', '2', '--out', straight]).exit;
    expect(full.code === 0 ? '' : full.stderr + full.stdout).toBe('');
    const reference = stepRecords(straight);
    expect(reference).toHaveLength(6);
    expect(eventFiles(straight)).toHaveLength(1); // rank 0's: rank 1 writes none

    const out = tmp();
    const run = simclr([...TINY, '--epochs', '2', '--out', out]);
    await until(() => stepRecords(out).length >= 2, 'the first steps');
    run.child.kill('SIGINT');
    const stopped = await run.exit;
    expect(stopped.code).toBe(130);
    const done = stepRecords(out).length;
    expect(done).toBeLessThan(6);
    const resumed = await simclr([...TINY, '--epochs', '2', '--out', out, '--resume']).exit;
    expect(resumed.code).toBe(0);
    const records = stepRecords(out);
    expect(records.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(eventFiles(out)).toHaveLength(2); // one per session of rank 0
    for (let i = 0; i < 6; i++) {
      expect(records[i].lr).toBeCloseTo(reference[i].lr, 12);
      expect(Math.abs(records[i].loss - reference[i].loss)).toBeLessThan(1e-5 * reference[i].loss);
    }
  }, 300_000);

  it('refusing to resume a 1-worker run leaves no checkpoint copy in the temporary folder', async () => {
    // Rank 1 copies rank 0's checkpoint before the refusal; the launcher's SIGTERM used to end it before its cleanup,
    // leaving the copy (the checkpoint's size) for good. A temporary folder of its own shows what the job left.
    const out = tmp();
    const temporary = tmp();
    const oneWorker = TINY.slice(2);
    const first = await simclr([...oneWorker, '--max-steps', '1', '--out', out]).exit;
    expect(first.code === 0 ? '' : first.stderr).toBe('');
    const child = spawn(process.execPath, [CLI, 'train', '--resume', '--nproc-per-node', '2', '--progress', 'none', '--out', out],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: temporary }, timeout: 120_000 });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code).toBe(1);
    expect(stderr).toMatch(/written by a run of 1 worker\(s\), and this one has 2/);
    expect(fs.readdirSync(temporary)).toEqual([]);
  }, 240_000);
});

/**
 * Under torchrun (SIMCLR_TORCHRUN: a torch >= 2's, which CI takes from the pip venv; Debian's torch 1.13 torchrun
 * cannot start processes on Python 3.11). Its agent serves the store, and LibTorch 1.x clients cannot talk to a
 * torch >= 2 store: a build on such a LibTorch must say so within the timeout instead of hanging; a build on torch 2.x
 * trains.
 */
describeWithTool('simclr train under torchrun --no-python', 'a torchrun of torch >= 2 (SIMCLR_TORCHRUN)', process.env.SIMCLR_TORCHRUN, (torchrun) => {
  it('trains when the build\'s LibTorch speaks the launcher\'s store protocol, and says why not within the timeout when it does not', async () => {
    const out = tmp();
    const args = ['--nproc-per-node', '2', '--master-port', String(await freePort()), '--no-python', process.execPath, CLI, 'train',
      ...TINY.slice(2), '--epochs', '1', '--dist-timeout', '10', '--out', out];
    const child = spawn(torchrun, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const started = Date.now();
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    if (Number(doctor().libtorch.version.split('.')[0]) >= 2) {
      expect(code === 0 ? '' : output).toBe('');
      expect(stepRecords(out)).toHaveLength(3);
    } else {
      expect(code).not.toBe(0);
      expect(output).toMatch(/rank [01]: the rendezvous store at 127\.0\.0\.1:\d+ (took the connection but )?did not answer within \d+ s\. It is the launcher's store/);
      expect(Date.now() - started).toBeLessThan(90_000);
    }
  }, 180_000);
});
