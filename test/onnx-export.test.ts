/**
 * ONNX export, checked by the runtimes that read it: ONNX's own checker (PyPI onnx, full check with shape inference)
 * accepts every model, and ONNX Runtime in Node gives LibTorch's eval-mode features. The models carry BatchNorm
 * statistics and affine parameters far from their initial values, so that folding them is tested, not skipped over.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Encoder, SimCLRModel, Tensor, exportOnnx } from '../src';
import { ModelBase } from '../src/models/encoder';
import { scratchFolders } from './helpers/scratch';
import { describeWithPythonTools } from './helpers/python-tools';
import { runPython } from './helpers/oracle';
import { runOnnx } from './helpers/onnx-runtime';
import { errorOfScale } from './helpers/numerics';

const tmp = scratchFolders('onnx');

/** Sets every BatchNorm's running statistics and affine parameters to seeded values away from 0 and 1. */
async function giveBatchNormsStatistics(model: ModelBase, seed: number): Promise<void> {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const state = await model.stateDict();
  const update: Record<string, Tensor> = {};
  for (const [key, tensor] of Object.entries(state)) {
    const n = tensor.shape.reduce((a, b) => a * b, 1);
    const values = (from: number, span: number) => Tensor.fromTypedArray(Float32Array.from({ length: n }, () => from + span * next()), tensor.shape);
    const bn = state[key.replace(/\.[a-z_]+$/, '.running_var')] !== undefined;
    if (key.endsWith('running_var')) update[key] = values(0.5, 1);
    else if (key.endsWith('running_mean')) update[key] = values(-0.2, 0.4);
    else if (bn && key.endsWith('.weight')) update[key] = values(0.5, 1);
    else if (bn && key.endsWith('.bias')) update[key] = values(-0.2, 0.4);
  }
  await model.loadStateDict(update, { strict: false });
  for (const t of [...Object.values(state), ...Object.values(update)]) t.dispose();
}

const CASES = [
  { backbone: 'resnet18', stem: 'cifar', size: 32, head: { layers: 2 } },
  { backbone: 'resnet18', stem: 'imagenet', size: 64, head: { layers: 3, batchNorm: true } },
  { backbone: 'resnet50', stem: 'cifar', size: 32, head: { layers: 3, batchNorm: true } },
  { backbone: 'resnet50', stem: 'imagenet', size: 64, head: { layers: 2 } },
] as const;

