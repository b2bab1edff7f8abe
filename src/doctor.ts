/** `simclr doctor`: what LibTorch the addon uses, how it was built, and what would make it slow. */
import * as fs from 'fs';
import { LibTorchDescription, hostMemoryRetained, native, nativeBinary } from './native';
import { cpuBf16Support, resolveRun } from './run/resolve';
import { DEFAULT_RUN_CONFIG } from './run/config';

/** LibTorch discovery, shared with the loader and the build scripts. */
const discovery = require('../scripts/libtorch') as { findLibTorch(): LibTorchDescription };

export interface DoctorReport {
  /** The binary that loaded and why: a prebuild chosen for the LibTorch found, or the source build `npm rebuild` made. */
  binary: { path: string; kind: 'prebuilt' | 'source build'; sourceHash: string; builtAgainst: string; why: string };
  /** The LibTorch in use and how it was found (LIBTORCH, the torch of $PYTHON or python3 on PATH, the system's). */
  libtorch: { version: string; source: string; how: string; libDir: string; compiledWithCuda: boolean; nccl: boolean };
  cuda: { available: boolean; devices: number };
  threads: number;
  /** Whether the C library's heap keeps freed memory for the next step (see SIMCLR_MALLOC in the README). */
  hostMemoryRetained: boolean;
  /** Native bfloat16 on this CPU (from /proc/cpuinfo), and what precision 'auto' means here. */
  cpu: { avx512bf16: boolean; amxBf16: boolean; autoPrecision: 'fp32' | 'bf16' };
  blas: { libraries: string[]; kind: 'openblas' | 'mkl' | 'reference' | 'unknown' };
  /** Who decodes image files: JPEGs natively (libjpeg, built in) when it can, everything else with sharp. */
  decoding: { jpeg: 'libjpeg (native)' | 'sharp'; other: 'sharp' };
  warnings: string[];
}

/** Shared libraries of this process whose path looks like a BLAS, with symlinks resolved. */
function loadedBlasLibraries(): string[] {
  try {
    const maps = fs.readFileSync('/proc/self/maps', 'utf8');
    const paths = maps.split('\n').map((line) => line.split(/\s+/)[5]).filter((p): p is string => Boolean(p && /(?<!cu)blas|mkl/i.test(p)));
    return [...new Set(paths.map((p) => fs.realpathSync(p)))];
  } catch {
    return [];
  }
}

function blasKind(libraries: string[], config: string): DoctorReport['blas']['kind'] {
  if (/BLAS_INFO=mkl/.test(config) || libraries.some((l) => /mkl/i.test(l))) return 'mkl';
  if (libraries.some((l) => /openblas/i.test(l))) return 'openblas';
  if (libraries.some((l) => /\/blas\/libblas\.so/.test(l))) return 'reference';
  return 'unknown';
}

export function doctor(): DoctorReport {
  const info = native.buildInfo();
  const chosen = nativeBinary;
  const libtorch = chosen.libtorch;
  const libraries = loadedBlasLibraries();
  const report: DoctorReport = {
    binary: {
      path: chosen.path,
      kind: chosen.kind,
      sourceHash: info.sourceHash,
      builtAgainst: chosen.prebuild?.builtAgainst ?? (libtorch ? `LibTorch ${libtorch.version} in ${libtorch.libDir}` : 'unknown (no build/libtorch.json)'),
      why: chosen.kind === 'prebuilt'
        ? `the prebuild that fits LibTorch ${libtorch?.version} (same major.minor version and C++ ABI, every library it links present)`
        : 'a source build (build/Release, from npm rebuild simclr) is used whenever present',
    },
    libtorch: {
      version: info.libtorchVersion,
      source: libtorch?.source ?? 'unknown',
      how: libtorch?.how ?? 'unknown',
      libDir: libtorch?.libDir ?? 'unknown',
      compiledWithCuda: info.compiledWithCuda,
      nccl: info.compiledWithNccl,
    },
    cuda: { available: native.cudaIsAvailable(), devices: native.cudaDeviceCount() },
    threads: native.getNumThreads(),
    hostMemoryRetained,
    cpu: { ...cpuBf16Support(), autoPrecision: resolveRun({ ...DEFAULT_RUN_CONFIG, device: 'cpu' }).precision as 'fp32' | 'bf16' },
    blas: { libraries, kind: blasKind(libraries, info.config) },
    decoding: { jpeg: native.jpegDecoder ? 'libjpeg (native)' : 'sharp', other: 'sharp' },
    warnings: [],
  };
  if (report.blas.kind === 'reference') {
    report.warnings.push('LibTorch uses the reference BLAS (libblas3): Linear layers run ~15x slower. Fix: apt-get install libopenblas0-openmp');
  }
  if (chosen.kind === 'source build') {
    // The source build links its LibTorch by RUNPATH, whatever is found now; say so when the two differ.
    try {
      const now = discovery.findLibTorch();
      if (libtorch && now.libDir !== libtorch.libDir) {
        report.warnings.push(`The source build links ${libtorch.libDir}, but the LibTorch found now is ${now.how} (${now.libDir}): ` +
          'npm rebuild simclr to build against it, or delete build/ to use the prebuild that fits it.');
      }
    } catch (err) {
      report.warnings.push(`No LibTorch is found now (${(err as Error).message.split('\n')[0]}); the source build still links ${libtorch?.libDir}.`);
    }
  }
  if (report.libtorch.compiledWithCuda && !report.cuda.available) {
    report.warnings.push('This LibTorch has CUDA support but no GPU/driver is visible: running on CPU.');
  }
  return report;
}

export function formatDoctor(report: DoctorReport): string {
  const lines = [
    `binary      ${report.binary.kind}: ${report.binary.path}`,
    `            built against ${report.binary.builtAgainst}; chosen as ${report.binary.why}`,
    `libtorch    ${report.libtorch.version}: ${report.libtorch.how}, ${report.libtorch.libDir}`,
    `cuda        ${report.libtorch.compiledWithCuda ? `compiled in (NCCL ${report.libtorch.nccl ? 'compiled in' : 'not compiled in'})` : 'not compiled in'}; ` +
      `available: ${report.cuda.available}; devices: ${report.cuda.devices}`,
    `threads     ${report.threads}`,
    `host heap   ${report.hostMemoryRetained ? 'freed memory kept for reuse: glibc\'s heap, and tensors of 32 MiB and more (SIMCLR_MALLOC=default: the C library\'s defaults)'
      : 'the C library\'s defaults'}`,
    `cpu bf16    ${report.cpu.avx512bf16 || report.cpu.amxBf16 ? [report.cpu.avx512bf16 && 'avx512_bf16', report.cpu.amxBf16 && 'amx_bf16'].filter(Boolean).join(', ')
      : 'none (no avx512_bf16 or amx_bf16: bf16 would be emulated, many times slower than fp32)'}; precision 'auto' on the CPU: ${report.cpu.autoPrecision}`,
    `blas        ${report.blas.kind}${report.blas.libraries.length ? ' (' + report.blas.libraries.join(', ') + ')' : ''}`,
    `decoding    JPEG: ${report.decoding.jpeg}${report.decoding.jpeg === 'sharp' ? ' (built without libjpeg, slower: with libjpeg62-turbo-dev installed, ' +
      'npm rebuild simclr --build-from-source decodes natively)' : ''}; PNG, WebP, TIFF: ${report.decoding.other}`,
    ...report.warnings.map((w) => `warning     ${w}`),
  ];
  return lines.join('\n');
}
