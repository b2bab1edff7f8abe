/**
 * Finding LibTorch and choosing the binary at require('simclr') (scripts/libtorch.js, scripts/binary.js), on made-up
 * LibTorch folders and a stand-in Python: the search order, Python found without any variable, the cache that keeps a
 * plain require from starting Python, and the choice of prebuild or the error that names the ways out.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { fakeLibTorch } from './helpers/fake-libtorch';
import type { LibTorchDescription } from '../src/native';

// A type only: importing it loads no addon (these tests need none).
type Found = LibTorchDescription;
const { findLibTorch } = require('../scripts/libtorch') as { findLibTorch(env: NodeJS.ProcessEnv): Found };
const { chooseBinary, noMatchingBinary } = require('../scripts/binary') as {
  chooseBinary(options: { root: string; env: NodeJS.ProcessEnv }): { kind: string; path: string; preload: string[]; libtorch: Found };
  noMatchingBinary(found: Found, root: string): Error & { code: string };
};

let scratch: string;
beforeEach(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-discovery-'));
});
afterEach(() => fs.rmSync(scratch, { recursive: true, force: true }));

/**
 * A folder with an executable `python3` that answers the discovery probe for a torch in `site/torch` (or none) and
 * counts its runs in `runs.log`.
 */
function fakePython(dir: string, torchVersion: string | undefined): { bin: string; python: string; site: string; runs: () => number } {
  const bin = path.join(dir, 'bin');
  const site = path.join(dir, 'site-packages');
  fs.mkdirSync(bin, { recursive: true });
  fs.mkdirSync(site, { recursive: true });
  let torch: string | null = null;
  if (torchVersion) {
    torch = path.join(site, 'torch');
    fakeLibTorch(torch, torchVersion.split('+')[0], ['libtorch.so', 'libtorch_cpu.so', 'libc10.so', 'libtorch_cuda.so', 'libc10_cuda.so']);
    fs.writeFileSync(path.join(torch, 'version.py'), `__version__ = '${torchVersion}'\ncuda = '13.2'\n`);
  }
  const python = path.join(bin, 'python3');
  const log = path.join(dir, 'runs.log');
  const answer = JSON.stringify({ executable: python, torch, importFolders: [site] });
  // Shell built-ins only: the tests give it a PATH without the usual folders.
  fs.writeFileSync(python, `#!/bin/sh\necho run >> '${log}'\nprintf '%s\\n' '${answer}'\n`, { mode: 0o755 });
  return { bin, python, site, runs: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0) };
}

