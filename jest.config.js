/**
 * Tests are TypeScript run through ts-jest; each file gets its own process-wide LibTorch, so keep workers few. ts-jest
 * only transpiles (tsconfig.jest.json: isolatedModules): type-checking each file in its worker cost ~4 s of CPU a file
 * on a clean clone; test/typecheck.test.ts type-checks src/, test/ and bench/ once, as one program.
 *
 * Two workers at once, each running LibTorch (in the worker or in the processes it starts) on every core: OpenMP's
 * threads would spin while they wait, taking the CPU the other worker needs. They sleep instead (OMP_WAIT_POLICY,
 * inherited by the workers and every process they start; a value set by the caller stands). Tests assert behaviour
 * and numerics, not speed: the waiting policy changes neither.
 */
process.env.OMP_WAIT_POLICY ??= 'PASSIVE';

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.jest.json', diagnostics: { warnOnly: false } }] },
  maxWorkers: 2,
  testTimeout: 120000,
  setupFilesAfterEnv: ['<rootDir>/test/helpers/matchers.ts'],
  // The slowest files first even without jest's cached durations (a clean clone): see the file.
  testSequencer: '<rootDir>/test/helpers/sequencer.js',
};
