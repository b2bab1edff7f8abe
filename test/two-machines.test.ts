/**
 * Two machines for real: two network namespaces joined by a veth pair, each with its own launcher (`--nnodes 2`), the
 * rendezvous and rank 0 in the first, talking to the second only over the link. The job trains as one machine's two
 * workers do; taking the link down mid-run ends both sides within a minute, saying why; `--resume` then continues to
 * the same losses. Needs root and iproute2 (`ip netns`), as CI has.
 */
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { scratchFolders } from './helpers/scratch';
import { describeWithTool } from './helpers/tools';
import { fashionMnistAvailable } from './helpers/fashion-mnist-pixels';

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');
const tmp = scratchFolders('two-machines');
const ID = `${process.pid % 100000}`;
const NAMESPACES = [`simclr-${ID}-a`, `simclr-${ID}-b`] as const;
const LINKS = [`sa${ID}`, `sb${ID}`] as const;
const SUBNET = `10.${200 + (process.pid % 50)}.${Math.floor(process.pid / 50) % 250}`;
const ADDRESSES = [`${SUBNET}.1`, `${SUBNET}.2`] as const;

function ip(...args: string[]): void {
  const run = spawnSync('ip', args, { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`ip ${args.join(' ')}: ${run.stderr.trim() || run.error}`);
}

/** Whether this process may make network namespaces (root with iproute2): tries one. */
function canMakeNamespaces(): boolean {
  const name = `simclr-probe-${ID}`;
  if (spawnSync('ip', ['netns', 'add', name]).status !== 0) return false;
  spawnSync('ip', ['netns', 'del', name]);
  return fashionMnistAvailable();
}

/** 48 Fashion-MNIST images, 2 ranks x 4 per step: 6 steps an epoch, 12 in all; last.ckpt every 2 steps. */
const SETTINGS = ['--data', 'fashion-mnist', '--subset', '48', '--batch-size', '4', '--epochs', '2', '--base-size', '16', '--image-size', '16',
  '--workers', '1', '--knn-every', '0', '--seed', '5', '--progress', 'none', '--checkpoint-every', '2', '--dist-timeout', '5'];
// One LibTorch thread per worker everywhere: the one-machine reference's share of 2 cores, so that the arithmetic is the same.
const ENV = { ...process.env, SIMCLR_NUM_THREADS: '1' };

interface Exit { code: number | null; signal: NodeJS.Signals | null; stderr: string; seconds: number }

function started(child: ChildProcess): Promise<Exit> {
  const begun = Date.now();
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stderr, seconds: (Date.now() - begun) / 1000 })));
}

/** Every launcher started, so that one left running by a failed test is ended (a killed launcher ends its workers). */
const launchers: ChildProcess[] = [];

/** One launcher per namespace: node 0 (rank 0, the rendezvous) writes the run to `out`; node 1 has a folder of its own. */
function twoNodeJob(out: string, extra: string[] = []): { exits: Promise<Exit[]> } {
  const node = (rank: number, folder: string) => launch('ip', ['netns', 'exec', NAMESPACES[rank], process.execPath, CLI, 'train', ...SETTINGS, ...extra,
    '--nnodes', '2', '--node-rank', String(rank), '--nproc-per-node', '1', '--master-addr', ADDRESSES[0], '--master-port', '29500', '--out', folder],
  // Gloo's interface, as on a cluster: the machine's name resolves to no address inside the namespace.
  { env: { ...ENV, GLOO_SOCKET_IFNAME: LINKS[rank] }, stdio: ['ignore', 'ignore', 'pipe'] });
  return { exits: Promise.all([started(node(0, out)), started(node(1, `${out}-node1`))]) };
}

function launch(command: string, args: string[], options: Parameters<typeof spawn>[2]): ChildProcess {
  const child = spawn(command, args, options);
  launchers.push(child);
  return child;
}

const stepRecords = (out: string): { step: number; loss: number; lr: number }[] => (fs.existsSync(path.join(out, 'metrics.jsonl'))
  ? fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8') : '').split('\n').flatMap((line) => {
  try {
    const r = JSON.parse(line);
    return r.step !== undefined ? [{ step: r.step, loss: r.loss, lr: r.lr }] : [];
  } catch {
    return [];
  }
});

