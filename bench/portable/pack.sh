#!/usr/bin/env bash
# Packs a self-contained benchmark kit into DIR, for a machine with a GPU but no Node or npm:
#   node.xz        this machine's Node binary, xz-compressed
#   bench.mjs, profile.mjs, chunks/   the benchmark programs, bundled (bench/portable/vite.config.ts)
#   node_modules/webgpu/   the webgpu package with only its linux-x64 dawn.node (xz-compressed)
#   libvulkan1.deb the Vulkan loader, for machines that have a GPU driver but no loader
#   run.sh         unpacks what is missing and runs a program (see bench/portable/run.sh)
# Usage: bash bench/portable/pack.sh DIR        (x86-64 Linux; needs xz and apt-get download)
set -euo pipefail
dir=${1:?usage: bench/portable/pack.sh DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rm -rf "$dir/chunks" "$dir/node" "$dir"/*.mjs "$dir/node_modules/webgpu" # a previous kit's unpacked files too
cd "$root"
KIT_DIR="$dir" npx vite build --config bench/portable/vite.config.ts
xz -T0 -6 -c "$(command -v node)" > "$dir/node.xz"
web="$dir/node_modules/webgpu"
mkdir -p "$web/dist/linux-x64"
cp node_modules/webgpu/index.js node_modules/webgpu/package.json "$web/"
xz -T0 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > "$web/dist/linux-x64/dawn.node.xz"
(cd "$dir" && rm -f libvulkan1*.deb && apt-get download libvulkan1 >/dev/null && mv libvulkan1*.deb libvulkan1.deb)
cp bench/portable/run.sh "$dir/run.sh"
chmod +x "$dir/run.sh"
du -sh "$dir"
