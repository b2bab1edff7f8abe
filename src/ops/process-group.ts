/**
 * Process groups of LibTorch's distributed engine, c10d (native/core/process_group): the rendezvous of torchrun
 * (`MASTER_ADDR`, `MASTER_PORT`, `RANK`, `WORLD_SIZE`, on a TCPStore served by rank 0), Gloo on the CPU and NCCL on
 * CUDA, and a timeout on every collective so that a dead or stuck worker ends the run instead of hanging it. A data-
 * parallel training step takes a group (`dataParallel` in {@link Optimizer.create} / {@link createTrainStep}).
 */
import * as net from 'net';
import { native, NativeCommunicationCounters, NativeProcessGroup } from '../native';
import { Tensor } from '../tensor';
import { checkInteger, checkOneOf, invalid, withCallerStack } from '../errors';

/** c10d backends: Gloo (CPU tensors) and NCCL (CUDA tensors; compiled in only for CUDA builds with the headers). */
export const BACKENDS = ['gloo', 'nccl'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Collectives and the rendezvous fail after this long by default (5 minutes), as PyTorch's. */
export const DEFAULT_TIMEOUT_MS = 300_000;

export interface ProcessGroupOptions {
  /** This worker's rank, 0 ≤ rank < worldSize. */
  rank: number;
  worldSize: number;
  /** Host of rank 0, which serves the rendezvous store (e.g. '127.0.0.1' on one machine). */
  masterAddr: string;
  /** Port of the rendezvous store on the master. */
  masterPort: number;
  /** 'gloo' (default: CPU tensors) or 'nccl' (CUDA tensors, where compiled in); a run resolves its 'auto' into one. */
  backend?: BackendName;
  /** Milliseconds before the rendezvous or a collective gives up on a peer (default {@link DEFAULT_TIMEOUT_MS}). */
  timeoutMs?: number;
  /**
   * The launcher already serves the rendezvous store at masterAddr:masterPort, so rank 0 connects to it rather than
   * serving one (default false). torchrun's agent does (it sets TORCHELASTIC_USE_AGENT_STORE=True in its workers'
   * environment, which {@link processGroupOptionsFromEnv} reads).
   */
  agentStore?: boolean;
}

/** What this rank sent into each kind of collective since the group was created: payload bytes and calls. */
export type CommunicationCounters = NativeCommunicationCounters;

/** Environment variables, as `process.env` holds them (declared here so that the types need no @types/node). */
export type Environment = Readonly<Record<string, string | undefined>>;

/** The backends compiled into the loaded binary. */
export function distributedBackends(): BackendName[] {
  return native.distributedBackends() as BackendName[];
}

/**
 * The torchrun environment of this process (`RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`, `LOCAL_RANK`,
 * `LOCAL_WORLD_SIZE`), or undefined when `WORLD_SIZE` is not set: how a worker started by `simclr train
 * --nproc-per-node`, by torchrun (`torchrun --no-python … simclr train …`) or by a scheduler finds its group.
 * @throws RangeError naming the variable that is missing or malformed.
 */
export function processGroupOptionsFromEnv(env: Environment = process.env):
  (Omit<ProcessGroupOptions, 'backend' | 'timeoutMs'> & { localRank: number; localWorldSize: number; agentStore: boolean }) | undefined {
  if (env.WORLD_SIZE === undefined || env.WORLD_SIZE === '') return undefined;
  const integer = (name: string, min: number, fallback?: number): number => {
    const text = env[name];
    if (text === undefined || text === '') {
      if (fallback !== undefined) return fallback;
      throw invalid("a value (WORLD_SIZE is set: torchrun's environment is RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)", name, undefined);
    }
    if (!/^\d+$/.test(text) || Number(text) < min) throw new RangeError(`Expected an integer >= ${min} for the environment variable ${name} but received '${text}'`);
    return Number(text);
  };
  const worldSize = integer('WORLD_SIZE', 1);
  const rank = integer('RANK', 0);
  if (rank >= worldSize) throw invalid(`an integer below WORLD_SIZE (${worldSize})`, 'RANK', rank, 'range');
  const masterAddr = env.MASTER_ADDR;
  if (!masterAddr) throw new RangeError('WORLD_SIZE is set, so MASTER_ADDR must name the host of rank 0');
  const masterPort = integer('MASTER_PORT', 1);
  if (masterPort > 65535) throw new RangeError(`Expected a port (1..65535) for MASTER_PORT but received ${masterPort}`);
  const localRank = integer('LOCAL_RANK', 0, rank);
  const localWorldSize = integer('LOCAL_WORLD_SIZE', 1, worldSize);
  const agentStore = env.TORCHELASTIC_USE_AGENT_STORE === 'True';
  return { rank, worldSize, masterAddr, masterPort, localRank, localWorldSize, agentStore };
}

/**
 * Throws unless rank 0 can serve the store on `port` (bound on every interface, as the store binds it). Asked before
 * LibTorch tries: its store logs its failed binds, four lines of its own, before the error. LibTorch's failure is
 * still turned into the same message, for a port taken between this check and its bind.
 */
async function checkPortFree(port: number): Promise<void> {
  const server = net.createServer();
  const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    server.once('error', resolve);
    server.listen(port, () => resolve(undefined));
  });
  if (!error) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return;
  }
  if (error.code === 'EADDRINUSE') {
    throw new Error(`MASTER_PORT ${port} is in use on this machine: rank 0 cannot serve the rendezvous there. Pick a free port ` +
      '(--master-port, MASTER_PORT) or stop the process that holds it');
  }
  // Anything else (EACCES for a low port) is LibTorch's to report, as before.
}

