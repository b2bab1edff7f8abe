/**
 * Image bytes to an exported model's input without LibTorch: decoded by sharp and resized in TypeScript as simclr's
 * evaluation path does (the base size with PIL's bilinear, then the evaluation view's bilinear and normalisation).
 */
import { invalid } from '../errors';
import { DecodedImage, averageBlocks, decodeWithSharp, draftScale, headerSize, isJpeg } from './decode';
import { OnnxInputSpecLike, checkInputSpec } from './onnx-metadata';
import { resizeBilinearAntialias, writeEvalView } from './resize';

/**
 * The image in `bytes` decoded to RGB at `size` ([height, width]) as simclr's datasets decode files, with sharp and
 * TypeScript: PNGs and JPEGs less than twice the size (along either side) give the same bytes as with the addon (the
 * same libjpeg-turbo decoding, PIL's bilinear resize); WebP and TIFF the same as everywhere (libvips resizes them).
 * JPEGs at least twice the size, which the addon's libjpeg scales on load by 1/2, 1/4 or 1/8 as PIL's `draft` (sharp
 * cannot be asked to), are decoded whole and averaged over blocks of that scale instead: close to it, not the same
 * bytes (the README's serving section says how close).
 */
export async function decodeImage(bytes: Uint8Array, size: readonly [number, number], source: string): Promise<DecodedImage> {
  const header = isJpeg(bytes) ? headerSize(bytes) : null;
  const scale = header ? draftScale(header, size) : 1;
  if (scale === 1) return decodeWithSharp(bytes, size, source, resizeBilinearAntialias);
  const reduced = averageBlocks(await decodeWithSharp(bytes, null, source, resizeBilinearAntialias), scale);
  return { image: resizeBilinearAntialias(reduced.image, reduced.width, reduced.height, size[1], size[0]), width: size[1], height: size[0] };
}

/** A model input: float32 data and its dims, `N x 3 x size x size` (what `new ort.Tensor('float32', data, dims)` takes). */
export interface OnnxInput {
  data: Float32Array;
  dims: [number, number, number, number];
}

/**
 * The model input of one image file's bytes (JPEG, PNG, WebP, TIFF) or of several (a batch, in order), made as
 * `spec` says (the model's `simclr.input` metadata, from {@link readOnnxInputSpec}): each image decoded to RGB by sharp
 * and resized to `spec.baseSize` with PIL's bilinear filter, then to `spec.size` (bilinear), scaled to [0, 1] and
 * normalised by `spec.mean` and `spec.std`, as simclr's `evaluate` and `embed` make it (see {@link decodeImage} for
 * where the decoded bytes can differ: JPEGs at least twice the base size). Rejects with a SampleError naming the
 * image (`image 0`, ...) when one cannot be decoded.
 */
export async function imageToOnnxInput(images: Uint8Array | readonly Uint8Array[], spec: OnnxInputSpecLike): Promise<OnnxInput> {
  const list = images instanceof Uint8Array ? [images] : images;
  if (!Array.isArray(list) || list.length === 0) throw invalid('image bytes (a Uint8Array) or a non-empty array of them', 'images', images);
  list.forEach((bytes, i) => {
    if (!(bytes instanceof Uint8Array)) throw invalid('the bytes of an image file (a Uint8Array)', `images[${i}]`, bytes);
  });
  const input = checkInputSpec(spec);
  const { size, baseSize } = input;
  const decoded = await Promise.all(list.map((bytes, i) => decodeImage(bytes, [baseSize, baseSize], `image ${i}`)));
  const data = new Float32Array(list.length * 3 * size * size);
  decoded.forEach((image, i) => writeEvalView(image.image, image.width, image.height, size, input.mean, input.std, data, i * 3 * size * size));
  return { data, dims: [list.length, 3, size, size] };
}
