/** NT-Xent, the SimCLR loss, as one fused native forward + backward (native/core/nt_xent). */
import { native } from '../native';
import { Tensor } from '../tensor';
import { checkInteger, checkNumber, invalid, withCallerStack } from '../errors';

/** Temperatures at or below this are rejected (a NaN or overflow later otherwise), as lightly does. */
export const NT_XENT_MIN_TEMPERATURE: number = native.ntXentMinTemperature;

/** The temperature when none is given: the recipe's (RUN_SETTINGS.temperature takes its default from here). */
export const NT_XENT_DEFAULT_TEMPERATURE = 0.2;

export interface NtXentOptions {
  /**
   * τ in s_ij = z_i·z_j / τ: a finite number > {@link NT_XENT_MIN_TEMPERATURE} (default
   * {@link NT_XENT_DEFAULT_TEMPERATURE}, 0.2). SimCLR uses 0.1 to 0.5.
   */
  temperature?: number;
  /** Views per image, V >= 2 (default 2). z holds V*N rows, view-major. */
  views?: number;
}

export interface NtXentResult {
  /** The mean loss over all V*N anchors. */
  loss: number;
  /** dLoss/dz, same shape, dtype and device as z. */
  grad: Tensor;
}

/**
 * The NT-Xent loss of `z` and its gradient, in one native pass that never builds the (V*N)² similarity matrix.
 *
 * `z` is `[V*N, d]`, view-major: rows `i`, `i + N`, … are the views of image `i`. Rows are l2-normalised (norms below
 * 1e-4 are clamped to 1e-4, a value that survives float16), `s_ik = z_i·z_k / τ`, and the loss is the mean over all
 * anchors `i` of `-1/|P(i)| Σ_{p∈P(i)} log(exp(s_ip) / Σ_{k≠i} exp(s_ik))`, `P(i)` the other views of the same image.
 * With two views that is the paper's NT-Xent (one positive, 2N-2 negatives); with more it is SupCon's L_out form, the
 * mean of the log-probabilities over the positives. Any batch size N >= 2 works, a short last batch included.
 *
 * float32 and float64 are computed as they are, float16/bfloat16 in float32. A NaN or ±Inf anywhere in `z` gives a NaN
 * loss and an all-NaN gradient; nothing is thrown.
 *
 * @throws TypeError when z is not a floating-point Tensor; RangeError when z is not 2-D, its rows are not a multiple
 *   of `views`, it holds fewer than 2 images, or temperature / views are out of range.
 */
export async function ntXent(z: Tensor, options: NtXentOptions = {}): Promise<NtXentResult> {
  if (!(z instanceof Tensor)) throw invalid('a Tensor', 'z', z);
  if (typeof options !== 'object' || options === null) throw invalid('an options object { temperature, views }', 'options', options);
  const temperature = checkNumber(options.temperature ?? NT_XENT_DEFAULT_TEMPERATURE, 'temperature', NT_XENT_MIN_TEMPERATURE, Infinity, true);
  const views = checkInteger(options.views ?? 2, 'views', 2);
  const result = await withCallerStack(native.ntXent(z.handle, temperature, views));
  return { loss: result.loss, grad: new Tensor(result.grad) };
}

export interface NtXentLocalRowsResult {
  /** The mean loss over this rank's anchors (the rows of zLocal). */
  loss: number;
  /** dLoss/dzLocal through the anchors and their positives. */
  gradLocal: Tensor;
  /** dLoss/dzAll through the denominators: in a training step the all-gather's backward sums it over ranks and hands
   * each rank its slice. */
  gradAll: Tensor;
}

/**
 * NT-Xent in its data-parallel form: this rank's rows against every rank's. `zLocal` (`[V*B, d]`, view-major over this
 * rank's B images) holds the anchors, `zAll` (`[M, d]`, every rank's rows in rank order, `zLocal`'s at
 * `zAll[offset .. offset + V*B)`) the columns. Positives are the other views of the anchor's image in `zLocal`; the
 * denominator runs over every row of `zAll` but the anchor. The loss is the mean over the local anchors: averaged over
 * ranks (weighted by their row counts) it is {@link ntXent} of the global batch, and with the gradients combined as the
 * training step does (`gradLocal` plus this rank's slice of the sum over ranks of `gradAll`) so is the gradient. The
 * same tiled kernel as {@link ntXent}: the `V*B x M` matrix is never built.
 *
 * @throws TypeError for non-Tensors or non-float dtypes; RangeError for shapes, offset, temperature or views out of range.
 */
export async function ntXentLocalRows(zLocal: Tensor, zAll: Tensor, offset: number, options: NtXentOptions): Promise<NtXentLocalRowsResult> {
  if (!(zLocal instanceof Tensor)) throw invalid('a Tensor', 'zLocal', zLocal);
  if (!(zAll instanceof Tensor)) throw invalid('a Tensor', 'zAll', zAll);
  if (typeof options !== 'object' || options === null) throw invalid('an options object { temperature, views }', 'options', options);
  checkInteger(offset, 'offset', 0);
  const temperature = checkNumber(options.temperature, 'temperature', NT_XENT_MIN_TEMPERATURE, Infinity, true);
  const views = checkInteger(options.views ?? 2, 'views', 2);
  const result = await withCallerStack(native.ntXentLocalRows(zLocal.handle, zAll.handle, offset, temperature, views));
  return { loss: result.loss, gradLocal: new Tensor(result.gradLocal), gradAll: new Tensor(result.gradAll) };
}
