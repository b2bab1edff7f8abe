/**
 * `simclr/preprocess`: image bytes to an exported ONNX model's input, and the model's description of that input, with
 * sharp and plain TypeScript only. Importing it loads neither the addon nor LibTorch, so a service that embeds with
 * ONNX Runtime does without both.
 */
import { configureThreadPool } from './decode';

// Process-wide, so done in the entry point: the libuv pool's size, which sharp decodes on.
configureThreadPool();

export { imageToOnnxInput } from './onnx-input';
export type { OnnxInput } from './onnx-input';
export { readOnnxInputSpec, readOnnxMetadata, checkInputSpec, INPUT_METADATA_KEY } from './onnx-metadata';
export type { OnnxInputMetadata, OnnxInputSpecLike } from './onnx-metadata';
export { SampleError, IMAGE_EXTENSIONS } from './decode';
