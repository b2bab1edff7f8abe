/**
 * A run's `'auto'` settings made concrete, in this one place: precision, memory format and the data-parallel backend
 * for the run's device, beside the device and LibTorch's threads. A run resolves once, when it starts; what was chosen
 * goes into its checkpoints (`resolved`), its metrics.jsonl (a `session` record) and its report.
 */
import * as fs from 'fs';
import { MemoryFormat, Precision, checkMemoryFormat, checkPrecision, isCuda } from '../models/precision';
import { BackendName, distributedBackends } from '../ops/process-group';
import { getNumThreads } from '../tensor';
import { markChecked, wasChecked } from '../errors';
import { RunConfig, validateRunConfig } from './config';

/** The CPU's native bfloat16 support, from the kernel's flags (Linux): AVX-512 BF16 and AMX-BF16. */
export interface CpuBf16Support {
  avx512bf16: boolean;
  amxBf16: boolean;
}

let cpuSupport: CpuBf16Support | undefined;

export function cpuBf16Support(): CpuBf16Support {
  if (cpuSupport) return cpuSupport;
  let flags = new Set<string>();
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    flags = new Set((line ?? '').split(':')[1]?.trim().split(/\s+/) ?? []);
  } catch {
    // not Linux: no flags to read, so no claim of native bf16
  }
  cpuSupport = { avx512bf16: flags.has('avx512_bf16'), amxBf16: flags.has('amx_bf16') };
  return cpuSupport;
}

/** What a run computes with, every `'auto'` resolved. */
export interface RunResolution {
  device: string;
  precision: Precision;
  memoryFormat: MemoryFormat;
  distBackend: BackendName;
  /** LibTorch's intra-op threads in this process. */
  threads: number;
}

/** A run config whose `'auto'` settings are resolved (see {@link resolveRun}). */
export type ResolvedRunConfig = RunConfig & Omit<RunResolution, 'device'>;

/**
 * `config` with its `'auto'` settings made concrete for its device, and LibTorch's threads:
 * - precision `'auto'`: bf16 on a GPU and on a CPU with native bf16 (AVX-512 BF16 or AMX; without them bf16 is
 *   emulated and many times slower than fp32), else fp32. `'fp16'` on a CPU is an error.
 * - memoryFormat `'auto'`: channels-last on a GPU (cuDNN's tensor cores prefer NHWC) and with bf16 on a CPU (oneDNN's
 *   bf16 kernels are NHWC), else contiguous.
 * - distBackend `'auto'`: NCCL on a CUDA device when compiled in, else Gloo.
 * A config resolved here already is returned as it is; any other is validated first (validateRunConfig).
 */
export function resolveRun(given: RunConfig): ResolvedRunConfig {
  if (wasChecked(given) && 'threads' in given) return given as ResolvedRunConfig;
  // A config that did not come from validateRunConfig (or from here) is validated first; a resolved one's threads are
  // read afresh.
  let config = given;
  if (!wasChecked(given)) {
    const { threads: _threads, ...settings } = (given ?? {}) as Partial<ResolvedRunConfig>;
    config = validateRunConfig(given === null || typeof given !== 'object' ? given : settings);
  }
  const cuda = isCuda(config.device);
  const cpu = cpuBf16Support();
  const precision = config.precision !== 'auto' ? checkPrecision(config.precision, config.device)
    : cuda || cpu.avx512bf16 || cpu.amxBf16 ? 'bf16' : 'fp32';
  const memoryFormat = config.memoryFormat !== 'auto' ? checkMemoryFormat(config.memoryFormat)
    : cuda || precision !== 'fp32' ? 'channelsLast' : 'contiguous';
  const distBackend = config.distBackend !== 'auto' ? config.distBackend
    : cuda && distributedBackends().includes('nccl') ? 'nccl' : 'gloo';
  return markChecked({ ...config, precision, memoryFormat, distBackend, threads: getNumThreads() });
}

/** The resolved settings of a resolved config, as checkpoints, metrics and the report record them. */
export function runResolution(config: ResolvedRunConfig): RunResolution {
  return { device: config.device, precision: config.precision, memoryFormat: config.memoryFormat, distBackend: config.distBackend, threads: config.threads };
}
