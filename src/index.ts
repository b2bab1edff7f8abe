/** Public API of the `simclr` package. */
export { Tensor, manualSeed, setNumThreads, getNumThreads, libtorchVersion, cuda } from './tensor';
export type { Dtype, Device, TensorOptions, SupportedTypedArray } from './tensor';
export { doctor, formatDoctor } from './doctor';
export type { DoctorReport } from './doctor';
export { ntXent, NT_XENT_MIN_TEMPERATURE } from './ops/nt-xent';
export type { NtXentOptions, NtXentResult } from './ops/nt-xent';
export * from './data';
export * from './augment';
export { knnPredict, knnEvaluate } from './eval/knn';
export type { KnnOptions, KnnResult } from './eval/knn';
export type { LabelledFeatures } from './eval/labelled-features';
export { linearProbe } from './eval/linear-probe';
export type { LinearProbeOptions, LinearProbeResult } from './eval/linear-probe';
export { writeEmbeddings, writeNpy, readNpy, labelsPathFor } from './eval/embeddings';
export type { NpyArray } from './eval/embeddings';
export { writeReport, renderReportSvg, reportSpec } from './train/report';
export type { MetricsRecord, StepRecord, EpochRecord, ReportOptions } from './train/report';
