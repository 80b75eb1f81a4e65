#!/usr/bin/env bash
# daemon_rss.sh - what the daemon costs beyond its model: RSS idle, RSS with the model loaded,
# and the model's own memory as llama.cpp reports it (weights + KV + compute), side by side.
#
#   bench/daemon_rss.sh [MODEL_NAME] [PRECHARGE_HOME]   (defaults: tinyllama-random ~/.precharge)
set -euo pipefail
model=${1:-tinyllama-random}
home=${2:-${PRECHARGE_HOME:-$HOME/.precharge}}
bin=${PC_BIN:-build/bin/precharge}
log=$(mktemp)
trap 'kill $pid 2>/dev/null; rm -f "$log"' EXIT

PRECHARGE_HOME=$home "$bin" serve --host 127.0.0.1:0 2>"$log" &
pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$log" && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$log" | head -1)
rss() { awk '/VmRSS/ {print $2}' /proc/$pid/status; }

idle=$(rss)
curl -sf "$url/api/generate" -d "{\"model\":\"$model\",\"prompt\":\"hi\",\"options\":{\"num_predict\":4}}" >/dev/null
loaded=$(rss)
model_bytes=$(curl -sf "$url/api/ps" | grep -o '"size":[0-9]*' | head -1 | cut -d: -f2)
model_kib=$((model_bytes / 1024))
printf 'daemon idle RSS        %6d MiB\n' $((idle / 1024))
printf 'daemon RSS with model  %6d MiB\n' $((loaded / 1024))
printf 'model (llama.cpp)      %6d MiB  (weights + KV + compute)\n' $((model_kib / 1024))
printf 'RSS beyond the model   %6d MiB  (RSS / model = %s)\n' $(((loaded - model_kib) / 1024)) \
    "$(awk -v a="$loaded" -v b="$model_kib" 'BEGIN {printf "%.2f", a / b}')"
