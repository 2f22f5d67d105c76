#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: unit and
# integration tests in a plain build and again under ASan+UBSan, the fuzz
# targets for a short fixed time, and the format check.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd -P)
jobs=$(nproc)

deploy/install-deps.sh --tests

echo "== format check (clang-format 14, .clang-format)"
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null || find agent common verifier tests -name '*.[ch]')
clang-format --dry-run -Werror "${files[@]}"

echo "== plain build and tests"
cmake -S "$src" -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" | tee build/ctest.log

echo "== ASan+UBSan build and tests"
cmake -S "$src" -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDEVID_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$src/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir build-asan --output-on-failure -j"$jobs" | tee build-asan/ctest.log

if [ -x tests/fuzz/run.sh ]; then
    echo "== fuzz smoke"
    tests/fuzz/run.sh "${DEVID_FUZZ_SECONDS:-20}"
fi
passed=0
for log in build/ctest.log build-asan/ctest.log; do
    n=$(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\)$/\1/p' "$log")
    passed=$((passed + ${n:-0}))
done
echo "== all tests passed (plain and ASan+UBSan)"
echo "suite: $passed passed, 0 failed"
