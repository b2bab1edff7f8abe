/**
 * `npm i simclr` as a user meets it, with no compiler and no install script: the packed tarball goes into a fresh npm
 * project with `npm i --ignore-scripts`, compilers made unusable on PATH. require('simclr') then loads the prebuild
 * that fits the LibTorch found here (Debian's, or the torch of $PYTHON or the python3 on PATH: CI runs this once with
 * each), `simclr doctor` says which and why, and a short training run finishes. A LibTorch without a prebuild gets the
 * clear error, not a crash, and once discovery is cached a plain require starts no Python.
 */
import { spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { fakeLibTorch } from './helpers/fake-libtorch';
import { describeWithFashionMnist } from './helpers/tools';

const ROOT = path.join(__dirname, '..');
const { findLibTorch } = require('../scripts/libtorch') as { findLibTorch(env?: NodeJS.ProcessEnv): { how: string; version: string; python?: string } };
const COMPILERS = ['cc', 'gcc', 'g++', 'c++', 'clang', 'clang++', 'cmake', 'make', 'ninja', 'ld'];

let scratch: string;
let project: string;
let userEnv: NodeJS.ProcessEnv;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = userEnv, timeout = 600_000): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd: project, env, encoding: 'utf8', timeout, maxBuffer: 1 << 26 });
}

