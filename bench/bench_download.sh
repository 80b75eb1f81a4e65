#!/usr/bin/env bash
# bench_download.sh - download throughput of `precharge pull` against the `curl` command line:
# the same 637 MB file (mkmodel's tinyllama preset), from the same nginx on loopback, measured
# side by side in one run, as a ratio. The pull verifies SHA-256 and fsyncs before it reports
# success; curl does neither, so the ratio against `curl` then `sync FILE` is printed too. The
# cost of hashing alone is measured separately with `openssl dgst -sha256`.
#
# usage: bench/bench_download.sh [BUILD_DIR] [ROUNDS]     (defaults: build, 5)
# env:   PC_BIN, PC_MKMODEL (binaries), NGINX (/usr/sbin/nginx), BENCH_TMP (scratch directory)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
rounds=${2:-5}
bin=${PC_BIN:-$build/bin/precharge}
mkmodel=${PC_MKMODEL:-$build/bin/mkmodel}
nginx=${NGINX:-/usr/sbin/nginx}
export NO_PROXY=127.0.0.1 no_proxy=127.0.0.1

for tool in "$bin" "$mkmodel" "$nginx" curl openssl python3; do
    command -v "$tool" >/dev/null || { echo "bench_download: $tool is missing" >&2; exit 1; }
done

scratch=$(mktemp -d "${BENCH_TMP:-$build}/bench-download.XXXXXX")
chmod 755 "$scratch" # nginx's worker may run as another user
ngx_pid=
cleanup() {
    [ -n "$ngx_pid" ] && kill "$ngx_pid" 2>/dev/null && wait "$ngx_pid" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT

# The file, kept between runs beside the build (it takes a few seconds to make).
model=$build/bench-cache/tinyllama.gguf
if [ ! -f "$model" ]; then
    mkdir -p "$(dirname "$model")"
    "$mkmodel" --preset tinyllama -q -o "$model.tmp" && mv "$model.tmp" "$model"
fi
mkdir -p "$scratch/www" "$scratch/tmp" "$scratch/out"
ln "$model" "$scratch/www/model.gguf" 2>/dev/null || cp "$model" "$scratch/www/model.gguf"
size=$(stat -c %s "$scratch/www/model.gguf")
sha=$(openssl dgst -sha256 -r "$scratch/www/model.gguf" | cut -d' ' -f1)

# nginx on a free loopback port, with its own prefix: nothing outside $scratch.
port_free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for try in 1 2 3 4 5; do
    port=$(port_free)
    cat >"$scratch/nginx.conf" <<EOF
worker_processes 1;
pid $scratch/nginx.pid;
error_log $scratch/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $scratch/tmp/body; proxy_temp_path $scratch/tmp/proxy;
  fastcgi_temp_path $scratch/tmp/fcgi; uwsgi_temp_path $scratch/tmp/uwsgi; scgi_temp_path $scratch/tmp/scgi;
  sendfile on;
  server { listen 127.0.0.1:$port; root $scratch/www; }
}
EOF
    "$nginx" -p "$scratch" -e "$scratch/error.log" -c "$scratch/nginx.conf" -g 'daemon off;' &
    ngx_pid=$!
    for i in $(seq 200); do
        curl -s -o /dev/null "http://127.0.0.1:$port/" && break
        kill -0 "$ngx_pid" 2>/dev/null || break
        sleep 0.02
    done
    kill -0 "$ngx_pid" 2>/dev/null && break
    ngx_pid=
done
[ -n "$ngx_pid" ] || { echo "bench_download: nginx did not start" >&2; exit 1; }
url=http://127.0.0.1:$port/model.gguf

home=$scratch/home
mkdir -p "$home"
cat >"$home/catalog.json" <<EOF
{"models": [{"id": "bench-tinyllama", "name": "bench", "family": "llama", "parameters": "1.1B",
  "quantization": "Q4_0", "context_window": 2048, "file_size_mb": $((size / 1000000)),
  "ram_required_mb": 1200, "source": {"url": "$url"}, "sha256": "$sha"}]}
