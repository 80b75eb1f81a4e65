#!/usr/bin/env bash
# setup.sh - install what a fresh Debian 12 machine needs to build and test precharge.
#
# Idempotent: each step checks first and does nothing when its work is done.
# Steps: Debian packages (apt-get), then the pinned llama.cpp from npm
# (deps/llama.lock) unpacked into deps/llama/ (git-ignored), then the npm clients that the
# conformance tests drive (tests/integration/package-lock.json, into its node_modules/):
#   deps/llama/include/   llama.h, ggml*.h, gguf.h   (from the source bundle)
#   deps/llama/lib/       libllama, libggml*, per-CPU backends (prebuilt)
#   deps/llama/vocab/     ggml-vocab-*.gguf          (from the source bundle)
#   deps/llama/include/common/, include/nlohmann/  the common library's C++ headers (chat
#                         templates, tool calls, JSON schema grammars), for src/engine's shim
#   deps/llama/templates/ models/templates/*.jinja   (real chat templates, for mkmodel)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/deps/llama"
lock="$root/deps/llama.lock"

# nginx: the download tests and bench_download.sh run their own nginx on a loopback port (the
# package's system service is not used); curl: bench_download.sh compares against it.
# clang and its runtime libraries (libFuzzer, the sanitizers): the fuzz targets of tests/fuzz;
# wrk: the HTTP load test and bench_http.sh; chromium: the dashboard's browser tests (headless,
# driven by playwright-core); redis-server and libhiredis-dev: the fleet (src/fleet/, issue #18),
# whose tests run their own redis-server on a loopback port (the package's service is stopped).
debs=(build-essential cmake pkg-config git openssl nodejs npm ca-certificates
      libcurl4-openssl-dev libmicrohttpd-dev libjansson-dev libssl-dev libcmocka-dev
      nginx curl clang libclang-rt-dev wrk chromium redis-server libhiredis-dev)

say() { printf 'setup: %s\n' "$*" >&2; }

need_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_debs() {
    local missing=()
    for p in "${debs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    # node and npm may come from elsewhere than Debian; what matters is the command.
    local want=()
    for p in "${missing[@]}"; do
        case "$p" in
        nodejs) command -v node >/dev/null || want+=("$p") ;;
        npm) command -v npm >/dev/null || want+=("$p") ;;
        *) want+=("$p") ;;
        esac
    done
    [ ${#want[@]} -eq 0 ] && return 0
    say "installing Debian packages: ${want[*]}"
    need_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive need_root apt-get install -y -qq --no-install-recommends "${want[@]}"
    quiet_redis_service
}

# Debian's redis-server starts a system service on 6379 when it is installed; nothing here uses
# it (the tests and benchmarks start their own on a free loopback port), so it is stopped and
# kept from starting at boot, only where systemd runs it.
quiet_redis_service() {
    command -v systemctl >/dev/null || return 0
    systemctl is-active --quiet redis-server 2>/dev/null || return 0
    say "stopping the redis-server system service (the tests run their own)"
    need_root systemctl disable --now redis-server >/dev/null 2>&1 || true
}

stamp_text() { grep -v '^#' "$lock" | sed '/^\s*$/d'; }

# What deps/llama holds beyond the lock's packages; bump it when install_llama copies more, so
# that an existing checkout installs again.
layout="layout 2: common headers, templates"
stamp() { stamp_text; echo "$layout"; }

install_llama() {
    if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$(stamp)" ]; then
        return 0
    fi
    local tmp
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' RETURN
    while read -r name version integrity; do
        say "fetching $name@$version"
        (cd "$tmp" && npm pack --silent "$name@$version" >/dev/null)
        local tgz
        tgz="$tmp/$(echo "${name#@}" | tr '/' '-')-$version.tgz"
        local got
        got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
        if [ "$got" != "$integrity" ]; then
            say "integrity mismatch for $name@$version: want $integrity, got $got"
            exit 1
        fi
    done < <(stamp_text)

    rm -rf "$dest.new"
    mkdir -p "$dest.new"/{include/common/jinja,include/nlohmann,lib,vocab,templates} "$tmp/src" "$tmp/bin"
    tar xzf "$tmp/node-llama-cpp-linux-x64-3.22.1.tgz" -C "$tmp/bin" package/bins/linux-x64
    cp -a "$tmp"/bin/package/bins/linux-x64/*.so "$dest.new/lib/"
    # The prebuilt carries versioned sonames; give the linker the plain names too.
    ln -sf libllama.v0.5.0.so "$dest.new/lib/libllama.so"
    ln -sf libggml.v0.5.0.so "$dest.new/lib/libggml.so"

    tar xzf "$tmp/node-llama-cpp-3.22.1.tgz" -C "$tmp/src" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
    git clone -q --depth 1 "$tmp/src/package/llama/gitRelease.bundle" "$tmp/src/llama.cpp" 2>/dev/null ||
        git clone -q "$tmp/src/package/llama/gitRelease.bundle" "$tmp/src/llama.cpp"
    cp "$tmp"/src/llama.cpp/include/*.h "$dest.new/include/"
    cp "$tmp"/src/llama.cpp/ggml/include/*.h "$dest.new/include/"
    cp "$tmp"/src/llama.cpp/models/ggml-vocab-*.gguf "$dest.new/vocab/"
    # The common library's headers, of the same commit as the prebuilt libllama-common.so (its
    # C++ ABI): src/engine's chat shim includes them.
    cp "$tmp"/src/llama.cpp/common/*.h "$dest.new/include/common/"
    cp "$tmp"/src/llama.cpp/common/jinja/*.h "$dest.new/include/common/jinja/"
    cp "$tmp"/src/llama.cpp/vendor/nlohmann/*.hpp "$dest.new/include/nlohmann/"
    cp "$tmp"/src/llama.cpp/models/templates/*.jinja "$dest.new/templates/"
    cp "$tmp/src/package/llama/llama.cpp.info.json" "$dest.new/"
    stamp >"$dest.new/.stamp"
    rm -rf "$dest"
    mv "$dest.new" "$dest"
    say "llama.cpp $(grep -o '"v[0-9.]*"' "$dest/llama.cpp.info.json") in deps/llama"
}

# The official ollama and openai clients, exactly as the lock pins them. Runs again only when
# node_modules is missing or the lock changed since the last install.
install_npm() {
    local dir="$root/tests/integration" want
    want=$(openssl dgst -sha256 -r "$dir/package-lock.json" | cut -d' ' -f1)
    if [ -f "$dir/node_modules/.lock-sha256" ] && [ "$(cat "$dir/node_modules/.lock-sha256")" = "$want" ]; then
        return 0
    fi
    say "installing the test clients (npm ci --prefix tests/integration)"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    echo "$want" >"$dir/node_modules/.lock-sha256"
}

case "${1:-all}" in
debs) install_debs ;;
llama) install_llama ;;
npm) install_npm ;;
all) install_debs; install_llama; install_npm ;;
*) say "usage: setup.sh [all|debs|llama|npm]"; exit 2 ;;
esac
