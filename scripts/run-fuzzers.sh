#!/usr/bin/env bash
# Usage: scripts/run-fuzzers.sh SECONDS [TARGET...]
# Builds the fuzz preset, then runs each fuzz target (all four when none is
# named: analyzer cursor http_request submission) for SECONDS, one after
# another. New inputs go to build/fuzz/long-corpus/TARGET, which later runs
# reuse; crashes land in build/fuzz/long-artifacts/TARGET/. Exits non-zero
# when a target finds a crash.
set -euo pipefail

if [ $# -lt 1 ] || ! [[ "$1" =~ ^[0-9]+$ ]]; then
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
fi
seconds="$1"
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(analyzer cursor http_request submission)
fi

repository="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repository"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j 2

status=0
for target in "${targets[@]}"; do
    corpus="build/fuzz/long-corpus/$target"
    artifacts="build/fuzz/long-artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    arguments=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
               -artifact_prefix="$artifacts/")
    if [ -f "tests/fuzz/$target.dict" ]; then
        arguments+=(-dict="tests/fuzz/$target.dict")
    fi
    echo "== $target: $seconds s"
    if ! "build/fuzz/${target}_fuzzer" "${arguments[@]}" "$corpus" "tests/fuzz/corpus/$target"; then
        echo "== $target found a crash; see $artifacts" >&2
        status=1
    fi
done
exit $status
