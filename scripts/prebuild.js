'use strict';
// `npm run prebuild [-- <name> ...]`: builds the prebuilt binaries of scripts/prebuild-targets.js (all, or those named)
// on a clean Debian machine: installs each LibTorch (apt, or pip into .prebuild/<name>), builds against it into
// build/prebuild-<name>, strips it into prebuilds/linux-x64/<name>.node and describes it in prebuilds.json. Also
// compiles preload.node, the loader's helper (native/preload/preload.c), which links nothing of LibTorch.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { findLibTorch, fromSystem } = require('./libtorch');
const { buildLibTorch, hasLibJpeg } = require('./build-flags');
const { buildNative } = require('./build-native');
const { paths } = require('./binary');
const { sourceHash } = require('./source-hash');
const TARGETS = require('./prebuild-targets');

const ROOT = path.join(__dirname, '..');
const OUT = paths(ROOT).prebuilds;
const log = (message) => process.stderr.write(`simclr prebuild: ${message}\n`);

function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...options });
  if (result.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed with exit code ${result.status ?? result.signal}`);
  return result.stdout ?? '';
}

/** A venv with the target's torch and the CUDA headers of its CUDA release; reused when it already has them. */
function pipLibTorch(target) {
  const venv = path.join(ROOT, '.prebuild', target.name);
  const python = path.join(venv, 'bin', 'python');
  const pip = (...args) => run(python, ['-m', 'pip', 'install', '-q', '--no-cache-dir', ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  const installed = (dist) => spawnSync(python, ['-c', `import importlib.metadata as m; print(m.version("${dist}"))`], { encoding: 'utf8' });
  if (!fs.existsSync(python)) run('python3', ['-m', 'venv', venv]);
  const wanted = target.pip.match(/^torch==(.*)$/)[1].replace('.*', '');
  const torch = installed('torch');
  if (torch.status !== 0 || !torch.stdout.startsWith(wanted)) {
    log(`${target.name}: pip install ${target.pip} into ${venv}`);
    pip(target.pip);
  }
  // nvidia-cuda-runtime[-cuNN] brings cuda_runtime.h; nvidia-cuda-nvcc (crt/host_config.h) and nvidia-cuda-cccl
  // (libcu++'s nv/target, which cuda_fp16.h includes) complete the headers c10d's NCCL backend needs. Those two are
  // taken from the same CUDA release (major.minor: the wheels' patch numbers differ) unless torch brought them.
  const runtime = run(python, ['-c', 'import importlib.metadata as m, json; print(json.dumps([[d.metadata["Name"], d.version] ' +
    'for d in m.distributions() if d.metadata["Name"].lower().replace("_", "-").startswith("nvidia-cuda-runtime")]))']);
  const [[name, version] = []] = JSON.parse(runtime);
  if (name) {
    const release = version.split('.').slice(0, 2).join('.');
    for (const part of ['nvcc', 'cccl']) {
      const dist = name.toLowerCase().replace(/_/g, '-').replace('nvidia-cuda-runtime', `nvidia-cuda-${part}`);
      if (installed(dist).status !== 0) pip(`${dist}==${release}.*`);
    }
  }
  const libtorch = findLibTorch({ PATH: process.env.PATH, HOME: process.env.HOME, PYTHON: python, LIBTORCH_USE_PYTORCH: '1', SIMCLR_LIBTORCH_CACHE: '0' });
  // torch/version.py has the wheel's full version (2.15.0+cu132); pip's metadata leaves out the CUDA release.
  const full = fs.readFileSync(path.join(libtorch.root, 'version.py'), 'utf8').match(/__version__\s*(?::\s*str\s*)?=\s*['"]([^'"]+)/)?.[1];
  return { libtorch, jpeg: false, builtAgainst: `pip torch ${full ?? libtorch.version}` };
}

function aptLibTorch(target) {
  const status = spawnSync('dpkg-query', ['-W', '-f=${Version}', target.apt], { encoding: 'utf8' });
  if (status.status !== 0 || !status.stdout) {
    log(`${target.name}: apt-get install ${target.apt} libjpeg62-turbo-dev`);
    run('apt-get', ['install', '-y', '-q', '--no-install-recommends', target.apt, 'libjpeg62-turbo-dev'], { stdio: 'inherit' });
  }
  const libtorch = fromSystem();
  if (!libtorch) throw new Error(`${target.apt} is installed but no system libtorch_cpu.so was found`);
  if (!hasLibJpeg()) throw new Error('the Debian prebuild decodes JPEGs natively: apt-get install libjpeg62-turbo-dev');
  const version = spawnSync('dpkg-query', ['-W', '-f=${Version}', target.apt], { encoding: 'utf8' }).stdout;
  return { libtorch, jpeg: true, builtAgainst: `Debian ${target.apt} ${version}` };
}

/** DT_NEEDED and RUNPATH of an ELF file, read with readelf. */
function dynamicSection(file) {
  const text = run('readelf', ['-d', file]);
  return {
    needed: [...text.matchAll(/\(NEEDED\)\s+Shared library: \[(.*)\]/g)].map((m) => m[1]),
    runpath: [...text.matchAll(/\((?:RUNPATH|RPATH)\)\s+Library (?:runpath|rpath): \[(.*)\]/g)].map((m) => m[1]),
  };
}

function buildTarget(target) {
  const { libtorch, jpeg, builtAgainst } = target.pip ? pipLibTorch(target) : aptLibTorch(target);
  const out = path.join(ROOT, 'build', `prebuild-${target.name}`);
  log(`${target.name}: building against LibTorch ${libtorch.version} (${builtAgainst})`);
  buildNative({ libtorch, out, prebuild: true, jpeg });
  const described = buildLibTorch({ ...process.env, SIMCLR_BUILD_LIBTORCH: path.join(out, 'libtorch.json') });
  const file = `${target.name}.node`;
  fs.mkdirSync(OUT, { recursive: true });
  fs.copyFileSync(path.join(out, 'Release', 'simclr.node'), path.join(OUT, file));
  run('strip', ['--strip-all', path.join(OUT, file)]);
  const { needed, runpath } = dynamicSection(path.join(OUT, file));
  if (runpath.length) throw new Error(`${file} has a RUNPATH (${runpath.join(':')}): a prebuild must find its LibTorch through the loader`);
  return {
    name: target.name,
    file,
    libtorchVersion: libtorch.version,
    cxx11abi: libtorch.cxx11abi,
    cuda: libtorch.cuda,
    nccl: described.nccl,
    jpeg,
    builtAgainst,
    ...(target.pip ? { pip: target.pip } : {}),
    libtorchLibraries: needed.filter((lib) => /^lib(torch|c10)/.test(lib)),
    otherLibraries: needed.filter((lib) => !/^lib(torch|c10)/.test(lib)),
    sourceHash: sourceHash(),
  };
}

function buildPreloader() {
  const headers = path.join(path.dirname(require.resolve('node-api-headers/package.json')), 'include');
  const out = path.join(OUT, 'preload.node');
  fs.mkdirSync(OUT, { recursive: true });
  run('cc', ['-shared', '-fPIC', '-O2', '-Wall', '-DNAPI_VERSION=8', '-DNODE_GYP_MODULE_NAME=preload', `-I${headers}`,
    path.join(ROOT, 'native', 'preload', 'preload.c'), '-o', out]);
  run('strip', ['--strip-all', out]);
}

function main() {
  const names = process.argv.slice(2);
  const unknown = names.filter((n) => !TARGETS.some((t) => t.name === n));
  if (unknown.length) throw new Error(`unknown prebuild ${unknown.join(', ')}; the targets are ${TARGETS.map((t) => t.name).join(', ')}`);
  const manifestFile = paths(ROOT).manifest;
  const kept = fs.existsSync(manifestFile) ? JSON.parse(fs.readFileSync(manifestFile, 'utf8')).prebuilds : [];
  buildPreloader();
  const built = new Map();
  for (const target of TARGETS.filter((t) => names.length === 0 || names.includes(t.name))) built.set(target.name, buildTarget(target));
  // In the targets' order; a target not rebuilt this time keeps its entry, a target no longer listed loses it.
  const prebuilds = TARGETS.map((t) => built.get(t.name) ?? kept.find((p) => p.name === t.name)).filter(Boolean);
  for (const stale of fs.readdirSync(OUT).filter((f) => f.endsWith('.node') && f !== 'preload.node' && !prebuilds.some((p) => p.file === f))) {
    fs.rmSync(path.join(OUT, stale));
  }
  fs.writeFileSync(manifestFile, JSON.stringify({ platform: path.basename(OUT), prebuilds }, null, 2) + '\n');
  for (const p of prebuilds) log(`${p.file}: LibTorch ${p.libtorchVersion}, ${(fs.statSync(path.join(OUT, p.file)).size / 2 ** 20).toFixed(1)} MiB`);
}

try {
  main();
} catch (err) {
  log(err.message);
  process.exit(1);
}
