#!/usr/bin/env bash
# The one-shot GPU check of issue 14. On a CUDA 13 server holding only what bench/gpu/bundle.sh made (unpacked by the
# parts' place.sh under /tmp/realign-root: .gpu/node, .gpu/bundle with this script in it, .gpu/providers):
#
#   bash /tmp/realign-root/.gpu/bundle/gpu-check.sh            results in $OUT/gpu-check (OUT defaults to /tmp/realign-out)
#   bash bench/gpu/gpu-check.sh --dry-run                      the same stages on the CPU from the repository (tiny shape)
#
# Stages, each under its own time budget (and all under GPU_CHECK_TOTAL_S, default 470 s), each recorded in
# stages.jsonl with its exit status; a stage that fails or runs out of time does not stop the next one (the script's
# exit status is 1 when one did):
#   env         card (nvidia-smi), CUDA 13 libraries, provider libraries next to libonnxruntime.so.1, versions
#   models      r1-distill-qwen-1.5b-shape base (init-model, seeded, float16) and InRa (expand, adapter perturbed)
#   hf          transformers float32 logits of fixed ids, λ = 0, 0.5, 1 (python3 hf_check.py; in the background
#               beside `logits`) — skipped with a note where python3 has no torch/transformers
#   logits      the engine's graph (float16 on CUDA) on the same ids and λ
#   compare     relative error and argmax per λ
#   engine      throughput through the engine: batch 1, 32, 64, 128-token prompts, mixed greedy and sampled rows, λ = 0.5,
#               host↔device bytes per step (CUDA graphs on: the engine's default on CUDA)
#   graphs      CUDA graphs on against off: two runners of the InRa model take the same decode steps in turn (batch 1
#               and 32, mixed greedy and sampled rows): ms per step each, same tokens, captured runs / fallbacks
#   report      results.md (the table with the targets beside each number) and summary.json
# The checkpoints and graphs (several GB) go to $GPU_CHECK_WORK (default /tmp/realign-gpu-check) and are reused by a
# rerun; only small files go to the results folder.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DRY=${GPU_CHECK_DRY_RUN:-0}
for a in "$@"; do
  case $a in
    --dry-run) DRY=1 ;;
    *) echo "usage: gpu-check.sh [--dry-run]" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-/tmp/realign-out}
RES=${GPU_CHECK_RESULTS:-$OUT/gpu-check}
WORK=${GPU_CHECK_WORK:-/tmp/realign-gpu-check}
TOTAL=${GPU_CHECK_TOTAL_S:-470}
mkdir -p "$RES" "$WORK"
rm -f "$RES/stages.jsonl"
START=$(date +%s)
COMMAND="bash $0${*:+ $*}"

if [ -f "$HERE/gpu-check.js" ]; then
  # the bundle: node binary and provider libraries beside it
  export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
  NODE_BIN=$HERE/../node
  NODE=("$NODE_BIN" "$HERE/gpu-check.js")
  ORT_LIB=$HERE/node_modules/onnxruntime-node/bin/napi-v6/linux/x64
  PROVIDERS=$HERE/../providers
  RUN_DIR=$HERE
else
  # the repository (dry runs): TypeScript through tsx
  RUN_DIR=$(cd "$HERE/../.." && pwd)
  NODE_BIN=node
  NODE=(node --import tsx "$HERE/gpu-check.ts")
  ORT_LIB=$RUN_DIR/node_modules/onnxruntime-node/bin/napi-v6/linux/x64
  PROVIDERS=
fi
cd "$RUN_DIR" || exit 1
if [ "$DRY" = 1 ]; then
  PRESET=${GPU_CHECK_PRESET:-tiny}; DTYPE=F32; DEVICE=cpu
  BATCHES=${GPU_CHECK_BATCHES:-1,32,64}; TOKENS=${GPU_CHECK_TOKENS:-6}
  GRAPH_BATCHES=${GPU_CHECK_GRAPH_BATCHES:-1,8}; GRAPH_STEPS=6
