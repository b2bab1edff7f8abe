/**
 * What a data-parallel run adds around the Trainer: joining the group, the device of a rank, a resume that reads rank
 * 0's checkpoint on every machine, and the kNN monitor on rank 0 alone while the others wait for it.
 */
import * as fs from 'fs';
import { Tensor } from '../tensor';
import * as os from 'os';
import * as path from 'path';
import { Environment, ProcessGroup, processGroupOptionsFromEnv } from '../ops/process-group';
import type { RunConfig } from './config';
import type { ResolvedRunConfig } from './resolve';
import { readRegularFileSync } from '../user-file';
import { RESUME_COPY_PREFIX, sweepStaleResumeCopies } from './resume-copies';

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
export function joinGroup(config: ResolvedRunConfig, options: DistributedRunOptions): Promise<ProcessGroup> {
  return ProcessGroup.init({
    rank: options.rank,
    worldSize: options.worldSize,
    masterAddr: options.masterAddr,
    masterPort: options.masterPort,
    backend: config.distBackend,
    timeoutMs: Math.round(config.distTimeout * 1000),
    agentStore: options.agentStore ?? false,
  });
}

/**
 * Every worker of a run takes the same settings: rank 0's reach every rank, and a rank whose settings differ (started
 * by hand with another --batch-size, say) makes every rank fail before the first step, that rank naming the settings.
 * Otherwise the ranks would train on, each with its own recipe (rank 0 finished a run with ranks of other batch sizes).
 */
export async function checkSameRun(group: ProcessGroup, config: RunConfig): Promise<void> {
  // What may differ between machines: where things are on each (paths), how many decode threads, which device.
  const local = new Set(['out', 'data', 'evalData', 'weights', 'workers', 'device']);
  const encode = (c: RunConfig) => JSON.stringify(Object.fromEntries(Object.entries(c).filter(([key]) => !local.has(key)).sort(([a], [b]) => (a < b ? -1 : 1))));
  const rank0 = JSON.parse(new TextDecoder().decode(await group.broadcastBytes(group.rank === 0 ? new TextEncoder().encode(encode(config)) : undefined)));
  const mine = JSON.parse(encode(config)) as Record<string, unknown>;
  const differing = [...new Set([...Object.keys(rank0), ...Object.keys(mine)])]
    .filter((key) => JSON.stringify(rank0[key]) !== JSON.stringify(mine[key]));
  const count = await group.allReduceSum(Tensor.fromTypedArray(new Float64Array([differing.length > 0 ? 1 : 0]), [1]));
  const ranksDiffering = Number(count.toTypedArray()[0]);
  count.dispose();
  if (differing.length > 0) {
    throw new Error(`rank ${group.rank}: its settings differ from rank 0's (${differing.map((key) =>
      `${key} ${JSON.stringify(mine[key])}, rank 0 ${JSON.stringify(rank0[key])}`).join('; ')}): every worker of a run takes the same settings`);
  }
  if (ranksDiffering > 0) {
    throw new Error(`rank ${group.rank}: ${ranksDiffering} worker(s) run with settings that differ from rank 0's (each names them): ` +
      'every worker of a run takes the same settings');
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
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), `${RESUME_COPY_PREFIX}${process.pid}-`));
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
