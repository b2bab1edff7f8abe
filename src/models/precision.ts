/**
 * Numeric precision and memory format of a forward pass or a training step (native/core/precision.h). Building blocks
 * take these concrete values (fp32 and contiguous by default, as PyTorch outside `torch.autocast`); a run's `'auto'` is
 * resolved into them once, by run/resolve.ts.
 */
import { checkOneOf } from '../errors';

/** `fp32`; `bf16` / `fp16`: autocast regions around encoder and head, float32 master weights, NT-Xent in float32. */
export const PRECISIONS = ['fp32', 'bf16', 'fp16'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** How activations and 4-D weights are laid out: NCHW (`contiguous`) or NHWC (`channelsLast`). */
export const MEMORY_FORMATS = ['contiguous', 'channelsLast'] as const;
export type MemoryFormat = (typeof MEMORY_FORMATS)[number];

/** What a building block computes in when not told: PyTorch's defaults. */
export const FORWARD_DEFAULTS = Object.freeze({ precision: 'fp32' as Precision, memoryFormat: 'contiguous' as MemoryFormat });

export function isCuda(device: string): boolean {
  return device === 'cuda' || device.startsWith('cuda:');
}

const AUTO_IS_A_RUN_SETTING = "'auto' is a run setting: a run (runTraining, the CLI) resolves it, or resolveRun(config) does";

/** Checks a precision for `device`: one of {@link PRECISIONS}; `'fp16'` only on a CUDA device. */
export function checkPrecision(value: unknown, device: string): Precision {
  if (value === 'auto') throw new RangeError(`Expected one of ${PRECISIONS.join(', ')} for precision but received 'auto': ${AUTO_IS_A_RUN_SETTING}`);
  const precision = checkOneOf(value, 'precision', PRECISIONS);
  if (precision === 'fp16' && !isCuda(device)) {
    throw new RangeError("precision 'fp16' needs a CUDA device (it trains with a dynamic loss scaler there); on the CPU use 'bf16' or 'fp32'");
  }
  return precision;
}

/** Checks a memory format: one of {@link MEMORY_FORMATS}. */
export function checkMemoryFormat(value: unknown): MemoryFormat {
  if (value === 'auto') throw new RangeError(`Expected one of ${MEMORY_FORMATS.join(', ')} for memoryFormat but received 'auto': ${AUTO_IS_A_RUN_SETTING}`);
  return checkOneOf(value, 'memoryFormat', MEMORY_FORMATS);
}

/** The views' dtype for a step at `precision`: the augmenter writes them in the type autocast computes in. */
export function viewDtypeFor(precision: Precision): 'float32' | 'bfloat16' | 'float16' {
  return precision === 'bf16' ? 'bfloat16' : precision === 'fp16' ? 'float16' : 'float32';
}
