/**
 * PyTorch/torchvision as the test oracle. The Python matches the LibTorch under test: the Python whose torch the loaded
 * addon links (pip torch, found as require('simclr') finds it), else Debian's /usr/bin/python3 (python3-torch).
 * SIMCLR_ORACLE_PYTHON overrides.
 * Without an oracle the tests that need it are skipped with the reason printed, except in CI
 * (SIMCLR_REQUIRE_ORACLE=1), where a missing oracle fails.
 */
import { spawnSync } from 'child_process';

function candidates(): string[] {
  if (process.env.SIMCLR_ORACLE_PYTHON) return [process.env.SIMCLR_ORACLE_PYTHON];
  const { nativeBinary } = require('../../src/native') as typeof import('../../src/native');
  if (nativeBinary.libtorch?.python) return [nativeBinary.libtorch.python];
  return ['/usr/bin/python3', 'python3'];
}

let cached: { python?: string; reason: string } | undefined;

export function findOracle(): { python?: string; reason: string } {
  if (cached) return cached;
  const tried: string[] = [];
  for (const python of candidates()) {
    const probe = spawnSync(python, ['-c', 'import torch, torchvision, numpy; print(torch.__version__)'], { encoding: 'utf8' });
    if (probe.status === 0) return (cached = { python, reason: `torch ${probe.stdout.trim()} via ${python}` });
    tried.push(`${python}: ${(probe.stderr || String(probe.error)).trim().split('\n').pop()}`);
  }
  return (cached = { reason: `no Python with torch, torchvision and numpy (${tried.join('; ')})` });
}

/** describe() that runs only with an oracle; skipped (reason printed) without one, failing under SIMCLR_REQUIRE_ORACLE. */
export function describeWithOracle(name: string, body: (python: string) => void): void {
  const oracle = findOracle();
  if (oracle.python) {
    describe(name, () => body(oracle.python!));
  } else if (process.env.SIMCLR_REQUIRE_ORACLE === '1') {
    describe(name, () => it('has a PyTorch oracle', () => {
      throw new Error(`SIMCLR_REQUIRE_ORACLE=1 but ${oracle.reason}`);
    }));
  } else {
    console.warn(`skipping "${name}": ${oracle.reason}`);
    describe.skip(name, () => it('needs a PyTorch oracle', () => undefined));
  }
}

/** Runs a Python script with the oracle; `args` arrive as JSON in sys.argv[1]. Returns stdout; throws on failure. */
export function runPython(python: string, script: string, args: unknown = {}, timeoutMs = 300_000): string {
  const run = spawnSync(python, ['-c', script, JSON.stringify(args)], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 28 });
  if (run.status !== 0) throw new Error(`oracle script failed (${run.status ?? run.signal}):\n${run.stderr}`);
  return run.stdout;
}
