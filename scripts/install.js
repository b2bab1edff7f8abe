'use strict';
// `npm rebuild simclr`: a source build against the LibTorch found, where one is wanted. The binary is chosen when the
// package is loaded (scripts/binary.js), so installing needs no script: during `npm install` (npm 10 and 11 still run
// this hook; npm 12 and pnpm 10 run none) it builds nothing and never fails, and the require that follows names any
// mismatch and the ways out. `npm rebuild simclr` builds when no prebuild fits the LibTorch found, when a source build
// exists already (rebuilt), or with --build-from-source; a failed build is its exit status.
const fs = require('fs');
const { findLibTorch } = require('./libtorch');
const { buildNative } = require('./build-native');
const { matchingPrebuild, paths } = require('./binary');

const installing = process.env.npm_lifecycle_event === 'install' && process.env.npm_command !== 'rebuild';
const say = (message) => process.stderr.write(`simclr: ${message}\n`);

try {
  const found = findLibTorch();
  const prebuild = matchingPrebuild(found);
  const fromSource = process.env.npm_config_build_from_source === 'true';
  if (!fromSource && prebuild && !fs.existsSync(paths().sourceBuild)) {
    say(`the prebuilt binary ${prebuild.file} fits LibTorch ${found.version} (${found.how}); nothing to build ` +
      '(npm rebuild simclr --build-from-source builds anyway)');
  } else if (installing && !fromSource) {
    say(`no prebuilt binary fits LibTorch ${found.version} (${found.how}): npm rebuild simclr makes a source build (needs cmake and g++)`);
  } else {
    buildNative({ libtorch: found });
  }
} catch (err) {
  say(err.message);
  if (!installing) process.exit(1);
}
