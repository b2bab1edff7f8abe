'use strict';
// Finds LibTorch: at require('simclr'), to choose the binary that matches it (scripts/binary.js), and for a source
// build, to compile against it (scripts/build-flags.js). One order, one error (like tch-rs):
//   1. LIBTORCH=<folder>        a libtorch distribution (include/ and lib/ inside)
//   2. Python's torch           the `torch` importable by $PYTHON, else by the python3 on PATH (an activated venv just
//                               works); LIBTORCH_USE_PYTORCH=1 makes this step required
//   3. the system's LibTorch    Debian's libtorch-dev / libtorch1.13
// Python is asked where torch lives without importing it (importlib's find_spec). Its answer is cached in
// $XDG_CACHE_HOME/simclr (~/.cache/simclr), keyed by the interpreter and the variables that change what it imports, and
// trusted while the modification times of its import folders and of torch/version.py are unchanged (a pip install or
// uninstall touches them), so a plain require starts no Python. SIMCLR_LIBTORCH_CACHE=0 turns the cache off.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const SYSTEM_INCLUDE = '/usr/include';
const SYSTEM_LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'];
const CACHE_VERSION = 1;

class LibTorchNotFound extends Error {}

function howToChoose(reason) {
  return [
    `No usable LibTorch: ${reason}`,
    'simclr looks for LibTorch in this order:',
    '  1. LIBTORCH=/path/to/libtorch   a libtorch folder (with include/ and lib/)',
    '  2. Python\'s torch               the torch importable by $PYTHON, else by python3 on PATH (an activated venv):',
    '                                  pip install torch',
    '  3. the system LibTorch          on Debian/Ubuntu: apt-get install libtorch-dev libopenblas0-openmp',
  ].join('\n');
}

/** `major.minor.patch` from the C++ headers' version.h, or undefined without headers. */
function versionFromHeaders(includeDir) {
  const header = path.join(includeDir, 'torch', 'csrc', 'api', 'include', 'torch', 'version.h');
  if (!fs.existsSync(header)) return undefined;
  const text = fs.readFileSync(header, 'utf8');
  const field = (name) => (text.match(new RegExp(`#define TORCH_VERSION_${name} (\\d+)`)) || [])[1];
  const [major, minor, patch] = ['MAJOR', 'MINOR', 'PATCH'].map(field);
  return major === undefined ? undefined : `${major}.${minor}.${patch}`;
}

/** The version in a versioned file name (Debian's libtorch_cpu.so.1.13.0), for a LibTorch installed without headers. */
function versionFromSoname(libDir) {
  const versioned = fs.readdirSync(libDir).map((f) => f.match(/^libtorch_cpu\.so\.(\d+\.\d+(?:\.\d+)?)$/)?.[1]).filter(Boolean);
  return versioned.sort((a, b) => b.length - a.length)[0];
}

/**
 * Whether the libraries use the C++11 ABI of libstdc++ (`_GLIBCXX_USE_CXX11_ABI=1`): c10's exported names then spell
 * std::string as std::__cxx11::basic_string. Read from libc10 (a few MB) rather than by importing torch.
 */
function usesCxx11Abi(libDir) {
  const c10 = fs.readdirSync(libDir).filter((f) => /^libc10\.so(\.|$)/.test(f)).sort((a, b) => a.length - b.length)[0];
  if (!c10) return undefined;
  return fs.readFileSync(path.join(libDir, c10)).includes('St7__cxx11');
}

/** What the loader and the build need to know of a LibTorch found in `libDir` (headers in `includeDir`, if any). */
function describe({ source, how, root, includeDir, libDir, version, python }) {
  const libs = fs.readdirSync(libDir);
  const has = (name) => libs.some((f) => f === `lib${name}.so` || f.startsWith(`lib${name}.so.`));
  return {
    source,
    how,
    root,
    includeDir,
    libDir,
    version: version || versionFromHeaders(includeDir) || versionFromSoname(libDir) || 'unknown',
    cxx11abi: usesCxx11Abi(libDir) ?? true,
    cuda: has('torch_cuda'),
    ...(python ? { python } : {}),
  };
}

function hasLibTorchCpu(dir) {
  return fs.existsSync(dir) && fs.readdirSync(dir).some((f) => /^libtorch_cpu\.so(\.|$)/.test(f));
}

function fromFolder(root, how) {
  const libDir = path.join(root, 'lib');
  if (!hasLibTorchCpu(libDir)) throw new LibTorchNotFound(howToChoose(`${how}, whose lib/ has no libtorch_cpu.so`));
  return describe({ source: 'LIBTORCH', how, root, includeDir: path.join(root, 'include'), libDir });
}

function systemLibDir() {
  return SYSTEM_LIB_DIRS.find(hasLibTorchCpu);
}

/** Debian's LibTorch (libtorch1.13; the headers come with libtorch-dev), or undefined. */
function fromSystem(how = 'the system LibTorch') {
  const libDir = systemLibDir();
  return libDir ? describe({ source: 'system', how, root: '/usr', includeDir: SYSTEM_INCLUDE, libDir }) : undefined;
}

