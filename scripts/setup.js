'use strict';
// Brings a fresh clone to a runnable state; used by `npm start` and `npm test` (README quick start) and by CI.
//   1. system packages (Debian, as root): LibTorch unless another was chosen, OpenBLAS, Fashion-MNIST, and with
//      --for-tests the PyTorch/torchvision oracle, tmux (terminal test), chromium (report and browser tests) and
//      iproute2 (two-machine test)
//   2. node_modules (npm ci), whose install hook loads the prebuild or builds the addon
//   3. a source build when the binary that would load is missing, stale, or built against another LibTorch
//   4. the TypeScript build (dist/, from an empty folder), which the CLI runs from, unless dist/ is current
//   5. with --for-tests, the Python tools that check our files as their own projects read them (.venv-tools: the ONNX
//      checker, ONNX Runtime, TensorBoard's event reader), from PyPI
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');
const forTests = process.argv.includes('--for-tests');
const log = (message) => process.stderr.write(`simclr setup: ${message}\n`);

function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', ...options });
  if (result.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed with exit code ${result.status}`);
}

function debianPackagesMissing(names) {
  return names.filter((name) => {
    const q = spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' });
    return q.status !== 0 || !q.stdout.includes('install ok installed');
  });
}

/** True unless a LibTorch other than the system's is found (none found yet: the system's is to be installed). */
function usesSystemLibTorch() {
  const { findLibTorch } = require('./libtorch');
  try {
    return findLibTorch().source === 'system';
  } catch {
    return true;
  }
}

function ensureSystemPackages() {
  if (!fs.existsSync('/usr/bin/dpkg-query')) {
    log('not a Debian-like system: install LibTorch and OpenBLAS yourself (see README)');
    return;
  }
  // The system LibTorch unless another is found first (LIBTORCH, or the torch of $PYTHON or python3 on PATH).
  const systemLibTorch = usesSystemLibTorch();
  // libjpeg-turbo's headers: a source build decodes JPEGs natively with them (PIL's bytes), with sharp otherwise.
  const wanted = ['libopenblas0-openmp', 'dataset-fashion-mnist', 'libjpeg62-turbo-dev'];
  if (systemLibTorch) wanted.push('libtorch-dev');
  // c10d's Gloo headers: LibTorch ships only its own c10d headers, and a source build against any LibTorch (Debian's or
  // pip's) compiles the distributed training step with them.
  wanted.push('libgloo-dev');
  if (forTests && systemLibTorch) wanted.push('python3-torchvision');
  // A real terminal (tmux) for the progress-line test, a browser (chromium) for the report and the browser example's
  // tests, and iproute2 for the two-machine test's network namespaces.
  if (forTests) wanted.push('tmux', 'chromium', 'iproute2');
  const missing = debianPackagesMissing(wanted);
  if (missing.length === 0) return;
  if (process.getuid && process.getuid() !== 0) {
    log(`missing Debian packages: ${missing.join(' ')}; run as root: apt-get install -y ${missing.join(' ')}`);
    return;
  }
  log(`installing ${missing.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  if (install().status !== 0) {
    run('apt-get', ['update', '-q'], { env });
    if (install().status !== 0) throw new Error(`apt-get install ${missing.join(' ')} failed`);
  }
}

function ensureNodeModules() {
  const marker = path.join(ROOT, 'node_modules', '.package-lock.json');
  const lock = path.join(ROOT, 'package-lock.json');
  if (fs.existsSync(marker) && fs.statSync(marker).mtimeMs >= fs.statSync(lock).mtimeMs) return;
  log('installing npm dependencies (npm ci)');
  // onnxruntime-node (a devDependency: the tests run exported ONNX models with it) would download its CUDA provider
  // from NuGet at install where npm runs install scripts; the tests use its bundled CPU build.
  run('npm', ['ci', '--no-audit', '--no-fund'], { env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' } });
}

/** Loads the binary that require('simclr') would, in a child process (one that aborts cannot take setup down). */
function loads() {
  const probe = spawnSync(process.execPath, ['-e', "const b = require('./scripts/binary'); b.loadBinary(b.chooseBinary())"],
    { cwd: ROOT, encoding: 'utf8' });
  return probe.status === 0 ? undefined : (probe.stderr.trim().split('\n').find((l) => l.includes('Error')) ?? `exit ${probe.status}`);
}

function ensureNativeBinary() {
  const { findLibTorch } = require('./libtorch');
  const { sourceHash } = require('./source-hash');
  const { buildNative } = require('./build-native');
  const { matchingPrebuild, paths, readStamp } = require('./binary');
  const found = findLibTorch();
  let reason;
  if (fs.existsSync(paths().sourceBuild)) {
    // A stale source build is rebuilt; a stale prebuild is not (the prebuild test reports it: run `npm run prebuild`).
    if (readStamp()?.libDir !== found.libDir) reason = `the source build links another LibTorch than ${found.how}`;
    else if (readStamp()?.sourceHash !== sourceHash()) reason = 'native sources changed';
  } else if (!matchingPrebuild(found)) {
    reason = `no prebuild fits LibTorch ${found.version} (${found.how})`;
  }
  if (!reason) {
    const failure = loads();
    if (failure) reason = `the binary does not load: ${failure}`;
  }
  if (reason) {
    log(`building the native addon (${reason})`);
    buildNative({ libtorch: found });
  }
}

/**
 * The Python packages the tests use as oracles for files we write (exported ONNX models, TensorBoard event files), in a
 * venv of their own: pip torch's venv is not always there, and Debian's python3-onnx (1.12) cannot read opset 17.
 */
const PYTHON_TOOLS = ['onnx==1.23.2', 'onnxruntime==1.32.0', 'tensorboard==2.21.0'];

function ensurePythonTools() {
  const venv = path.join(ROOT, '.venv-tools');
  const python = path.join(venv, 'bin', 'python');
  const stamp = path.join(venv, 'simclr-tools.txt');
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === PYTHON_TOOLS.join('\n')) return;
  log(`installing the Python test tools in .venv-tools (${PYTHON_TOOLS.join(', ')})`);
  fs.rmSync(venv, { recursive: true, force: true });
  run('python3', ['-m', 'venv', venv]);
  run(python, ['-m', 'pip', 'install', '-q', '--no-cache-dir', '--disable-pip-version-check', ...PYTHON_TOOLS]);
  fs.writeFileSync(stamp, PYTHON_TOOLS.join('\n'));
}

try {
  ensureSystemPackages();
  ensureNodeModules();
  ensureNativeBinary();
  run(process.execPath, [path.join(__dirname, 'build-ts.js'), '--if-stale']);
  if (forTests) ensurePythonTools();
} catch (err) {
  log(err.message);
  process.exit(1);
}
