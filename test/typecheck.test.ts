/**
 * The project's TypeScript type-checked once, as one program: src/, test/ and bench/ under tsconfig.json (strict).
 * jest only transpiles each test file (tsconfig.jest.json), so a type error in a test or in src/ fails here.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

function tsc(project: string): string {
  const run = spawnSync(process.execPath, [TSC, '--noEmit', '-p', project], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  return `${run.stdout}${run.stderr}`.trim();
}

describe('the TypeScript of src/, test/ and bench/', () => {
  it('type-checks with the project\'s settings', () => {
    expect(tsc(path.join(ROOT, 'tsconfig.json'))).toBe('');
  }, 300_000);

  it('would fail on a type error: the same settings refuse a string given as a number', () => {
    // Inside test/, so that the file resolves its imports and types as the tests do.
    const folder = fs.mkdtempSync(path.join(ROOT, 'test', '.typecheck-'));
    try {
      fs.writeFileSync(path.join(folder, 'wrong.ts'), "import { Tensor } from '../../src';\nexport const t = Tensor.zeros(['3']);\n");
      fs.writeFileSync(path.join(folder, 'tsconfig.json'), JSON.stringify({ extends: '../../tsconfig.json', include: ['wrong.ts'] }));
      const output = tsc(path.join(folder, 'tsconfig.json'));
      expect(output).toMatch(/wrong\.ts\(2,\d+\): error TS2322/);
      expect(output.split('\n')).toHaveLength(1);
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  }, 300_000);
});
