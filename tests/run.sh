#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite:
#   1. the format check (clang-format 14, .clang-format) and the banned-function
#      check (tests/checksrc.sh);
#   2. unit and integration tests in a plain build;
#   3. the same tests in an AddressSanitizer + UndefinedBehaviorSanitizer build;
#   4. every libFuzzer target for a short fixed time (DEVID_FUZZ_SECONDS, 20).
# A failing phase does not stop the others. The last line counts what actually
# ran: `suite: N passed, M failed, K skipped`, where each ctest test, each fuzz
# target and each source check is one item. The exit status is 0 only when
# nothing failed.
set -uo pipefail
cd "$(dirname "$0")/.."
src=$(pwd -P)
jobs=$(nproc)

deploy/install-deps.sh --tests || exit 1

passed=0
failed=0
skipped=0
failures=()

# count NAME OK: one item that passed (OK=0) or failed.
count() {
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$1")
    fi
}

# ctest_phase DIR NAME: run ctest in DIR and add what it counted. A build that
# failed, or a ctest run that printed no summary, is one failed item.
ctest_phase() {
    local dir=$1 name=$2 log=$1/ctest.log line np nf nt ns
    ctest --test-dir "$dir" --output-on-failure -j"$jobs" 2>&1 | tee "$log"
    line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        count "$name: ctest printed no summary" 1
        return
    fi
    nf=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    nt=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
    # ctest counts skipped tests as passed in that line; take them out.
    ns=$(sed -n '/The following tests did not run:/,/^$/p' "$log" | grep -c 'Skipped')
    np=$((nt - nf - ns))
    passed=$((passed + np))
    failed=$((failed + nf))
    skipped=$((skipped + ns))
    [ "$nf" -eq 0 ] || failures+=("$name: $(sed -n '/The following tests FAILED:/,/^Errors/p' "$log" |
        grep -E '^\s+[0-9]+ - ' | sed -E 's/^\s+[0-9]+ - //; s/ \(.*//' | paste -sd, -)")
    # The integration scripts' own closing lines: N passed, M failed, K skipped.
    if [ -f "$dir/Testing/Temporary/LastTest.log" ]; then
        awk -v n="$name" '
            /^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$/ {
                p += $1; f += $3; if (NF >= 6) s += $5
            }
            END { printf "== %s: checks inside the integration tests: %d passed, %d failed, %d skipped\n", n, p, f, s }
        ' "$dir/Testing/Temporary/LastTest.log"
        grep -E '^\[[a-z0-9_-]+\] SKIP: ' "$dir/Testing/Temporary/LastTest.log" | sed 's/^/   /'
    fi
}

# build_phase DIR NAME CMAKE_ARGS...: configure and build; on failure the
# phase is one failed item and its tests are not run.
build_phase() {
    local dir=$1 name=$2
    shift 2
    mkdir -p "$dir"
    if cmake -S "$src" -B "$dir" -DDEVID_TESTS=ON "$@" >"$dir/configure.log" 2>&1 &&
        cmake --build "$dir" -j"$jobs"; then
        ctest_phase "$dir" "$name"
    else
        cat "$dir/configure.log"
        count "$name: configure or build failed" 1
    fi
}

echo "== format check (clang-format 14, .clang-format)"
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null || find agent common verifier tests -name '*.[ch]')
clang-format --dry-run -Werror "${files[@]}"
count "format check" $?

echo "== banned functions (tests/checksrc.sh)"
tests/checksrc.sh "${files[@]}"
count "banned functions" $?

echo "== plain build and tests"
build_phase build plain -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEVID_SANITIZE=OFF

echo "== ASan+UBSan build and tests"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$src/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
build_phase build-asan asan -DCMAKE_BUILD_TYPE=Debug -DDEVID_SANITIZE=ON

echo "== fuzz smoke"
tests/fuzz/run.sh "${DEVID_FUZZ_SECONDS:-20}" | tee build/fuzz.log
fuzz_rc=${PIPESTATUS[0]}
n_ok=$(grep -cE '^fuzz_[a-z_]+ +ok ' build/fuzz.log)
n_fail=$(grep -cE '^fuzz_[a-z_]+ +FAIL ' build/fuzz.log)
passed=$((passed + n_ok))
failed=$((failed + n_fail))
[ "$n_fail" -eq 0 ] || failures+=("fuzz: $n_fail target(s)")
if [ "$fuzz_rc" -ne 0 ] && [ "$n_fail" -eq 0 ]; then
    count "fuzz: build or run failed" 1
fi

echo
for f in "${failures[@]}"; do
    echo "FAILED: $f"
done
echo "suite: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
