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

# The rounds, timed from Python: the pull's JSON lines say when every byte was in and hashed
# ("verifying sha256 digest", before the fsync) and when it was done.
echo "bench_download: $((size / 1000000)) MB from nginx on 127.0.0.1:$port, $rounds rounds, alternating order"
PRECHARGE_HOME=$home python3 - "$bin" "$url" "$scratch" "$home" "$rounds" "$size" <<'PY'
import json, os, shutil, statistics, subprocess, sys, time

bin, url, scratch, home, rounds, size = sys.argv[1:5] + [int(sys.argv[5]), int(sys.argv[6])]
out = os.path.join(scratch, 'out', 'curl.gguf')

def settle():
    os.sync()  # the last run's writeback is not the next run's cost

def run_curl():
    if os.path.exists(out):
        os.unlink(out)
    settle()
    t0 = time.monotonic()
    subprocess.run(['curl', '-sS', '--fail', '--noproxy', '*', '-o', out, url], check=True)
    t1 = time.monotonic()
    subprocess.run(['sync', out], check=True)
    return t1 - t0, time.monotonic() - t0

def run_pull():
    shutil.rmtree(os.path.join(home, 'models'), ignore_errors=True)
    settle()
    t0 = time.monotonic()
    p = subprocess.Popen([bin, 'pull', '--json', 'bench-tinyllama'], stdout=subprocess.PIPE, text=True)
    hashed, last = None, {}
    for line in p.stdout:
        last = json.loads(line)
        if last.get('status') == 'verifying sha256 digest' and hashed is None:
            hashed = time.monotonic() - t0
    p.wait()
    done = time.monotonic() - t0
    if p.returncode != 0 or last.get('status') != 'success' or hashed is None:
        sys.exit('bench_download: the pull did not succeed: %r' % last)
    return hashed, done

def hash_once():
    t0 = time.monotonic()
    subprocess.run(['openssl', 'dgst', '-sha256', os.path.join(scratch, 'www', 'model.gguf')],
                   check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0

run_curl()  # warm the page cache and nginx
c, cs, ph, pd = [], [], [], []
for r in range(1, rounds + 1):
    if r % 2:
        a, b = run_curl(); x, y = run_pull()
    else:
        x, y = run_pull(); a, b = run_curl()
    c.append(a); cs.append(b); ph.append(x); pd.append(y)
    print(f'  round {r}: curl {a:.3f} s (+sync {b:.3f} s), pull hashed {x:.3f} s, done {y:.3f} s')
with open(out, 'rb') as f1, open(os.path.join(home, 'models', 'bench-tinyllama.gguf'), 'rb') as f2:
    if f1.read() != f2.read():
        sys.exit('bench_download: the two downloads differ')
h = statistics.median(hash_once() for _ in range(3))
mc, mcs, mph, mpd = (statistics.median(v) for v in (c, cs, ph, pd))
mb = lambda t: size / t / 1e6
print(f'\nmedians over {rounds} rounds ({size} bytes):')
print(f'  curl -o FILE                          {mc:6.3f} s  {mb(mc):5.0f} MB/s')
print(f'  curl -o FILE && sync FILE             {mcs:6.3f} s  {mb(mcs):5.0f} MB/s')
print(f'  precharge pull, all bytes in, hashed  {mph:6.3f} s  {mb(mph):5.0f} MB/s')
print(f'  precharge pull, verified and fsynced  {mpd:6.3f} s  {mb(mpd):5.0f} MB/s')
print(f'  ratio pull / curl, download with hashing on   {mc / mph:.2f}  (goal >= 0.9)')
print(f'  ratio pull / curl, to a durable verified file {mc / mpd:.2f}  (curl neither verifies nor fsyncs)')
print(f'  ratio pull / (curl + sync)                    {mcs / mpd:.2f}')
print(f'\nhashing cost: openssl dgst -sha256 over the file (from the page cache) takes {h:.3f} s '
      f'({mb(h):.0f} MB/s),')
print(f'  {100 * h / mc:.0f}% of curl\'s download time if it ran after the download; precharge hashes on a')
print(f'  second thread while the bytes arrive, so it costs wall time only where no core is free.')
PY
