#!/usr/bin/env node
'use strict';
// prebuildify always spawns "node-gyp rebuild ..."; this stands in for node-gyp and runs the cmake-js build instead
// (cmake-js needs no Node headers download). prebuildify then picks build/Release/simclr.node up.
const { buildNative } = require('./build-native');

try {
  buildNative();
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}
