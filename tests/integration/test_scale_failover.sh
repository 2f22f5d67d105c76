#!/usr/bin/env bash
# Failures under load, with two verifier replicas behind HAProxy sharing one
# PostgreSQL ledger, all real processes on loopback:
# - kill -9 of one replica mid-load: every device still enrolls, retrying
#   through the survivor; every certificate a device received is in the
#   ledger; HAProxy marks the dead replica down, and up again once it is
#   restarted on its address;
# - PostgreSQL restarted mid-load: the refusals meanwhile are 503
#   REASON_LEDGER, which the devices retry; the replicas reconnect without a
#   restart, every device enrolls, and no certificate was handed out without
#   its record;
# - kill -9 of a verifier on a SQLite ledger mid-load, whose workers share
#   commits (group commit): every certificate a device received before the
#   kill is in the ledger when it is opened again.
set -uo pipefail
TEST_NAME=scale_failover
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/scale.sh"

N=${DEVID_SCALE_FAILOVER_DEVICES:-400}
P=32

scale_setup allow
scale_behind_haproxy

# enrolled PREFIX: issuances recorded so far for devices PREFIX-*.
enrolled() {
    ledger_rows "SELECT count(*) FROM issuance WHERE device_serial LIKE '$1-%'"
}
# at_least PREFIX N: at least N of them.
at_least() {
    local n
    n=$(enrolled "$1" 2>/dev/null) && [[ $n -ge $2 ]]
}
# background NAME ARGS...: fleet NAME ARGS... in the background; its exit
# code lands in $T/NAME.rc. Sets BG_PID.
background() {
    local name=$1
    shift
    (
        fleet "$name" "$@"
        echo "$RC" >"$T/$name.rc"
    ) &
    BG_PID=$!
}

log "kill -9 of replica a while $N devices enroll through HAProxy"
background kill --url "$HAPROXY_URL" --devices "$N" --parallel "$P" --serial-prefix KILL \
    --retries 20 --out "$T/kill.serials"
check "the load is running (100 enrolled)" wait_for 120 at_least KILL 100
kill -KILL "$REPLICA_PID_a"
at_kill=$(enrolled KILL)
log "replica a (pid $REPLICA_PID_a) killed with $at_kill of $N enrolled"
check "it was mid-load: $at_kill of $N enrolled when a died" test "$at_kill" -lt "$N"
check "HAProxy marks replica a down" wait_for 30 haproxy_is v1 DOWN
check "... and keeps b up" haproxy_is v2 UP
before_b=$(issued_on "$REPLICA_METRICS_b")
check "the devices go on enrolling through b" wait_for 60 at_least KILL $((at_kill + 20))
replica_restart a || die "replica a did not restart"
check "HAProxy marks the restarted replica a up again" wait_for 30 haproxy_is v1 UP
wait "$BG_PID"
RC=$(cat "$T/kill.rc" 2>/dev/null)
check "fleetsim exits 0: every device enrolled (got ${RC:-none})" test "${RC:-1}" -eq 0
check "report: ok=$N, failed=0" \
    test "$(report ok "$T/kill.report"):$(report failed "$T/kill.report")" = "$N:0"
check "some devices retried what the kill cut short (retries=$(report retries "$T/kill.report"))" \
    test "$(report retries "$T/kill.report")" -gt 0
check "replica b issued after the kill" test "$(issued_on "$REPLICA_METRICS_b")" -gt "$before_b"
check "every certificate a device received is in the ledger" all_in_ledger "$T/kill.serials"
check "every KILL device has a certificate in the ledger" \
    test "$(ledger_rows "SELECT count(DISTINCT device_serial) FROM issuance WHERE device_serial LIKE 'KILL-%'")" -eq "$N"

log "PostgreSQL stopped and started again while $N devices enroll"
pid_a=$REPLICA_PID_a
pid_b=$REPLICA_PID_b
background pg --url "$HAPROXY_URL" --devices "$N" --parallel "$P" --serial-prefix PGR \
    --retries 30 --out "$T/pg.serials"
