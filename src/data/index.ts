/** Data: datasets, decoding, the batch loader and the seeded generator. */
export { SampleError, DEFAULT_BASE_SIZE } from './dataset';
export type { Dataset, Sample, BaseSize } from './dataset';
export { ImageFolder } from './image-folder';
export type { ImageFolderOptions } from './image-folder';
export { ManifestDataset } from './manifest';
export type { ManifestOptions } from './manifest';
export { IdxDataset, fashionMnist, FASHION_MNIST_ROOT, FASHION_MNIST_CLASSES } from './idx';
export type { IdxOptions } from './idx';
export { Loader } from './loader';
export type { LoaderOptions, Batch, EpochReport } from './loader';
export { SeededRandom } from '../random';
export { IMAGE_EXTENSIONS } from '../preprocess/decode';
export { Subset } from './subset';
export { openDataset } from './open';
export { DistributedSampler } from './sampler';
export type { DistributedSamplerOptions } from './sampler';
export { imagesToModelInput } from './model-input';
export type { ImagesToModelInputOptions } from './model-input';
