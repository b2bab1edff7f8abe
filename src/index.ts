/** Public API of the `simclr` package. */
export { Tensor, manualSeed, setNumThreads, getNumThreads, libtorchVersion, cuda } from './tensor';
export type { Dtype, Device, TensorOptions, SupportedTypedArray } from './tensor';
export { doctor, formatDoctor } from './doctor';
export type { DoctorReport } from './doctor';
export { knnPredict, knnEvaluate } from './eval/knn';
export type { KnnOptions, KnnResult } from './eval/knn';
export type { LabelledFeatures } from './eval/labelled-features';
export { linearProbe } from './eval/linear-probe';
export type { LinearProbeOptions, LinearProbeResult } from './eval/linear-probe';
export { writeEmbeddings, writeNpy, readNpy, labelsPathFor } from './eval/embeddings';
export type { NpyArray } from './eval/embeddings';
export { writeReport, renderReportSvg, reportSpec } from './train/report';
export type { MetricsRecord, StepRecord, EpochRecord, ReportOptions } from './train/report';
