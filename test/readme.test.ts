/**
 * The README's TypeScript examples, as a new user meets them: the package is packed (`npm pack`), unpacked into a
 * fresh project with no @types packages, and every ```ts block of README.md is type-checked against the packed
 * .d.ts with skipLibCheck off, as an ES module (.mts, the settings `tsc --init` writes: module nodenext, strict,
 * exactOptionalPropertyTypes, noUncheckedIndexedAccess, verbatimModuleSyntax) and as CommonJS (.cts, the body wrapped
 * in an async function); the package's types alone are also checked with no DOM and no Node types (lib es2022).
 * Then the ES module builds run with node, in README order, from the fresh project.
 */
import { spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');
/** The project's TypeScript, or another one to check the examples with (SIMCLR_TSC=/path/to/typescript/bin/tsc). */
const TSC = process.env.SIMCLR_TSC ?? require.resolve('typescript/bin/tsc');

/** The ```ts blocks of README.md, in order. */
function readmeSnippets(readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')): string[] {
  return [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
}

/** A snippet as CommonJS: its imports first, the rest inside an async function (no top-level await in CommonJS). */
function asCommonJs(snippet: string): string {
  const lines = snippet.split('\n');
  const imports = lines.filter((l) => /^import\s/.test(l));
  const body = lines.filter((l) => !/^import\s/.test(l));
  return [...imports, 'async function main(): Promise<void> {', ...body.map((l) => (l ? `  ${l}` : l)), '}',
    'main().catch((error: unknown) => {', '  console.error(error);', '  throw error;', '});', ''].join('\n');
}

function run(command: string, args: string[], cwd: string, timeout = 120_000): SpawnSyncReturns<string> {
  return spawnSync(command, args, { cwd, encoding: 'utf8', timeout, maxBuffer: 1 << 26 });
}

const newest = (dir: string): number => fs.readdirSync(dir, { withFileTypes: true }).reduce((latest, entry) => {
  const full = path.join(dir, entry.name);
  return Math.max(latest, entry.isDirectory() ? newest(full) : fs.statSync(full).mtimeMs);
}, 0);

/** The settings TypeScript's `tsc --init` writes (5.9), with library checking on. */
const INIT_OPTIONS = {
  module: 'nodenext', target: 'esnext', types: [], sourceMap: true, strict: true, noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true, verbatimModuleSyntax: true, isolatedModules: true, noUncheckedSideEffectImports: true,
  moduleDetection: 'force', skipLibCheck: false,
};

describe('README examples in a fresh project', () => {
  let project: string;
  const snippets = readmeSnippets();

  beforeAll(() => {
    // dist/ is what gets packed; the test setup builds it (npm run build:ts), so it must not be older than src/.
    const dist = path.join(ROOT, 'dist', 'index.d.ts');
    if (!fs.existsSync(dist) || fs.statSync(dist).mtimeMs < newest(path.join(ROOT, 'src'))) {
      throw new Error('dist/ is older than src/: run `npm run build:ts` first');
    }
    project = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-readme-'));
    const packed = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', project], ROOT);
    if (packed.status !== 0) throw new Error(`npm pack failed: ${packed.stderr}`);
    const tarball = path.join(project, JSON.parse(packed.stdout)[0].filename);
    // `npm install <tarball>` offline: unpack it as node_modules/simclr; its dependencies are this repository's
    // (every package but TypeScript's @types and simclr itself, which a user's project would not have).
    const modules = path.join(project, 'node_modules');
    fs.mkdirSync(path.join(modules, 'simclr'), { recursive: true });
    const untar = run('tar', ['-xzf', tarball, '-C', path.join(modules, 'simclr'), '--strip-components=1'], project);
    if (untar.status !== 0) throw new Error(`tar failed: ${untar.stderr}`);
    const own = path.join(ROOT, 'node_modules');
    for (const entry of fs.readdirSync(own)) {
      if (entry === '@types' || entry === 'simclr' || entry.startsWith('.')) continue;
      fs.symlinkSync(path.join(fs.realpathSync(own), entry), path.join(modules, entry));
    }
    // The install hook's place: a source build of this checkout stands in for the build npm install would make.
    const built = path.join(ROOT, 'build', 'Release', 'simclr.node');
    if (fs.existsSync(built)) {
      fs.mkdirSync(path.join(modules, 'simclr', 'build', 'Release'), { recursive: true });
      fs.copyFileSync(built, path.join(modules, 'simclr', 'build', 'Release', 'simclr.node'));
    }
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'readme-check', version: '1.0.0', private: true }));
    snippets.forEach((snippet, i) => {
      fs.writeFileSync(path.join(project, `example-${i + 1}.mts`), snippet);
      fs.writeFileSync(path.join(project, `example-${i + 1}.cts`), asCommonJs(snippet));
    });
    fs.writeFileSync(path.join(project, 'types-only.mts'), "import * as simclr from 'simclr';\nexport type Everything = typeof simclr;\n");
  });
  afterAll(() => {
    if (project) fs.rmSync(project, { recursive: true, force: true });
  });

  const tsc = (name: string, compilerOptions: object, files: string[]) => {
    fs.writeFileSync(path.join(project, `${name}.json`), JSON.stringify({ compilerOptions, files }, null, 2));
    const result = run(process.execPath, [TSC, '-p', `${name}.json`], project, 300_000);
    return `${result.stdout}${result.stderr}`.trim();
  };
  // The ES module build (and its messages), made once: checked by one test, run by another.
  let esmBuild: string | undefined;
  const buildEsm = () => (esmBuild ??= tsc('tsconfig.esm', { ...INIT_OPTIONS, outDir: 'esm' }, snippets.map((_, i) => `example-${i + 1}.mts`)));

  it('has examples to check', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(4);
  });

  it('type-checks every example as an ES module (.mts) with the settings of tsc --init and skipLibCheck off', () => {
    expect(buildEsm()).toBe('');
  });

  it('type-checks every example as CommonJS (.cts, wrapped in an async function)', () => {
    const { verbatimModuleSyntax: _, ...cjs } = INIT_OPTIONS;
    expect(tsc('tsconfig.cjs', { ...cjs, outDir: 'cjs', noEmit: true }, snippets.map((_, i) => `example-${i + 1}.cts`))).toBe('');
  });

  it('has types that need neither @types/node nor the DOM (lib es2022, no types)', () => {
    expect(tsc('tsconfig.types', { strict: true, module: 'nodenext', lib: ['es2022'], types: [], skipLibCheck: false, noEmit: true }, ['types-only.mts'])).toBe('');
  });

  it('runs every example with node, in README order', () => {
    buildEsm();
    for (let i = 1; i <= snippets.length; i++) {
      const example = path.join(project, 'esm', `example-${i}.mjs`);
      expect(fs.existsSync(example)).toBe(true);
      const result = run(process.execPath, [example], project, 900_000);
      if (result.status !== 0) throw new Error(`example ${i} failed (${result.status ?? result.signal}):\n${result.stderr}`);
    }
  });
});
