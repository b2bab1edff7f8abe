/**
 * The launcher of `simclr train --nproc-per-node K`: like torchrun, it starts K workers on this machine with the
 * environment of their rank (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and watches
 * them. Ctrl-C / SIGTERM are forwarded to every worker, once per signal received: the workers stop after the same
 * step, save, and exit 130 / 143, which the launcher then exits with (a worker ending so is no failure, and nothing
 * signals the others again: a second signal would make them quit without saving). When one worker fails on its own,
 * the others are stopped (SIGTERM, then SIGKILL after a grace period) and the launcher exits non-zero naming the
 * rank. A worker that hangs makes the others' collectives time out, which ends them the same way. Workers exit when
 * the launcher dies (they watch its IPC channel), so none is left behind.
 */
import { ChildProcess, spawn } from 'child_process';
import * as net from 'net';
import * as os from 'os';
import { checkInteger, invalid } from '../errors';
import type { Environment } from '../ops/process-group';
import { sweepStaleResumeCopies } from './resume-copies';

export interface LaunchOptions {
  /** Workers on this machine (one per GPU, or per share of the CPU cores). */
  nprocPerNode: number;
  /** Machines (default 1); each runs its own launcher with its --node-rank. */
  nnodes?: number;
  /** This machine's index, 0 ≤ nodeRank < nnodes (default 0); node 0 hosts rank 0 and the rendezvous store. */
  nodeRank?: number;
  /** Host of node 0 as the other machines reach it (default 127.0.0.1, which only works on one machine). */
  masterAddr?: string;
  /** Port of the rendezvous store on node 0 (default: a free port on one machine; 29500 on several, as torchrun). */
  masterPort?: number;
  /** The worker command: executable and arguments (e.g. node, [cli.js, 'train', …]). */
  command: string;
  args: readonly string[];
  /** Environment of the workers (default process.env), to which the rank's variables are added. */
  env?: Environment;
  /** Milliseconds between SIGTERM and SIGKILL when stopping the workers (default 10 s). */
  graceMs?: number;
  /** Where the launcher's own messages go (default stderr). */
  log?: (message: string) => void;
  /** Called with each worker once it has started (its pid, for tests and supervisors). */
  onWorker?: (worker: { rank: number; localRank: number; pid: number }) => void;
}

/** A free TCP port on this machine (the OS picks it; another process could take it before rank 0 binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

/**
 * Starts the workers of this machine and resolves with the launcher's exit code: 0 when every worker exited 0, 130 /
 * 143 after a SIGINT / SIGTERM that every worker obeyed, otherwise non-zero after stopping the rest.
 */
