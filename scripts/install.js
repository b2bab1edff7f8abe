'use strict';
// npm install hook: `node-gyp-build-test || <source build>`, except that an explicitly chosen LibTorch (LIBTORCH,
// LIBTORCH_USE_PYTORCH) always gets a source build, since the prebuilt binary targets the system LibTorch.
const { explicitLibTorchRequested } = require('./libtorch');
const { buildNative } = require('./build-native');
const { probeBinary } = require('./binary');

if (explicitLibTorchRequested() || !probeBinary()) {
  try {
    buildNative();
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
