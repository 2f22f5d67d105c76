#!/usr/bin/env bash
# A fleet enrolling at once: devid-fleetsim drives many simulated devices
# against one verifier over mutual TLS on loopback. Each device has its own
# software IDevID, issued by a devid-factory CA with the factory's certificate
# profile, and builds TPM-format evidence (TPMT_PUBLIC, TPMS_ATTEST,
# TPMT_SIGNATURE) in software; only the TPM is simulated, the verifier is the
# real one. Then two replay attacks, which must be refused for different
# reasons.
#
# DEVID_FLEET_DEVICES (default 500) and DEVID_FLEET_PARALLEL (default 64) size
# the fleet; DEVID_FLEET_REPLAY_DEVICES (default 8) the replay runs.
set -uo pipefail
TEST_NAME=fleet
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

FLEETSIM=$DEVID_BIN/tests/fleetsim/devid-fleetsim
[[ -x $FLEETSIM ]] || die "no fleet simulator at $FLEETSIM (set DEVID_BIN)"
N=${DEVID_FLEET_DEVICES:-500}
P=${DEVID_FLEET_PARALLEL:-64}
R=${DEVID_FLEET_REPLAY_DEVICES:-8}
for v in N P R; do
    [[ ${!v} =~ ^[1-9][0-9]{0,5}$ ]] || die "fleet size $v='${!v}' is not a positive number"
done
# Every run is bounded; the simulator also bounds each request (--timeout).
RUN_LIMIT=${DEVID_FLEET_RUN_LIMIT:-540}

devid_tmpdir
T=$DEVID_TMP

log "manufacturer CA and verifier PKI"
"$FACTORY" ca --dir "$T/acme" --name "Acme Devices" >/dev/null || die "factory ca failed"
"$DEV_PKI" --dir "$T/pki" >/dev/null || die "dev pki failed"
mkdir -p "$T/roots"
cp "$T/acme/root.pem" "$T/roots/acme.pem"

# start_one NAME: a verifier for this test (same settings as test_enroll.sh)
# with its own ledger, $T/ledger-NAME.db, and its own /metrics listener;
# exports METRICS_URL besides what verifier_start exports.
start_one() {
    local mport
    mport=$(devid_free_port) || return 1
    METRICS_URL=http://127.0.0.1:$mport
    verifier_start "$1" --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
        --roots "$T/roots" --intermediates "$T/acme/intermediate.pem" \
        --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
        --ledger "sqlite:$T/ledger-$1.db" --metrics-listen "127.0.0.1:$mport"
}

# report KEY FILE: the value of KEY in a devid-fleetsim report.
report() {
    sed -n "s/^$1=//p" "$2" | head -n 1
}

# fleetsim NAME ARGS...: run the simulator against VERIFIER_URL; the report
# goes to $T/NAME.report, stderr to $T/NAME.err; sets RC.
fleetsim() {
    local name=$1 start=$SECONDS
    shift
    timeout "$RUN_LIMIT" "$FLEETSIM" --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
        --factory-ca "$T/acme" --timeout 60 "$@" >"$T/$name.report" 2>"$T/$name.err"
    RC=$?
    log "$name: exit $RC after $((SECONDS - start)) s"
    sed 's/^/    /' "$T/$name.report" >&2
    if [[ -s $T/$name.err ]]; then
        head -n 20 "$T/$name.err" | sed 's/^/    stderr: /' >&2
    fi
}

start_one fleet || die "verifier did not start"
FLEET_URL=$VERIFIER_URL
FLEET_LOG=$VERIFIER_LOG
FLEET_PID=$VERIFIER_PID
FLEET_METRICS=$METRICS_URL
FLEET_LEDGER=sqlite:$T/ledger-fleet.db

log "fleet: $N devices, $P at a time, each on its own TLS connection"
fleetsim fleet --devices "$N" --parallel "$P" --serial-prefix FLEET --retries 3 \
    --out "$T/serials.txt"
