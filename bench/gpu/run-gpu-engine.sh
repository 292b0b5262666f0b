#!/usr/bin/env bash
# The engine on a CUDA server (files placed as for run-gpu.sh): greedy generation through the engine's worker
# thread at batch 1, 8, 32 with single-step runs and with decode-loop runs. Results in $OUT.
set -u
source "$(dirname "$0")/gpu-env.sh"
cd "$HERE"
[ -d $M/inra ] || timeout 180 python3 torch_side.py make-models --out $M > "$OUT/make-models.log" 2>&1
echo "models: $(ls $M)"
timeout 400 "$NODE" "$B/engine-gpu.js" --inra $M/inra --out "$OUT/engine-gpu.json" --device cuda > "$OUT/engine-gpu.log" 2>&1
echo "engine bench: $?"
tail -4 "$OUT/engine-gpu.log"