/** The environment discovery sees: only what a test gives it, with a cache folder of the test's own. */
const env = (vars: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({ PATH: '/nonexistent', XDG_CACHE_HOME: path.join(scratch, 'cache'), ...vars });

describe('finding LibTorch', () => {
  it('takes LIBTORCH first, reading its version from the headers and its C++ ABI from libc10', () => {
    const folder = fakeLibTorch(path.join(scratch, 'libtorch'), '2.15.0');
    const py = fakePython(path.join(scratch, 'py'), '2.14.1+cu130');
    const found = findLibTorch(env({ LIBTORCH: folder, PATH: py.bin }));
    expect(found).toMatchObject({ source: 'LIBTORCH', version: '2.15.0', cxx11abi: true, cuda: false, libDir: path.join(folder, 'lib') });
    expect(found.how).toBe(`LIBTORCH=${folder}`);
    expect(py.runs()).toBe(0);
  });

  it('finds the torch of the python3 on PATH with no variable set (an activated venv), and its CUDA libraries', () => {
    const py = fakePython(path.join(scratch, 'venv'), '2.15.0+cu132');
    const found = findLibTorch(env({ PATH: `/nonexistent:${py.bin}` }));
    expect(found).toMatchObject({ source: 'python', version: '2.15.0', cuda: true, python: py.python, libDir: path.join(py.site, 'torch', 'lib') });
    expect(found.how).toBe(`the torch of python3 on PATH (${py.python})`);
  });

  it('prefers $PYTHON to the python3 on PATH', () => {
    const onPath = fakePython(path.join(scratch, 'on-path'), '2.14.1');
    const chosen = fakePython(path.join(scratch, 'chosen'), '2.15.0');
    const found = findLibTorch(env({ PATH: onPath.bin, PYTHON: chosen.python }));
    expect([found.version, found.how]).toEqual(['2.15.0', `the torch of $PYTHON (${chosen.python})`]);
    expect(onPath.runs()).toBe(0);
  });

  it('asks Python once: later lookups come from the cache until its import folders change', () => {
    const py = fakePython(path.join(scratch, 'venv'), '2.15.0');
    const vars = env({ PATH: py.bin });
    expect(findLibTorch(vars).version).toBe('2.15.0');
    expect(findLibTorch(vars).version).toBe('2.15.0');
    expect(py.runs()).toBe(1);
    // pip install/uninstall changes site-packages' modification time.
    const later = new Date(Date.now() + 5_000);
    fs.utimesSync(py.site, later, later);
    expect(findLibTorch(vars).version).toBe('2.15.0');
    expect(py.runs()).toBe(2);
    expect(findLibTorch({ ...vars, SIMCLR_LIBTORCH_CACHE: '0' }).version).toBe('2.15.0');
    expect(py.runs()).toBe(3);
  });

  it('a Python without torch is passed over; with LIBTORCH_USE_PYTORCH=1 it is an error that says so and lists the order', () => {
    const py = fakePython(path.join(scratch, 'bare'), undefined);
    expect(() => findLibTorch(env({ PATH: py.bin, LIBTORCH_USE_PYTORCH: '1' })))
      .toThrow(new RegExp(`LIBTORCH_USE_PYTORCH=1, but python3 on PATH \\(${py.python}\\) has no torch[\\s\\S]*1\\. LIBTORCH=[\\s\\S]*3\\. the system LibTorch`));
    const found = (() => {
      try {
        return findLibTorch(env({ PATH: py.bin }));
      } catch (err) {
        return (err as Error).message;
      }
    })();
    // Either the system's LibTorch (where one is installed) or the error naming every step passed over.
    if (typeof found === 'string') expect(found).toContain(`python3 on PATH (${py.python}) has no torch`);
    else expect(found.source).toBe('system');
  });

  it('a LIBTORCH folder without libtorch_cpu is an error naming it', () => {
    fs.mkdirSync(path.join(scratch, 'empty', 'lib'), { recursive: true });
    expect(() => findLibTorch(env({ LIBTORCH: path.join(scratch, 'empty') }))).toThrow(/LIBTORCH=.*empty, whose lib\/ has no libtorch_cpu\.so/);
  });
});

describe('choosing the binary', () => {
  /** A package root with a manifest of two prebuilds (pip torch 2.15 with CUDA, Debian's 1.13) and no source build. */
  function fakePackage(): string {
    const root = path.join(scratch, 'package');
    const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
    fs.mkdirSync(dir, { recursive: true });
    const prebuilds = [
      { name: 'torch-2.15', file: 'torch-2.15.node', libtorchVersion: '2.15.0', cxx11abi: true, cuda: true, nccl: true, builtAgainst: 'pip torch 2.15.0+cu132',
        pip: 'torch==2.15.*', libtorchLibraries: ['libtorch.so', 'libtorch_cpu.so', 'libc10.so', 'libtorch_cuda.so', 'libc10_cuda.so'] },
      { name: 'libtorch-1.13-debian', file: 'libtorch-1.13-debian.node', libtorchVersion: '1.13.0', cxx11abi: true, cuda: false, nccl: false,
        builtAgainst: 'Debian libtorch-dev 1.13.1+dfsg-4', libtorchLibraries: ['libtorch.so.1.13', 'libtorch_cpu.so.1.13', 'libc10.so.1.13'] },
    ];
    fs.writeFileSync(path.join(dir, 'prebuilds.json'), JSON.stringify({ platform: path.basename(dir), prebuilds }));
    return root;
  }

  it('picks the prebuild of the same major.minor version and loads its LibTorch libraries first, dependencies first', () => {
    const root = fakePackage();
    const py = fakePython(path.join(scratch, 'venv'), '2.15.1+cu132');
    const choice = chooseBinary({ root, env: env({ PATH: py.bin }) });
    const lib = path.join(py.site, 'torch', 'lib');
    expect(choice.kind).toBe('prebuilt');
    expect(choice.path).toBe(path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'torch-2.15.node'));
    expect(choice.preload).toEqual(['libc10.so', 'libc10_cuda.so', 'libtorch_cpu.so', 'libtorch_cuda.so', 'libtorch.so'].map((l) => path.join(lib, l)));
  });

  it('a source build wins without asking where LibTorch is', () => {
    const root = fakePackage();
    fs.mkdirSync(path.join(root, 'build', 'Release'), { recursive: true });
    fs.writeFileSync(path.join(root, 'build', 'Release', 'simclr.node'), '');
    const py = fakePython(path.join(scratch, 'venv'), '2.99.0');
    expect(chooseBinary({ root, env: env({ PATH: py.bin }) }).kind).toBe('source build');
    expect(py.runs()).toBe(0);
  });

  it('a version without a prebuild is an error before anything loads: what was found, what is prebuilt, the two ways out', () => {
    const root = fakePackage();
    const py = fakePython(path.join(scratch, 'venv'), '2.13.0+cu130');
    let error: (Error & { code?: string }) | undefined;
    try {
      chooseBinary({ root, env: env({ PATH: py.bin }) });
    } catch (err) {
      error = err as Error & { code?: string };
    }
    expect(error?.code).toBe('SIMCLR_NO_MATCHING_BINARY');
    expect(error?.message).toContain(`found:     LibTorch 2.13.0 (C++11 ABI, with CUDA): the torch of python3 on PATH (${py.python})`);
    expect(error?.message).toContain('prebuilt:  2.15 (pip torch 2.15.0+cu132, CUDA); 1.13 (Debian libtorch-dev 1.13.1+dfsg-4, CPU only)');
    expect(error?.message).toContain(`${py.python} -m pip install torch==2.15.*`);
    expect(error?.message).toContain('npm rebuild simclr');
  });

  it('a CPU-only torch of a prebuilt version is told which library the prebuild needs', () => {
    const root = fakePackage();
    const cpuOnly = fakeLibTorch(path.join(scratch, 'cpu'), '2.15.0');
    const found = findLibTorch(env({ LIBTORCH: cpuOnly }));
    expect(noMatchingBinary(found, root).message).toContain('torch-2.15.node needs libtorch_cuda.so, libc10_cuda.so, which');
  });
});
