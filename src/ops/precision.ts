/**
 * Numeric precision and memory format of a forward pass or a training step (native/core/precision.h), and how `'auto'`
 * resolves on this machine.
 */
import * as fs from 'fs';
import { checkOneOf } from '../errors';

/** `fp32`; `bf16` / `fp16`: autocast regions around encoder and head, float32 master weights, NT-Xent in float32. */
export const PRECISIONS = ['auto', 'fp32', 'bf16', 'fp16'] as const;
export type PrecisionSetting = (typeof PRECISIONS)[number];
export type Precision = Exclude<PrecisionSetting, 'auto'>;

/** How activations and 4-D weights are laid out: NCHW (`contiguous`) or NHWC (`channelsLast`). */
export const MEMORY_FORMATS = ['auto', 'contiguous', 'channelsLast'] as const;
export type MemoryFormatSetting = (typeof MEMORY_FORMATS)[number];
export type MemoryFormat = Exclude<MemoryFormatSetting, 'auto'>;

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

function isCuda(device: string): boolean {
  return device === 'cuda' || device.startsWith('cuda:');
}

/**
 * The precision `setting` means on `device`: `'auto'` is bf16 on a GPU and on a CPU with native bf16 (AVX-512 BF16 or
 * AMX; without them bf16 is emulated and many times slower than fp32), else fp32. `'fp16'` on a CPU is an error.
 */
export function resolvePrecision(setting: PrecisionSetting, device: string): Precision {
  checkOneOf(setting, 'precision', PRECISIONS);
  if (setting === 'fp16' && !isCuda(device)) {
    throw new RangeError("precision 'fp16' needs a CUDA device (it trains with a dynamic loss scaler there); on the CPU use 'bf16' or 'fp32'");
  }
  if (setting !== 'auto') return setting;
  if (isCuda(device)) return 'bf16';
  const cpu = cpuBf16Support();
  return cpu.avx512bf16 || cpu.amxBf16 ? 'bf16' : 'fp32';
}

/** The views' dtype for a step at `precision`: the augmenter writes them in the type autocast computes in. */
export function viewDtypeFor(precision: Precision): 'float32' | 'bfloat16' | 'float16' {
  return precision === 'bf16' ? 'bfloat16' : precision === 'fp16' ? 'float16' : 'float32';
}

/**
 * The memory format `setting` means on `device` for `precision`: `'auto'` is channels-last on a GPU (cuDNN's tensor
 * cores prefer NHWC) and with bf16 on a CPU (oneDNN's bf16 kernels are NHWC), else contiguous (measured on a 2-core
 * AVX2 CPU in fp32; see README, Speed).
 */
export function resolveMemoryFormat(setting: MemoryFormatSetting, device: string, precision: Precision): MemoryFormat {
  checkOneOf(setting, 'memoryFormat', MEMORY_FORMATS);
  if (setting !== 'auto') return setting;
  return isCuda(device) || precision !== 'fp32' ? 'channelsLast' : 'contiguous';
}
