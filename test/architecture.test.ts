/**
 * The layering of src/ as the README's "Layout" section draws it: src/native.ts is the one binding file and declares
 * the whole native surface; only the facades (tensor.ts, doctor.ts, models/, ops/, augment/, eval/) import it.
 * Training, data, the CLI and the quickstart reach native code through the facades only; preprocess/ (the
 * simclr/preprocess entry) reaches no native code at all. And that section's table names every source file, so it
 * cannot drift from the tree.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

const ROOT = path.join(__dirname, '..');
const SRC = path.join(ROOT, 'src');
const NATIVE = path.join(SRC, 'native.ts');

/** Files and folders of src/ (relative, '/'-separated) that may import native.ts. */
const FACADES = ['tensor.ts', 'doctor.ts', 'models/', 'ops/', 'augment/', 'eval/'];
const isFacade = (rel: string) => FACADES.some((f) => (f.endsWith('/') ? rel.startsWith(f) : rel === f));

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** The src/ file a relative specifier of `from` names (`./x` → x.ts or x/index.ts), or undefined for packages. */
function resolve(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), specifier);
  return [`${base}.ts`, path.join(base, 'index.ts'), base].find((candidate) => fs.existsSync(candidate) && fs.statSync(candidate).isFile());
}

/** Every module a file imports: static and type-only imports, re-exports, require() and import(). */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), /*readImportFiles*/ true, /*detectJavaScriptImports*/ true);
  return info.importedFiles.map((f) => resolve(file, f.fileName)).filter((f): f is string => f !== undefined);
}

/** `declare module '...'` / `declare global` / `namespace` blocks: the surface must not be extended from elsewhere. */
function moduleDeclarations(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isModuleDeclaration(node)) found.push(`${path.relative(SRC, file)}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}: ${node.getText().split('\n')[0]}`);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((file) => [file, importsOf(file)]));
const rel = (file: string) => path.relative(SRC, file).split(path.sep).join('/');

describe('architecture of src/', () => {
  it('finds the import graph (sanity: the facades do import native.ts)', () => {
    expect(graph.get(path.join(SRC, 'tensor.ts'))).toContain(NATIVE);
    expect(files.length).toBeGreaterThan(20);
  });

  it('only the facades (tensor.ts, doctor.ts, models/, ops/, augment/, eval/) import native.ts', () => {
    const offenders = files.filter((file) => file !== NATIVE && !isFacade(rel(file)) && graph.get(file)!.includes(NATIVE)).map(rel);
    expect(offenders).toEqual([]);
  });

  it('train/, run/, data/, cli.ts and quickstart.ts never import native.ts', () => {
    const layers = files.filter((file) => /^(train\/|run\/|data\/|cli\.ts$|quickstart\.ts$)/.test(rel(file)));
    expect(layers.length).toBeGreaterThan(0);
    expect(layers.filter((file) => graph.get(file)!.includes(NATIVE)).map(rel)).toEqual([]);
  });

  it('native.ts declares the whole surface: no declare module anywhere in src/', () => {
    expect(files.flatMap(moduleDeclarations)).toEqual([]);
  });

  /**
   * The floors of src/, bottom up: a file imports only from its own floor or below, so no arrow runs back up and no
   * folder imports another that imports it. run/ holds everything that reads a run config; train/ and eval/ are library
   * pieces below it.
   */
  const FLOORS: string[][] = [
    ['native.ts'],
    ['errors.ts', 'settings.ts', 'tensor.ts', 'atomic-file.ts', 'user-file.ts', 'random.ts'],
    ['preprocess/'],
    ['augment/', 'models/'],
    ['data/', 'ops/'],
    ['train/', 'eval/'],
    ['run/'],
    ['doctor.ts', 'quickstart.ts'],
    ['cli.ts', 'index.ts'],
  ];
  const roomOf = (file: string) => {
    const r = rel(file);
    return r.includes('/') ? `${r.split('/')[0]}/` : r;
  };
  const floorOf = (file: string) => FLOORS.findIndex((floor) => floor.includes(roomOf(file)));

  it('every file of src/ is on a floor, and imports only from its floor or below', () => {
    expect(files.filter((file) => floorOf(file) < 0).map(rel)).toEqual([]);
    const upward = files.flatMap((file) => graph.get(file)!.filter((target) => floorOf(target) > floorOf(file)).map((target) => `${rel(file)} -> ${rel(target)}`));
    expect(upward).toEqual([]);
  });

  it('no two rooms (folders, top-level files) import each other, directly or round a circle', () => {
    const edges = new Map<string, Set<string>>();
    for (const [file, targets] of graph) {
      for (const target of targets) {
        if (roomOf(target) !== roomOf(file)) (edges.get(roomOf(file)) ?? edges.set(roomOf(file), new Set()).get(roomOf(file))!).add(roomOf(target));
      }
    }
    const reaches = (from: string, to: string, seen = new Set<string>()): boolean =>
      [...(edges.get(from) ?? [])].some((next) => next === to || (!seen.has(next) && seen.add(next) && reaches(next, to, seen)));
    expect([...edges.keys()].filter((room) => reaches(room, room))).toEqual([]);
  });

  it('preprocess/ (simclr/preprocess) imports only its own files and errors.ts, through any chain: never native.ts or tensor.ts', () => {
    const reached = new Set<string>();
    const visit = (file: string) => {
      for (const target of graph.get(file) ?? []) {
        if (!reached.has(target)) {
          reached.add(target);
          visit(target);
        }
      }
    };
    const own = files.filter((file) => rel(file).startsWith('preprocess/'));
    expect(own.length).toBeGreaterThan(1);
    own.forEach(visit);
    expect([...reached].map(rel).filter((file) => !/^(preprocess\/|errors\.ts$)/.test(file))).toEqual([]);
  });

  it('native.ts imports nothing of the project (it is the bottom layer)', () => {
    expect(graph.get(NATIVE)!.map(rel)).toEqual([]);
  });
});