EOF

now() { date +%s.%N; }
settle() { sync; } # the last run's writeback is not the next run's cost

run_curl() {
    rm -f "$scratch/out/curl.gguf"; settle
    local t0 t1 t2
    t0=$(now)
    curl -sS --fail --noproxy '*' -o "$scratch/out/curl.gguf" "$url"
    t1=$(now)
    sync "$scratch/out/curl.gguf"
    t2=$(now)
    echo "$t0 $t1 $t2"
}

run_pull() {
    rm -rf "$home/models"; settle
    local t0 t1
    t0=$(now)
    PRECHARGE_HOME=$home "$bin" pull --json bench-tinyllama >"$scratch/pull.out"
    t1=$(now)
    tail -n1 "$scratch/pull.out" | grep -q '"status":"success"' || {
        echo "bench_download: the pull did not succeed:" >&2; cat "$scratch/pull.out" >&2; exit 1; }
    echo "$t0 $t1"
}

echo "bench_download: $((size / 1000000)) MB from nginx on 127.0.0.1:$port, $rounds rounds, alternating order"
run_curl >/dev/null # warm the page cache and nginx
curl_s=() curlsync_s=() pull_s=()
for r in $(seq "$rounds"); do
    if [ $((r % 2)) -eq 1 ]; then
        read -r a b c < <(run_curl); read -r d e < <(run_pull)
    else
        read -r d e < <(run_pull); read -r a b c < <(run_curl)
    fi
    curl_s+=("$(echo "$b - $a" | bc -l)")
    curlsync_s+=("$(echo "$c - $a" | bc -l)")
    pull_s+=("$(echo "$e - $d" | bc -l)")
    printf '  round %d: curl %.3f s, curl+sync %.3f s, pull %.3f s\n' "$r" "${curl_s[-1]}" \
        "${curlsync_s[-1]}" "${pull_s[-1]}"
done
cmp -s "$scratch/out/curl.gguf" "$home/models/bench-tinyllama.gguf" ||
    { echo "bench_download: the two downloads differ" >&2; exit 1; }

hash_s=()
for r in 1 2 3; do
    a=$(now); openssl dgst -sha256 "$scratch/www/model.gguf" >/dev/null; b=$(now)
    hash_s+=("$(echo "$b - $a" | bc -l)")
done

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
mc=$(median "${curl_s[@]}"); mcs=$(median "${curlsync_s[@]}"); mp=$(median "${pull_s[@]}")
mh=$(median "${hash_s[@]}")
mbps() { echo "$size / $1 / 1000000" | bc -l; }
printf '\nmedians over %d rounds (%s bytes):\n' "$rounds" "$size"
printf '  curl -o FILE                 %6.3f s  %6.0f MB/s\n' "$mc" "$(mbps "$mc")"
printf '  curl -o FILE && sync FILE    %6.3f s  %6.0f MB/s\n' "$mcs" "$(mbps "$mcs")"
printf '  precharge pull (sha256+fsync) %5.3f s  %6.0f MB/s\n' "$mp" "$(mbps "$mp")"
printf '  ratio pull / curl             %.2f  (throughput; goal >= 0.9)\n' "$(echo "$mc / $mp" | bc -l)"
printf '  ratio pull / (curl + sync)    %.2f\n' "$(echo "$mcs / $mp" | bc -l)"
printf '\nhashing cost: openssl dgst -sha256 over the file (page cache) %.3f s = %.0f MB/s,\n' \
    "$mh" "$(mbps "$mh")"
printf '  %.0f%% of curl'"'"'s download time if it were done after the download; precharge hashes\n' \
    "$(echo "100 * $mh / $mc" | bc -l)"
printf '  on a second thread while the bytes arrive, so it shows only where a core is short.\n'
