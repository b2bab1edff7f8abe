/**
 * binding.gyp and CMakeLists.txt must describe the same build: both take their sources, defines, include folders and
 * C++ standard from scripts/build-flags.js. This expands binding.gyp's commands as gyp would and reads what CMake
 * actually configures (compile_commands.json), then compares the two.
 */
import { execSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');
// Added by the toolchain itself (CMake's shared-library export macro, cmake-js's marker) or only by the build that
// embeds the source hash: not part of what the two files describe.
const TOOLCHAIN_DEFINES = /^(simclr_EXPORTS|BUILDING_NODE_EXTENSION|NDEBUG|SIMCLR_SOURCE_HASH=.*)$/;

interface BuildDescription {
  sources: string[];
  defines: string[];
  includes: string[];
  std: string;
}

/** gyp's command expansions: `<!@(cmd)` becomes the words of its output, `<!(cmd)` its output. */
function expandGyp(value: string): string[] {
  const list = value.match(/^<!@\((.*)\)$/);
  if (list) return execSync(list[1], { cwd: ROOT, encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean);
  return [value.replace(/<!\(([^)]*)\)/g, (_m, cmd: string) => execSync(cmd, { cwd: ROOT, encoding: 'utf8' }).trim())];
}

function fromGyp(): BuildDescription {
  const text = fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8').split('\n').filter((l) => !l.trim().startsWith('#')).join('\n');
  const target = JSON.parse(text).targets[0] as Record<string, string[]>;
  const all = (key: string) => target[key].flatMap(expandGyp);
  return {
    sources: all('sources').map((s) => path.resolve(ROOT, s)).sort(),
    defines: all('defines').filter((d) => !TOOLCHAIN_DEFINES.test(d)).sort(),
    includes: all('include_dirs').map((d) => path.resolve(ROOT, d)).sort(),
    std: all('cflags_cc').find((f) => f.startsWith('-std='))!,
  };
}

function fromCMake(): BuildDescription {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-cmake-'));
  const configure = spawnSync(process.execPath, [require.resolve('cmake-js/bin/cmake-js'), 'configure', '--directory', ROOT, '--out', out,
    '--CDCMAKE_EXPORT_COMPILE_COMMANDS=ON'], { cwd: ROOT, encoding: 'utf8' });
  expect(configure.status).toBe(0);
  const commands = JSON.parse(fs.readFileSync(path.join(out, 'compile_commands.json'), 'utf8')) as { file: string; command: string }[];
  fs.rmSync(out, { recursive: true, force: true });
  const words = commands[0].command.split(/\s+/);
  for (const c of commands) {
    // Every file compiles with the same flags, but for the source hash on runtime.cc.
    expect(c.command.replace(/ -DSIMCLR_SOURCE_HASH=\S+/, '').replace(c.file, '').replace(/-o \S+/, ''))
      .toBe(commands[0].command.replace(commands[0].file, '').replace(/-o \S+/, ''));
  }
  return {
    sources: commands.map((c) => c.file).sort(),
    defines: words.filter((w) => w.startsWith('-D')).map((w) => w.slice(2)).filter((d) => !TOOLCHAIN_DEFINES.test(d)).sort(),
    includes: words.filter((w) => w.startsWith('-I')).map((w) => w.slice(2)),
    std: words.find((w) => w.startsWith('-std='))!,
  };
}

describe('build files', () => {
  it('binding.gyp and CMakeLists.txt compile the same sources with the same defines, includes and C++ standard', () => {
    const gyp = fromGyp();
    const cmake = fromCMake();
    expect(gyp.sources.length).toBeGreaterThan(10);
    expect(cmake.sources).toEqual(gyp.sources);
    expect(cmake.defines).toEqual(gyp.defines);
    expect(cmake.std).toBe(gyp.std);
    // CMake leaves out the compiler's own system folders (/usr/include); everything else gyp names, CMake passes too.
    const system = new Set(['/usr/include']);
    expect(gyp.includes.filter((d) => !system.has(d) && !cmake.includes.includes(d))).toEqual([]);
  });

  it('every native source is compiled, and none lives outside native/core and native/bind (but the prebuilds\' loader)', () => {
    const onDisk = ['core', 'bind'].flatMap((dir) => fs.readdirSync(path.join(ROOT, 'native', dir)).filter((f) => f.endsWith('.cc'))
      .map((f) => path.join(ROOT, 'native', dir, f))).sort();
    expect(fromGyp().sources).toEqual(onDisk);
    expect(fs.readdirSync(path.join(ROOT, 'native')).sort()).toEqual(['bind', 'core', 'preload']);
    // preload.c is its own binary (npm run prebuild compiles it), which links nothing of LibTorch.
    expect(fs.readdirSync(path.join(ROOT, 'native', 'preload'))).toEqual(['preload.c']);
    expect(fs.readFileSync(path.join(ROOT, 'native', 'preload', 'preload.c'), 'utf8')).not.toMatch(/#include\s+[<"](torch|ATen|c10)/);
  });

  it('native/core is compute only: no N-API include', () => {
    const core = path.join(ROOT, 'native', 'core');
    const offenders = fs.readdirSync(core).filter((f) => /#include\s+[<"](napi\.h|bind\/)/.test(fs.readFileSync(path.join(core, f), 'utf8')));
    expect(offenders).toEqual([]);
  });
});

describe('the loaded addon', () => {
  it('names libjpeg among its own dependencies when it decodes JPEGs (not borrowed from whichever LibTorch loads it)', () => {
    // Debian's LibTorch links libjpeg, pip's does not: an addon that only resolved jpeg_* through the former loads there
    // and fails to load against the latter (a CMake link line once dropped -ljpeg "as needed").
    const addon = (require('../src/native') as typeof import('../src/native')).nativeBinary.path;
    const needed = execSync(`readelf -d '${addon}'`, { encoding: 'utf8' }).split('\n')
      .map((l) => l.match(/\(NEEDED\)\s+Shared library: \[(.*)\]/)?.[1]).filter((l): l is string => Boolean(l));
    const { hasJpegDecoder } = require('../src/augment/image-batch') as typeof import('../src/augment/image-batch');
    expect(needed.some((l) => l.startsWith('libjpeg.so'))).toBe(hasJpegDecoder());
    expect(needed.some((l) => l.startsWith('libc10'))).toBe(true);
  });
});

/**
 * A project with this package.json and scripts/ and a one-file source tree. Its node_modules is its own (the compiler
 * linked in), so that the build's stored hash stays in this project.
 */
function fillTypeScriptProject(project: string): void {
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(project, 'package.json'));
  fs.cpSync(path.join(ROOT, 'scripts'), path.join(project, 'scripts'), { recursive: true });
  fs.mkdirSync(path.join(project, 'node_modules'));
  fs.symlinkSync(fs.realpathSync(path.join(ROOT, 'node_modules', 'typescript')), path.join(project, 'node_modules', 'typescript'));
  fs.writeFileSync(path.join(project, 'tsconfig.build.json'), JSON.stringify({ compilerOptions: { rootDir: 'src', outDir: 'dist' }, include: ['src/**/*.ts'] }));
  fs.mkdirSync(path.join(project, 'src'));
  fs.writeFileSync(path.join(project, 'src', 'index.ts'), 'export const answer = 42;\n');
}

describe('the TypeScript build (npm run build:ts, which prepack runs)', () => {
  it('starts from an empty dist/, so a module whose source is gone is not packed', () => {
    // dist/ holds a stale module.
    const project = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-build-ts-'));
    try {
      fillTypeScriptProject(project);
      fs.mkdirSync(path.join(project, 'dist'));
      fs.writeFileSync(path.join(project, 'dist', 'renamed-away.js'), 'module.exports = "stale";\n');

      const build = spawnSync('npm', ['run', 'build:ts'], { cwd: project, encoding: 'utf8' });
      expect(build.status).toBe(0);
      expect(fs.readdirSync(path.join(project, 'dist')).sort()).toEqual(['index.js']);
    } finally {
      fs.rmSync(project, { recursive: true, force: true });
    }
  });

  it('with --if-stale (what setup runs) keeps a dist/ built from the current sources and rebuilds it after a change', () => {
    const project = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-build-ts-'));
    try {
      fillTypeScriptProject(project);
      const build = (...args: string[]) => spawnSync(process.execPath, [path.join(project, 'scripts', 'build-ts.js'), ...args], { cwd: project, encoding: 'utf8' });
      const marker = path.join(project, 'dist', 'left-by-the-first-build');

      expect(build('--if-stale').status).toBe(0);
      fs.writeFileSync(marker, '');
      expect(build('--if-stale').status).toBe(0);
      expect(fs.existsSync(marker)).toBe(true);

      fs.writeFileSync(path.join(project, 'src', 'index.ts'), 'export const answer = 43;\n');
      expect(build('--if-stale').status).toBe(0);
      expect(fs.existsSync(marker)).toBe(false);
      expect(fs.readFileSync(path.join(project, 'dist', 'index.js'), 'utf8')).toContain('43');

      fs.writeFileSync(marker, '');
      expect(build().status).toBe(0);
      expect(fs.existsSync(marker)).toBe(false);
    } finally {
      fs.rmSync(project, { recursive: true, force: true });
    }
  });
});
