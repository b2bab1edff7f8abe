/**
 * How joining a c10d group fails, as the README promises: a port in use, an unreachable master, a rank that never
 * comes, world sizes that disagree, one rank started twice, a peer that hangs in a collective. Each must be an error
 * that says so within the timeout, never a hang. Ranks run as separate processes of the built package (dist/), as the
 * launcher starts them; the single-rank cases run in this process.
 */
import { spawn, spawnSync } from 'child_process';
import * as net from 'net';
import * as path from 'path';
import { ProcessGroup } from '../src';
import { freePort } from '../src/run/launch';

const DIST = path.join(__dirname, '..', 'dist');

/** One rank: joins, optionally all-reduces a 1 (or joins and then never takes part), prints 'ok' or 'error: ...'. */
const RANK_SCRIPT = `
const { ProcessGroup, Tensor } = require(process.env.SIMCLR_DIST);
const o = JSON.parse(process.argv[1]);
(async () => {
  try {
    const group = await ProcessGroup.init(o);
    if (o.then === 'hang') {
      console.log('joined');
      return setInterval(() => undefined, 1000);
    }
    if (o.then === 'allReduce') {
      const sum = await group.allReduceSum(Tensor.fromTypedArray(new Float32Array([1]), [1]));
      console.log('sum ' + sum.toTypedArray()[0]);
    }
    console.log('ok');
    process.exit(0);
  } catch (err) {
    console.log('error: ' + err.message);
    process.exit(1);
  }
})();`;

interface RankOptions {
  rank: number;
  worldSize: number;
  masterPort: number;
  timeoutMs: number;
  then?: 'hang' | 'allReduce';
}

interface RankResult {
  code: number | null;
  output: string;
  seconds: number;
}

