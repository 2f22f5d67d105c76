#!/usr/bin/env bash
# What the privilege-separated signer costs per enrollment: the same
# devid-fleetsim load against a verifier with the CA key in-process
# (DEVID_TEST_SIGNER=in-process, a test-hook build only) and against one
# with the signer (the default), and with the signer and a [log] key (the
# issuance log's heads signed in the background), alternating, in the same
# run. Every mode writes each enrollment's log entry (migration 4 made it
# part of the record); signer+log adds the sequencer and head signing. CPU is
# utime + stime from /proc/PID/stat of the serving process and of the
# signer, read before and after each load and divided by the enrollments.
# Prints figures; never asserts them. Not run by ctest.
#
#   DEVID_BIN=build tests/bench/bench_signer.sh
#
# Environment: BENCH_DEVICES (default 1000), BENCH_PARALLEL (16),
# BENCH_ROUNDS (2: in-process, signer, signer+log, in-process, ...).
set -uo pipefail
TEST_NAME=bench_signer
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

FLEETSIM=$DEVID_BIN/tests/fleetsim/devid-fleetsim
[[ -x $FLEETSIM ]] || die "no fleet simulator at $FLEETSIM (set DEVID_BIN)"
N=${BENCH_DEVICES:-1000}
P=${BENCH_PARALLEL:-16}
ROUNDS=${BENCH_ROUNDS:-2}
TICK=$(getconf CLK_TCK)

devid_tmpdir
T=$DEVID_TMP
"$FACTORY" ca --dir "$T/acme" --name "Bench Devices" >/dev/null || die "factory ca failed"
"$DEV_PKI" --dir "$T/pki" >/dev/null || die "dev pki failed"
mkdir -p "$T/roots"
cp "$T/acme/root.pem" "$T/roots/bench.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/log.key" 2>/dev/null ||
    die "log key"
chmod 600 "$T/log.key"

# cpu_ticks PID: utime + stime of PID (0 when there is no such process).
cpu_ticks() {
    [[ -n $1 && -r /proc/$1/stat ]] || { echo 0; return; }
    sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

# one MODE ROUND: a fresh verifier (MODE in-process or signer), the load,
# and the figures.
one() {
    local mode=$1 round=$2 signer="" s0 s1 g0 g1 ok elapsed logkey=()
    if [[ $mode == in-process ]]; then
        export DEVID_TEST_SIGNER=in-process
    else
        unset DEVID_TEST_SIGNER
    fi
    [[ $mode == signer+log ]] && logkey=(--log-key "$T/log.key" --log-poll 1)
    verifier_start "$mode-$round" "${logkey[@]}" --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
        --roots "$T/roots" --intermediates "$T/acme/intermediate.pem" \
        --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
        --ledger "sqlite:$T/ledger-$mode-$round.db" || die "verifier did not start"
    unset DEVID_TEST_SIGNER
    if [[ $mode == signer* ]]; then
        signer=$(sed -n 's/.*signer: pid \([0-9]*\) holds the CA key.*/\1/p' "$VERIFIER_LOG" | tail -n 1)
        [[ -n $signer ]] || die "no signer pid in $VERIFIER_LOG"
    elif grep -q "signer: pid" "$VERIFIER_LOG"; then
        die "DEVID_TEST_SIGNER=in-process had no effect: a build without DEVID_TEST_HOOKS?"
    fi
    s0=$(cpu_ticks "$VERIFIER_PID")
    g0=$(cpu_ticks "$signer")
    "$FLEETSIM" --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" --factory-ca "$T/acme" \
        --devices "$N" --parallel "$P" --serial-prefix "B${mode//+/}$round" --retries 3 \
        >"$T/$mode-$round.report" 2>"$T/$mode-$round.err"
    s1=$(cpu_ticks "$VERIFIER_PID")
    g1=$(cpu_ticks "$signer")
    ok=$(sed -n 's/^ok=//p' "$T/$mode-$round.report")
    elapsed=$(sed -n 's/^enrollments_per_s=//p' "$T/$mode-$round.report")
    kill -TERM "$VERIFIER_PID"
    wait "$VERIFIER_PID" 2>/dev/null
    awk -v m="$mode" -v r="$round" -v ok="${ok:-0}" -v s=$((s1 - s0)) -v g=$((g1 - g0)) \
        -v t="$TICK" -v rate="${elapsed:-?}" 'BEGIN {
        if (ok == 0) { printf "%-10s round %d: no enrollment succeeded\n", m, r; exit }
        printf "%-10s round %d: %5d enrolled, %7s/s, CPU per enrollment: serving %.3f ms, signer %.3f ms, total %.3f ms\n",
            m, r, ok, rate, s * 1000 / t / ok, g * 1000 / t / ok, (s + g) * 1000 / t / ok }'
}

echo "devid-fleetsim: $N devices, $P at a time, per round; CPU from /proc/PID/stat (CLK_TCK $TICK)"
for ((round = 1; round <= ROUNDS; round++)); do
    one in-process "$round"
    one signer "$round"
    one signer+log "$round"
done
