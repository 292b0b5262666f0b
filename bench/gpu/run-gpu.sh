#!/usr/bin/env bash
# Comparison f on a CUDA server whose files were placed by the parts' place.sh (bench/gpu/parts.sh) under /tmp/realign-root:
#   .gpu/node (node 20 binary), .gpu/bundle (bundled benchmark and CLI + onnxruntime-node 1.29.0),
#   .gpu/providers (libonnxruntime_providers_{shared,cuda}.so 1.29.0 for CUDA 13).
# Weights are generated here by transformers. Results go to $OUT (at most a few small files).
set -u
source "$(dirname "$0")/gpu-env.sh"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  echo "--- engine on CUDA through the CLI (tiny model, worker thread, float16 graph)"
  cd /tmp
  $NODE "$B/main.js" init-model /tmp/tiny --arch qwen2 --preset tiny --seed 3 >/dev/null
  $NODE "$B/main.js" expand /tmp/tiny /tmp/tiny-inra >/dev/null
  REALIGN_GRAPH_CACHE=/tmp/g timeout 60 $NODE "$B/main.js" logits --model /tmp/tiny-inra --prompt "The quick brown fox" --lambda 0,0.5,1.5 --top 3 --device cuda
  REALIGN_GRAPH_CACHE=/tmp/g timeout 60 $NODE "$B/main.js" logits --model /tmp/tiny-inra --prompt "The quick brown fox" --lambda 0,0.5,1.5 --top 3 --device cpu
  REALIGN_GRAPH_CACHE=/tmp/g timeout 60 $NODE "$B/main.js" generate --model /tmp/tiny-inra --prompt "Hello" --lambda 0.5 --max-tokens 24 --device auto
} > "$OUT/cuda-smoke.txt" 2>&1
echo "smoke done: $(tail -1 "$OUT/cuda-smoke.txt")"
cd "$HERE"
timeout 180 python3 torch_side.py make-models --out $M > "$OUT/make-models.log" 2>&1
echo "make-models: $?"
timeout 240 $NODE "$B/gpu-bench.js" --inra $M/inra --out /tmp/gpu-bench --device cuda --hf-logits $M/hf-logits.json > "$OUT/gpu-bench.log" 2>&1
echo "gpu-bench: $?"
cp /tmp/gpu-bench/gpu-results.json "$OUT/" 2>/dev/null
timeout 150 python3 torch_side.py bench --models $M --out "$OUT/torch-results.json" > "$OUT/torch-bench.log" 2>&1
echo "torch bench: $?"
ls -la "$OUT"
