'use strict';
/**
 * jest's order, slowest file first, also on a first run: jest sorts by the durations it cached from earlier runs, and
 * without them (a clean clone, as in CI) by file size, which put short files that run long (data-parallel.test.ts:
 * 70 lines, 1.5-2 minutes) last, where one of the 2 workers runs them alone. Without a cached duration a file takes
 * its seconds below (a full run on 2 quiet cores, 2026-12-07, then trimmed where tests were made cheaper: their order is what counts), files not named here
 * keep jest's order (first, by size), and durations jest has cached always win.
 */
const path = require('path');
const Sequencer = require('@jest/test-sequencer').default;

const SECONDS = {
  reliability: 147, distributed: 130, readme: 100, trainer: 104, 'data-parallel': 89, 'cli-usability': 78, 'two-machines': 65,
  cli: 55, 'second-signal': 43, 'encoder-parity': 33, install: 32, precision: 22, 'overlap-steps': 26, 'onnx-export': 24,
  'host-memory': 21, terminal: 21, 'build-files': 21, 'process-group': 21, tensorboard: 20, serving: 16, 'trainer-callbacks': 15,
  preprocess: 14, fuzz: 14, encoder: 14, 'multi-crop': 13, 'report-browser': 13, checkpoint: 12, typecheck: 12, 'linear-probe': 11,
  'custom-loop': 10, 'nt-xent': 10,
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
