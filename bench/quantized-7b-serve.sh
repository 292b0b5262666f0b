#!/bin/bash
# Issue 17's memory check: the r1-distill-qwen-7b shape in int4 served by `realign serve` on the CPU, one streamed
# completion through the API; prints the build's and the server's peak RSS (/usr/bin/time -v), the time to first
# token and the decode tokens/s. Everything goes under WORK (default /tmp/realign-7b-int4, ~20 GB), deleted at the end
# unless KEEP=1. Long: run it alone, niced.
#
#   nice -n 10 bench/quantized-7b-serve.sh [WORK]
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/realign-7b-int4}
PORT=${PORT:-18777}
mkdir -p "$WORK"
[ -d "$WORK/ckpt" ] || /usr/bin/time -v node --import tsx bench/quantized-7b-checkpoint.ts "$WORK/ckpt" 2> "$WORK/checkpoint.err"
/usr/bin/time -v node bin/realign.js build-graph --model "$WORK/ckpt" --weights int4 --out "$WORK/graphs" > "$WORK/build.out" 2> "$WORK/build.err"
# max_context 8192: the build's default, so that the server finds the graph built above
cat > "$WORK/models.json" <<JSON
{
  "models": [{ "id": "r1-7b-int4", "mode": "single", "model": "./ckpt", "device": "cpu", "weights": "int4",
               "max_context": 8192, "max_batch": 4, "max_queue": 16 }],
  "auth": { "bearer_tokens_env": "REALIGN_API_TOKENS", "allow_unauthenticated": false },
  "graph_cache": "./graphs"
}
JSON
export REALIGN_API_TOKENS=check7b
/usr/bin/time -v node bin/realign.js serve --config "$WORK/models.json" --port "$PORT" > "$WORK/serve.log" 2> "$WORK/serve.err" &
TPID=$!
for i in $(seq 1800); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")" = 200 ] && break
  sleep 1
done
echo "ready after ~${i} s"
date +%s.%N > "$WORK/t0"
curl -sN "http://127.0.0.1:$PORT/v1/completions" -H "Authorization: Bearer $REALIGN_API_TOKENS" \
  -H 'Content-Type: application/json' \
  -d '{"model":"r1-7b-int4","prompt":"The quick brown fox","max_tokens":32,"temperature":0,"stream":true}' |
  while IFS= read -r line; do [ -n "$line" ] && echo "$(date +%s.%N) $line"; done > "$WORK/stream.txt"
kill -TERM "$(pgrep -P "$TPID")"
wait "$TPID" || true
python3 - "$WORK" <<'PY'
import re, sys
w = sys.argv[1]
rss = lambda f: int(re.search(r'Maximum resident set size \(kbytes\): (\d+)', open(f).read()).group(1)) / 2**20
t0 = float(open(f'{w}/t0').read())
ts = [float(l.split(' ', 1)[0]) for l in open(f'{w}/stream.txt') if '"text"' in l]
print(f'build peak RSS {rss(w + "/build.err"):.2f} GiB; serve peak RSS {rss(w + "/serve.err"):.2f} GiB')
print(f'{len(ts)} streamed events, first token after {ts[0] - t0:.1f} s, decode {(len(ts) - 1) / (ts[-1] - ts[0]):.2f} tokens/s')
PY
[ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
