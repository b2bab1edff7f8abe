'use strict';
// `npm run bench -- <name>` runs bench/<name>.js; with no name it lists them.
const fs = require('fs');
const path = require('path');

const name = process.argv[2];
const available = fs.readdirSync(__dirname).filter((f) => f.endsWith('.js') && !['run.js', 'common.js'].includes(f)).map((f) => f.slice(0, -3));
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <${available.join(' | ')}>`);
  process.exit(name ? 1 : 0);
}
require(path.join(__dirname, `${name}.js`));
