#!/usr/bin/env bash
# Runs a program of the benchmark kit that bench/portable/pack.sh made, from the kit's folder:
#   ./run.sh bench   --quick --json out.json --peak-tflops 60     (npm run bench's flags)
#   ./run.sh profile --train arithmetic:32x128 --decode arithmetic:256  (bench/profile.ts's flags)
# First unpacks Node and dawn.node, and installs the Vulkan loader when the system has none (that needs
# root). Dawn finds the GPU's Vulkan driver through the loader; where the driver's ICD file sits outside
# the loader's search path (some container setups), the usual NVIDIA locations are tried.
set -euo pipefail
kit=$(cd "$(dirname "$0")" && pwd)
prog=${1:?usage: run.sh bench|profile [flags]}
shift
case "$prog" in bench|profile) ;; *) echo "run.sh: unknown program '$prog' (bench or profile)" >&2; exit 2 ;; esac
[ -x "$kit/node" ] || { xz -dc "$kit/node.xz" > "$kit/node"; chmod +x "$kit/node"; }
dawn="$kit/node_modules/webgpu/dist/linux-x64/dawn.node"
[ -f "$dawn" ] || xz -dc "$dawn.xz" > "$dawn"
if ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
  dpkg -x "$kit/libvulkan1.deb" / && ldconfig
fi
if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ]; then
  for icd in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
  done
fi
cd "$kit"
exec "$kit/node" "$kit/$prog.mjs" "$@"
