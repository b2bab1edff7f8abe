/**
 * `npm run test:quick`: the inner loop's subset of `npm test`, under 2 minutes on 2 cores. The fast unit suites of
 * each layer: tensors, the loss, augmentations, data and decoding, models, checkpoints, the training loop's parts,
 * evaluation, the report, the binary's discovery. Everything else (training runs, the CLI as a user runs it, parity
 * with PyTorch, data-parallel runs, the README's examples, install) runs in `npm test`, as CI does.
 */
const base = require('./jest.config.js');

const QUICK = [
  'tensor', 'nt-xent', 'nt-xent-local-rows', 'augment-fast', 'augment-params', 'data', 'decode', 'subset', 'special-files',
  'fuzz', 'architecture', 'encoder', 'checkpoint', 'schedule', 'run-config', 'trainer-callbacks', 'custom-loop', 'knn',
  'embeddings', 'report', 'quickstart', 'types-meet', 'libtorch-discovery', 'prebuild', 'typecheck',
];

module.exports = { ...base, testMatch: QUICK.map((name) => `<rootDir>/test/${name}.test.ts`) };
