/** Public API of the `simclr` package. */
export { Tensor, manualSeed, setNumThreads, getNumThreads, libtorchVersion, cuda } from './tensor';
export type { Dtype, Device, TensorOptions, SupportedTypedArray } from './tensor';
export { doctor, formatDoctor } from './doctor';
export type { DoctorReport } from './doctor';
export { ntXent, NT_XENT_MIN_TEMPERATURE } from './ops/nt-xent';
export type { NtXentOptions, NtXentResult } from './ops/nt-xent';
export * from './data';
export * from './augment';
