/**
 * What a data-parallel run adds around the Trainer: joining the group, the device of a rank, a resume that reads rank
 * 0's checkpoint on every machine, and the kNN monitor on rank 0 alone while the others wait for it.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Environment, ProcessGroup, processGroupOptionsFromEnv } from '../ops/process-group';
import type { RunConfig } from './config';
import { readRegularFileSync } from '../user-file';

/** Where this worker sits in a data-parallel run (torchrun's RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK). */
export interface DistributedRunOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  /** This worker's index on its machine (default: rank): picks its GPU ('cuda' becomes 'cuda:<localRank>'). */
  localRank?: number;
  /** The launcher serves the rendezvous store (torchrun's agent: TORCHELASTIC_USE_AGENT_STORE=True). */
  agentStore?: boolean;
}

/**
 * `runTraining`'s `distributed` option: explicit options, 'env' (torchrun's environment: required), or undefined
 * (a plain run). Returns the options, or undefined for a plain run.
 */
export function resolveDistributed(distributed: DistributedRunOptions | 'env' | undefined, env: Environment = process.env):
  DistributedRunOptions | undefined {
  if (distributed !== 'env') return distributed;
  const fromEnv = processGroupOptionsFromEnv(env);
  if (!fromEnv) throw new RangeError("distributed: 'env' needs torchrun's environment (WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT)");
  return fromEnv;
}

/** The device of a rank: 'cuda' (or 'cuda:0' on a machine with several workers) becomes 'cuda:<localRank>'. */
export function rankDevice(device: string, localRank: number): string {
  return device === 'cuda' ? `cuda:${localRank}` : device;
}

/** Joins the run's process group, with the run's backend and timeout. */
export function joinGroup(config: RunConfig, options: DistributedRunOptions): Promise<ProcessGroup> {
  return ProcessGroup.init({
    rank: options.rank,
    worldSize: options.worldSize,
    masterAddr: options.masterAddr,
    masterPort: options.masterPort,
    backend: config.distBackend,
    device: rankDevice(config.device, options.localRank ?? options.rank),
    timeoutMs: Math.round(config.distTimeout * 1000),
    agentStore: options.agentStore ?? false,
  });
}

const RESUME_COPY = /^simclr-resume-(\d+)-/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the checkpoint copies of resumes whose process is gone (a worker killed while it resumed cannot remove its
 * own: SIGKILL runs no handler), so that none stays in the temporary folder for good.
 */
export function sweepStaleResumeCopies(folder = os.tmpdir()): void {
  for (const entry of fs.readdirSync(folder)) {
    const owner = RESUME_COPY.exec(entry)?.[1];
    if (owner === undefined || Number(owner) === process.pid || alive(Number(owner))) continue;
    fs.rmSync(path.join(folder, entry), { recursive: true, force: true });
  }
}

/**
 * Rank 0 reads `file` and every rank receives its bytes, so machines without rank 0's disk resume from the same
 * checkpoint. Returns the file each rank reads (rank 0: `file`; the others: a temporary copy, named after the process,
 * removed by `cleanup`, when the process exits, or by the next resume on this machine once the process is gone).
 */
export async function shareCheckpoint(group: ProcessGroup, file: string): Promise<{ file: string; cleanup: () => void }> {
  const mine = group.rank === 0 ? (fs.existsSync(file) ? readRegularFileSync(file) : new Uint8Array(0)) : undefined;
  const bytes = await group.broadcastBytes(mine);
  if (bytes.length === 0) throw new Error(`--resume: no checkpoint at ${file} on rank 0`);
  if (group.rank === 0) return { file, cleanup: () => undefined };
  sweepStaleResumeCopies();
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), `simclr-resume-${process.pid}-`));
  const cleanup = () => {
    fs.rmSync(folder, { recursive: true, force: true });
    process.removeListener('exit', cleanup);
  };
  process.on('exit', cleanup);
  const copy = path.join(folder, path.basename(file));
  fs.writeFileSync(copy, bytes);
  return { file: copy, cleanup };
}

/**
 * The epoch-end monitor of a data-parallel run: rank 0 runs `monitor` (the kNN evaluation) and then signals; the other
 * ranks wait for that signal instead of waiting in the next step's collectives, whose timeout a long evaluation could
 * exceed. They wait up to `waitMs`; if rank 0 dies meanwhile its store goes with it and they fail at once.
 */
export function rank0Monitor(group: ProcessGroup, monitor: (epoch: number) => Promise<number | undefined>, waitMs: number):
  (epoch: number) => Promise<number | undefined> {
  if (group.rank !== 0) {
    return async (epoch) => {
      await group.waitFor(`monitor/${epoch}`, waitMs);
      return undefined;
    };
  }
  return async (epoch) => {
    try {
      return await monitor(epoch);
    } finally {
      await group.signal(`monitor/${epoch}`);
    }
  };
}
