/**
 * Data-parallel training on c10d (Gloo on 127.0.0.1), in float32: 2 workers with batch B against 1 process with batch
 * 2B (the same parameters after 3 steps, up to float32 rounding), with and without multi-crop, and the two mistakes
 * that break it (a gather backward without the sum over ranks, per-rank BatchNorm). Workers run the built package
 * (dist/), as users do. The float64 runs (exact to 1e-10) are in distributed.test.ts, which also has the launcher:
 * the two halves of what was one file, so that neither bounds the suite's wall time.
 */
import { distance, train as trainIn, trainTwoReferences, TrainOptions, WorkerResult } from './helpers/data-parallel';
import { scratchFolders } from './helpers/scratch';

const tmp = scratchFolders('dp');
const train = (worldSize: 1 | 2, options?: TrainOptions) => trainIn(tmp, worldSize, options);

// 32 px images, 8 per rank: not smaller. At 16 px (layer4 at 2x2) BatchNorm amplified float32 rounding so much that 2
// workers ended 64x the reordering yardstick from 1 process (measured), so the comparison would not hold there.
describe('2 Gloo workers with batch B against 1 process with batch 2B', () => {
  // The yardstick is float32 rounding itself: the one-process run on the same batch with its images in reverse order
  // (the same loss and gradients in exact arithmetic, rounded otherwise). BatchNorm over small batches amplifies such
  // differences step by step (see test/trainer.test.ts), so "equal" means: within 10x of what reordering alone moves.
  let one: WorkerResult;
  let reordered: WorkerResult;
  // Against the two-view references, or others given (the same yardstick for another setting).
  const within = (run: WorkerResult, references?: { one: WorkerResult; reordered: WorkerResult }) => {
    const { one: base, reordered: rounded } = references ?? { one, reordered };
    const rounding = distance(rounded.params, base.params);
    const d = distance(run.params, base.params);
    const lossesOk = run.losses.every((loss, i) => Math.abs(loss - base.losses[i]) <= 1e-5 * Math.abs(base.losses[i]) + 10 * Math.abs(rounded.losses[i] - base.losses[i]));
    return { lossesOk, paramsOk: d.relative <= 10 * rounding.relative + 1e-7, distance: d, rounding };
  };

  beforeAll(async () => {
    // The two references at once (one single-threaded process each: the 2 cores a 2-worker run takes).
    [one, reordered] = await trainTwoReferences(tmp, {}, { reverse: true });
  }, 600_000);

  it('reach the same losses and parameters after 3 steps, with global BatchNorm', async () => {
    const dp = await train(2);
    const r = within(dp);
    expect(r.lossesOk).toBe(true);
    expect(r.paramsOk).toBe(true);
    expect(r.distance.maxAbs).toBeLessThan(1e-3);
    process.stdout.write(`2 workers vs 1 process: parameters ‖Δ‖/‖θ‖ ${r.distance.relative.toExponential(2)}, max |Δ| ${r.distance.maxAbs.toExponential(2)} ` +
      `(reordering alone: ${r.rounding.relative.toExponential(2)}, ${r.rounding.maxAbs.toExponential(2)})\n`);
  }, 300_000);

  it('reach the same losses and parameters with multi-crop (2 large + 2 small views per image)', async () => {
    // Exactness, in float64, is distributed.test.ts's. In float32, fixed bounds rather than the reordering yardstick:
    // on an AVX-512 machine 2 workers and 1 process ended 2.5e-5 apart (relative; max |Δ| 2.2e-4; third loss 1.7e-5)
    // with both LibTorch builds, while reordering alone moved the parameters by 1.3e-6 in one build and 3.3e-6 in the
    // other, so 10x of it passed in one and not the other. The bounds below are 4x and 5x what was measured.
    const multiCrop = { smallViews: 2, smallSize: 16 };
    const dp = await train(2, multiCrop);
    const one = await train(1, multiCrop);
    const d = distance(dp.params, one.params);
    expect(d.relative).toBeLessThan(1e-4);
    expect(d.maxAbs).toBeLessThan(1e-3);
    dp.losses.forEach((loss, i) => expect(Math.abs(loss - one.losses[i])).toBeLessThan(1e-4 * one.losses[i]));
  }, 600_000);

  it('do not without the sum over ranks in the all-gather\'s backward (lightly #1528)', async () => {
    const r = within(await train(2, { gatherBackward: 'own' }));
    expect(r.lossesOk && r.paramsOk).toBe(false);
  }, 300_000);

  it('do not with per-rank BatchNorm', async () => {
    const r = within(await train(2, { globalBatchNorm: false }));
    expect(r.lossesOk && r.paramsOk).toBe(false);
  }, 300_000);
});
