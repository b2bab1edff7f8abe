/**
 * The Python tools that read our files as their own projects do (the ONNX checker, ONNX Runtime, TensorBoard's event
 * reader), in .venv-tools, which scripts/setup.js --for-tests makes. Without them the tests that need them are skipped
 * with the reason printed, except in CI (SIMCLR_REQUIRE_ORACLE=1), where missing tools fail.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';

const PYTHON = path.join(__dirname, '..', '..', '.venv-tools', 'bin', 'python');

let cached: { python?: string; reason: string } | undefined;

function findPythonTools(): { python?: string; reason: string } {
  if (cached) return cached;
  const probe = spawnSync(PYTHON, ['-c', 'import onnx, onnxruntime, tensorboard'], { encoding: 'utf8' });
  if (probe.status === 0) return (cached = { python: PYTHON, reason: '' });
  const why = (probe.stderr || String(probe.error)).trim().split('\n').pop();
  return (cached = { reason: `no onnx, onnxruntime and tensorboard in ${PYTHON} (${why}; scripts/setup.js --for-tests installs them)` });
}

/** describe() that runs only with the Python tools; skipped (reason printed) without them, failing in CI. */
export function describeWithPythonTools(name: string, body: (python: string) => void): void {
  const tools = findPythonTools();
  if (tools.python) {
    describe(name, () => body(tools.python!));
  } else if (process.env.SIMCLR_REQUIRE_ORACLE === '1') {
    describe(name, () => it('has the Python tools', () => {
      throw new Error(`SIMCLR_REQUIRE_ORACLE=1 but ${tools.reason}`);
    }));
  } else {
    console.warn(`skipping "${name}": ${tools.reason}`);
    describe.skip(name, () => it('needs the Python tools', () => undefined));
  }
}
