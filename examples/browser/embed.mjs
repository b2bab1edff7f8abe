// Embeds images in the browser with a model written by `simclr export --format onnx`, on ONNX Runtime Web (wasm).
// The input is made as the package makes it (the model's metadata, `simclr.input`, says how): the whole image resized
// to baseSize x baseSize (as the package decodes it), then to size x size, RGB scaled to [0, 1], normalised by mean and
// std, laid out N x 3 x size x size.
import * as ort from './ort/ort.wasm.min.mjs';

// One thread: a page that is not cross-origin isolated cannot share memory between wasm threads.
ort.env.wasm.numThreads = 1;

// The two messages of onnx.proto that hold a model's metadata, with their field numbers there (ModelProto.metadata_props
// is field 14); protobufjs skips the rest of the file (the graph and its weights) without decoding it.
const METADATA_SCHEMA = `syntax = "proto2";
message StringStringEntryProto { optional string key = 1; optional string value = 2; }
message ModelProto { repeated StringStringEntryProto metadata_props = 14; }`;

/** The model's metadata properties, read from the .onnx bytes with protobufjs (a global from protobuf.min.js). */
export function readMetadata(bytes) {
  const ModelProto = globalThis.protobuf.parse(METADATA_SCHEMA).root.lookupType('ModelProto');
  const model = ModelProto.decode(bytes);
  return Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value]));
}

/** A session and the input it expects, from the bytes of an exported model. */
export async function loadModel(bytes) {
  const metadata = readMetadata(bytes);
  if (!metadata['simclr.input']) throw new Error('This ONNX model has no simclr.input metadata: export it with simclr export --format onnx');
  const input = JSON.parse(metadata['simclr.input']);
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  return { session, input, metadata };
}

/** A 2D context of a side x side canvas holding `image` scaled to it. */
function drawn(image, side) {
  const context = new OffscreenCanvas(side, side).getContext('2d', { willReadFrequently: true });
  context.imageSmoothingQuality = 'high';
  context.drawImage(image, 0, 0, side, side);
  return context;
}

/**
 * The model input for one image (anything drawImage takes: an ImageBitmap, an <img>, a canvas). The browser scales
 * images with its own filter, not the package's bilinear one: an image already size x size (with baseSize = size)
 * goes through unchanged and embeds exactly as in Node; others embed close to Node's, not equal.
 */
export function toInput(image, input) {
  const { size, mean, std, scale } = input;
  // Models exported before baseSize was recorded were decoded straight to size.
  const baseSize = input.baseSize ?? size;
  const base = baseSize === size ? image : drawn(image, baseSize).canvas;
  const rgba = drawn(base, size).getImageData(0, 0, size, size, { colorSpace: 'srgb' }).data;
  const plane = size * size;
  const data = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) data[c * plane + i] = (rgba[4 * i + c] * scale - mean[c]) / std[c];
  }
  return new ort.Tensor('float32', data, [1, 3, size, size]);
}

/** The features h of one image (a Blob or File: decoded by the browser, without colour management). */
export async function embed(model, blob) {
  const image = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const output = await model.session.run({ [model.input.name]: toInput(image, model.input) });
  image.close();
  return output.h.data;
}
