'use strict';
// The LibTorch versions that get a prebuilt binary for linux-x64: the one list. `npm run prebuild` builds each into
// prebuilds/linux-x64/<name>.node and describes it in prebuilds/linux-x64/prebuilds.json, which the loader reads
// (scripts/binary.js). A prebuild fits a LibTorch of the same major.minor version and C++ ABI that has every LibTorch
// library it links.
//   pip:    PyPI's torch wheel (the CUDA-enabled one, which also runs on the CPU), installed by `npm run prebuild` into a
//           venv of its own (.prebuild/<name>), with the nvidia-cuda-nvcc wheel of the same CUDA release for the CUDA
//           headers that c10d's NCCL backend needs. Built without libjpeg: Debian's libjpeg.so.62 is not on every
//           machine that has pip torch (Ubuntu ships libjpeg.so.8), so these prebuilds decode JPEGs with sharp.
//   system: Debian's libtorch-dev (apt), with the native JPEG decoder (Debian's LibTorch needs libjpeg62 itself).
// To add the next torch: put its line first (keep at least the newest two minor versions on PyPI), run
// `npm run prebuild -- <name>` (or `npm run prebuild` for all), run the tests, commit prebuilds/.
module.exports = [
  { name: 'torch-2.15', pip: 'torch==2.15.*' },
  { name: 'torch-2.14', pip: 'torch==2.14.*' },
  { name: 'libtorch-1.13-debian', apt: 'libtorch-dev' },
];
