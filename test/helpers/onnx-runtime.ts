/**
 * ONNX Runtime for Node (onnxruntime-node) run in a plain Node process: under jest its addon makes output arrays in
 * Node's main realm, which its own JavaScript (loaded in the test's realm) then rejects. A child process is also what
 * a service is: the exported file, read by the runtime alone.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface OnnxRun {
  inputNames: string[];
  outputNames: string[];
  /** Per batch given, each output's dims and data. */
  outputs: Record<string, { dims: number[]; data: Float32Array }>[];
}

const SCRIPT = `
const ort = require(${JSON.stringify(require.resolve('onnxruntime-node'))});
const fs = require('fs');
const [model, folder, batches] = JSON.parse(process.argv[1]);
(async () => {
  const session = await ort.InferenceSession.create(model);
  const outputs = [];
  for (const [i, dims] of batches.entries()) {
    const bytes = fs.readFileSync(folder + '/in' + i);
    const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    const result = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, dims) });
    const shapes = {};
    for (const name of session.outputNames) {
      fs.writeFileSync(folder + '/out' + i + '.' + name, result[name].data);
      shapes[name] = result[name].dims;
    }
    outputs.push(shapes);
  }
  console.log(JSON.stringify({ inputNames: session.inputNames, outputNames: session.outputNames, outputs }));
  await session.release();
})().catch((err) => { console.error(err.stack || String(err)); process.exit(1); });`;

/** Runs the model `file` on each of `batches` (float32 data and dims) in a new Node process with onnxruntime-node. */
export function runOnnx(file: string, batches: { data: Float32Array; dims: number[] }[]): OnnxRun {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-ort-'));
  try {
    batches.forEach((b, i) => fs.writeFileSync(path.join(folder, `in${i}`), Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength)));
    const run = spawnSync(process.execPath, ['-e', SCRIPT, JSON.stringify([file, folder, batches.map((b) => b.dims)])], { encoding: 'utf8', timeout: 300_000 });
    if (run.status !== 0) throw new Error(`onnxruntime-node failed (${run.status ?? run.signal}):\n${run.stderr}`);
    const report = JSON.parse(run.stdout) as Omit<OnnxRun, 'outputs'> & { outputs: Record<string, number[]>[] };
    const outputs = report.outputs.map((shapes, i) => Object.fromEntries(Object.entries(shapes).map(([name, dims]) => {
      const bytes = fs.readFileSync(path.join(folder, `out${i}.${name}`));
      return [name, { dims, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) }];
    })));
    return { inputNames: report.inputNames, outputNames: report.outputNames, outputs };
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}
