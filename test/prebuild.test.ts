/**
 * The committed prebuilds: one for each LibTorch of scripts/prebuild-targets.js, each built from the native sources in
 * this checkout (`npm run prebuild` refreshes them), none tied to the machine that built it.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');
const DIR = path.join(ROOT, 'prebuilds', 'linux-x64');
const { sourceHash } = require('../scripts/source-hash') as { sourceHash(): string };
const TARGETS = require('../scripts/prebuild-targets') as { name: string; pip?: string; apt?: string }[];
const MARKER = 'simclr-source-hash:';

interface Prebuild {
  name: string;
  file: string;
  libtorchVersion: string;
  cuda: boolean;
  nccl: boolean;
  jpeg: boolean;
  pip?: string;
  libtorchLibraries: string[];
  otherLibraries: string[];
  sourceHash: string;
}
const manifest = JSON.parse(fs.readFileSync(path.join(DIR, 'prebuilds.json'), 'utf8')) as { platform: string; prebuilds: Prebuild[] };

function hashInBinary(file: string): string | undefined {
  const bytes = fs.readFileSync(file);
  const at = bytes.indexOf(MARKER);
  return at < 0 ? undefined : bytes.subarray(at + MARKER.length, at + MARKER.length + 32).toString('latin1');
}

function dynamicSection(file: string): { needed: string[]; runpath: string[] } {
  const text = execFileSync('readelf', ['-d', file], { encoding: 'utf8' });
  return {
    needed: [...text.matchAll(/\(NEEDED\)\s+Shared library: \[(.*)\]/g)].map((m) => m[1]),
    runpath: [...text.matchAll(/\((?:RUNPATH|RPATH)\)/g)].map((m) => m[0]),
  };
}

describe('prebuilt binaries', () => {
  it('one for each target of scripts/prebuild-targets.js, in its order, and no other', () => {
    expect(manifest.platform).toBe('linux-x64');
    expect(manifest.prebuilds.map((p) => p.name)).toEqual(TARGETS.map((t) => t.name));
    const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.node')).sort();
    expect(files).toEqual([...manifest.prebuilds.map((p) => p.file), 'preload.node'].sort());
  });

  it('at least the newest two pip torch minor versions, CUDA and NCCL compiled in, and Debian\'s 1.13', () => {
    const pip = manifest.prebuilds.filter((p) => p.pip);
    expect(pip.length).toBeGreaterThanOrEqual(2);
    for (const p of pip) expect([p.cuda, p.nccl, p.libtorchLibraries]).toEqual([true, true, expect.arrayContaining(['libtorch_cuda.so', 'libc10_cuda.so'])]);
    expect(new Set(pip.map((p) => p.libtorchVersion.split('.').slice(0, 2).join('.'))).size).toBe(pip.length);
    expect(manifest.prebuilds.some((p) => p.libtorchVersion.startsWith('1.13.') && p.libtorchLibraries.includes('libtorch_cpu.so.1.13'))).toBe(true);
  });

  it.each(manifest.prebuilds.map((p) => [p.file, p] as const))('%s was built from the current native sources (else run `npm run prebuild`)', (file, p) => {
    expect(hashInBinary(path.join(DIR, file))).toBe(sourceHash());
    expect(p.sourceHash).toBe(sourceHash());
  });

  it.each(manifest.prebuilds.map((p) => [p.file, p] as const))('%s links LibTorch by soname only, with no RUNPATH, as prebuilds.json says', (file, p) => {
    const { needed, runpath } = dynamicSection(path.join(DIR, file));
    expect(runpath).toEqual([]);
    expect(needed).toEqual([...p.libtorchLibraries, ...p.otherLibraries].sort((a, b) => needed.indexOf(a) - needed.indexOf(b)));
    expect(needed.filter((l) => /^lib(torch|c10)/.test(l))).toEqual(p.libtorchLibraries);
    // libjpeg only where the prebuild says it decodes natively (Debian's); pip torch machines may lack libjpeg.so.62.
    expect(needed.some((l) => l.startsWith('libjpeg'))).toBe(p.jpeg);
    // Nor does it name a folder of the machine that built it (LibTorch's checks quote their header's path).
    const bytes = fs.readFileSync(path.join(DIR, file));
    expect([bytes.includes('site-packages/torch'), bytes.includes(ROOT)]).toEqual([false, false]);
  });

  it('preload.node links nothing of LibTorch', () => {
    const { needed, runpath } = dynamicSection(path.join(DIR, 'preload.node'));
    expect(needed.filter((l) => /torch|c10/.test(l))).toEqual([]);
    expect(runpath).toEqual([]);
  });

  it('keeps the packed package well under 50 MB', () => {
    const total = fs.readdirSync(DIR).reduce((sum, f) => sum + fs.statSync(path.join(DIR, f)).size, 0);
    expect(total).toBeLessThan(20 * 2 ** 20);
  });
});
