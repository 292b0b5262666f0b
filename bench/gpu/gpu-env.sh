# Sourced by run-gpu.sh and run-gpu-engine.sh: where the parts' place.sh (bench/gpu/parts.sh) put the files on the CUDA server
# (/tmp/realign-root: .gpu/node, .gpu/bundle, .gpu/providers), the CUDA 13 libraries, the provider libraries copied
# next to onnxruntime-node's binding, $OUT for results and $M for the transformers-made checkpoints.
HERE=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
R=${PLACE_ROOT:-/tmp/realign-root}
OUT=${OUT:-/tmp/realign-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
NODE=$R/.gpu/node
B=$R/.gpu/bundle
cp "$R"/.gpu/providers/*.so "$B/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/"
M=/tmp/realign-models
