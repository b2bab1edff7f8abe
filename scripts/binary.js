'use strict';
// Which addon binary loads, and loading it: read by src/native.ts at require('simclr'), by the install and setup
// scripts, and by `simclr doctor`. No install script is needed: the choice happens when the package is loaded.
//   - A source build (`npm rebuild simclr`, scripts/build-native.js) writes build/Release/simclr.node and records the
//     LibTorch it linked in build/libtorch.json (the stamp). It carries a RUNPATH to that LibTorch and wins when present.
//   - Otherwise the prebuild in prebuilds/<platform>-<arch>/ whose LibTorch matches the one scripts/libtorch.js finds:
//     same major.minor version, same C++ ABI, and every LibTorch library it links present. prebuilds.json there (written
//     by `npm run prebuild`) describes each. Prebuilds have no RUNPATH: the matching LibTorch's libraries are loaded by
//     full path first (preload.node), so that the addon's sonames resolve to them.
//   - No match: an error naming what was found, what is prebuilt, and the two ways out, before anything is loaded.
const fs = require('fs');
const path = require('path');
const { findLibTorch, isSystemLibDir } = require('./libtorch');

const ROOT = path.join(__dirname, '..');
const PLATFORM = `${process.platform}-${process.arch}`;

const paths = (root = ROOT) => ({
  sourceBuild: path.join(root, 'build', 'Release', 'simclr.node'),
  stamp: path.join(root, 'build', 'libtorch.json'),
  prebuilds: path.join(root, 'prebuilds', PLATFORM),
  manifest: path.join(root, 'prebuilds', PLATFORM, 'prebuilds.json'),
  preloader: path.join(root, 'prebuilds', PLATFORM, 'preload.node'),
});

/** Records the LibTorch a source build links against (called by the build before it compiles). */
function writeStamp(libtorch, root = ROOT) {
  const { stamp } = paths(root);
  fs.mkdirSync(path.dirname(stamp), { recursive: true });
  fs.writeFileSync(stamp, JSON.stringify(libtorch, null, 2));
}

/** The LibTorch recorded by the last source build, or undefined. */
function readStamp(root = ROOT) {
  const { stamp } = paths(root);
  return fs.existsSync(stamp) ? JSON.parse(fs.readFileSync(stamp, 'utf8')) : undefined;
}

/** The prebuilds of this platform, as `npm run prebuild` described them ([] where there are none). */
function readManifest(root = ROOT) {
  const { manifest } = paths(root);
  return fs.existsSync(manifest) ? JSON.parse(fs.readFileSync(manifest, 'utf8')).prebuilds : [];
}

const majorMinor = (version) => version.split('.').slice(0, 2).join('.');

/** Why `prebuild` does not fit the LibTorch `found`, or undefined when it does. */
function mismatch(prebuild, found) {
  if (majorMinor(prebuild.libtorchVersion) !== majorMinor(found.version)) return `LibTorch ${majorMinor(prebuild.libtorchVersion)}`;
  if (prebuild.cxx11abi !== found.cxx11abi) return `the ${prebuild.cxx11abi ? 'C++11' : 'pre-C++11'} ABI of libstdc++`;
  const missing = prebuild.libtorchLibraries.filter((lib) => !fs.existsSync(path.join(found.libDir, lib)));
  if (missing.length) return `${missing.join(', ')}, which ${found.libDir} lacks${prebuild.cuda ? ' (a CPU-only torch?)' : ''}`;
  return undefined;
}

/** The prebuild that fits the LibTorch `found`, or undefined. */
function matchingPrebuild(found, root = ROOT) {
  return readManifest(root).find((prebuild) => mismatch(prebuild, found) === undefined);
}

const describeFound = (found) => `LibTorch ${found.version} (${found.cxx11abi ? 'C++11 ABI' : 'pre-C++11 ABI'}, ` +
  `${found.cuda ? 'with CUDA' : 'CPU only'}): ${found.how}, ${found.libDir}`;

const describePrebuild = (p) => `${majorMinor(p.libtorchVersion)} (${p.builtAgainst}, ${p.cuda ? 'CUDA' : 'CPU only'})`;

/** The error for a LibTorch that no prebuild fits, with what was found, what is prebuilt and the two ways out. */
function noMatchingBinary(found, root = ROOT) {
  const prebuilds = readManifest(root);
  const near = prebuilds.filter((p) => majorMinor(p.libtorchVersion) === majorMinor(found.version)).map((p) => `    ${p.file} needs ${mismatch(p, found)}`);
  const pip = prebuilds.filter((p) => p.pip).map((p) => `torch==${majorMinor(p.libtorchVersion)}.*`);
  const into = found.python ? `${found.python} -m pip install` : 'pip install';
  const err = new Error([
    'simclr: no prebuilt binary fits the LibTorch found, and there is no source build.',
    `  found:     ${describeFound(found)}`,
    `  prebuilt:  ${prebuilds.length ? prebuilds.map(describePrebuild).join('; ') : 'none for ' + PLATFORM}`,
    ...near,
    'Two ways out:',
    ...(pip.length ? [`  - a torch that has a prebuild:  ${into} ${pip[0]}${pip.length > 1 ? `   (or ${pip.slice(1).join(', ')})` : ''}`] : []),
    '  - a source build against the LibTorch found:  npm rebuild simclr   (needs cmake and g++, and LibTorch\'s C++ headers)',
    'Run `npx simclr doctor` to see the search: LIBTORCH, then the torch of $PYTHON or python3 on PATH, then the system\'s.',
  ].join('\n'));
  err.code = 'SIMCLR_NO_MATCHING_BINARY';
  return err;
}

// Loaded first-to-last: a library's dependencies before it, for folders whose libraries carry no RUNPATH of their own.
const LOAD_ORDER = ['libc10.', 'libc10_cuda.', 'libtorch_cpu.', 'libtorch_cuda.', 'libtorch.'];
const loadRank = (lib) => LOAD_ORDER.findIndex((prefix) => lib.startsWith(prefix));

/**
 * The binary to load: `{ kind: 'source build' | 'prebuilt', path, libtorch, preload }`, where `libtorch` describes the
 * LibTorch it links (from the stamp, or as found) and `preload` lists the libraries to load first. Throws before
 * anything is loaded when no LibTorch is found or no prebuild fits it.
 */
function chooseBinary({ root = ROOT, env = process.env } = {}) {
  const where = paths(root);
  if (fs.existsSync(where.sourceBuild)) {
    return { kind: 'source build', path: where.sourceBuild, libtorch: readStamp(root), preload: [] };
  }
  const found = findLibTorch(env);
  const prebuild = matchingPrebuild(found, root);
  if (!prebuild) throw noMatchingBinary(found, root);
  const preload = isSystemLibDir(found.libDir) ? []
    : [...prebuild.libtorchLibraries].sort((a, b) => loadRank(a) - loadRank(b)).map((lib) => path.join(found.libDir, lib));
  return { kind: 'prebuilt', path: path.join(where.prebuilds, prebuild.file), libtorch: found, prebuild, preload };
}

/** Loads the chosen binary (its LibTorch's libraries first, where they need it) and returns the addon's exports. */
function loadBinary(choice, root = ROOT) {
  if (choice.preload.length) require(paths(root).preloader).preload(choice.preload);
  return require(choice.path);
}

module.exports = { paths, writeStamp, readStamp, readManifest, matchingPrebuild, chooseBinary, loadBinary, noMatchingBinary, majorMinor };
