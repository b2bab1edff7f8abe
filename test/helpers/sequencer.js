'use strict';
/**
 * jest's order, slowest file first, also on a first run: jest sorts by the durations it cached from earlier runs, and
 * without them (a clean clone, as in CI) by file size, which put short files that run long (data-parallel.test.ts:
 * 70 lines, 1.5-2 minutes) last, where one of the 2 workers runs them alone. Without a cached duration a file takes
 * its seconds below (one full run on 2 loaded cores, 2026-12-07: their order is what counts), files not named here
 * keep jest's order (first, by size), and durations jest has cached always win.
 */
const path = require('path');
const Sequencer = require('@jest/test-sequencer').default;

const SECONDS = {
  reliability: 300, readme: 240, cli: 225, 'host-memory': 185, 'second-signal': 170, 'cli-usability': 160, trainer: 140,
  'data-parallel': 135, distributed: 120, device: 120, 'linear-probe': 110, 'encoder-parity': 105, install: 100,
  precision: 60, serving: 60, preprocess: 35, 'two-machines': 70, 'onnx-export': 60, tensorboard: 60, terminal: 45, 'browser-onnx': 30, 'overlap-steps': 45, 'build-files': 40, 'process-group': 35, fuzz: 35,
  'trainer-callbacks': 35, encoder: 35, 'custom-loop': 35, checkpoint: 30, 'nt-xent': 25, typecheck: 20,
};

class SlowFirst extends Sequencer {
  time(test) {
    const cached = super.time(test);
    if (cached != null) return cached;
    const seconds = SECONDS[path.basename(test.path, '.test.ts')];
    return seconds === undefined ? undefined : seconds * 1000;
  }
}

module.exports = SlowFirst;
