'use strict';
// Source build of the addon with cmake-js against a LibTorch (by default the one scripts/libtorch.js finds): what
// `npm rebuild simclr` runs when no prebuild fits. Writes <out>/Release/simclr.node and <out>/libtorch.json (the
// stamp: the LibTorch it linked), which CMake's calls to scripts/build-flags.js read, so the whole build uses the one
// LibTorch chosen here. `npm run prebuild` builds each prebuild with it too, into a folder of its own.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { findLibTorch } = require('./libtorch');
const { sourceHash } = require('./source-hash');

const ROOT = path.join(__dirname, '..');

function readJson(file) {
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
}

/**
 * Builds against `libtorch` (found when not given) into `out`. `prebuild: true` leaves out the RUNPATH; `jpeg` overrides
 * whether libjpeg is linked. Returns the stamp.
 */
function buildNative({ libtorch = findLibTorch(), out = path.join(ROOT, 'build'), prebuild = false, jpeg, quiet = false } = {}) {
  const stampFile = path.join(out, 'libtorch.json');
  const stamp = { ...libtorch, prebuild, ...(jpeg === undefined ? {} : { jpeg }) };
  // A different LibTorch than the last build's needs a fresh configure; otherwise an incremental build is enough.
  const last = readJson(stampFile);
  if (!last || last.libDir !== stamp.libDir || last.prebuild !== stamp.prebuild || last.jpeg !== stamp.jpeg) {
    fs.rmSync(out, { recursive: true, force: true });
  }
  // Recorded before building, so that a failed compile is retried incrementally rather than from scratch.
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(stampFile, JSON.stringify(stamp, null, 2));
  // `build`, not `compile`: compile retries a failed build from an empty folder, which deletes the stamp.
  const args = [require.resolve('cmake-js/bin/cmake-js'), 'build', '--directory', ROOT, '--out', out, '--config', 'Release',
    '--parallel', String(Math.max(1, os.availableParallelism()))];
  if (!quiet) process.stderr.write(`simclr: building the native addon against LibTorch ${libtorch.version} (${libtorch.how}, ${libtorch.libDir})\n`);
  const run = spawnSync(process.execPath, args, {
    cwd: ROOT, stdio: quiet ? 'pipe' : 'inherit', encoding: 'utf8', env: { ...process.env, SIMCLR_BUILD_LIBTORCH: stampFile },
  });
  if (run.status !== 0) {
    const output = quiet ? `\n${run.stdout}\n${run.stderr}` : '';
    throw new Error(`simclr: the native build failed (cmake-js exit ${run.status}).${output}`);
  }
  // The sources it was built from, for setup's staleness check; written only once the build succeeded.
  const built = { ...stamp, sourceHash: sourceHash() };
  fs.writeFileSync(stampFile, JSON.stringify(built, null, 2));
  return built;
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
