#!/usr/bin/env bash
# Enrollment throughput and latency: devid-fleetsim against a locally started
# verifier at several parallelism levels. Prints figures; never asserts them
# (STYLE.md: tests assert behaviour, benchmarks print figures). Not run by ctest.
#
#   DEVID_BIN=build tests/bench/bench_enroll.sh
#
# Environment:
#   DEVID_BIN             build directory (default: <source>/build)
#   BENCH_LEVELS          parallelism levels (default "1 8 32 64")
#   BENCH_PER_WORKER      devices per worker thread at each level (default 10)
#   BENCH_MIN_DEVICES     fewest devices at any level (default 50)
#   BENCH_TLS             1.2 or 1.3 to pin the TLS version (default: either)
#   BENCH_VERIFIER_ARGS   extra arguments for `devid-verifier serve`
set -uo pipefail
TEST_NAME=bench_enroll
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

FLEETSIM=$DEVID_BIN/tests/fleetsim/devid-fleetsim
[[ -x $FLEETSIM ]] || die "no fleet simulator at $FLEETSIM (build target devid-fleetsim; set DEVID_BIN)"
LEVELS=${BENCH_LEVELS:-1 8 32 64}
PER_WORKER=${BENCH_PER_WORKER:-10}
MIN_DEVICES=${BENCH_MIN_DEVICES:-50}
TLS_ARGS=()
[[ -n ${BENCH_TLS:-} ]] && TLS_ARGS=(--tls-version "$BENCH_TLS")
read -r -a EXTRA <<<"${BENCH_VERIFIER_ARGS:-}"

devid_tmpdir
T=$DEVID_TMP
"$FACTORY" ca --dir "$T/acme" --name "Bench Devices" >/dev/null || die "factory ca failed"
"$DEV_PKI" --dir "$T/pki" >/dev/null || die "dev pki failed"
mkdir -p "$T/roots"
cp "$T/acme/root.pem" "$T/roots/bench.pem"
verifier_start bench --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --roots "$T/roots" --intermediates "$T/acme/intermediate.pem" \
    --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
    --ledger "sqlite:$T/ledger.db" --metrics-listen "127.0.0.1:$(devid_free_port)" \
    "${EXTRA[@]}" || die "verifier did not start"

get() { sed -n "s/^$1=//p" "$2" | head -n 1; }

printf 'devid enrollment benchmark: %s, %s cores, verifier %s\n' "$(uname -m)" "$(nproc)" \
    "$VERIFIER_URL"
printf '%8s %8s %6s %7s %10s %9s %9s %9s %9s\n' parallel devices ok failed enroll/s \
    p50_ms p90_ms p99_ms max_ms
for p in $LEVELS; do
    n=$((p * PER_WORKER))
    ((n < MIN_DEVICES)) && n=$MIN_DEVICES
    report=$T/p$p.report
    timeout 900 "$FLEETSIM" --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
        --factory-ca "$T/acme" --devices "$n" --parallel "$p" --serial-prefix "B$p" \
        --retries 3 "${TLS_ARGS[@]}" >"$report" 2>"$T/p$p.err"
    printf '%8s %8s %6s %7s %10s %9s %9s %9s %9s\n' "$p" "$n" "$(get ok "$report")" \
        "$(get failed "$report")" "$(get enrollments_per_s "$report")" \
        "$(get latency_ms.p50 "$report")" "$(get latency_ms.p90 "$report")" \
        "$(get latency_ms.p99 "$report")" "$(get latency_ms.max "$report")"
    grep -E '^(error|attempt_error)\.|^http_503=[1-9]|^retries=[1-9]' "$report" | sed 's/^/         /'
done
exit 0
