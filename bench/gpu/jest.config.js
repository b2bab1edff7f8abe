/**
 * The jest configuration of bench/gpu/run.sh: the project's own (jest.config.js), with the TypeScript transpiled file by
 * file (isolatedModules: no type check, which CI has done) so that the suite spends the GPU run's minutes on tests, and
 * SIMCLR_JEST_WORKERS workers.
 */
const path = require('path');
const base = require('../../jest.config.js');

module.exports = {
  ...base,
  rootDir: path.join(__dirname, '..', '..'),
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/bench/gpu/tsconfig.jest.json', diagnostics: false }] },
  maxWorkers: Number(process.env.SIMCLR_JEST_WORKERS) || base.maxWorkers,
};
