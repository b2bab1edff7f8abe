'use strict';
// Finds the LibTorch that a source build compiles and links against. One order, one error (like tch-rs):
//   1. LIBTORCH=<folder>            a libtorch distribution (include/ and lib/ inside)
//   2. LIBTORCH_USE_PYTORCH=1       the LibTorch inside Python's `torch` package (pip, conda), found with
//                                   $PYTHON or python3
//   3. the system's LibTorch        Debian's libtorch-dev (headers in /usr/include, libraries on the default path)
// Also the one place that says how the addon is compiled (sources, include folders, defines, C++ standard, linker
// flags): CMakeLists.txt and binding.gyp both ask this file, so the two builds cannot drift apart.
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const ROOT = path.join(__dirname, '..');
const NATIVE = path.join(ROOT, 'native');
const SYSTEM_INCLUDE = '/usr/include';
const SYSTEM_LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'];

class LibTorchNotFound extends Error {}

function howToChoose(reason) {
  return [
    `No usable LibTorch: ${reason}`,
    'simclr looks for LibTorch in this order:',
    '  1. LIBTORCH=/path/to/libtorch        a libtorch folder (with include/ and lib/)',
    '  2. LIBTORCH_USE_PYTORCH=1            the LibTorch inside Python torch (pip install torch); PYTHON picks the interpreter',
    '  3. the system LibTorch               on Debian/Ubuntu: apt-get install libtorch-dev libopenblas0-openmp',
  ].join('\n');
}

function readVersionHeader(includeDir) {
  const header = path.join(includeDir, 'torch', 'csrc', 'api', 'include', 'torch', 'version.h');
  if (!fs.existsSync(header)) return undefined;
  const text = fs.readFileSync(header, 'utf8');
  const field = (name) => (text.match(new RegExp(`#define TORCH_VERSION_${name} (\\d+)`)) || [])[1];
  const [major, minor, patch] = ['MAJOR', 'MINOR', 'PATCH'].map(field);
  return major === undefined ? undefined : `${major}.${minor}.${patch}`;
}

function fromFolder(root, source) {
  const includeDir = path.join(root, 'include');
  const libDir = path.join(root, 'lib');
  if (!fs.existsSync(path.join(includeDir, 'ATen', 'ATen.h'))) {
    throw new LibTorchNotFound(howToChoose(`${source} points at ${root}, which has no include/ATen/ATen.h`));
  }
  if (!fs.readdirSync(libDir).some((f) => f.startsWith('libtorch_cpu.'))) {
    throw new LibTorchNotFound(howToChoose(`${source} points at ${root}, whose lib/ has no libtorch_cpu`));
  }
  return describe({ source, root, includeDir, libDir, rpath: true });
}