check "fleetsim exits 0 (got $RC)" test "$RC" -eq 0
check "report: total=$N" test "$(report total "$T/fleet.report")" = "$N"
check "report: ok=$N" test "$(report ok "$T/fleet.report")" = "$N"
check "report: failed=0" test "$(report failed "$T/fleet.report")" = 0
check "report: result=pass" test "$(report result "$T/fleet.report")" = pass
check "--out lists $N serials" test "$(wc -l <"$T/serials.txt")" -eq "$N"
check "the $N serials are distinct" test "$(sort -u "$T/serials.txt" | wc -l)" -eq "$N"
check "verifier logged $N result=issued lines" \
    test "$(grep -c 'result=issued' "$FLEET_LOG")" -eq "$N"
check "every device enrolled exactly once (device_serial in the log)" \
    test "$(grep 'result=issued' "$FLEET_LOG" | grep -o 'device_serial="FLEET-[0-9]*"' |
        sort -u | wc -l)" -eq "$N"
sort "$T/serials.txt" >"$T/received-sorted.txt"
grep 'result=issued' "$FLEET_LOG" | grep -o 'cert_serial=[0-9a-f]*' | cut -d= -f2 | sort \
    >"$T/logged-sorted.txt"
check "the serials the fleet received are the ones the verifier logged" \
    same_file "$T/received-sorted.txt" "$T/logged-sorted.txt"
check "no refusals in the verifier log" test "$(grep -c 'result=refused' "$FLEET_LOG")" -eq 0

# The replays run against a second verifier, so that the first one has issued
# exactly N certificates when the TODO below checks its ledger.
log "replays: against a second verifier"
start_one replay || die "second verifier did not start"
REPLAY_LOG=$VERIFIER_LOG
REPLAY_PID=$VERIFIER_PID

log "replay-token: the same token again, with new evidence, on a new connection"
fleetsim replay-token --devices "$R" --parallel 4 --serial-prefix RT --mode replay-token
token_reasons=$(grep '^replay\.reason\.' "$T/replay-token.report" | cut -d= -f1 | sed 's/^replay\.reason\.//')
check "replay-token: every device enrolled first (ok=$R)" \
    test "$(report ok "$T/replay-token.report")" = "$R"
check "replay-token: every replay refused (refused=$R, accepted=0)" \
    test "$(report replay.refused "$T/replay-token.report"):$(report replay.accepted "$T/replay-token.report")" = "$R:0"
check "replay-token: one reason for all ($(echo $token_reasons))" \
    test "$(wc -w <<<"$token_reasons")" -eq 1
check "replay-token: refused as REASON_NONCE_REPLAYED (got: $(echo $token_reasons))" \
    test "$token_reasons" = REASON_NONCE_REPLAYED
check "replay-token: fleetsim exits 0 (got $RC)" test "$RC" -eq 0

log "replay-body: the same enroll body from another device's connection"
fleetsim replay-body --devices "$R" --parallel 4 --serial-prefix RB --mode replay-body
body_reasons=$(grep '^replay\.reason\.' "$T/replay-body.report" | cut -d= -f1 | sed 's/^replay\.reason\.//')
check "replay-body: every device enrolled first (ok=$R)" \
    test "$(report ok "$T/replay-body.report")" = "$R"
check "replay-body: every replay refused (refused=$R, accepted=0)" \
    test "$(report replay.refused "$T/replay-body.report"):$(report replay.accepted "$T/replay-body.report")" = "$R:0"
check "replay-body: one reason for all ($(echo $body_reasons))" \
    test "$(wc -w <<<"$body_reasons")" -eq 1
check "replay-body: refused as REASON_TOKEN_WRONG_CLIENT (got: $(echo $body_reasons))" \
    test "$body_reasons" = REASON_TOKEN_WRONG_CLIENT
check "replay-body: fleetsim exits 0 (got $RC)" test "$RC" -eq 0