describe('the README\'s Layout section', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((part) => part.startsWith('Layout\n'))!;
  const ticked = (text: string) => [...text.matchAll(/`([^`]+)`/g)].map((match) => match[1]);
  const looksLikePath = (token: string) => token.includes('/') || /\.(ts|cc|h|md|json)$/.test(token);
  const exists = (token: string, folders: string[]) => folders.some((folder) => fs.existsSync(path.join(ROOT, folder, token)));
  /** Table rows: the folders and files of the "Where" cell, and the backticked names of the rest. */
  const rows = section.split('\n').filter((line) => line.startsWith('| `')).map((line) => {
    const [where, ...what] = line.split('|').slice(1, -1);
    return { where: ticked(where), names: ticked(what.join('|')) };
  });
  const prose = section.split('\n').filter((line) => !line.startsWith('|')).join('\n');

  it('names only paths that exist', () => {
    expect(rows.length).toBeGreaterThan(10);
    const missing = [
      ...ticked(prose).filter(looksLikePath).filter((token) => !exists(token, ['', 'src'])),
      ...rows.flatMap((row) => [
        ...row.where.filter((token) => !exists(token, [''])),
        ...row.names.filter(looksLikePath).filter((token) => !exists(token, ['', ...row.where.filter((w) => w.endsWith('/'))])),
      ]),
    ];
    expect(missing).toEqual([]);
  });

  it('names every file of src/, native/core/ and native/bind/ in the row of its folder', () => {
    const native = ['native/core', 'native/bind'].flatMap((dir) =>
      fs.readdirSync(path.join(ROOT, dir)).filter((name) => /\.(cc|h)$/.test(name)).map((name) => `${dir}/${name}`));
    const sources = [...files.map((file) => path.relative(ROOT, file).split(path.sep).join('/')), ...native];
    const unnamed = sources.filter((file) => {
      const name = path.posix.basename(file);
      const stem = name.replace(/\.[^.]+$/, '');
      const folder = `${path.posix.dirname(file)}/`;
      return !rows.some((row) => row.where.includes(file) || (row.where.includes(folder) && (row.names.includes(name) || row.names.includes(stem))));
    });
    expect(unnamed).toEqual([]);
  });
});

describe('the test suite', () => {
  it('skips a test only for hardware the machine lacks (a GPU) or outside CI: missing data and tools go through describeWithTool, which fails under CI=true', () => {
    // A ternary that picks describe/it or its .skip: the gates a test file writes for itself.
    const conditionalSkip = /^.*\?\s*(describe|it)(\.skip)?\s*:\s*(describe|it)(\.skip)?\b.*$/gm;
    const allowed = /cuda|Cuda|process\.env\.CI/;
    const offenders = fs.readdirSync(__dirname).filter((f) => f.endsWith('.test.ts')).flatMap((f) =>
      [...fs.readFileSync(path.join(__dirname, f), 'utf8').matchAll(conditionalSkip)]
        .filter((m) => m[0].includes('.skip') && !allowed.test(m[0])).map((m) => `${f}: ${m[0].trim()}`));
    expect(offenders).toEqual([]);
  });
});