function fromPython() {
  const python = process.env.PYTHON || 'python3';
  let info;
  try {
    const code = 'import json, os, torch; print(json.dumps({"root": os.path.dirname(torch.__file__), ' +
      '"abi": int(torch._C._GLIBCXX_USE_CXX11_ABI), "version": torch.__version__, "cuda": torch.version.cuda}))';
    info = JSON.parse(execFileSync(python, ['-c', code], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  } catch (err) {
    throw new LibTorchNotFound(howToChoose(`LIBTORCH_USE_PYTORCH=1 but \`${python} -c "import torch"\` failed: ${err.message.split('\n')[0]}`));
  }
  const found = fromFolder(info.root, 'LIBTORCH_USE_PYTORCH');
  return { ...found, version: info.version.split('+')[0], cxx11abi: info.abi === 1, python };
}

function fromSystem() {
  if (!fs.existsSync(path.join(SYSTEM_INCLUDE, 'ATen', 'ATen.h'))) {
    throw new LibTorchNotFound(howToChoose('LIBTORCH is unset, LIBTORCH_USE_PYTORCH is unset, and no system LibTorch headers are in /usr/include'));
  }
  const libDir = SYSTEM_LIB_DIRS.find((dir) => fs.existsSync(dir) && fs.readdirSync(dir).some((f) => f.startsWith('libtorch_cpu.so')));
  if (!libDir) throw new LibTorchNotFound(howToChoose('system LibTorch headers exist but libtorch_cpu.so was not found'));
  return describe({ source: 'system', root: '/usr', includeDir: SYSTEM_INCLUDE, libDir, rpath: false });
}

/** The first of `dirs` that holds `file`, or undefined. */
function findIn(dirs, file) {
  return dirs.find((dir) => fs.existsSync(path.join(dir, file)));
}

/**
 * c10d's Gloo headers (ProcessGroupGloo.hpp includes <gloo/...>). LibTorch ships only its own c10d headers: Debian's
 * libgloo-dev (/usr/include/gloo) supplies Gloo's, for the system LibTorch and for pip torch alike (the headers only
 * declare what ProcessGroupGloo's interface names, behind pointers). GLOO_INCLUDE_DIR points elsewhere.
 */
function glooIncludes(found, env) {
  const dirs = [env.GLOO_INCLUDE_DIR, found.includeDir, SYSTEM_INCLUDE].filter(Boolean);
  const dir = findIn(dirs, path.join('gloo', 'algorithm.h'));
  if (!dir) {
    throw new LibTorchNotFound(['c10d\'s Gloo headers were not found (gloo/algorithm.h), which the distributed training step needs:',
      '  on Debian/Ubuntu: apt-get install libgloo-dev      or set GLOO_INCLUDE_DIR to a folder holding gloo/'].join('\n'));
  }
  return dir === SYSTEM_INCLUDE || dir === found.includeDir ? [] : [dir];
}

/**
 * The include folders for c10d's NCCL backend, or a reason why it is left out. Only a CUDA LibTorch has it, and its
 * headers need a complete CUDA toolkit (cuda_runtime.h with crt/) and nccl.h: CUDA_INCLUDE_DIRS (':'-separated),
 * CUDA_HOME, CUDA_PATH, /usr/local/cuda, pip's nvidia packages next to torch; NCCL_INCLUDE_DIR for nccl.h.
 * SIMCLR_NCCL=0 leaves it out.
 */
function ncclIncludes(found, env) {
  if (!found.cuda) return { dirs: [], reason: 'this LibTorch has no CUDA' };
  if (env.SIMCLR_NCCL === '0') return { dirs: [], reason: 'SIMCLR_NCCL=0' };
  const nvidia = path.join(path.dirname(found.root), 'nvidia');
  const pip = fs.existsSync(nvidia) ? fs.readdirSync(nvidia).map((d) => path.join(nvidia, d, 'include')).filter((d) => fs.existsSync(d)) : [];
  const toolkit = (env.CUDA_INCLUDE_DIRS ? env.CUDA_INCLUDE_DIRS.split(':') : [env.CUDA_HOME, env.CUDA_PATH, '/usr/local/cuda']
    .filter(Boolean).map((d) => path.join(d, 'include'))).filter((d) => fs.existsSync(d));
  const cudaDirs = [...toolkit, ...pip];
  if (!findIn(cudaDirs, 'cuda_runtime.h') || !findIn(cudaDirs, path.join('crt', 'host_config.h'))) {
    return { dirs: [], reason: 'no complete CUDA toolkit headers (cuda_runtime.h and crt/host_config.h; set CUDA_HOME)' };
  }
  const nccl = findIn([env.NCCL_INCLUDE_DIR, ...cudaDirs, SYSTEM_INCLUDE].filter(Boolean), 'nccl.h');
  if (!nccl) return { dirs: [], reason: 'nccl.h not found (set NCCL_INCLUDE_DIR)' };
  return { dirs: [...new Set([...cudaDirs, ...(nccl === SYSTEM_INCLUDE ? [] : [nccl])])], reason: undefined };
}

function describe(found) {
  const libs = fs.readdirSync(found.libDir);
  const has = (name) => libs.some((f) => f === `lib${name}.so` || f.startsWith(`lib${name}.so.`));
  // Newer LibTorch headers refuse to compile below C++20 (ATen.h says so); older ones are fine with C++17.
  const atenHeader = fs.readFileSync(path.join(found.includeDir, 'ATen', 'ATen.h'), 'utf8');
  const cuda = has('torch_cuda');
  const nccl = ncclIncludes({ ...found, cuda }, process.env);
  return {
    ...found,
    cxxStandard: atenHeader.includes('C++20 or later') ? 20 : 17,
    version: readVersionHeader(found.includeDir),
    cxx11abi: true,
    cuda,
    glooIncludes: glooIncludes(found, process.env),
    nccl: nccl.reason === undefined,
    ncclIncludes: nccl.dirs,
    ...(nccl.reason ? { ncclMissing: nccl.reason } : {}),
    // Linking torch_cuda (with --no-as-needed) registers the CUDA backend; code stays device-agnostic ATen.
    libraries: ['torch', 'torch_cpu', 'c10', ...(has('torch_cuda') ? ['torch_cuda', 'c10_cuda'] : [])].filter(has),
  };
}

/** Returns the LibTorch that a build should use, or throws LibTorchNotFound listing every option. */
function findLibTorch(env = process.env) {
  if (env.LIBTORCH) return fromFolder(path.resolve(env.LIBTORCH), 'LIBTORCH');
  if (env.LIBTORCH_USE_PYTORCH === '1' || env.LIBTORCH_USE_PYTORCH === 'true') return fromPython();
  return fromSystem();
}

/** True when the user asked for a specific LibTorch, so the prebuilt binary (system LibTorch) must not be used. */
function explicitLibTorchRequested(env = process.env) {
  return Boolean(env.LIBTORCH) || env.LIBTORCH_USE_PYTORCH === '1' || env.LIBTORCH_USE_PYTORCH === 'true';
}

/** The addon's C++ sources: native/core (compute) and native/bind (N-API glue), relative to the package root. */
function nativeSources() {
  return ['core', 'bind'].flatMap((dir) => fs.readdirSync(path.join(NATIVE, dir)).filter((f) => f.endsWith('.cc')).sort()
    .map((f) => `native/${dir}/${f}`));
}

/**
 * Whether libjpeg(-turbo)'s header and library are on the system (Debian: libjpeg62-turbo-dev; Debian's LibTorch links
 * libjpeg.so.62 already). With them the addon decodes JPEGs itself (native/core/image_decode.cc); without, sharp does.
 */
function hasLibJpeg() {
  return fs.existsSync(path.join(SYSTEM_INCLUDE, 'jpeglib.h')) &&
    SYSTEM_LIB_DIRS.some((dir) => fs.existsSync(path.join(dir, 'libjpeg.so')));
}

/** Compiler and linker flags, shared by CMakeLists.txt and binding.gyp so both builds agree. */
function buildFlags(lt, jpeg = hasLibJpeg()) {
  // Sources include "core/x.h" and "bind/x.h" from native/.
  const includes = [NATIVE, path.dirname(require.resolve('node-addon-api/package.json')), lt.includeDir,
    path.join(lt.includeDir, 'torch', 'csrc', 'api', 'include'), ...lt.glooIncludes, ...lt.ncclIncludes];
  const defines = [
    `_GLIBCXX_USE_CXX11_ABI=${lt.cxx11abi ? 1 : 0}`,
    ...(lt.cuda ? ['SIMCLR_WITH_CUDA=1'] : []),
    // c10d: Gloo always (CPU); NCCL when the LibTorch has CUDA and the CUDA and NCCL headers were found.
    'USE_C10D_GLOO',
    ...(lt.nccl ? ['USE_C10D_NCCL', 'SIMCLR_WITH_NCCL=1'] : []),
    'NAPI_VERSION=8',
    // Any C++ exception thrown in a callback becomes a JS error instead of aborting the process.
    'NODE_ADDON_API_CPP_EXCEPTIONS',
    'NODE_ADDON_API_CPP_EXCEPTIONS_ALL',
    'NODE_ADDON_API_DISABLE_DEPRECATED',
    ...(jpeg ? ['SIMCLR_WITH_LIBJPEG=1'] : []),
  ];
  const ldflags = [
    `-L${lt.libDir}`,
    '-Wl,-z,now', // an ABI mismatch then fails at require(), not at the first error path
    // CMake puts these flags before the objects, so a library linked "as needed" would be dropped unseen and its symbols
    // left to whatever the LibTorch happens to load (Debian's links libjpeg; pip's does not): all are needed.
    '-Wl,--no-as-needed',
    ...lt.libraries.map((l) => `-l${l}`),
    ...(jpeg ? ['-ljpeg'] : []),
    '-Wl,--as-needed',
    ...(lt.rpath ? [`-Wl,-rpath,${lt.libDir}`] : []),
  ];
  return {
    sources: nativeSources(),
    includes,
    defines,
    ldflags,
    std: [`-std=c++${lt.cxxStandard}`],
    cxxStandard: [String(lt.cxxStandard)],
    cflags: ['-O2', '-Wall', '-Wno-unused-parameter', '-fvisibility=hidden'],
  };
}

module.exports = { findLibTorch, explicitLibTorchRequested, buildFlags, hasLibJpeg, nativeSources, LibTorchNotFound };

if (require.main === module) {
  // CLI for the build files: `node scripts/libtorch.js json | sources|includes|defines|ldflags|std|cxxStandard|cflags [--cmake]`
  // (space-separated for gyp, ';'-separated CMake lists with --cmake).
  try {
    const lt = findLibTorch();
    const flags = buildFlags(lt);
    const what = process.argv[2] || 'json';
    if (what === 'json') process.stdout.write(JSON.stringify({ ...lt, ...flags }, null, 2) + '\n');
    else process.stdout.write(flags[what].join(process.argv.includes('--cmake') ? ';' : ' ') + '\n');
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
