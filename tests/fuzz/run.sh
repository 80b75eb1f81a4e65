#!/usr/bin/env bash
# run.sh - the fuzz targets from the test suite: build them with clang, or run one for a bounded
# time after replaying every input that once broke it.
#
#   run.sh build SRC_DIR FUZZ_BUILD_DIR LLAMA_DIR   configure (PC_FUZZ=ON, clang) and build
#   run.sh run SRC_DIR FUZZ_BUILD_DIR TARGET        replay regressions/TARGET/*, then fuzz from
#                                                   corpus/TARGET for PC_FUZZ_SECONDS (30)
# PC_FUZZ_MKMODEL (the mkmodel binary) makes the model that fuzz_infer serves, unless
# PC_FUZZ_MODEL already names one.
# A crash, a leak, undefined behaviour or a failed check in the target fails the run; libFuzzer
# leaves the input in FUZZ_BUILD_DIR/work/TARGET/ (crash-*, leak-*, ...).
set -euo pipefail

mode=$1 src=$2 build=$3

if [ "$mode" = build ]; then
    cc=$(command -v clang || command -v clang-14 || true)
    cxx=$(command -v clang++ || command -v clang++-14 || true)
    if [ -z "$cc" ] || [ -z "$cxx" ]; then
        echo "run.sh: clang is missing: run scripts/setup.sh" >&2
        exit 1
    fi
    # clang++ too: the chat shim (src/engine/chatio_*.cpp) is instrumented with the rest.
    cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" -DPC_FUZZ=ON \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPC_LLAMA_DIR="$4" >/dev/null
    exec cmake --build "$build" -j "$(nproc)"
fi

target=$4
here="$src/tests/fuzz"
work="$build/work/$target"
rm -rf "$work"
mkdir -p "$work/corpus" "$work/tmp"
export TMPDIR="$work/tmp" # the targets' scratch files, removed with the next run
# A model for the targets that serve one (fuzz_infer), when the suite says where mkmodel is.
if [ -n "${PC_FUZZ_MKMODEL:-}" ] && [ -z "${PC_FUZZ_MODEL:-}" ]; then
    "$PC_FUZZ_MKMODEL" --preset tiny -q -o "$work/tiny.gguf"
    export PC_FUZZ_MODEL="$work/tiny.gguf"
fi

opts=(-timeout=30 -rss_limit_mb=2048 -artifact_prefix="$work/")
[ -f "$here/$target.dict" ] && opts+=(-dict="$here/$target.dict")
bin="$build/bin/$target"

shopt -s nullglob
regressions=("$here/regressions/$target"/*)
if [ ${#regressions[@]} -gt 0 ]; then
    echo "== $target: replaying ${#regressions[@]} regression inputs"
    "$bin" "${opts[@]}" "${regressions[@]}"
fi

seconds=${PC_FUZZ_SECONDS:-30}
echo "== $target: fuzzing for ${seconds}s from corpus/$target"
# The new inputs go to the first directory, in the build; the checked-in seeds are only read.
exec "$bin" "${opts[@]}" -max_total_time="$seconds" -print_final_stats=1 \
    "$work/corpus" "$here/corpus/$target"