check "the load is running (100 enrolled)" wait_for 120 at_least PGR 100
pg_stop fast
log "PostgreSQL stopped with $(grep -c 'result=issued.*PGR-' "$REPLICA_LOG_a" "$REPLICA_LOG_b" |
    awk -F: '{s += $2} END {print s}') PGR issuances logged"
# Let devices meet the outage for a while; nothing below depends on how long.
sleep 2
pg_restart || die "PostgreSQL did not start again"
wait "$BG_PID"
RC=$(cat "$T/pg.rc" 2>/dev/null)
check "fleetsim exits 0: every device enrolled (got ${RC:-none})" test "${RC:-1}" -eq 0
check "report: ok=$N, failed=0" \
    test "$(report ok "$T/pg.report"):$(report failed "$T/pg.report")" = "$N:0"
ledger_refusals=$(report attempt_error.REASON_LEDGER "$T/pg.report")
check "devices were refused while the ledger was down (REASON_LEDGER: ${ledger_refusals:-0})" \
    test "${ledger_refusals:-0}" -gt 0
check "every refusal was REASON_LEDGER" \
    test "$(grep -c '^attempt_error\.' "$T/pg.report"):$(grep -c '^attempt_error\.REASON_LEDGER=' "$T/pg.report")" = "1:1"
check "each came as 503 (http_503 = $ledger_refusals) and was retried" \
    test "$(report http_503 "$T/pg.report")" = "$ledger_refusals" -a \
    "$(report retries "$T/pg.report")" -ge "$ledger_refusals"
cat "$REPLICA_LOG_a" "$REPLICA_LOG_b" | grep 'result=refused' | grep 'serialNumber=PGR-' \
    >"$T/pg-refused.log"
check "the replicas logged $ledger_refusals refusals of PGR devices, all as ledger errors" \
    test "$(wc -l <"$T/pg-refused.log"):$(grep -c 'reason="ledger error"' "$T/pg-refused.log")" = "$ledger_refusals:$ledger_refusals"
check "replica a reconnected to PostgreSQL without a restart" \
    sh -c "grep -q 'reconnected' '$REPLICA_LOG_a' && kill -0 $pid_a"
check "replica b reconnected to PostgreSQL without a restart" \
    sh -c "grep -q 'reconnected' '$REPLICA_LOG_b' && kill -0 $pid_b"
check "every certificate a device received is in the ledger" all_in_ledger "$T/pg.serials"
check "every PGR device has exactly the certificate it received" \
    test "$(ledger_rows "SELECT count(*) FROM issuance WHERE device_serial LIKE 'PGR-%' AND revoked_at IS NULL")" -eq "$N"

replicas_stop a b

log "kill -9 of a verifier on a SQLite ledger while $N devices enroll"
replica_start s --ledger "sqlite:$T/kill.db" --workers 2 || die "replica s did not start"
# sqlite_serials: the certificate serials the SQLite ledger holds, sorted.
sqlite_serials() {
    /usr/bin/python3 -c 'import sqlite3, sys
for (s,) in sqlite3.connect(sys.argv[1]).execute("SELECT cert_serial FROM issuance"):
    print(s)' "$T/kill.db" | sort
}
background sqkill --url "$REPLICA_URL_s" --devices "$N" --parallel "$P" --serial-prefix SQK \
    --out "$T/sqkill.serials"
check "the load is running (100 received)" \
    wait_for 120 sh -c "test \$(wc -l <'$T/sqkill.serials' 2>/dev/null || echo 0) -ge 100"
kill -KILL "$REPLICA_PID_s"
wait "$BG_PID"
received=$(sed '/^$/d' "$T/sqkill.serials" | wc -l)
check "it was mid-load: $received of $N certificates received when the verifier died" \
    test "$received" -lt "$N"
sqlite_serials >"$T/sqkill.ledger"
tr 'A-F' 'a-f' <"$T/sqkill.serials" | sed '/^$/d' | sort -u >"$T/sqkill.sorted"
check "every certificate a device received is in the SQLite ledger ($(comm -23 "$T/sqkill.sorted" \
    "$T/sqkill.ledger" | wc -l) missing)" test -z "$(comm -23 "$T/sqkill.sorted" "$T/sqkill.ledger")"
finish
