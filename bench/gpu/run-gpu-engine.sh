#!/usr/bin/env bash
# The engine on a CUDA server (files placed as for run-gpu.sh): greedy generation through the engine's worker
# thread at batch 1, 8, 32 with single-step runs and with decode-loop runs. Results in $OUT.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
R=${PLACE_ROOT:-/tmp/realign-root}
OUT=${OUT:-/tmp/realign-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
B=$R/.gpu/bundle
cp "$R"/.gpu/providers/*.so "$B/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/"
M=/tmp/realign-models
cd "$HERE"
[ -d $M/inra ] || timeout 180 python3 torch_side.py make-models --out $M > "$OUT/make-models.log" 2>&1
echo "models: $(ls $M)"
timeout 400 "$R/.gpu/node" "$B/engine-gpu.js" --inra $M/inra --out "$OUT/engine-gpu.json" --device cuda > "$OUT/engine-gpu.log" 2>&1
echo "engine bench: $?"
tail -4 "$OUT/engine-gpu.log"