export async function launch(options: LaunchOptions): Promise<number> {
  if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
  const perNode = checkInteger(options.nprocPerNode, 'nprocPerNode', 1, 1024);
  const nnodes = checkInteger(options.nnodes ?? 1, 'nnodes', 1);
  const nodeRank = checkInteger(options.nodeRank ?? 0, 'nodeRank', 0, nnodes - 1);
  const masterAddr = options.masterAddr ?? '127.0.0.1';
  if (typeof masterAddr !== 'string' || masterAddr === '') throw invalid('a host name or address', 'masterAddr', masterAddr);
  if (nnodes > 1 && /^(127\.|localhost$)/.test(masterAddr)) {
    throw new RangeError(`--master-addr ${masterAddr} is this machine's loopback: with --nnodes ${nnodes} give node 0's address as the other machines reach it`);
  }
  const masterPort = checkInteger(options.masterPort ?? (nnodes === 1 ? await freePort() : 29500), 'masterPort', 1, 65535);
  const graceMs = checkInteger(options.graceMs ?? 10_000, 'graceMs', 0);
  const log = options.log ?? ((message: string) => process.stderr.write(`simclr launch: ${message}\n`));
  const env = options.env ?? process.env;
  // Each worker gets its share of the cores for LibTorch's threads, unless told otherwise.
  const threads = env.SIMCLR_NUM_THREADS ?? String(Math.max(1, Math.floor(os.availableParallelism() / perNode)));
  const worldSize = nnodes * perNode;

  const workers: { rank: number; child: ChildProcess; exited: boolean }[] = [];
  let failure: string | undefined;
  let failureCode = 0;
  // The first signal the launcher received (and forwarded): the workers' exit 130 / 143 is then the stop it asked for.
  let stopping: 'SIGINT' | 'SIGTERM' | undefined;
  let killTimer: NodeJS.Timeout | undefined;

  const stopOthers = () => {
    // Workers already told to stop by a forwarded signal are stopping: another signal would hurry them past their save.
    if (stopping) return;
    // A stopped worker (SIGSTOP, a debugger's pause) acts on SIGTERM only once continued: SIGCONT wakes it to stop now,
    // not at SIGKILL after the grace period (systemd does the same).
    for (const w of workers) {
      if (w.exited) continue;
      w.child.kill('SIGTERM');
      w.child.kill('SIGCONT');
    }
    killTimer = setTimeout(() => {
      for (const w of workers) if (!w.exited) w.child.kill('SIGKILL');
    }, graceMs);
    killTimer.unref();
  };
  const forward = (signal: 'SIGINT' | 'SIGTERM') => () => {
    stopping ??= signal;
    for (const w of workers) if (!w.exited) w.child.kill(signal);
  };
  const stopCode = (signal: 'SIGINT' | 'SIGTERM') => (signal === 'SIGINT' ? 130 : 143);
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);

  try {
    return await new Promise<number>((resolve) => {
      let remaining = perNode;
      for (let localRank = 0; localRank < perNode; localRank++) {
        const rank = nodeRank * perNode + localRank;
        const child = spawn(options.command, [...options.args], {
          // Its own process group: a terminal's Ctrl-C reaches the launcher only, which forwards it once.
          detached: true,
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          env: {
            ...env,
            RANK: String(rank),
            WORLD_SIZE: String(worldSize),
            LOCAL_RANK: String(localRank),
            LOCAL_WORLD_SIZE: String(perNode),
            GROUP_RANK: String(nodeRank),
            MASTER_ADDR: masterAddr,
            MASTER_PORT: String(masterPort),
            SIMCLR_NUM_THREADS: threads,
            SIMCLR_LAUNCHED: '1',
          },
        });
        const worker = { rank, child, exited: false };
        workers.push(worker);
        child.on('spawn', () => options.onWorker?.({ rank, localRank, pid: child.pid! }));
        child.on('error', (err) => {
          worker.exited = true;
          if (failure === undefined) {
            failure = `rank ${rank} could not start: ${err.message}`;
            failureCode = 1;
            stopOthers();
          }
          if (--remaining === 0) resolve(failureCode);
        });
        child.on('exit', (code, signal) => {
          worker.exited = true;
          // After a forwarded signal, a worker that stopped (exit 130 or 143, or killed by the signal) did as asked.
          const stopped = code === 130 || code === 143 || signal === 'SIGINT' || signal === 'SIGTERM';
          const ok = code === 0 || (stopping !== undefined && stopped);
          if (!ok && failure === undefined) {
            failure = `rank ${rank} (pid ${child.pid}) ${describeExit(code, signal)}; stopping the other workers`;
            failureCode = code !== null && code !== 0 ? code : 1;
            log(failure);
            stopOthers();
          }
          if (--remaining === 0) {
            if (killTimer) clearTimeout(killTimer);
            resolve(failure !== undefined ? failureCode : stopping ? stopCode(stopping) : 0);
          }
        });
      }
      log(`started ${perNode} worker(s), ranks ${nodeRank * perNode}..${nodeRank * perNode + perNode - 1} of ${worldSize}, ` +
        `master ${masterAddr}:${masterPort}, ${threads} thread(s) each`);
    });
  } finally {
    process.removeListener('SIGINT', onInt);
    process.removeListener('SIGTERM', onTerm);
    // A worker stopped while it resumed (say, SIGTERM'd because another refused the resume) may leave its copy.
    sweepStaleResumeCopies();
  }
}

/**
 * In a worker started by {@link launch}: exit when the launcher goes away (its IPC channel closes), so that a killed
 * launcher leaves no worker behind. The channel does not keep the worker alive.
 */
export function exitWithLauncher(): void {
  if (process.env.SIMCLR_LAUNCHED !== '1' || !process.send) return;
  process.on('disconnect', () => {
    process.stderr.write(`simclr: rank ${process.env.RANK}: the launcher is gone; exiting\n`);
    process.exit(1);
  });
  (process.channel as { unref?: () => void } | undefined)?.unref?.();
}
