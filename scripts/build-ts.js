'use strict';
// The TypeScript build (dist/, which npm pack ships) from an empty folder: a module whose source was deleted or renamed
// would otherwise stay in dist/ and be packed. `npm run build:ts` (and so prepack) and scripts/setup.js run it.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');
fs.rmSync(path.join(ROOT, 'dist'), { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
process.exit(tsc.status ?? 1);
