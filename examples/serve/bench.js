#!/usr/bin/env node
'use strict';
/**
 * Requests/s and latency of server.js's POST /embed with each backend, at concurrency 1 and 8: `--pairs` rounds, each
 * starting the LibTorch and the ONNX service in turn (alternating which goes first), one at a time, and running
 * load.js against it for `--seconds` per concurrency. Prints each run, then the median and min-max per line.
 *
 *   node examples/serve/bench.js --checkpoint c.ckpt --model m.onnx --image shirt.png [--pairs 3] [--seconds 10]
 */
const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { parseArgs } = require('util');

const { values: o } = parseArgs({
  options: {
    checkpoint: { type: 'string' }, model: { type: 'string' }, image: { type: 'string' },
    pairs: { type: 'string', default: '3' }, seconds: { type: 'string', default: '10' },
  },
});
if (!o.checkpoint || !o.model || !o.image) throw new Error('usage: bench.js --checkpoint c.ckpt --model m.onnx --image x.png [--pairs 3] [--seconds 10]');

// The service's folder: the image alone (the bank is not what is timed).
const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-serve-bench-'));
fs.copyFileSync(o.image, path.join(folder, path.basename(o.image)));

function start(backend) {
  const source = backend === 'libtorch' ? ['--checkpoint', o.checkpoint] : ['--model', o.model];
  const child = spawn(process.execPath, [path.join(__dirname, 'server.js'), '--backend', backend, ...source, '--images', folder, '--port', '0'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout.once('data', (line) => resolve({ child, url: JSON.parse(String(line).split('\n')[0]).url }));
    child.once('exit', (code) => reject(new Error(`server.js --backend ${backend} exited (${code})`)));
  });
}

const load = (url, concurrency) => JSON.parse(execFileSync(process.execPath, [path.join(__dirname, 'load.js'), '--url', `${url}/embed`,
  '--image', o.image, '--concurrency', String(concurrency), '--seconds', o.seconds], { encoding: 'utf8' }));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

(async () => {
  const runs = [];
  for (let pair = 0; pair < Number(o.pairs); pair++) {
    for (const backend of pair % 2 === 0 ? ['libtorch', 'onnx'] : ['onnx', 'libtorch']) {
      const { child, url } = await start(backend);
      for (const concurrency of [1, 8]) {
        const result = { backend, pair, load: os.loadavg()[0], ...load(url, concurrency) };
        console.log(JSON.stringify(result));
        runs.push(result);
      }
      child.kill();
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }
  console.log('\n| backend | concurrency | requests/s | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- |');
  for (const backend of ['libtorch', 'onnx']) {
    for (const concurrency of [1, 8]) {
      const mine = runs.filter((r) => r.backend === backend && r.concurrency === concurrency);
      const cell = (key) => `${median(mine.map((r) => r[key]))} (${Math.min(...mine.map((r) => r[key]))}–${Math.max(...mine.map((r) => r[key]))})`;
      console.log(`| ${backend} | ${concurrency} | ${cell('requestsPerSecond')} | ${cell('p50ms')} | ${cell('p99ms')} |`);
    }
  }
  fs.rmSync(folder, { recursive: true, force: true });
})().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