else
  PRESET=${GPU_CHECK_PRESET:-r1-distill-qwen-1.5b}; DTYPE=F16; DEVICE=cuda
  BATCHES=${GPU_CHECK_BATCHES:-1,32,64}; TOKENS=${GPU_CHECK_TOKENS:-64}
  GRAPH_BATCHES=${GPU_CHECK_GRAPH_BATCHES:-1,32}; GRAPH_STEPS=32
fi
MODELS=$WORK/models-$PRESET-$DTYPE
PROMPT=128

json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/ }; printf '"%s"' "$s"; }
record() { # name status seconds budget rc note
  printf '{"name":%s,"status":%s,"seconds":%s,"budget":%s,"rc":%s,"note":%s}\n' "$(json_str "$1")" "$(json_str "$2")" "$3" "$4" "$5" "$(json_str "$6")" >> "$RES/stages.jsonl"
  echo "[gpu-check] $1: $2 ($3 s of $4) $6"
}
left() { echo $((TOTAL - ($(date +%s) - START))); }
# stage NAME BUDGET_S COMMAND...: runs it with its output in NAME.log, within its budget and what is left of the total
stage() {
  local name=$1 budget=$2; shift 2
  local l; l=$(left)
  [ "$l" -lt "$budget" ] && budget=$l
  if [ "$budget" -le 0 ]; then record "$name" skipped 0 0 -1 "no time left of ${TOTAL} s"; return 1; fi
  local t0 rc status note=
  t0=$(date +%s%N)
  timeout --kill-after=5 "$budget" "$@" > "$RES/$name.log" 2>&1
  rc=$?
  local ms=$((($(date +%s%N) - t0) / 1000000)) secs
  secs=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
  case $rc in
    0) status=ok ;;
    124|137) status=timeout; note="over its ${budget} s budget" ;;
    *) status=failed; note="exit $rc: $( (grep -m1 -E 'Error|error' "$RES/$name.log" || tail -n 1 "$RES/$name.log") | cut -c1-300)" ;;
  esac
  record "$name" "$status" "$secs" "$budget" "$rc" "$note"
  [ "$rc" = 0 ]
}