# distinct_refusals A B: both are one REASON_* name each, and they differ.
distinct_refusals() {
    [[ $1 =~ ^REASON_[A-Z_]+$ && $2 =~ ^REASON_[A-Z_]+$ && $1 != "$2" ]]
}
check "the two replays are refused for distinct reasons ($(echo $token_reasons) vs $(echo $body_reasons))" \
    distinct_refusals "$token_reasons" "$body_reasons"
check "the verifier logged $R refusals: nonce already used (REASON_NONCE_REPLAYED)" \
    test "$(grep 'result=refused' "$REPLAY_LOG" | grep -c 'reason="nonce already used"')" -eq "$R"
check "the verifier logged $R refusals: token bound to another client (REASON_TOKEN_WRONG_CLIENT)" \
    test "$(grep 'result=refused' "$REPLAY_LOG" |
        grep -c 'reason="token bound to another client"')" -eq "$R"
check "no certificate issued to a replay ($((2 * R)) result=issued in the second verifier's log)" \
    test "$(grep -c 'result=issued' "$REPLAY_LOG")" -eq "$((2 * R))"

"$VERIFIER" list --ledger "sqlite:$T/ledger-replay.db" --limit 100000 >"$T/ledger-replay.txt" 2>&1
rc=$?
check "list of the replay ledger exits 0 (got $rc)" test $rc -eq 0
check "the replays left the ledger unchanged ($((2 * R)) rows, one per first enrollment)" \
    test "$(tail -n +2 "$T/ledger-replay.txt" | wc -l)" -eq "$((2 * R))"

log "drop-response: the answer is lost; the same request again gets the same certificate"
fleetsim drop-response --devices 4 --parallel 2 --serial-prefix DR --mode drop-response
check "drop-response: both re-sends return the first certificate (fleetsim exits 0, got $RC)" \
    test "$RC" -eq 0
check "the verifier logged the idempotent answers" grep -q "result=replayed" "$REPLAY_LOG"

log "the fleet verifier's ledger and /metrics"
"$VERIFIER" list --ledger "$FLEET_LEDGER" --limit 100000 >"$T/ledger.txt" 2>&1
rc=$?
check "list of the fleet ledger exits 0 (got $rc)" test $rc -eq 0
check "ledger holds exactly $N issuances" test "$(tail -n +2 "$T/ledger.txt" | wc -l)" -eq "$N"
check "ledger holds one issuance per FLEET device" \
    test "$(tail -n +2 "$T/ledger.txt" | cut -f6 | grep '^FLEET-' | sort -u | wc -l)" -eq "$N"
tail -n +2 "$T/ledger.txt" | cut -f2 | sort >"$T/ledger.serials"
tr 'A-F' 'a-f' <"$T/serials.txt" | sed '/^$/d' | sort >"$T/received.serials"
check "ledger serials are exactly the serials the devices received" \
    same_file "$T/ledger.serials" "$T/received.serials"
curl -fsS "$FLEET_METRICS/metrics" >"$T/metrics.txt" 2>&1
rc=$?
check "GET /metrics answers (curl exit $rc)" test $rc -eq 0
check "/metrics counts $N issued" \
    grep -qx "devid_enrollments_total{result=\"issued\",reason=\"\"} $N" "$T/metrics.txt"
# Not vacuous: the page must be there and list enrollments at all.
check "/metrics counts no refusal" sh -c "grep -q '^devid_enrollments_total{' '$T/metrics.txt' &&
    ! grep -q '^devid_enrollments_total{result=\"refused\"' '$T/metrics.txt'"
check "/metrics counts $N latency observations" \
    grep -qx "devid_enroll_duration_seconds_count $N" "$T/metrics.txt"

for pid in "$FLEET_PID" "$REPLAY_PID"; do
    check "verifier $pid still running" pid_alive "$pid"
    kill -TERM "$pid"
    wait "$pid"
    rc=$?
    check "verifier $pid exits 0 on SIGTERM (no sanitizer report; got $rc)" test "$rc" -eq 0
done
finish
