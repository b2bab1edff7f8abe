'use strict';
// npm install hook: `node-gyp-build-test || <source build>`, except that an explicitly chosen LibTorch (LIBTORCH,
// LIBTORCH_USE_PYTORCH) always gets a source build, since the prebuilt binary targets the system LibTorch.
const path = require('path');
const { spawnSync } = require('child_process');
const { explicitLibTorchRequested } = require('./libtorch');
const { buildNative } = require('./build-native');

function prebuildLoads() {
  // A child process, so a binary that aborts while loading cannot take npm down with it.
  const probe = spawnSync(process.execPath, ['-e', `require('node-gyp-build')(${JSON.stringify(path.join(__dirname, '..'))})`],
    { stdio: 'pipe', encoding: 'utf8' });
  return probe.status === 0;
}

if (explicitLibTorchRequested() || !prebuildLoads()) {
  try {
    buildNative();
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
