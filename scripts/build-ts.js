'use strict';
// The TypeScript build (dist/, which npm pack ships) from an empty folder: a module whose source was deleted or renamed
// would otherwise stay in dist/ and be packed. `npm run build:ts` (and so prepack) and scripts/setup.js run it.
// With --if-stale (setup.js, so every `npm start` and `npm test`) it does nothing when dist/ was built from the sources
// as they are: a hash of the build's inputs is kept beside node_modules' other caches. tsc takes ~6 s here, which every
// `npm start` paid.
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');
const DIST = path.join(ROOT, 'dist');
const STAMP = path.join(ROOT, 'node_modules', '.cache', 'simclr', 'dist-inputs');

function typeScriptSources(dir) {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((entry) => {
      const file = `${dir}/${entry.name}`;
      if (entry.isDirectory()) return typeScriptSources(file);
      return entry.name.endsWith('.ts') ? [file] : [];
    });
}

/** A hash of what tsc reads to build dist/: the compiler's version, the configs and every source file. */
function inputsHash() {
  const hash = crypto.createHash('sha256');
  hash.update(`typescript ${require('typescript/package.json').version}\0`);
  for (const file of ['tsconfig.json', 'tsconfig.build.json', ...typeScriptSources('src')]) {
    const full = path.join(ROOT, file);
    hash.update(file + '\0');
    hash.update(fs.existsSync(full) ? fs.readFileSync(full) : '(absent)');
    hash.update('\0');
  }
  return hash.digest('hex');
}

function distIsCurrent(hash) {
  const stamp = fs.existsSync(STAMP) ? fs.readFileSync(STAMP, 'utf8').trim() : '';
  return stamp === hash && fs.existsSync(path.join(DIST, 'index.js'));
}

const hash = inputsHash();
if (process.argv.includes('--if-stale') && distIsCurrent(hash)) process.exit(0);
fs.rmSync(STAMP, { force: true });
fs.rmSync(DIST, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
if (tsc.status === 0) {
  fs.mkdirSync(path.dirname(STAMP), { recursive: true });
  fs.writeFileSync(STAMP, hash + '\n');
}
process.exit(tsc.status ?? 1);
