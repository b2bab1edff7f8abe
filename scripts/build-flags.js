'use strict';
// How the addon is compiled (sources, include folders, defines, C++ standard, linker flags) against a LibTorch: the one
// place that says it. CMakeLists.txt and binding.gyp both ask this file, so the two builds cannot drift apart
// (test/build-files.test.ts). The LibTorch is the one the build chose (scripts/build-native.js records it in the file
// SIMCLR_BUILD_LIBTORCH names), else the one scripts/libtorch.js finds.
const fs = require('fs');
const path = require('path');
const { findLibTorch, LibTorchNotFound, SYSTEM_INCLUDE, SYSTEM_LIB_DIRS } = require('./libtorch');

const ROOT = path.join(__dirname, '..');
const NATIVE = path.join(ROOT, 'native');

/** The first of `dirs` that holds `file`, or undefined. */
function findIn(dirs, file) {
  return dirs.find((dir) => fs.existsSync(path.join(dir, file)));
}

/**
 * c10d's Gloo headers (ProcessGroupGloo.hpp includes <gloo/...>). LibTorch ships only its own c10d headers: Debian's
 * libgloo-dev (/usr/include/gloo) supplies Gloo's, for the system LibTorch and for pip torch alike (the headers only
 * declare what ProcessGroupGloo's interface names, behind pointers). GLOO_INCLUDE_DIR points elsewhere.
 */
function glooIncludes(lt, env) {
  const dirs = [env.GLOO_INCLUDE_DIR, lt.includeDir, SYSTEM_INCLUDE].filter(Boolean);
  const dir = findIn(dirs, path.join('gloo', 'algorithm.h'));
  if (!dir) {
    throw new LibTorchNotFound(['c10d\'s Gloo headers were not found (gloo/algorithm.h), which the distributed training step needs:',
      '  on Debian/Ubuntu: apt-get install libgloo-dev      or set GLOO_INCLUDE_DIR to a folder holding gloo/'].join('\n'));
  }
  return dir === SYSTEM_INCLUDE || dir === lt.includeDir ? [] : [dir];
}

/**
 * The include folders for c10d's NCCL backend, or a reason why it is left out. Only a CUDA LibTorch has it, and its
 * headers need a complete CUDA toolkit (cuda_runtime.h with crt/) and nccl.h: CUDA_INCLUDE_DIRS (':'-separated),
 * CUDA_HOME, CUDA_PATH, /usr/local/cuda, pip's nvidia packages next to torch (nvidia-cuda-nvcc brings crt/);
 * NCCL_INCLUDE_DIR for nccl.h. SIMCLR_NCCL=0 leaves it out.
 */
function ncclIncludes(lt, env) {
  if (!lt.cuda) return { dirs: [], reason: 'this LibTorch has no CUDA' };
  if (env.SIMCLR_NCCL === '0') return { dirs: [], reason: 'SIMCLR_NCCL=0' };
  const nvidia = path.join(path.dirname(lt.root), 'nvidia');
  const pip = fs.existsSync(nvidia) ? fs.readdirSync(nvidia).map((d) => path.join(nvidia, d, 'include')).filter((d) => fs.existsSync(d)) : [];
  const toolkit = (env.CUDA_INCLUDE_DIRS ? env.CUDA_INCLUDE_DIRS.split(':') : [env.CUDA_HOME, env.CUDA_PATH, '/usr/local/cuda']
    .filter(Boolean).map((d) => path.join(d, 'include'))).filter((d) => fs.existsSync(d));
  const cudaDirs = [...toolkit, ...pip];
  if (!findIn(cudaDirs, 'cuda_runtime.h') || !findIn(cudaDirs, path.join('crt', 'host_config.h'))) {
    return { dirs: [], reason: 'no complete CUDA toolkit headers (cuda_runtime.h and crt/host_config.h; set CUDA_HOME, or pip install nvidia-cuda-nvcc)' };
  }
  const nccl = findIn([env.NCCL_INCLUDE_DIR, ...cudaDirs, SYSTEM_INCLUDE].filter(Boolean), 'nccl.h');
  if (!nccl) return { dirs: [], reason: 'nccl.h not found (set NCCL_INCLUDE_DIR)' };
  return { dirs: [...new Set([...cudaDirs, ...(nccl === SYSTEM_INCLUDE ? [] : [nccl])])], reason: undefined };
}

/**
 * Whether libjpeg(-turbo)'s header and library are on the system (Debian: libjpeg62-turbo-dev; Debian's LibTorch links
 * libjpeg.so.62 already). With them the addon decodes JPEGs itself (native/core/image_decode.cc); without, sharp does.
 */