export class ProcessGroup {
  /** @internal */
  readonly handle: NativeProcessGroup;

  private constructor(handle: NativeProcessGroup) {
    this.handle = handle;
  }

  /**
   * Joins the group: every rank calls this with the same master, port and world size and its own rank; it resolves
   * once all have joined and the backend is connected. Rejects with a message naming the cause when the port is in
   * use on rank 0, the master cannot be reached, a rank does not come, two workers claim one rank or the world sizes
   * disagree, each within the timeout.
   */
  static async init(options: ProcessGroupOptions): Promise<ProcessGroup> {
    if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
    const worldSize = checkInteger(options.worldSize, 'worldSize', 1, 2 ** 20);
    const rank = checkInteger(options.rank, 'rank', 0, worldSize - 1);
    if (typeof options.masterAddr !== 'string' || options.masterAddr === '') throw invalid('a host name or address', 'masterAddr', options.masterAddr);
    const masterPort = checkInteger(options.masterPort, 'masterPort', 1, 65535);
    const backend = checkOneOf(options.backend ?? 'gloo', 'backend', BACKENDS);
    if (!distributedBackends().includes(backend)) {
      throw new RangeError(`backend '${backend}' is not compiled into this binary (it has ${distributedBackends().join(', ')}): NCCL needs a CUDA LibTorch and the CUDA and NCCL headers at build time`);
    }
    const timeoutMs = checkInteger(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'timeoutMs', 1);
    const agentStore = options.agentStore ?? false;
    if (typeof agentStore !== 'boolean') throw invalid('a boolean', 'agentStore', agentStore);
    if (rank === 0 && !agentStore) await checkPortFree(masterPort);
    const handle = await withCallerStack(native.createProcessGroup({ masterAddr: options.masterAddr, masterPort, rank, worldSize, backend, timeoutMs, agentStore }));
    return new ProcessGroup(handle);
  }

  get rank(): number {
    return this.handle.rank();
  }

  get worldSize(): number {
    return this.handle.size();
  }

  get backend(): BackendName {
    return this.handle.backend();
  }

  get timeoutMs(): number {
    return this.handle.timeoutMs();
  }

  /** Bytes and calls of each kind of collective since the group was created (this rank's payload). */
  counters(): CommunicationCounters {
    return this.handle.counters();
  }

  /** The sum over ranks of `tensor` (same shape and dtype on every rank), as a new tensor. */
  async allReduceSum(tensor: Tensor): Promise<Tensor> {
    if (!(tensor instanceof Tensor)) throw invalid('a Tensor', 'tensor', tensor);
    return new Tensor(await withCallerStack(this.handle.allReduceSum(tensor.handle)));
  }

  /** Every rank's `tensor` (same shape on every rank) stacked in rank order: `worldSize x tensor.shape`. */
  async allGather(tensor: Tensor): Promise<Tensor> {
    if (!(tensor instanceof Tensor)) throw invalid('a Tensor', 'tensor', tensor);
    return new Tensor(await withCallerStack(this.handle.allGather(tensor.handle)));
  }

  /** Every rank's rows of `tensor` concatenated in rank order; the row counts may differ between ranks. */
  async allGatherRows(tensor: Tensor): Promise<Tensor> {
    if (!(tensor instanceof Tensor)) throw invalid('a Tensor', 'tensor', tensor);
    return new Tensor(await withCallerStack(this.handle.allGatherRows(tensor.handle)));
  }

  /** `root`'s `tensor` on every rank (each passes a tensor of the same shape and dtype), as a new tensor. */
  async broadcast(tensor: Tensor, root = 0): Promise<Tensor> {
    if (!(tensor instanceof Tensor)) throw invalid('a Tensor', 'tensor', tensor);
    checkInteger(root, 'root', 0, this.worldSize - 1);
    return new Tensor(await withCallerStack(this.handle.broadcast(tensor.handle, root)));
  }

  /** `root`'s bytes on every rank (the others pass undefined): e.g. a checkpoint that only rank 0's machine holds. */
  async broadcastBytes(bytes: Uint8Array | undefined, root = 0): Promise<Uint8Array> {
    const mine = this.rank === root;
    if (mine && !(bytes instanceof Uint8Array)) throw invalid('a Uint8Array on the root rank', 'bytes', bytes);
    const length = await this.broadcast(Tensor.fromTypedArray(new Float64Array([mine ? bytes!.length : 0]), [1]), root);
    const size = length.toTypedArray()[0] as number;
    const data = await this.broadcast(Tensor.fromTypedArray(mine ? bytes! : new Uint8Array(size), [size]), root);
    return data.toTypedArray() as Uint8Array;
  }

  /** Sets `key` in the group's store: what {@link waitFor} on other ranks waits for. Not a collective. */
  async signal(key: string, value = '1'): Promise<void> {
    if (typeof key !== 'string' || key === '') throw invalid('a non-empty string', 'key', key);
    await withCallerStack(this.handle.setKey(key, String(value)));
  }

  /** Waits up to `timeoutMs` (default: the group's timeout) for another rank to {@link signal} `key`; its value. */
  async waitFor(key: string, timeoutMs = this.timeoutMs): Promise<string> {
    if (typeof key !== 'string' || key === '') throw invalid('a non-empty string', 'key', key);
    return withCallerStack(this.handle.waitKey(key, checkInteger(timeoutMs, 'timeoutMs', 1)));
  }
}