function startRank(options: RankOptions): { kill: () => void; output: () => string; result: Promise<RankResult> } {
  const started = Date.now();
  const child = spawn(process.execPath, ['-e', RANK_SCRIPT, JSON.stringify({ masterAddr: '127.0.0.1', ...options })],
    { env: { ...process.env, SIMCLR_DIST: DIST }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  // What the rank script prints; c10d's own warnings (torch 2.x logs store errors with stack traces) go to stderr.
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.resume();
  const result = new Promise<RankResult>((resolve) =>
    child.once('close', (code) => resolve({ code, output: output.trim(), seconds: (Date.now() - started) / 1000 })));
  return { kill: () => child.kill('SIGKILL'), output: () => output, result };
}

const runRanks = (ranks: RankOptions[]) => Promise.all(ranks.map((r) => startRank(r).result));

async function until(condition: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('joining a process group', () => {
  it('two ranks join and all-reduce (the sanity case the failures below depart from)', async () => {
    const masterPort = await freePort();
    const results = await runRanks([0, 1].map((rank) => ({ rank, worldSize: 2, masterPort, timeoutMs: 30_000, then: 'allReduce' as const })));
    for (const r of results) expect(r.output).toBe('sum 2\nok');
  }, 60_000);

  it('a port in use on rank 0 is an error naming the port and the fix, and nothing else on stderr', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '0.0.0.0', resolve));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      await expect(ProcessGroup.init({ rank: 0, worldSize: 2, masterAddr: '127.0.0.1', masterPort: port, timeoutMs: 5_000 }))
        .rejects.toThrow(new RegExp(`MASTER_PORT ${port} is in use on this machine.*Pick a free port \\(--master-port, MASTER_PORT\\)`));
      // LibTorch's store logged four lines of failed binds (socket.cpp) before the error: in a process of its own, the
      // error alone is what the user reads.
      const child = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(DIST)}).ProcessGroup.init({ rank: 0, worldSize: 2, masterAddr: '127.0.0.1', masterPort: ${port}, timeoutMs: 5000 })
        .catch((e) => { console.error(e.message); process.exitCode = 1; })`], { encoding: 'utf8', timeout: 60_000 });
      expect([child.status, child.stderr.trim().split('\n')]).toEqual([1, [expect.stringMatching(new RegExp(`^MASTER_PORT ${port} is in use on this machine`))]]);
    } finally {
      holder.close();
    }
  });

  it('an unreachable master is an error within the timeout that says which address was tried', async () => {
    const port = await freePort(); // nobody serves it
    const started = Date.now();
    await expect(ProcessGroup.init({ rank: 1, worldSize: 2, masterAddr: '127.0.0.1', masterPort: port, timeoutMs: 2_000 }))
      .rejects.toThrow(new RegExp(`rank 1 could not reach the master at 127\\.0\\.0\\.1:${port} within 2 s: is rank 0 running, and are MASTER_ADDR and MASTER_PORT right\\?`));
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('a store that takes the connection but never answers (torchrun >= 2\'s agent store to a LibTorch 1.x build) is an error within the timeout and a margin', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as net.AddressInfo).port;
    const started = Date.now();
    try {
      await expect(ProcessGroup.init({ rank: 0, worldSize: 2, masterAddr: '127.0.0.1', masterPort: port, timeoutMs: 2_000, agentStore: true }))
        .rejects.toThrow(new RegExp(`rank 0: the rendezvous store at 127\\.0\\.0\\.1:${port} (took the connection but )?did not answer within [24] s\\. ` +
          'It is the launcher\'s store \\(TORCHELASTIC_USE_AGENT_STORE=True\\).*Run simclr on the torch of the launcher'));
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('a rank that never comes ends the rendezvous after the timeout, naming it', async () => {
    const started = Date.now();
    await expect(ProcessGroup.init({ rank: 0, worldSize: 3, masterAddr: '127.0.0.1', masterPort: await freePort(), timeoutMs: 2_000 }))
      .rejects.toThrow(/timed out after 2 s: rank\(s\) 1, 2 of WORLD_SIZE=3 never joined/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('world sizes that disagree are an error on the rank that sees it; the other gives up within its timeout', async () => {
    const masterPort = await freePort();
    const [zero, one] = await runRanks([
      { rank: 0, worldSize: 2, masterPort, timeoutMs: 3_000 },
      { rank: 1, worldSize: 3, masterPort, timeoutMs: 3_000 },
    ]);
    expect(zero.code).toBe(1);
    expect(zero.output).toMatch(/rank 1 was started with WORLD_SIZE=3 but rank 0 with WORLD_SIZE=2: every worker needs the same world size/);
    expect(one.code).toBe(1);
    expect(one.output).toMatch(/^error: /);
    for (const r of [zero, one]) expect(r.seconds).toBeLessThan(30);
  }, 60_000);

  it('one rank started twice: the second claimant is told its RANK is taken', async () => {
    const port = await freePort();
    const owner = startRank({ rank: 0, worldSize: 2, masterPort: port, timeoutMs: 10_000, then: 'hang' });
    const claimant = startRank({ rank: 1, worldSize: 2, masterPort: port, timeoutMs: 10_000, then: 'hang' });
    await until(() => owner.output().includes('joined') && claimant.output().includes('joined'), 'ranks 0 and 1 to join');
    const second = await startRank({ rank: 1, worldSize: 2, masterPort: port, timeoutMs: 10_000 }).result;
    owner.kill();
    claimant.kill();
    expect(second.code).toBe(1);
    expect(second.output).toMatch(/RANK 1 is taken by another worker of this group: each worker needs its own RANK/);
  }, 60_000);

  it('a peer that joined but never takes part fails the collective after the timeout, not never', async () => {
    const masterPort = await freePort();
    const hung = startRank({ rank: 1, worldSize: 2, masterPort, timeoutMs: 3_000, then: 'hang' });
    const waiting = await startRank({ rank: 0, worldSize: 2, masterPort, timeoutMs: 3_000, then: 'allReduce' }).result;
    hung.kill();
    expect(waiting.code).toBe(1);
    expect(waiting.output).toMatch(/distributed all-reduce failed on rank 0 of 2 after the collective timeout \(3 s\): behind the others \(at step none, collective 1\): rank 1 \(at step none, collective 0\), which died, hangs or cannot be reached \(the network between the machines\)/);
    expect(waiting.seconds).toBeLessThan(30);
  }, 60_000);
});