function seconds(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-install-'));
  // Every compiler and build tool a source build could reach for fails loudly.
  const noCompilers = path.join(scratch, 'no-compilers');
  fs.mkdirSync(noCompilers);
  for (const tool of COMPILERS) {
    fs.writeFileSync(path.join(noCompilers, tool), `#!/bin/sh\necho "$0: made unusable by the install test" >&2\nexit 127\n`, { mode: 0o755 });
  }
  userEnv = { ...process.env, PATH: `${noCompilers}${path.delimiter}${process.env.PATH}`, XDG_CACHE_HOME: path.join(scratch, 'cache') };
  for (const name of ['npm_config_build_from_source', 'LIBTORCH_USE_PYTORCH']) delete userEnv[name];

  const packed = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', scratch], { cwd: ROOT, encoding: 'utf8' });
  if (packed.status !== 0) throw new Error(`npm pack failed: ${packed.stderr}`);
  const { filename, size, unpackedSize } = JSON.parse(packed.stdout)[0] as { filename: string; size: number; unpackedSize: number };
  console.log(`packed tarball: ${(size / 2 ** 20).toFixed(1)} MiB (${(unpackedSize / 2 ** 20).toFixed(1)} MiB unpacked)`);

  project = path.join(scratch, 'app');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  const started = process.hrtime.bigint();
  const install = run('npm', ['i', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', path.join(scratch, filename)]);
  if (install.status !== 0) throw new Error(`npm i --ignore-scripts failed (${install.status ?? install.signal}):\n${install.stderr}`);
  console.log(`npm i --ignore-scripts <tarball>: ${seconds(started).toFixed(1)} s`);
}, 900_000);

afterAll(() => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

describe('npm i --ignore-scripts of the packed tarball, with no compiler', () => {
  it('has no usable compiler on PATH', () => {
    for (const tool of ['g++', 'cc', 'cmake']) expect(run(tool, ['--version']).status).not.toBe(0);
  });

  it('left nothing built: no install script ran', () => {
    expect(fs.existsSync(path.join(project, 'node_modules', 'simclr', 'build'))).toBe(false);
  });

  it('simclr doctor names the LibTorch found here, how it was found, and the prebuild chosen for it', () => {
    const doctor = run('npx', ['--no-install', 'simclr', 'doctor', '--json']);
    expect(doctor.stderr).toBe('');
    expect(doctor.status).toBe(0);
    const report = JSON.parse(doctor.stdout);
    const found = findLibTorch(userEnv);
    expect(report.binary.kind).toBe('prebuilt');
    expect(report.binary.path.startsWith(path.join(project, 'node_modules', 'simclr', 'prebuilds', `${process.platform}-${process.arch}`))).toBe(true);
    expect(report.libtorch.how).toBe(found.how);
    expect(report.libtorch.version.split('.').slice(0, 2)).toEqual(found.version.split('.').slice(0, 2));
    expect(run('npx', ['--no-install', 'simclr', 'doctor']).stdout).toMatch(/^binary {6}prebuilt: .*\n {12}built against .*; chosen as the prebuild that fits LibTorch/m);
  });

  it('a plain require asks Python once, then takes what it learned from the cache', () => {
    // A python3 (or $PYTHON) that counts its runs, then runs the real one.
    const spy = path.join(scratch, 'spy');
    fs.mkdirSync(spy, { recursive: true });
    const log = path.join(scratch, 'python-runs.log');
    const real = userEnv.PYTHON ?? run('sh', ['-c', 'command -v python3']).stdout.trim();
    fs.writeFileSync(path.join(spy, 'python3'), `#!/bin/sh\necho run >> '${log}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
    const env = { ...userEnv, XDG_CACHE_HOME: path.join(scratch, 'spy-cache'),
      ...(userEnv.PYTHON ? { PYTHON: path.join(spy, 'python3') } : { PATH: `${spy}${path.delimiter}${userEnv.PATH}` }) };
    const runs = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0);
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = process.hrtime.bigint();
      const loaded = run(process.execPath, ['-e', "require('simclr')"], env);
      times.push(seconds(started));
      expect(loaded.stderr).toBe('');
      expect(loaded.status).toBe(0);
      expect(runs()).toBe(1);
    }
    console.log(`require('simclr') in a new process: cold ${times[0].toFixed(2)} s (asks Python), warm ${times.slice(1).map((t) => t.toFixed(2)).join(' s, ')} s`);
  });

  it('a LibTorch with no prebuild is a clear error at require, not a crash', () => {
    const unknown = fakeLibTorch(path.join(scratch, 'libtorch-2.99'), '2.99.0');
    const loaded = run(process.execPath, ['-e', "require('simclr')"], { ...userEnv, LIBTORCH: unknown });
    expect(loaded.signal).toBeNull();
    expect(loaded.status).toBe(1);
    expect(loaded.stderr).toContain('simclr: no prebuilt binary fits the LibTorch found');
    expect(loaded.stderr).toContain(`found:     LibTorch 2.99.0 (C++11 ABI, CPU only): LIBTORCH=${unknown}`);
    expect(loaded.stderr).toMatch(/a torch that has a prebuild: {2}pip install torch==2\.\d+\.\*/);
    expect(loaded.stderr).toContain('npm rebuild simclr');
  });
});

describeWithFashionMnist('the installed package trains', () => {
  // The kNN monitor on 1 000 test images rather than all 10 000: the same code, a fifth of the time.
  it('simclr train --data fashion-mnist --subset 256 --eval-subset 1000 --epochs 1 finishes, with its kNN monitor', () => {
    const out = path.join(scratch, 'run');
    const started = process.hrtime.bigint();
    const train = run('npx', ['--no-install', 'simclr', 'train', '--data', 'fashion-mnist', '--subset', '256', '--eval-subset', '1000', '--epochs', '1', '--out', out, '--progress', 'none']);
    if (train.status !== 0) throw new Error(`simclr train failed (${train.status ?? train.signal}):\n${train.stderr}`);
    console.log(`simclr train --subset 256 --eval-subset 1000 --epochs 1 from the installed package: ${seconds(started).toFixed(1)} s`);
    const records = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number; knnAccuracy?: number });
    expect(records.some((r) => typeof r.loss === 'number' && Number.isFinite(r.loss))).toBe(true);
    expect(records.some((r) => typeof r.knnAccuracy === 'number' && r.knnAccuracy > 0.1)).toBe(true);
    expect(fs.existsSync(path.join(out, 'last.ckpt'))).toBe(true);
  }, 600_000);
});
