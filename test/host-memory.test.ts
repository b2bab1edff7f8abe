/** Freed host memory is kept for the next step instead of being faulted in again: glibc's heap, and LibTorch's tensors
 * of 32 MiB and more (which glibc maps and unmaps every time). */
import { spawnSync } from 'child_process';
import * as path from 'path';

// Page faults of the median warm training step (ResNet-18, 28 px, batch 8), in a fresh process with `env`.
const STEP_FAULTS = `
const { SimCLRModel, Tensor, manualSeed, createTrainStep } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
const { hostMemoryRetained } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'native'))});
const minorFaults = () => Number(require('fs').readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[7]);
(async () => {
  manualSeed(0);
  const model = await SimCLRModel.create({ backbone: 'resnet18' });
  const step = createTrainStep(model, { optimizer: 'sgd', momentum: 0.9, temperature: 0.2 });
  const views = Tensor.randn([16, 3, 28, 28]);
  for (let i = 0; i < 3; i++) await step.step(views, 0.01);
  const faults = [];
  for (let i = 0; i < 9; i++) {
    const before = minorFaults();
    await step.step(views, 0.01);
    faults.push(minorFaults() - before);
  }
  // The median step: a garbage collection or a thread started in one step does not count.
  console.log(JSON.stringify({ hostMemoryRetained, faultsPerStep: faults.sort((a, b) => a - b)[4] }));
})();
`;

// Page faults of the median of 9 rounds of making and freeing a 40 MB tensor (10 M float32 of randn, every page
// written), in a fresh process with `env`; and whether the last tensor still holds its values when read.
const LARGE_TENSOR_FAULTS = `
const { Tensor, manualSeed } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
const minorFaults = () => Number(require('fs').readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[7]);
manualSeed(1);
const expected = Tensor.randn([10_000_000]).toTypedArray();
const faults = [];
let last;
for (let i = 0; i < 9; i++) {
  const before = minorFaults();
  manualSeed(1);
  last?.dispose();
  last = Tensor.randn([10_000_000]);
  faults.push(minorFaults() - before);
}
const values = last.toTypedArray();
let equal = values.length === expected.length;
for (let i = 0; equal && i < values.length; i++) equal = values[i] === expected[i];
console.log(JSON.stringify({ faultsPerTensor: faults.sort((a, b) => a - b)[4], equal }));
`;

// Whether the addon, loaded in a fresh process with `env`, keeps freed host memory.
const RETAINED = `console.log(JSON.stringify(require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'native'))}).hostMemoryRetained));`;

function measure<T>(script: string, env: Record<string, string>): T {
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  expect(run.stderr).toBe('');
  return JSON.parse(run.stdout);
}

const stepFaults = (env: Record<string, string>) => measure<{ hostMemoryRetained: boolean; faultsPerStep: number }>(STEP_FAULTS, env);

describe('host memory', () => {
  it('is kept for reuse by default, so a warm training step does not fault pages in; SIMCLR_MALLOC=default restores glibc', () => {
    const retained = stepFaults({});
    const glibc = stepFaults({ SIMCLR_MALLOC: 'default' });
    console.log(`minor page faults per warm step (ResNet-18, 28 px, batch 8): retained ${retained.faultsPerStep}, glibc's defaults ${glibc.faultsPerStep}`);
    expect(retained.hostMemoryRetained).toBe(true);
    expect(glibc.hostMemoryRetained).toBe(false);
    // glibc's adaptive thresholds fault in thousands of pages a step on the development machine, but not in every
    // process (a CI rehearsal measured 7), so that count is printed, not asserted. The count is the whole process's
    // (V8's heap, threads); with the heap kept, the median step's is 0-2 wherever measured.
    expect(retained.faultsPerStep).toBeLessThan(50);
  });

  it('keeps freed tensors of 32 MiB and more for reuse: a 40 MB tensor made again faults no page in, and holds its values', () => {
    type Result = { faultsPerTensor: number; equal: boolean };
    const retained = measure<Result>(LARGE_TENSOR_FAULTS, {});
    const glibc = measure<Result>(LARGE_TENSOR_FAULTS, { SIMCLR_MALLOC: 'default' });
    console.log(`minor page faults per 40 MB tensor made and freed: retained ${retained.faultsPerTensor}, glibc's defaults ${glibc.faultsPerTensor}`);
    expect(retained.equal && glibc.equal).toBe(true);
    // glibc maps every block over 32 MiB afresh, whatever its thresholds: ~9 800 faults of 4 KiB pages (fewer where
    // transparent huge pages back the mapping, so that side is printed, not asserted).
    expect(retained.faultsPerTensor).toBeLessThan(50);
  });

  it("leaves glibc's heap alone when the user set glibc's own variables", () => {
    // The choice is made when the addon loads: no step needs to run to see it.
    const retainedWith = (env: Record<string, string>) => measure<boolean>(RETAINED, env);
    expect(retainedWith({})).toBe(true);
    expect(retainedWith({ MALLOC_TRIM_THRESHOLD_: '134217728' })).toBe(false);
    expect(retainedWith({ MALLOC_MMAP_THRESHOLD_: '1048576' })).toBe(false);
  });
});
