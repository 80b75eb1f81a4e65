#!/usr/bin/env bash
# bench_http.sh - the HTTP layer's throughput: wrk against GET /health (the layer alone) and
# GET /api/ps (the pool's list as JSON, with one model loaded), and POST /api/show through
# a wrk script. Prints requests/s and latency per endpoint. Measures; asserts nothing (the load
# test, tests/integration/load.test.mjs, checks the behaviour).
#
#   bench/bench_http.sh [SECONDS] [CONNECTIONS]     (default 10 s, 32 connections, 2 threads)
#
# Environment: PC_BIN (build/bin/precharge), PC_MKMODEL (build/bin/mkmodel), THREADS (2).
set -euo pipefail
seconds=${1:-10}
conns=${2:-32}
bin=${PC_BIN:-build/bin/precharge}
mkmodel=${PC_MKMODEL:-build/bin/mkmodel}
threads=${THREADS:-2}
home=$(mktemp -d)
log=$home/daemon.log
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$home"' EXIT

mkdir -p "$home/models"
"$mkmodel" --preset tiny -q -o "$home/models/tiny.gguf"
PRECHARGE_HOME="$home" PRECHARGE_THREADS=1 PRECHARGE_KEEP_ALIVE=-1 OLLAMA_URL=off \
    "$bin" serve --host 127.0.0.1:0 2>"$log" &
pid=$!
for _ in $(seq 300); do grep -q 'listening on' "$log" && break; sleep 0.1; done
url=$(grep -o "listening on http://[^ ]*" "$log" | head -1 | cut -d" " -f3)
# One model resident, so that /api/ps has something to list.
curl -sf "$url/api/generate" -d '{"model":"tiny","keep_alive":-1}' >/dev/null

cat >"$home/show.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"tiny"}'
wrk.headers["Content-Type"] = "application/json"
LUA

echo "wrk -t$threads -c$conns -d${seconds}s; $(nproc) CPUs shared by wrk and the daemon; $($bin --version 2>/dev/null | head -1)"
printf '%-18s %12s %12s %12s %8s\n' endpoint requests/s 'latency avg' 'latency p99' errors
run() { # label, url, extra wrk args
    local out
    out=$(wrk -t"$threads" -c"$conns" -d"${seconds}s" --latency "${@:3}" "$2")
    local rps avg p99 errs
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    avg=$(awk '$1 == "Latency" {print $2; exit}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    errs=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
    printf '%-18s %12s %12s %12s %8s\n' "$1" "$rps" "$avg" "$p99" "$errs"
}
run "GET /health" "$url/health"
run "GET /api/ps" "$url/api/ps"
run "POST /api/show" "$url/api/show" -s "$home/show.lua"
