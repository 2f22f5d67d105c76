#!/usr/bin/env bash
# Usage: tests/fuzz/run.sh [SECONDS]
# Builds the libFuzzer targets (clang, -DDEVID_FUZZ=ON) in build-fuzz and runs
# each for SECONDS (default 20) on a copy of its committed seed corpus, so the
# corpus in git never changes. Prints one line per target with the number of
# executions. Exits non-zero if any target crashes, leaks, times out or trips
# a sanitizer; the reproducer is kept in build-fuzz/fuzz-artifacts/.
set -euo pipefail
secs=${1:-20}
cd "$(dirname "$0")/../.."
src=$(pwd -P)
build=${DEVID_FUZZ_BUILD:-$src/build-fuzz}
# One target per seed corpus (tests/fuzz/CMakeLists.txt builds the same list).
mapfile -t targets < <(cd "$src/tests/fuzz/corpus" && ls -d fuzz_* | sort)
[ ${#targets[@]} -gt 0 ] || { echo "no fuzz corpora in tests/fuzz/corpus" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! { CC=clang cmake -S "$src" -B "$build" -DDEVID_FUZZ=ON -DDEVID_TESTS=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
    cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"; } >"$work/build.log" 2>&1; then
    cat "$work/build.log"
    echo "fuzz build failed" >&2
    exit 1
fi
artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
for t in "${targets[@]}"; do
    cp -r "$src/tests/fuzz/corpus/$t" "$work/$t"
    log=$work/$t.log
    if "$build/tests/fuzz/$t" -max_total_time="$secs" -print_final_stats=1 -timeout=30 \
        -rss_limit_mb=2048 -artifact_prefix="$artifacts/$t-" "$work/$t" >"$log" 2>&1; then
        execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
        printf '%-22s ok    %s executions in %ss\n' "$t" "${execs:-?}" "$secs"
    else
        printf '%-22s FAIL  (log below; reproducer in %s)\n' "$t" "$artifacts"
        tail -n 80 "$log" | sed 's/^/    /'
        failed=1
    fi
done
exit "$failed"