/** The first `name` on PATH that is an executable file, as an absolute path. */
function onPath(name, env) {
  for (const dir of (env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.resolve(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

// Asks the interpreter where it would import torch from, without importing it, and which folders it imports from.
const PROBE = [
  'import importlib.util, json, os, sys',
  'spec = importlib.util.find_spec("torch")',
  'root = os.path.dirname(spec.origin) if spec is not None and spec.origin else None',
  'print(json.dumps({"executable": sys.executable, "torch": root,',
  '  "importFolders": sorted({os.path.abspath(p) for p in sys.path if p and os.path.isdir(p)})}))',
].join('\n');

function cacheFile(env) {
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'simclr', 'python-torch.json');
}

function mtimes(files) {
  return Object.fromEntries(files.map((f) => {
    try {
      return [f, fs.statSync(f).mtimeMs];
    } catch {
      return [f, null];
    }
  }));
}

/** What `python` says of torch: `{ executable, torch }`, from the cache while its stamps hold, else by running it. */
function askPython(python, env) {
  const useCache = env.SIMCLR_LIBTORCH_CACHE !== '0';
  const key = JSON.stringify([python, ...['PYTHONPATH', 'PYTHONHOME', 'PYTHONNOUSERSITE', 'PYENV_VERSION', 'CONDA_PREFIX'].map((v) => env[v] ?? null)]);
  const file = cacheFile(env);
  let cache = { version: CACHE_VERSION, entries: {} };
  if (useCache) {
    try {
      const read = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (read.version === CACHE_VERSION) cache = read;
    } catch {
      // no cache yet, or an unreadable one: ask Python
    }
    const hit = cache.entries[key];
    if (hit && Object.entries(mtimes(Object.keys(hit.stamps))).every(([f, t]) => hit.stamps[f] === t)) return hit.answer;
  }
  const run = spawnSync(python, ['-c', PROBE], { encoding: 'utf8', env, timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (run.status !== 0) {
    const why = run.error ? run.error.message : (run.stderr || '').trim().split('\n').pop();
    return { failed: `\`${python}\` could not run (${why})` };
  }
  const { executable, torch, importFolders } = JSON.parse(run.stdout);
  const answer = { executable, torch };
  if (useCache) {
    const stamped = [...importFolders, ...(torch ? [path.join(torch, 'version.py')] : [])];
    cache.entries[key] = { answer, stamps: mtimes(stamped) };
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(cache));
      fs.renameSync(tmp, file);
    } catch {
      // a read-only home: no cache, Python is asked each time
    }
  }
  return answer;
}

/** The torch package's own version (`2.15.0+cu132` → `2.15.0`) from torch/version.py. */
function torchPackageVersion(root) {
  try {
    return fs.readFileSync(path.join(root, 'version.py'), 'utf8').match(/__version__\s*(?::\s*str\s*)?=\s*['"]([^'"+]+)/)?.[1];
  } catch {
    return undefined;
  }
}

/**
 * The LibTorch inside Python's torch, `{ found }`, or `{ skipped }` saying why there is none. A torch whose libraries
 * are the system's (Debian's python3-torch links them from /usr/lib) is the system LibTorch.
 */
function fromPython(env) {
  const python = env.PYTHON || onPath('python3', env);
  const named = env.PYTHON ? `$PYTHON (${python})` : `python3 on PATH (${python})`;
  if (!python) return { skipped: 'no $PYTHON and no python3 on PATH' };
  const answer = askPython(python, env);
  if (answer.failed) return { skipped: answer.failed };
  if (!answer.torch) return { skipped: `${named} has no torch` };
  const libDir = path.join(answer.torch, 'lib');
  const cpu = hasLibTorchCpu(libDir) && fs.readdirSync(libDir).find((f) => /^libtorch_cpu\.so(\.|$)/.test(f));
  if (!cpu) return { skipped: `${named} imports torch from ${answer.torch}, whose lib/ has no libtorch_cpu.so` };
  const realDir = path.dirname(fs.realpathSync(path.join(libDir, cpu)));
  if (SYSTEM_LIB_DIRS.includes(realDir)) {
    return { found: fromSystem(`the torch of ${named}, whose libraries are the system's (${realDir})`) };
  }
  return {
    found: describe({
      source: 'python', how: `the torch of ${named}`, root: answer.torch, includeDir: path.join(answer.torch, 'include'), libDir,
      version: torchPackageVersion(answer.torch), python,
    }),
  };
}

function pythonForced(env) {
  return env.LIBTORCH_USE_PYTORCH === '1' || env.LIBTORCH_USE_PYTORCH === 'true';
}

/**
 * The LibTorch to load or build against: `{ source, how, root, includeDir, libDir, version, cxx11abi, cuda, python? }`,
 * or throws LibTorchNotFound listing every option and why each was passed over.
 */
function findLibTorch(env = process.env) {
  if (env.LIBTORCH) return fromFolder(path.resolve(env.LIBTORCH), `LIBTORCH=${env.LIBTORCH}`);
  const python = fromPython(env);
  if (python.found) return python.found;
  if (pythonForced(env)) throw new LibTorchNotFound(howToChoose(`LIBTORCH_USE_PYTORCH=1, but ${python.skipped}`));
  const system = fromSystem();
  if (system) return system;
  throw new LibTorchNotFound(howToChoose(`LIBTORCH is unset; ${python.skipped}; no libtorch_cpu.so in ${SYSTEM_LIB_DIRS.join(', ')}`));
}

/** Whether `libDir` is one the dynamic loader searches by itself (no preloading needed). */
function isSystemLibDir(libDir) {
  return SYSTEM_LIB_DIRS.includes(libDir);
}

module.exports = { findLibTorch, fromSystem, isSystemLibDir, LibTorchNotFound, SYSTEM_INCLUDE, SYSTEM_LIB_DIRS };

if (require.main === module) {
  try {
    process.stdout.write(JSON.stringify(findLibTorch(), null, 2) + '\n');
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