describeWithPythonTools('ONNX export', (python) => {
  const folder = tmp();
  const exported: { name: string; file: string; model: SimCLRModel; size: number }[] = [];

  beforeAll(async () => {
    for (const [i, c] of CASES.entries()) {
      const model = await SimCLRModel.create({ backbone: c.backbone, stem: c.stem, head: c.head });
      await giveBatchNormsStatistics(model, i + 1);
      model.eval();
      const name = `${c.backbone}-${c.stem}`;
      const file = path.join(folder, `${name}.onnx`);
      const result = await exportOnnx(model, file, { imageSize: c.size, projection: true });
      expect(result).toMatchObject({ out: file, outputs: { h: c.backbone === 'resnet18' ? 512 : 2048, z: 128 }, opset: 17 });
      exported.push({ name, file, model, size: c.size });
    }
  }, 300_000);

  it('ONNX Runtime (Node) gives the features and projections of LibTorch\'s eval forward within 1e-4, at batch 1 and 17', async () => {
    const errors: Record<string, number> = {};
    for (const { name, file, model, size } of exported) {
      const batches = [1, 17].map((batch) => Tensor.randn([batch, 3, size, size]));
      const run = runOnnx(file, batches.map((x) => ({ data: x.toTypedArray() as Float32Array, dims: x.shape })));
      expect([run.inputNames, run.outputNames]).toEqual([['images'], ['h', 'z']]);
      for (const [i, x] of batches.entries()) {
        const expected = await model.forward(x);
        for (const output of ['h', 'z'] as const) {
          expect(run.outputs[i][output].dims).toEqual(expected[output].shape);
          errors[`${name} ${output} batch ${x.shape[0]}`] = errorOfScale(run.outputs[i][output].data, expected[output].toTypedArray() as Float32Array);
        }
        x.dispose();
      }
    }
    console.log(`ONNX Runtime vs LibTorch, max |diff| / max |LibTorch|:\n${Object.entries(errors).map(([k, v]) => `  ${k}: ${v.toExponential(2)}`).join('\n')}`);
    for (const error of Object.values(errors)) expect(error).toBeLessThan(1e-4);
  }, 300_000);

  it('the ONNX checker accepts every model (full check, with shape inference), and its metadata says the input', () => {
    const report = JSON.parse(runPython(python, `
import json, sys, onnx
out = {}
for f in json.loads(sys.argv[1])["files"]:
    model = onnx.load(f)
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
    out[f] = {"ir": model.ir_version, "opset": model.opset_import[0].version,
              "inputs": [dims(v) for v in inferred.graph.input], "outputs": [dims(v) for v in inferred.graph.output],
              "meta": {p.key: p.value for p in model.metadata_props},
              "ops": sorted(set(n.op_type for n in model.graph.node))}
print(json.dumps(out))`, { files: exported.map((e) => e.file) }));
    for (const { file, size, name } of exported) {
      const wide = name.startsWith('resnet50') ? 2048 : 512;
      expect(report[file]).toMatchObject({ ir: 8, opset: 17, inputs: [['batch', 3, size, size]], outputs: [['batch', wide], ['batch', 128]] });
      // Inference form: no BatchNormalization node is left, every one was folded.
      expect(report[file].ops).not.toContain('BatchNormalization');
      expect(JSON.parse(report[file].meta['simclr.input'])).toEqual({
        name: 'images', layout: 'NCHW', channels: 'RGB', size, baseSize: size,
        resize: 'whole image to baseSize x baseSize when decoded (PIL bilinear), then to size x size (bilinear), no crop',
        scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225],
      });
      expect(report[file].meta['simclr.backbone']).toBe(name.split('-')[0]);
    }
  }, 120_000);

  it('an Encoder exports its features alone, fc included when it has one', async () => {
    const encoder = await Encoder.create({ backbone: 'resnet18', outDim: 10, stem: 'cifar' });
    encoder.eval();
    const file = path.join(folder, 'encoder-fc.onnx');
    expect((await exportOnnx(encoder, file, { imageSize: 16 })).outputs).toEqual({ h: 10 });
    const x = Tensor.randn([2, 3, 16, 16]);
    const run = runOnnx(file, [{ data: x.toTypedArray() as Float32Array, dims: x.shape }]);
    expect(run.outputNames).toEqual(['h']);
    expect(errorOfScale(run.outputs[0].h.data, (await encoder.forward(x)).toTypedArray() as Float32Array)).toBeLessThan(1e-4);
  });

  it('says what cannot be exported, and writes nothing then', async () => {
    const encoder = await Encoder.create({ backbone: 'resnet18', outDim: 0, stem: 'cifar' });
    const file = path.join(folder, 'refused.onnx');
    await expect(exportOnnx(encoder, file, { imageSize: 16, projection: true })).rejects.toThrow(/no projection head \(an Encoder\)/);
    await expect(exportOnnx(encoder, file, {})).rejects.toThrow(/imageSize/);
    await expect(exportOnnx({} as unknown as Encoder, file, { imageSize: 16 })).rejects.toThrow(/a checkpoint path or an Encoder/);
    const state = await encoder.stateDict();
    const weight = state['layer2.0.conv1.weight'];
    const values = weight.toTypedArray() as Float32Array;
    values[5] = NaN;
    await encoder.loadStateDict({ 'layer2.0.conv1.weight': Tensor.fromTypedArray(values, weight.shape) }, { strict: false });
    await expect(exportOnnx(encoder, file, { imageSize: 16 })).rejects.toThrow("'layer2.0.conv1.weight' holds NaN (element 5): a diverged run's weights");
    expect(fs.existsSync(file)).toBe(false);
  });
});