function hasLibJpeg() {
  return fs.existsSync(path.join(SYSTEM_INCLUDE, 'jpeglib.h')) &&
    SYSTEM_LIB_DIRS.some((dir) => fs.existsSync(path.join(dir, 'libjpeg.so')));
}

/** The addon's C++ sources: native/core (compute) and native/bind (N-API glue), relative to the package root. */
function nativeSources() {
  return ['core', 'bind'].flatMap((dir) => fs.readdirSync(path.join(NATIVE, dir)).filter((f) => f.endsWith('.cc')).sort()
    .map((f) => `native/${dir}/${f}`));
}

/**
 * The LibTorch of this build, completed with what only a build needs (C++ standard, libraries to link, Gloo and NCCL
 * headers). `prebuild` builds leave out the RUNPATH (the loader makes the LibTorch's libraries resolvable) and use
 * libjpeg only when the description says so (`jpeg`).
 */
function buildLibTorch(env = process.env) {
  const lt = env.SIMCLR_BUILD_LIBTORCH ? JSON.parse(fs.readFileSync(env.SIMCLR_BUILD_LIBTORCH, 'utf8')) : findLibTorch(env);
  const aten = path.join(lt.includeDir, 'ATen', 'ATen.h');
  if (!fs.existsSync(aten)) {
    throw new LibTorchNotFound(`The LibTorch found (${lt.how}, ${lt.libDir}) has no C++ headers (${aten}), which a source build needs` +
      (lt.source === 'system' ? ': apt-get install libtorch-dev' : ''));
  }
  const libs = fs.readdirSync(lt.libDir);
  const has = (name) => libs.some((f) => f === `lib${name}.so` || f.startsWith(`lib${name}.so.`));
  const nccl = ncclIncludes(lt, env);
  return {
    ...lt,
    // Newer LibTorch headers refuse to compile below C++20 (ATen.h says so); older ones are fine with C++17.
    cxxStandard: fs.readFileSync(aten, 'utf8').includes('C++20 or later') ? 20 : 17,
    jpeg: lt.jpeg ?? hasLibJpeg(),
    rpath: !lt.prebuild && lt.source !== 'system',
    glooIncludes: glooIncludes(lt, env),
    nccl: nccl.reason === undefined,
    ncclIncludes: nccl.dirs,
    ...(nccl.reason ? { ncclMissing: nccl.reason } : {}),
    // Linking torch_cuda (with --no-as-needed) registers the CUDA backend; code stays device-agnostic ATen.
    libraries: ['torch', 'torch_cpu', 'c10', ...(lt.cuda ? ['torch_cuda', 'c10_cuda'] : [])].filter(has),
  };
}

/** Compiler and linker flags, shared by CMakeLists.txt and binding.gyp so both builds agree. */
function buildFlags(lt) {
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
    ...(lt.jpeg ? ['SIMCLR_WITH_LIBJPEG=1'] : []),
  ];
  const ldflags = [
    `-L${lt.libDir}`,
    '-Wl,-z,now', // an ABI mismatch then fails at require(), not at the first error path
    // CMake puts these flags before the objects, so a library linked "as needed" would be dropped unseen and its symbols
    // left to whatever the LibTorch happens to load (Debian's links libjpeg; pip's does not): all are needed.
    '-Wl,--no-as-needed',
    ...lt.libraries.map((l) => `-l${l}`),
    ...(lt.jpeg ? ['-ljpeg'] : []),
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
    cflags: ['-O2', '-Wall', '-Wno-unused-parameter', '-fvisibility=hidden',
      // A prebuild names no folder of the machine that built it (__FILE__ in LibTorch's checks becomes a relative path).
      // Of several maps that match, GCC applies the last: the LibTorch folder (perhaps inside the checkout) comes last.
      ...(lt.prebuild ? [`-ffile-prefix-map=${ROOT}/=`, `-ffile-prefix-map=${lt.includeDir}/=libtorch/include/`] : [])],
  };
}

module.exports = { buildLibTorch, buildFlags, hasLibJpeg, nativeSources };

if (require.main === module) {
  // CLI for the build files: `node scripts/build-flags.js json | sources|includes|defines|ldflags|std|cxxStandard|cflags
  // [--cmake]` (space-separated for gyp, ';'-separated CMake lists with --cmake).
  try {
    const lt = buildLibTorch();
    const flags = buildFlags(lt);
    const what = process.argv[2] || 'json';
    if (what === 'json') process.stdout.write(JSON.stringify({ ...lt, ...flags }, null, 2) + '\n');
    else process.stdout.write(flags[what].join(process.argv.includes('--cmake') ? ';' : ' ') + '\n');
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
