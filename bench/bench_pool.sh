#!/usr/bin/env bash
# bench_pool.sh - model switching under a memory budget: three TinyLlama-sized models of which
# only two fit, asked for in turn (each request evicts one and loads another), against loading
# the same model in a fresh process (`precharge run MODEL -n 1 PROMPT`), side by side in one
# run; and the daemon's memory beyond what its models report, per loaded model.
#
#   bench/bench_pool.sh [SWITCHES]        (default 9; models are kept in $PC_BENCH_DIR)
#
# Environment: PC_BIN (build/bin/precharge), PC_MKMODEL (build/bin/mkmodel), PC_BENCH_DIR
# (/tmp/precharge-bench-pool), THREADS (2), CTX (2048).
set -euo pipefail
switches=${1:-9}
bin=${PC_BIN:-build/bin/precharge}
mkmodel=${PC_MKMODEL:-build/bin/mkmodel}
dir=${PC_BENCH_DIR:-/tmp/precharge-bench-pool}
threads=${THREADS:-2}
ctx=${CTX:-2048}
home=$(mktemp -d)
log=$home/daemon.log
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; cp "$log" "$dir/daemon.log" 2>/dev/null; rm -rf "$home"' EXIT

mkdir -p "$dir" "$home/models"
for i in 1 2 3; do
    f=$dir/tl$i.gguf
    [ -s "$f" ] || "$mkmodel" --preset tinyllama --seed "$i" -q -o "$f"
    ln -s "$f" "$home/models/tl$i.gguf"
done
cat "$dir"/tl?.gguf >/dev/null # the page cache holds all three, for both sides

now() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f\n", (b - a) / 1e6}'; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
median() { sort -n | awk '{v[NR] = $1} END {printf "%d\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

start() { # start the daemon with extra environment; sets pid and url
    env PRECHARGE_HOME="$home" PRECHARGE_THREADS="$threads" PRECHARGE_CONTEXT_LENGTH="$ctx" \
        PRECHARGE_KEEP_ALIVE=-1 PRECHARGE_MAX_LOADED_MODELS=3 "$@" \
        "$bin" serve --host 127.0.0.1:0 2>"$log" &
    pid=$!
    for _ in $(seq 300); do grep -q 'listening on' "$log" && break; sleep 0.1; done
    url=$(grep -o 'http://[^ ]*' "$log" | head -1)
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
ask() { # one answer of one token from model $1; prints the wall time in ms
    local t0 t1
    t0=$(now)
    curl -sf "$url/api/generate" -o "$home/reply" \
        -d "{\"model\":\"$1\",\"prompt\":\"Hello\",\"stream\":false,\"options\":{\"num_predict\":1}}"
    t1=$(now)
    ms "$t0" "$t1"
    # load_duration: admission (estimate, eviction) and the load, as the daemon timed them
    grep -o '"load_duration":[0-9]*' "$home/reply" | cut -d: -f2 | awk '{printf "%.0f\n", $1 / 1e6}' \
        >>"$home/load"
}
fresh() { # the same in a new process
    local t0 t1
    t0=$(now)
    PRECHARGE_HOME="$home" "$bin" run --threads "$threads" --ctx "$ctx" -n 1 "$1" Hello >/dev/null
    t1=$(now)
    ms "$t0" "$t1"
}

# What one model costs as the pool counts it; the budget then holds two (at 83 %, under
# pressure) and not three.
start PRECHARGE_MEMORY_BUDGET=none
idle=$(rss_kib)
curl -sf -XPOST "$url/v1/models/tl1/load" -o /dev/null
size=$(curl -sf "$url/api/ps" | grep -o '"size":[0-9]*' | head -1 | cut -d: -f2)
stop
budget=$((size * 12 / 5))

start PRECHARGE_MEMORY_BUDGET=$budget
idle=$(rss_kib)
ask tl1 >/dev/null
ask tl2 >/dev/null
two=$(rss_kib)
reported=$(curl -sf "$url/api/ps" | grep -o '"size":[0-9]*' | cut -d: -f2 | awk '{s += $1} END {printf "%.0f", s}')
hit=$(for _ in 1 2 3; do ask tl2; done | median)

# Switches, each beside a fresh process loading the model that was just switched to.
order=(tl3 tl1 tl2)
: >"$home/switch" && : >"$home/fresh" && : >"$home/load"
for ((i = 0; i < switches; i++)); do
    m=${order[$((i % 3))]}
    ask "$m" >>"$home/switch"
    fresh "$m" >>"$home/fresh"
done
after=$(rss_kib)
stats=$(curl -sf "$url/v1/models/stats")
sw=$(median <"$home/switch")
ld=$(median <"$home/load")
# The engine's own load times, and how long freeing the evicted model took, from the log.
eng=$(grep -o 'loaded tl[0-9] in [0-9]* ms' "$log" | tail -n "$switches" | awk '{print $4}' | median)
free_ms=$(awk '/unloading .*evicted/ {split($1, t, "T"); u = t[2]} /loading .* from/ && u != "" {
    split($1, t, "T"); split(u, a, ":"); split(t[2], b, ":");
    print ((b[1] * 60 + b[2]) * 60 + b[3] - ((a[1] * 60 + a[2]) * 60 + a[3])) * 1000; u = "" }' "$log" | median)
fr=$(median <"$home/fresh")

mib() { awk -v b="$1" 'BEGIN {printf "%.0f", b / 1048576}'; }
echo "bench_pool: 3 x tinyllama ($(mib "$size") MiB each as loaded), budget $(mib "$budget") MiB" \
    "(two fit), $threads threads, ctx $ctx, $switches switches"
printf 'switch (evict + load + 1 token), median   %6d ms   [%s]\n' "$sw" "$(paste -sd' ' "$home/switch")"
printf 'fresh process (run -n 1), median          %6d ms   [%s]\n' "$fr" "$(paste -sd' ' "$home/fresh")"
printf '  of which admission + load, median      %6d ms   (load_duration; engine load %d ms,' "$ld" "$eng"
printf ' freeing the evicted model %d ms)\n' "$free_ms"
printf 'resident model (hit), median              %6d ms\n' "$hit"
pairs=$(paste "$home/switch" "$home/fresh" | awk '{printf "%.3f\n", $1 / $2}' | sort -n |
    awk '{v[NR] = $1} END {printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
awk -v s="$sw" -v f="$fr" -v h="$hit" -v p="$pairs" 'BEGIN {
    printf "switch / fresh process, ratio of medians  %6.2f\n", s / f
    printf "switch / fresh process, median pair ratio %6.2f   (each pair run back to back)\n", p
    printf "hit / fresh process                       %6.3f\n", h / f }'
echo "stats: $stats"
echo
printf 'daemon RSS idle                           %6d MiB\n' $((idle / 1024))
printf 'daemon RSS, two models loaded             %6d MiB\n' $((two / 1024))
printf 'models as reported (weights+KV+compute)   %6d MiB\n' "$(mib "$reported")"
printf 'RSS beyond the models, per loaded model   %6d MiB   ((RSS - idle - reported) / 2)\n' \
    $(((two - idle - reported / 1024) / 2 / 1024))
printf 'RSS / (idle + reported)                   %6s\n' \
    "$(awk -v r="$two" -v i="$idle" -v m="$reported" 'BEGIN {printf "%.3f", r / (i + m / 1024)}')"
printf 'daemon RSS after %2d switches              %6d MiB   (two models resident)\n' \
    "$switches" $((after / 1024))
echo
PRECHARGE_HOST=${url#http://} "$bin" ps
