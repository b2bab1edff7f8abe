/** Public API of the `simclr` package. */
export { Tensor, manualSeed, setNumThreads, getNumThreads, libtorchVersion, cuda } from './tensor';
export type { Dtype, Device, TensorOptions, SupportedTypedArray } from './tensor';
export { doctor, formatDoctor } from './doctor';
export type { DoctorReport } from './doctor';
export { Backbones, Encoder, ModelBase } from './models/encoder';
export type { BackboneName, EncoderOptions, Stem } from './models/encoder';
export { SimCLRModel, ProjectionHead } from './models/simclr-model';
export type { SimCLRModelOptions, ProjectionHeadOptions } from './models/simclr-model';
export { readStateDict, writeStateDict } from './models/state-dict';
export type { StateDict, LoadResult, LoadStateDictOptions } from './models/state-dict';
