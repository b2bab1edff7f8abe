/**
 * Tests are TypeScript run through ts-jest; each file gets its own process-wide LibTorch, so keep workers few. ts-jest
 * only transpiles (tsconfig.jest.json: isolatedModules): type-checking each file in its worker cost ~4 s of CPU a file
 * on a clean clone; test/types.test.ts type-checks src/, test/ and bench/ once, as one program.
 */
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
