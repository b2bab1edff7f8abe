'use strict';
// Source build of the addon with cmake-js against the LibTorch that scripts/libtorch.js finds. Writes
// build/Release/simclr.node (which node-gyp-build prefers over prebuilds/) and build/libtorch.json (what it linked).
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { findLibTorch } = require('./libtorch');
const { readStamp, writeStamp } = require('./binary');

const ROOT = path.join(__dirname, '..');

function buildNative({ quiet = false } = {}) {
  const libtorch = findLibTorch(); // throws the one error that lists every option
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const jobs = String(Math.max(1, require('os').availableParallelism()));
  // A different LibTorch than the last build's needs a fresh configure; otherwise an incremental build is enough.
  const sameLibTorch = readStamp()?.libDir === libtorch.libDir;
  if (!sameLibTorch) fs.rmSync(path.join(ROOT, 'build'), { recursive: true, force: true });
  const args = [cmakeJs, 'compile', '--directory', ROOT, '--out', path.join(ROOT, 'build'), '--config', 'Release',
    '--parallel', jobs];
  // Recorded before building, so that a failed compile is retried incrementally rather than from scratch.
  writeStamp(libtorch);
  if (!quiet) process.stderr.write(`simclr: building the native addon against ${libtorch.source} LibTorch ${libtorch.version} (${libtorch.libDir})\n`);
  const run = spawnSync(process.execPath, args, { cwd: ROOT, stdio: quiet ? 'pipe' : 'inherit', env: process.env });
  if (run.status !== 0) {
    const output = quiet ? `\n${run.stdout}\n${run.stderr}` : '';
    throw new Error(`simclr: the native build failed (cmake-js exit ${run.status}).${output}`);
  }
  return libtorch;
}

module.exports = { buildNative };
if (require.main === module) {
  try {
    buildNative();
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
