/**
 * The README's TypeScript examples, as a new user meets them: the package is packed (`npm pack`), unpacked into a
 * fresh project with no @types packages, and every ```ts block of README.md is type-checked against the packed
 * .d.ts with skipLibCheck off, as an ES module (.mts, the settings `tsc --init` writes: module nodenext, strict,
 * exactOptionalPropertyTypes, noUncheckedIndexedAccess, verbatimModuleSyntax) and as CommonJS (.cts, the body wrapped
 * in an async function); the package's types alone are also checked with no DOM and no Node types (lib es2022).
 * Each check runs with the project's pinned TypeScript and with the newest (TypeScript 7, the native compiler).
 * Then the ES module builds run with node, in README order, from the fresh project: the custom loop must lower its
 * loss, and an example whose prose states its time on 2 CPU cores must keep to it (within a generous factor).
 */
import { spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');

/** A TypeScript compiler to check the examples with: its version and its tsc script, run with node. */
interface Compiler {
  version: string;
  tsc: string;
}

/**
 * An installed TypeScript's tsc, found through its package.json: TypeScript 7's exports map hides bin/ from
 * require.resolve, and its bin/tsc is a node launcher of the native compiler (@typescript/typescript-<platform>).
 */
function installedCompiler(packageName: string): Compiler {
  const manifest = require.resolve(`${packageName}/package.json`);
  const { version, bin } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { version: string; bin: { tsc: string } };
  return { version, tsc: path.join(path.dirname(manifest), bin.tsc) };
}

/**
 * The project's pinned TypeScript (which builds dist/ and the examples that run), the newest (the devDependency
 * alias typescript-7), and any other given as SIMCLR_TSC=/path/to/typescript/bin/tsc.
 */
const PINNED = installedCompiler('typescript');
const COMPILERS: Compiler[] = [
  PINNED,
  installedCompiler('typescript-7'),
  ...(process.env.SIMCLR_TSC ? [{ version: 'SIMCLR_TSC', tsc: process.env.SIMCLR_TSC }] : []),
];

/** A README example: a ```ts block, and the seconds on 2 CPU cores the paragraph before it states, if any. */
interface Example {
  code: string;
  statedSeconds?: number;
}

/** "about a minute on 2 CPU cores", "about half a minute …", "about 3 minutes …", "about 20 seconds …". */
const STATED_TIME = /about (half a|a|\d+) (minutes?|seconds) on 2 CPU cores/;

/** The ```ts blocks of README.md, in order. */
function readmeExamples(readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')): Example[] {
  return [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => {
    const paragraph = readme.slice(0, m.index).trimEnd().split(/\n\s*\n/).pop() ?? '';
    const stated = STATED_TIME.exec(paragraph);
    if (!stated) return { code: m[1] };
    const count = stated[1] === 'half a' ? 0.5 : stated[1] === 'a' ? 1 : Number(stated[1]);
    return { code: m[1], statedSeconds: stated[2] === 'seconds' ? count : 60 * count };
  });
}

/** How much slower than the README states an example may run: room for a loaded machine, not for hours. */
const SLOWER_THAN_STATED = 4;

/** A snippet as CommonJS: its imports first, the rest inside an async function (no top-level await in CommonJS). */
function asCommonJs(snippet: string): string {
  const lines = snippet.split('\n');
  const imports = lines.filter((l) => /^import\s/.test(l));
  const body = lines.filter((l) => !/^import\s/.test(l));
  return [...imports, 'async function main(): Promise<void> {', ...body.map((l) => (l ? `  ${l}` : l)), '}',
    'main().catch((error: unknown) => {', '  console.error(error);', '  throw error;', '});', ''].join('\n');
}

/**
 * The CommonJS form that `verbatimModuleSyntax` (on in `tsc --init`'s settings) requires, as the README says:
 * `import simclr = require('simclr')`, the values taken from it, the types named through it.
 */
function asCommonJsRequire(snippet: string): string {
  const lines = asCommonJs(snippet).split('\n');
  return lines.flatMap((line) => {
    const named = line.match(/^import \{ (.*) \} from 'simclr';$/);
    if (!named) return [line];
    const names = named[1].split(',').map((n) => n.trim());
    const types = names.filter((n) => n.startsWith('type ')).map((n) => n.slice('type '.length));
    const values = names.filter((n) => !n.startsWith('type '));
    return ["import simclr = require('simclr');", `const { ${values.join(', ')} } = simclr;`, ...types.map((t) => `type ${t} = simclr.${t};`)];
  }).join('\n');
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
  const examples = readmeExamples();
  const snippets = examples.map((example) => example.code);

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
      fs.writeFileSync(path.join(project, `example-${i + 1}-require.cts`), asCommonJsRequire(snippet));
    });
    // Both entry points: the package's, and simclr/preprocess (what a service without LibTorch imports).
    fs.writeFileSync(path.join(project, 'types-only.mts'), "import * as simclr from 'simclr';\nimport * as preprocess from 'simclr/preprocess';\n" +
      'export type Everything = typeof simclr;\nexport type Preprocess = typeof preprocess;\n');
  });
  afterAll(() => {
    if (project) fs.rmSync(project, { recursive: true, force: true });
  });

  const tsc = (compiler: Compiler, name: string, compilerOptions: object, files: string[]) => {
    const config = `${name}-${compiler.version}.json`;
    fs.writeFileSync(path.join(project, config), JSON.stringify({ compilerOptions, files }, null, 2));
    const result = run(process.execPath, [compiler.tsc, '-p', config], project, 300_000);
    return `${result.stdout}${result.stderr}`.trim();
  };
  // The ES module builds (and their messages), made once per compiler: checked by one test; the pinned one's output
  // (esm/) is run by another.
  const esmBuilds = new Map<Compiler, string>();
  const buildEsm = (compiler: Compiler) => {
    if (!esmBuilds.has(compiler)) {
      const outDir = compiler === PINNED ? 'esm' : `esm-${compiler.version}`;
      esmBuilds.set(compiler, tsc(compiler, 'tsconfig.esm', { ...INIT_OPTIONS, outDir }, snippets.map((_, i) => `example-${i + 1}.mts`)));
    }
    return esmBuilds.get(compiler);
  };

  it('has examples to check', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(4);
  });

  it('checks with the pinned TypeScript and a newer major version', () => {
    const major = (compiler: Compiler) => Number(compiler.version.split('.')[0]);
    expect(major(COMPILERS[1])).toBeGreaterThanOrEqual(7);
    expect(major(COMPILERS[1])).toBeGreaterThan(major(PINNED));
  });

  describe.each(COMPILERS)('with TypeScript $version', (compiler) => {
    it('type-checks every example as an ES module (.mts) with the settings of tsc --init and skipLibCheck off', () => {
      expect(buildEsm(compiler)).toBe('');
    });

    it('type-checks every example as CommonJS (.cts, wrapped in an async function), without verbatimModuleSyntax', () => {
      const { verbatimModuleSyntax: _, ...cjs } = INIT_OPTIONS;
      expect(tsc(compiler, 'tsconfig.cjs', { ...cjs, outDir: 'cjs', noEmit: true }, snippets.map((_, i) => `example-${i + 1}.cts`))).toBe('');
    });

    it('type-checks every example as CommonJS with all of tsc --init\'s settings, importing with import = require', () => {
      // With verbatimModuleSyntax, `import { … } from` in a CommonJS file is TS1286; the README says what to write.
      expect(tsc(compiler, 'tsconfig.cjs-init', { ...INIT_OPTIONS, outDir: 'cjs-init', noEmit: true },
        snippets.map((_, i) => `example-${i + 1}-require.cts`))).toBe('');
      expect(tsc(compiler, 'tsconfig.cjs-import', { ...INIT_OPTIONS, outDir: 'cjs-import', noEmit: true }, ['example-1.cts'])).toMatch(/TS1286/);
    });

    it('has types that need neither @types/node nor the DOM (lib es2022, no types), simclr/preprocess\'s too', () => {
      expect(tsc(compiler, 'tsconfig.types', { strict: true, module: 'nodenext', lib: ['es2022'], types: [], skipLibCheck: false, noEmit: true }, ['types-only.mts'])).toBe('');
    });
  });

  // What each example printed and how long it took, filled in README order by the run below.
  const ran: { stdout: string; seconds: number }[] = [];
  const ranAll = () => {
    if (ran.length !== snippets.length) throw new Error(`only ${ran.length} of ${snippets.length} examples ran (see the test that runs them)`);
    return ran;
  };

  it('runs every example with node, in README order', () => {
    buildEsm(PINNED);
    for (let i = 1; i <= snippets.length; i++) {
      const example = path.join(project, 'esm', `example-${i}.mjs`);
      expect(fs.existsSync(example)).toBe(true);
      const started = process.hrtime.bigint();
      const result = run(process.execPath, [example], project, 900_000);
      if (result.status !== 0) throw new Error(`example ${i} failed (${result.status ?? result.signal}):\n${result.stderr}`);
      ran.push({ stdout: result.stdout, seconds: Number(process.hrtime.bigint() - started) / 1e9 });
    }
  });

  it('trains in the custom-loop example: its last epoch\'s mean loss is below its first', () => {
    const loop = snippets.findIndex((snippet) => snippet.includes('await trainStep('));
    expect(loop).toBeGreaterThanOrEqual(0);
    const losses = [...ranAll()[loop].stdout.matchAll(/^epoch (\d+): mean loss (\d+\.\d+)$/gm)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(losses.map(([epoch]) => epoch)).toEqual([1, 2]);
    expect(losses[1][1]).toBeLessThan(losses[0][1]);
  });

  it(`runs each example whose paragraph states its time on 2 CPU cores within ${SLOWER_THAN_STATED}x that time`, () => {
    const timed = examples.flatMap((example, i) => (example.statedSeconds === undefined ? [] : [{ example: i + 1, stated: example.statedSeconds }]));
    // The runTraining and custom-loop examples state theirs.
    expect(timed.length).toBeGreaterThanOrEqual(2);
    const seconds = ranAll().map((r) => Math.round(r.seconds));
    console.log(`README examples' wall times on this machine: ${seconds.map((s, i) => `example ${i + 1}: ${s} s`).join(', ')}`);
    const tooSlow = timed.filter(({ example, stated }) => seconds[example - 1] > SLOWER_THAN_STATED * stated)
      .map(({ example, stated }) => `example ${example}: ${seconds[example - 1]} s, the README states about ${stated} s`);
    expect(tooSlow).toEqual([]);
  });
});
