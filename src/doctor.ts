/** `simclr doctor`: what LibTorch the addon uses, how it was built, and what would make it slow. */
import * as fs from 'fs';
import { hostMemoryRetained, native, nativeBinaryPath } from './native';
import { cpuBf16Support, resolvePrecision } from './ops/precision';

/** Build facts shared with the install and setup scripts (scripts/binary.js). */
const binary = require('../scripts/binary') as {
  isSourceBuild(binaryPath: string): boolean;
  libtorchOf(binaryPath: string): { source: string; libDir: string };
};

export interface DoctorReport {
  binary: { path: string; kind: 'prebuilt' | 'source build'; sourceHash: string };
  libtorch: { version: string; source: string; libDir: string; compiledWithCuda: boolean };
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
    const paths = maps.split('\n').map((line) => line.split(/\s+/)[5]).filter((p): p is string => Boolean(p && /blas|mkl/i.test(p)));
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
  const isSourceBuild = binary.isSourceBuild(nativeBinaryPath);
  const libtorch = binary.libtorchOf(nativeBinaryPath);
  const libraries = loadedBlasLibraries();
  const report: DoctorReport = {
    binary: { path: nativeBinaryPath, kind: isSourceBuild ? 'source build' : 'prebuilt', sourceHash: info.sourceHash },
    libtorch: {
      version: info.libtorchVersion,
      source: isSourceBuild ? libtorch.source : `${libtorch.source} (prebuilt binary)`,
      libDir: libtorch.libDir,
      compiledWithCuda: info.compiledWithCuda,
    },
    cuda: { available: native.cudaIsAvailable(), devices: native.cudaDeviceCount() },
    threads: native.getNumThreads(),
    hostMemoryRetained,
    cpu: { ...cpuBf16Support(), autoPrecision: resolvePrecision('auto', 'cpu') as 'fp32' | 'bf16' },
    blas: { libraries, kind: blasKind(libraries, info.config) },
    decoding: { jpeg: native.jpegDecoder ? 'libjpeg (native)' : 'sharp', other: 'sharp' },
    warnings: [],
  };
  if (report.blas.kind === 'reference') {
    report.warnings.push('LibTorch uses the reference BLAS (libblas3): Linear layers run ~15x slower. Fix: apt-get install libopenblas0-openmp');
  }
  if (report.libtorch.compiledWithCuda && !report.cuda.available) {
    report.warnings.push('This LibTorch has CUDA support but no GPU/driver is visible: running on CPU.');
  }
  return report;
}

export function formatDoctor(report: DoctorReport): string {
  const lines = [
    `binary      ${report.binary.kind}: ${report.binary.path}`,
    `libtorch    ${report.libtorch.version} (${report.libtorch.source}) ${report.libtorch.libDir}`,
    `cuda        ${report.libtorch.compiledWithCuda ? 'compiled in' : 'not compiled in'}; available: ${report.cuda.available}; devices: ${report.cuda.devices}`,
    `threads     ${report.threads}`,
    `host heap   ${report.hostMemoryRetained ? 'freed memory kept for reuse: glibc\'s heap, and tensors of 32 MiB and more (SIMCLR_MALLOC=default: the C library\'s defaults)'
      : 'the C library\'s defaults'}`,
    `cpu bf16    ${report.cpu.avx512bf16 || report.cpu.amxBf16 ? [report.cpu.avx512bf16 && 'avx512_bf16', report.cpu.amxBf16 && 'amx_bf16'].filter(Boolean).join(', ')
      : 'none (no avx512_bf16 or amx_bf16: bf16 would be emulated, many times slower than fp32)'}; precision 'auto' on the CPU: ${report.cpu.autoPrecision}`,
    `blas        ${report.blas.kind}${report.blas.libraries.length ? ' (' + report.blas.libraries.join(', ') + ')' : ''}`,
    `decoding    JPEG: ${report.decoding.jpeg}${report.decoding.jpeg === 'sharp' ? ' (built without libjpeg: slower; apt-get install libjpeg62-turbo-dev, then npm rebuild simclr)' : ''}; PNG, WebP, TIFF: ${report.decoding.other}`,
    ...report.warnings.map((w) => `warning     ${w}`),
  ];
  return lines.join('\n');
}
