#!/usr/bin/env node
'use strict';
/**
 * A small load generator for server.js: `--concurrency` clients on keep-alive connections POST the same image for
 * `--seconds` (after `--warmup` seconds not counted), then it prints requests/s and the p50 and p99 latency as JSON.
 *
 *   node examples/serve/load.js --url http://127.0.0.1:8080/embed --image shirt.png --concurrency 8 --seconds 20
 */
const fs = require('fs');
const http = require('http');
const { parseArgs } = require('util');

const { values: o } = parseArgs({
  options: {
    url: { type: 'string' }, image: { type: 'string' }, concurrency: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '10' }, warmup: { type: 'string', default: '2' },
  },
});
if (!o.url || !o.image) throw new Error('usage: load.js --url http://127.0.0.1:8080/embed --image x.png [--concurrency 1] [--seconds 10] [--warmup 2]');
const body = fs.readFileSync(o.image);
const url = new URL(o.url);
const concurrency = Number(o.concurrency);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

function post() {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function client(until, latencies) {
  while (process.hrtime.bigint() < until) {
    const start = process.hrtime.bigint();
    await post();
    latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
}

async function run(seconds) {
  const latencies = [];
  const start = process.hrtime.bigint();
  const until = start + BigInt(Math.round(seconds * 1e9));
  await Promise.all(Array.from({ length: concurrency }, () => client(until, latencies)));
  return { latencies, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

(async () => {
  await run(Number(o.warmup));
  const { latencies, seconds } = await run(Number(o.seconds));
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  console.log(JSON.stringify({
    url: o.url, concurrency, requests: latencies.length, seconds: Number(seconds.toFixed(2)),
    requestsPerSecond: Number((latencies.length / seconds).toFixed(1)), p50ms: Number(at(0.5).toFixed(2)), p99ms: Number(at(0.99).toFixed(2)),
  }));
  agent.destroy();
})().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