describeWithTool('two machines: network namespaces joined by a veth pair', 'root and iproute2 (ip netns add) with Fashion-MNIST',
  canMakeNamespaces() ? 'ip' : undefined, () => {
    let reference: { step: number; loss: number; lr: number }[];

    beforeAll(async () => {
      ip('netns', 'add', NAMESPACES[0]);
      ip('netns', 'add', NAMESPACES[1]);
      ip('link', 'add', LINKS[0], 'type', 'veth', 'peer', 'name', LINKS[1]);
      for (const i of [0, 1]) {
        ip('link', 'set', LINKS[i], 'netns', NAMESPACES[i]);
        ip('-n', NAMESPACES[i], 'addr', 'add', `${ADDRESSES[i]}/24`, 'dev', LINKS[i]);
        ip('-n', NAMESPACES[i], 'link', 'set', 'lo', 'up');
        ip('-n', NAMESPACES[i], 'link', 'set', LINKS[i], 'up');
      }
      // The reference: one machine, two workers on loopback.
      const out = tmp();
      const one = await started(spawn(process.execPath, [CLI, 'train', ...SETTINGS, '--nproc-per-node', '2', '--out', out], { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] }));
      expect(one.code === 0 ? '' : one.stderr).toBe('');
      reference = stepRecords(out);
      expect(reference.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    }, 240_000);

    afterAll(() => {
      for (const child of launchers) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      // Deleting a namespace deletes its end of the veth pair, and with it the other end.
      for (const name of NAMESPACES) spawnSync('ip', ['netns', 'del', name]);
    });

    it('a 2-node job over the link trains to the losses of one machine\'s 2 workers, bit for bit', async () => {
      const out = tmp();
      const exits = await twoNodeJob(out).exits;
      expect(exits.map((e) => (e.code === 0 ? '' : e.stderr))).toEqual(['', '']);
      expect(stepRecords(out)).toEqual(reference);
      // Node 1 holds no rank 0: it writes no run of its own.
      expect(fs.existsSync(path.join(`${out}-node1`, 'metrics.jsonl'))).toBe(false);
    }, 240_000);

    it('with the link taken down mid-run both sides end within 60 s, saying why; --resume continues to the same losses', async () => {
      const out = tmp();
      const job = twoNodeJob(out);
      const deadline = Date.now() + 120_000;
      while (stepRecords(out).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(stepRecords(out).length).toBeGreaterThanOrEqual(3);
      ip('-n', NAMESPACES[1], 'link', 'set', LINKS[1], 'down');
      const cut = Date.now();
      const exits = await job.exits;
      const seconds = (Date.now() - cut) / 1000;
      console.log(`link down after step ${stepRecords(out).length}: both nodes ended ${seconds.toFixed(1)} s later (exit ${exits.map((e) => e.code).join(', ')})\n` +
        `node 0: ${exits[0].stderr.trim().split('\n').slice(-2).join('\n        ')}\nnode 1: ${exits[1].stderr.trim().split('\n').slice(-2).join('\n        ')}`);
      expect(seconds).toBeLessThan(60);
      for (const exit of exits) {
        expect(exit.code).not.toBe(0);
        expect(exit.code).not.toBeNull();
        expect(exit.stderr).toMatch(/collective timeout \(5 s\)|timed out|timeout/i);
      }
      // Each side names what it could not reach, and that the network may be why.
      expect(exits.map((e) => e.stderr).join('\n')).toMatch(/cannot be reached/);
      expect(stepRecords(out).length).toBeLessThan(12);

      ip('-n', NAMESPACES[1], 'link', 'set', LINKS[1], 'up');
      const resumed = await twoNodeJob(out, ['--resume']).exits;
      expect(resumed.map((e) => (e.code === 0 ? '' : e.stderr))).toEqual(['', '']);
      expect(stepRecords(out)).toEqual(reference);
    }, 300_000);
  });
