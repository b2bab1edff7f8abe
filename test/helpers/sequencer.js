'use strict';
/**
 * jest's order, slowest file first, also on a first run: jest sorts by the durations it cached from earlier runs, and
 * without them (a clean clone, as in CI) by file size, which put short files that run long (data-parallel.test.ts:
 * 70 lines, 1.5-2 minutes) last, where one of the 2 workers runs them alone. Without a cached duration a file takes
 * its seconds below (a full run on 2 quiet cores: their order is what counts), files not named here keep jest's order
 * (first, by size), and durations jest has cached always win.
 */
const path = require('path');
const Sequencer = require('@jest/test-sequencer').default;

const SECONDS = {
  reliability: 105, distributed: 95, trainer: 85, 'cli-usability': 78, readme: 67, 'data-parallel': 67, 'two-machines': 44,
  cli: 42, 'encoder-parity': 30, 'second-signal': 25, install: 23, precision: 22, 'onnx-export': 21, 'process-group': 20,
  'trainer-callbacks': 17, serving: 16, 'build-files': 15, fuzz: 14, 'host-memory': 13, device: 12, terminal: 12,
  tensorboard: 12, encoder: 12, typecheck: 12, 'overlap-steps': 11, checkpoint: 11, 'linear-probe': 11, preprocess: 10,
  'nt-xent': 9, 'custom-loop': 9,
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
