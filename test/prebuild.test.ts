/** The committed prebuild must be built from the native sources in this checkout (`npm run prebuild` refreshes it). */
import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');
const { sourceHash } = require('../scripts/source-hash') as { sourceHash(): string };
const MARKER = 'simclr-source-hash:';

function hashInBinary(file: string): string | undefined {
  const bytes = fs.readFileSync(file);
  const at = bytes.indexOf(MARKER);
  return at < 0 ? undefined : bytes.subarray(at + MARKER.length, at + MARKER.length + 32).toString('latin1');
}

describe('prebuilt binary', () => {
  const prebuild = path.join(ROOT, 'prebuilds', 'linux-x64', 'simclr.node');

  it('exists for linux-x64', () => {
    expect(fs.existsSync(prebuild)).toBe(true);
  });

  it('was built from the current native sources (else run `npm run prebuild` and commit it)', () => {
    expect(hashInBinary(prebuild)).toBe(sourceHash());
  });

  it('targets the system LibTorch (no RUNPATH into another LibTorch)', () => {
    expect(fs.readFileSync(prebuild).includes('site-packages/torch')).toBe(false);
  });
});
