'use strict';
// Facts about the addon binary, written once and read by install (scripts/install.js), setup (scripts/setup.js) and
// `simclr doctor` (src/doctor.ts): which binary loads, whether it loads at all, and which LibTorch it was built with.
//   - A source build (scripts/build-native.js) writes build/Release/simclr.node and records the LibTorch it linked in
//     build/libtorch.json (the stamp).
//   - The committed prebuild (prebuilds/linux-x64/simclr.node) targets the system LibTorch (Debian libtorch-dev).
// node-gyp-build prefers build/Release over prebuilds/.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');
const STAMP = path.join(ROOT, 'build', 'libtorch.json');
const SYSTEM_LIBTORCH = { source: 'system', libDir: '/usr/lib/x86_64-linux-gnu' };

/** True when `binaryPath` is a source build (build/Release) rather than the committed prebuild. */
function isSourceBuild(binaryPath) {
  return binaryPath.includes(`${path.sep}build${path.sep}`);
}

/** Records the LibTorch a source build links against (called by the build before it compiles). */
function writeStamp(libtorch) {
  fs.mkdirSync(path.dirname(STAMP), { recursive: true });
  fs.writeFileSync(STAMP, JSON.stringify(libtorch, null, 2));
}

/** The LibTorch recorded by the last source build, or undefined. */
function readStamp() {
  return fs.existsSync(STAMP) ? JSON.parse(fs.readFileSync(STAMP, 'utf8')) : undefined;
}

/** The LibTorch that `binaryPath` was built against: `{ source, libDir }`. */
function libtorchOf(binaryPath) {
  const stamp = isSourceBuild(binaryPath) ? readStamp() : undefined;
  return stamp ? { source: stamp.source, libDir: stamp.libDir } : SYSTEM_LIBTORCH;
}

/**
 * Loads the binary that node-gyp-build picks, in a child process (a binary that aborts while loading cannot take the
 * caller down), and returns `{ path, sourceHash }`, or undefined when nothing loads.
 */
function probeBinary(root = ROOT) {
  const probe = spawnSync(process.execPath, ['-e',
    `const b = require('node-gyp-build'); const p = b.resolve(${JSON.stringify(root)}); const a = require(p);` +
    'process.stdout.write(JSON.stringify({ path: p, sourceHash: a.buildInfo().sourceHash }))'], { cwd: root, encoding: 'utf8' });
  return probe.status === 0 ? JSON.parse(probe.stdout) : undefined;
}

module.exports = { STAMP, isSourceBuild, writeStamp, readStamp, libtorchOf, probeBinary };
