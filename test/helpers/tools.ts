/**
 * System tools some tests drive (tmux for a real terminal, chromium for the report) and the data some train on
 * (Debian's Fashion-MNIST). scripts/setup.js installs them for `npm test`; without one the tests that need it are
 * skipped with the reason printed, except in CI (CI=true), where a missing tool or dataset fails.
 */
import { spawnSync } from 'child_process';
import { FASHION_MNIST_DIR, fashionMnistAvailable } from './fashion-mnist-pixels';

/** The first of `commands` that runs with `args` (e.g. --version), or undefined. */
export function findTool(commands: readonly string[], args: readonly string[]): string | undefined {
  return commands.find((command) => spawnSync(command, [...args], { encoding: 'utf8', timeout: 30_000 }).status === 0);
}

/** describe() that runs only when `tool` was found; skipped (reason printed) without it, failing in CI. */
export function describeWithTool(name: string, what: string, tool: string | undefined, body: (tool: string) => void): void {
  if (tool) {
    describe(name, () => body(tool));
  } else if (process.env.CI === 'true') {
    describe(name, () => it(`has ${what}`, () => {
      throw new Error(`CI=true but ${what} was not found (scripts/setup.js --for-tests installs it)`);
    }));
  } else {
    console.warn(`skipping "${name}": ${what} was not found (scripts/setup.js --for-tests installs it)`);
    describe.skip(name, () => it(`needs ${what}`, () => undefined));
  }
}

/** describeWithTool for tests on Fashion-MNIST's IDX files (Debian's dataset-fashion-mnist). */
export function describeWithFashionMnist(name: string, body: () => void): void {
  describeWithTool(name, `Fashion-MNIST (dataset-fashion-mnist) in ${FASHION_MNIST_DIR}`, fashionMnistAvailable() ? FASHION_MNIST_DIR : undefined, body);
}
