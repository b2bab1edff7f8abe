'use strict';
// `npm run prebuild`: builds prebuilds/linux-x64/simclr.node against the system LibTorch (Debian libtorch-dev) with
// prebuildify, from a clean build folder so nothing of an earlier build against another LibTorch leaks in.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');
const env = { ...process.env };
delete env.LIBTORCH;
delete env.LIBTORCH_USE_PYTORCH;

fs.rmSync(path.join(ROOT, 'build'), { recursive: true, force: true });
const prebuildify = require.resolve('prebuildify/bin.js');
const run = spawnSync(process.execPath, [prebuildify, '--napi', '--strip', '-t', process.versions.node,
  '--node-gyp', path.join(__dirname, 'prebuildify-shim.js')], { cwd: ROOT, env, stdio: 'inherit' });
process.exit(run.status ?? 1);
