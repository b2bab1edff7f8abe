'use strict';
// The hash of everything a native build depends on. It is compiled into the addon, so a test can tell whether the
// committed prebuild was built from the native sources in this checkout.
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');

function nativeInputs() {
  const native = ['core', 'bind'].flatMap((dir) => fs.readdirSync(path.join(ROOT, 'native', dir))
    .filter((f) => /\.(cc|h)$/.test(f)).sort().map((f) => `native/${dir}/${f}`));
  // build-flags.js holds the compile flags (defines, standard) of both build files; preload.c is the prebuilds' loader.
  return [...native, 'CMakeLists.txt', 'binding.gyp', 'scripts/build-flags.js', 'native/preload/preload.c'];
}

function sourceHash() {
  const hash = crypto.createHash('sha256');
  for (const file of nativeInputs()) {
    hash.update(file + '\0');
    // Line endings normalised so a checkout with CRLF gives the same hash.
    hash.update(fs.readFileSync(path.join(ROOT, file), 'utf8').replace(/\r\n/g, '\n') + '\0');
  }
  return hash.digest('hex').slice(0, 32);
}

module.exports = { sourceHash, nativeInputs };
if (require.main === module) process.stdout.write(sourceHash() + '\n');
