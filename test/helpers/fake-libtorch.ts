/** Made-up LibTorch folders for the loader's tests: what discovery reads of one, and nothing that loads. */
import * as fs from 'fs';
import * as path from 'path';

/** A LibTorch folder as the loader sees one: lib/ with the named libraries (c10 in the C++11 ABI), a version.h. */
export function fakeLibTorch(root: string, version: string, libraries = ['libtorch.so', 'libtorch_cpu.so', 'libc10.so']): string {
  fs.mkdirSync(path.join(root, 'lib'), { recursive: true });
  for (const lib of libraries) {
    fs.writeFileSync(path.join(root, 'lib', lib), lib === 'libc10.so' ? '_ZN3c105ErrorC1ENSt7__cxx1112basic_string' : '');
  }
  const header = path.join(root, 'include', 'torch', 'csrc', 'api', 'include', 'torch', 'version.h');
  fs.mkdirSync(path.dirname(header), { recursive: true });
  const [major, minor, patch] = version.split('.');
  fs.writeFileSync(header, `#define TORCH_VERSION_MAJOR ${major}\n#define TORCH_VERSION_MINOR ${minor}\n#define TORCH_VERSION_PATCH ${patch}\n`);
  return root;
}
