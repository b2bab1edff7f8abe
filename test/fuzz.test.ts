/**
 * Throws a few hundred random, mostly wrong, calls at every native entry point: each must return or throw a JS
 * error, never take the process down. It runs in a child process so that a crash is reported as a failure rather
 * than killing jest.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';

const script = path.join(__dirname, 'helpers', 'fuzz-native.js');

describe('native surface under random input', () => {
  it('survives 600 random calls with only JS errors', () => {
    const run = spawnSync(process.execPath, [script, '600', '12345'], { encoding: 'utf8', timeout: 110_000 });
    expect(run.signal).toBeNull();
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const summary = JSON.parse(run.stdout.trim().split('\n').pop()!);
    expect(summary.calls).toBe(600);
    expect(summary.nonErrorThrows).toBe(0);
    // Both outcomes occur, so the fuzzer is exercising real paths and not only argument errors.
    expect(summary.returned).toBeGreaterThan(20);
    expect(summary.threw).toBeGreaterThan(100);
  });
});

describe('the public API under hostile files and options', () => {
  it('settles 1 000 random calls (special, damaged and good files; random options) with values or errors: no crash, no hang, < 6 GiB', () => {
    const hostile = path.join(__dirname, 'helpers', 'hostile-fuzz.js');
    const run = spawnSync(process.execPath, [hostile, '1000', '4242'], { encoding: 'utf8', timeout: 600_000 });
    expect(run.signal).toBeNull();
    expect(run.stderr).toBe('');
    const summary = JSON.parse(run.stdout.trim().split('\n').pop()!);
    expect(summary.hung).toBeUndefined();
    expect(run.status).toBe(0);
    expect([summary.calls, summary.settled, summary.nonErrors]).toEqual([1000, 1000, 0]);
    // Both outcomes occur: good files load, hostile ones are refused.
    expect(summary.returned).toBeGreaterThan(50);
    expect(summary.errors).toBeGreaterThan(300);
    expect(summary.peakRssMiB).toBeLessThan(6 * 1024);
  }, 620_000);
});
