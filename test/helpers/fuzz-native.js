'use strict';
// Random calls against every native export and every method of every native object they return.
// Usage: node fuzz-native.js <calls> <seed>. Prints a JSON summary; exits non-zero only if the process is unhealthy.
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.join(__dirname, '..', '..');
const binary = require(path.join(ROOT, 'scripts', 'binary'));
const addon = binary.loadBinary(binary.chooseBinary({ root: ROOT }), ROOT);
const calls = Number(process.argv[2] || 300);
let state = Number(process.argv[3] || 1) >>> 0;
const random = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const pick = (list) => list[Math.floor(random() * list.length)];

// File-writing entry points get paths inside a scratch folder.
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-fuzz-'));
process.chdir(scratch);

const live = [addon.ones([2, 3]), addon.zeros([4]), addon.randn([2, 3, 4, 4]), addon.fromTypedArray(new Uint8Array(48), [1, 3, 4, 4])];
const disposed = addon.ones([2]);
disposed.dispose();
const objects = [];
const numbers = [-1, 0, 1, 2, 3, 4, 7, 64, 0.5, -0.25, 1e-9, NaN, Infinity, -Infinity, 2 ** 53, 1e20];
const strings = ['', 'cpu', 'cuda', 'cuda:7', 'float32', 'uint8', 'int64', 'resnet18', 'nonsense', '/nonexistent/dir/file.pt',
  path.join(scratch, 'out.pt')];

function randomValue(depth = 0) {
  const r = random();
  if (r < 0.22) return pick(numbers);
  if (r < 0.34) return pick(strings);
  if (r < 0.52) return pick(live);
  if (r < 0.56) return disposed;
  if (r < 0.62 && objects.length) return pick(objects);
  if (r < 0.72 && depth < 2) return Array.from({ length: Math.floor(random() * 5) }, () => (random() < 0.7 ? pick([0, 1, 2, 3, 4, -1, NaN]) : randomValue(depth + 1)));
  if (r < 0.78) return pick([new Float32Array(6), new Float64Array(4), new Uint8Array(12), new BigInt64Array(2), new Int16Array(3)]);
  if (r < 0.86 && depth < 2) {
    const o = {};
    for (const key of ['temperature', 'views', 'device', 'dtype', 'strict', 'backbone', 'outDim', 'lr', 'size', 'train']) {
      if (random() < 0.3) o[key] = randomValue(depth + 1);
    }
    return o;
  }
  return pick([undefined, null, true, false, () => 1, 10n, Symbol('s')]);
}

function methodsOf(object) {
  const names = new Set();
  for (let proto = Object.getPrototypeOf(object); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const name of Object.getOwnPropertyNames(proto)) if (name !== 'constructor' && typeof object[name] === 'function') names.add(name);
  }
  return [...names];
}

const functions = Object.keys(addon).filter((k) => typeof addon[k] === 'function' && !/^[A-Z]/.test(k));
const summary = { calls: 0, returned: 0, threw: 0, nonErrorThrows: 0, entryPoints: functions.length };

function record(result) {
  if (result && typeof result === 'object' && !ArrayBuffer.isView(result) && !Array.isArray(result) && methodsOf(result).length) {
    if (typeof result.shape === 'function' && typeof result.dispose === 'function') live.push(result);
    else objects.push(result);
  }
}

async function main() {
  while (summary.calls < calls) {
    const useObject = random() < 0.4;
    const target = useObject ? pick([...live, ...objects]) : addon;
    const names = useObject ? methodsOf(target) : functions;
    if (names.length === 0) continue;
    const name = pick(names);
    if (name === 'setNumThreads') continue; // valid values only change speed; huge ones only waste threads
    const args = Array.from({ length: Math.floor(random() * 4) }, () => randomValue());
    summary.calls++;
    try {
      let result = target[name](...args);
      if (result && typeof result.then === 'function') result = await result;
      summary.returned++;
      record(result);
    } catch (err) {
      summary.threw++;
      if (!(err instanceof Error)) summary.nonErrorThrows++;
    }
    if (live.length > 64) live.splice(4, live.length - 32);
  }
  fs.rmSync(scratch, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(summary) + '\n');
}

main();