# ---- env
env_stage() {
  {
    echo "started $(date -u +%FT%TZ), dry run: $DRY, results: $RES"
    echo "--- nvidia-smi"; nvidia-smi 2>&1 || echo "nvidia-smi: not available"
    echo "--- CUDA 13 libraries"; ls /usr/local/cuda-13.0/targets/x86_64-linux/lib/ 2>&1 | grep -E '^lib(cudart|cublas|cublasLt|curand|cufft)\.so' || echo "none in /usr/local/cuda-13.0/targets/x86_64-linux/lib"
    echo "--- cuDNN"; (ldconfig -p 2>/dev/null | grep -m3 libcudnn) || echo "libcudnn not in the linker cache"
    echo "--- ONNX Runtime: $ORT_LIB"; ls -la "$ORT_LIB" 2>&1
    echo "--- node: $("$NODE_BIN" --version 2>&1)"
    echo "--- python: $(python3 -c 'import sys, torch, transformers; print(sys.version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tail -1)"
  } > "$RES/env.txt" 2>&1
  nvidia-smi > "$RES/nvidia-smi.txt" 2>&1 || echo "nvidia-smi: not available" > "$RES/nvidia-smi.txt"
  local gpu; gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
  [ -n "$gpu" ] || gpu="none (nvidia-smi not available)"
  printf '{"started":%s,"command":%s,"dryRun":%s,"gpu":%s,"preset":%s,"device":%s}\n' "$(json_str "$(date -u +%FT%TZ)")" "$(json_str "$COMMAND")" "$([ "$DRY" = 1 ] && echo true || echo false)" \
    "$(json_str "$gpu")" "$(json_str "$PRESET")" "$(json_str "$DEVICE")" > "$RES/env.json"
  if [ "$DEVICE" = cuda ]; then
    # the CUDA provider must sit next to libonnxruntime.so.1 (versions match exactly: 1.29.0 built for CUDA 13)
    if [ -n "$PROVIDERS" ] && [ ! -f "$ORT_LIB/libonnxruntime_providers_cuda.so" ]; then cp "$PROVIDERS"/*.so "$ORT_LIB/"; fi
    local missing=0
    for f in libonnxruntime.so.1 libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so; do
      [ -f "$ORT_LIB/$f" ] || { echo "missing $ORT_LIB/$f"; missing=1; }
    done
    ls /usr/local/cuda-13.0/targets/x86_64-linux/lib/libcudart.so.13* >/dev/null 2>&1 || { echo "missing CUDA 13 runtime"; missing=1; }
    nvidia-smi -L || missing=1
    return $missing
  fi
}
export COMMAND DRY RES ORT_LIB NODE_BIN PROVIDERS DEVICE PRESET
export -f env_stage json_str
stage env 20 bash -c env_stage

# ---- models
stage models 150 "${NODE[@]}" models --dir "$MODELS" --preset "$PRESET" --dtype "$DTYPE" --out "$RES/models.json"
models_ok=$?

# ---- hf (background) beside logits
have_torch=0
python3 -c 'import torch, transformers' >/dev/null 2>&1 && have_torch=1
hf_pid=
if [ "$models_ok" != 0 ]; then
  record hf skipped 0 0 -1 "no checkpoints (models stage failed)"
elif [ "$have_torch" = 1 ]; then
  stage hf 120 python3 "$HERE/hf_check.py" --dir "$MODELS" --out "$RES/hf-logits.json" &
  hf_pid=$!
elif [ "$DRY" = 1 ]; then
  # no transformers here: realign's float64 reference forward stands in, so that the comparison still runs
  record hf skipped 0 0 -1 "python3 has no torch/transformers; dry run compares against realign's float64 reference instead"
  stage ref-logits 60 "${NODE[@]}" ref-logits --dir "$MODELS" --out "$RES/hf-logits.json"
else
  record hf skipped 0 0 -1 "python3 has no torch/transformers"
fi
if [ "$models_ok" = 0 ]; then
  stage logits 120 "${NODE[@]}" logits --dir "$MODELS" --device "$DEVICE" --out "$RES/ours-logits.json"
else
  record logits skipped 0 0 -1 "no checkpoints"
fi
[ -n "$hf_pid" ] && wait "$hf_pid"
if [ -f "$RES/ours-logits.json" ] && [ -f "$RES/hf-logits.json" ]; then
  stage compare 30 "${NODE[@]}" compare --ours "$RES/ours-logits.json" --ref "$RES/hf-logits.json" --out "$RES/correctness.json"
else
  record compare skipped 0 0 -1 "needs ours-logits.json and hf-logits.json"
fi

# ---- engine (200 s: with CUDA graphs on it also builds the capture graph, a second graph of the model's size, and
# opens a third session; the graphs stage after it reuses that graph)
if [ "$models_ok" = 0 ]; then
  stage engine 200 "${NODE[@]}" engine --dir "$MODELS" --device "$DEVICE" --batches "$BATCHES" --prompt "$PROMPT" --tokens "$TOKENS" --out "$RES/throughput.json"
else
  record engine skipped 0 0 -1 "no checkpoints"
fi
# ---- CUDA graphs on/off (the capture graph was built by the engine stage: it is in the graph cache)
if [ "$models_ok" = 0 ]; then
  stage graphs 90 "${NODE[@]}" graphs --dir "$MODELS" --device "$DEVICE" --batches "$GRAPH_BATCHES" --prompt "$PROMPT" --tokens "$GRAPH_STEPS" --out "$RES/cuda-graphs.json"
else
  record graphs skipped 0 0 -1 "no checkpoints"
fi
nvidia-smi > "$RES/nvidia-smi-end.txt" 2>&1 || true

# ---- report (it reads stages.jsonl, so its own line comes after)
TOTAL=$((TOTAL + 30)) stage report 30 "${NODE[@]}" report --results "$RES"
# the big logits files stay out of what comes back: the comparison is in correctness.json
for f in ours-logits.json hf-logits.json; do [ -f "$RES/$f" ] && xz -f -T0 "$RES/$f"; done
echo "[gpu-check] done in $(($(date +%s) - START)) s; results in $RES"
cat "$RES/results.md" 2>/dev/null
# every stage ran (or was skipped with a note); the exit status says whether one failed or ran out of time
! grep -qE '"status":"(failed|timeout)"' "$RES/stages.jsonl"
