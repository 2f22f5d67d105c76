#!/usr/bin/env bash
# Two verifier replicas behind HAProxy (deploy/haproxy/haproxy.cfg) sharing
# one PostgreSQL ledger, all real processes on loopback: 1,000 simulated
# devices, 64 at a time, enroll through HAProxy; the ledger holds exactly
# their issuances; both replicas served some; the replicas' logs name each
# device's own address, as HAProxy forwarded it in a PROXY protocol header,
# and a PROXY header from an address that may not send one is refused; the
# operator commands work on the shared ledger, and a revocation through one
# replica's command reaches the other replica's GET /v1/crl within its poll
# interval, with CRL numbers that only go up.
#
# DEVID_SCALE_DEVICES (default 1000) and DEVID_SCALE_PARALLEL (default 64)
# size the fleet.
set -uo pipefail
TEST_NAME=scale
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/scale.sh"

N=${DEVID_SCALE_DEVICES:-1000}
P=${DEVID_SCALE_PARALLEL:-64}
# The devices' own address: HAProxy connects to the replicas from 127.0.0.1.
DEVICES_FROM=127.0.0.5

scale_setup allow
scale_behind_haproxy

log "$N devices, $P at a time, through HAProxy from $DEVICES_FROM"
fleet fleet --url "$HAPROXY_URL" --devices "$N" --parallel "$P" --serial-prefix FLEET \
    --retries 5 --source-address "$DEVICES_FROM" --out "$T/fleet.serials"
check "fleetsim exits 0 (got $RC)" test "$RC" -eq 0
check "report: ok=$N, failed=0" \
    test "$(report ok "$T/fleet.report"):$(report failed "$T/fleet.report")" = "$N:0"
check "report: result=pass" test "$(report result "$T/fleet.report")" = pass
check "the ledger holds exactly $N issuances" test "$(ledger_rows "SELECT count(*) FROM issuance")" -eq "$N"
check "... with $N distinct certificate serials" \
    test "$(ledger_rows "SELECT count(DISTINCT cert_serial) FROM issuance")" -eq "$N"
check "... $N distinct nonces" test "$(ledger_rows "SELECT count(DISTINCT nonce) FROM issuance")" -eq "$N"
check "... and one issuance per device" \
    test "$(ledger_rows "SELECT count(DISTINCT device_serial) FROM issuance WHERE device_serial LIKE 'FLEET-%'")" -eq "$N"
check "the devices received $N distinct serials" \
    test "$(sort -u "$T/fleet.serials" | wc -l)" -eq "$N"
check "every certificate a device received is in the ledger" all_in_ledger "$T/fleet.serials"
ia=$(issued_on "$REPLICA_METRICS_a")
ib=$(issued_on "$REPLICA_METRICS_b")
check "both replicas issued some ($ia + $ib, /metrics)" test "$ia" -gt 0 -a "$ib" -gt 0
check "their /metrics add up to $N" test $((ia + ib)) -eq "$N"
check "the ledger names the replica of each issuance as /metrics counted them" \
    test "$(ledger_rows "SELECT count(*) FROM issuance WHERE replica_id = 'a'"):$(ledger_rows "SELECT count(*) FROM issuance WHERE replica_id = 'b'")" = "$ia:$ib"

log "PROXY protocol: the replicas see the devices' address, not HAProxy's"
cat "$REPLICA_LOG_a" "$REPLICA_LOG_b" | grep 'enroll result=issued' >"$T/issued.log"
check "$N result=issued lines in the replicas' logs" test "$(wc -l <"$T/issued.log")" -eq "$N"
check "every one names a peer at $DEVICES_FROM" \
    test "$(grep -c "peer=$DEVICES_FROM:[0-9]* " "$T/issued.log")" -eq "$N"
check "none names HAProxy's address" test "$(grep -c 'peer=127\.0\.0\.1:' "$T/issued.log")" -eq 0
cat "$REPLICA_LOG_a" "$REPLICA_LOG_b" | sed -n "s/.* peer=\($DEVICES_FROM:[0-9]*\) .*/\1/p" |
    sort -u >"$T/peers.verifier"
# haproxy_logged N: HAProxy logged N connections from the devices. It logs
# each once both sides have closed, and drops a line it logs to a file
# descriptor (stdout here) when its threads collide writing it rather than
# block (fd_write_frag_line in its src/fd.c); that happened under the
# sanitizers. So the check asks for nine in ten and compares those.
haproxy_logged() {
    awk '$1 ~ /^127\.0\.0\.5:[0-9]+$/ && / devices verifiers\// {print $1}' "$HAPROXY_LOG" |
        sort -u >"$T/peers.haproxy"
    [[ $(wc -l <"$T/peers.haproxy") -ge $1 ]]
}
check "HAProxy logged the devices' connections from $DEVICES_FROM (at least $((N * 9 / 10)))" \
    wait_for 60 haproxy_logged $((N * 9 / 10))
check "each device connection HAProxy logged ($(wc -l <"$T/peers.haproxy")) reached a replica with its address and port" \
    test "$(comm -13 "$T/peers.verifier" "$T/peers.haproxy" | wc -l)" -eq 0

verifier_start strict --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --manufacturers "$T/manufacturers.conf" --policy "$T/policy.conf" \
    --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
    --ledger "sqlite:$T/strict.db" --proxy-from 127.0.0.2 \
    --metrics-listen "127.0.0.1:$(devid_free_port)" || die "strict verifier did not start"
STRICT_METRICS=http://$(sed -n 's|.*metrics and health on http://\([^/]*\)/metrics.*|\1|p' "$VERIFIER_LOG")
STRICT_PORT=${VERIFIER_URL##*:}
# A PROXY v2 header claiming a client at 127.0.0.7:40000.
printf '\r\n\r\n\0\r\nQUIT\n\x21\x11\0\x0c\x7f\0\0\x07\x7f\0\0\x01\x9c\x40\x20\xfb' >"$T/proxy.bin"
# refused_at_once: a connection from 127.0.0.1 (not in proxy_from) that
# sends a PROXY header is closed without an answer.
refused_at_once() {
    local out rc
    [[ $(wc -c <"$T/proxy.bin") -eq 28 ]] || { log "    the header is not 28 bytes"; return 1; }
    out=$(timeout 10 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; cat "$2" >&3; cat <&3 | wc -c' _ \
        "$STRICT_PORT" "$T/proxy.bin")
    rc=$?
    [[ $rc -eq 0 && $out == 0 ]] || { log "    exit $rc, $out bytes answered"; return 1; }
}
check "a PROXY header from 127.0.0.1, not in proxy_from, is refused: closed, unanswered" \
    refused_at_once
check "... and logged" grep -q "refusing the connection from 127\.0\.0\.1:[0-9]*: it sent a PROXY protocol header and is not in \[server\] proxy_from" "$VERIFIER_LOG"
check "... and counted (devid_proxy_refusals_total 1)" \
    test "$(metric "$STRICT_METRICS" devid_proxy_refusals_total)" = 1
check "the address it claimed appears nowhere in the log" test "$(grep -c 127.0.0.7 "$VERIFIER_LOG")" -eq 0
fleet strict --url "$VERIFIER_URL" --devices 2 --parallel 2 --serial-prefix STRICT
check "a connection without a PROXY header is served as before (fleetsim exit $RC)" test "$RC" -eq 0
stop_pid "$VERIFIER_PID"

log "operator commands on the shared ledger, and revocation across replicas"
"$VERIFIER" list --ledger "$PG_URI" --limit 100000 >"$T/list.out" 2>&1
rc=$?
check "list exits 0 on PostgreSQL (got $rc)" test $rc -eq 0
check "list shows the $N issuances" test "$(tail -n +2 "$T/list.out" | wc -l)" -eq "$N"
s1=$(sed -n 1p "$T/fleet.serials")
s2=$(sed -n 2p "$T/fleet.serials")
d2=$(awk -F'\t' -v s="$(tr 'A-F' 'a-f' <<<"$s2")" '$2 == s {print $6}' "$T/list.out")
"$VERIFIER" show --ledger "$PG_URI" --serial "$s1" >"$T/show.out" 2>&1
rc=$?
check "show exits 0 on PostgreSQL (got $rc)" test $rc -eq 0
check "show names the replica that issued it" grep -qE '^replica: (a|b)$' "$T/show.out"
crl_number() {
    openssl crl -inform DER -in "$1" -noout -crlnumber 2>/dev/null | sed -n 's/^crlNumber=0x//p' |
        tr 'a-f' 'A-F'
}
curl -sf --cacert "$T/pki/tls-ca.pem" "$REPLICA_URL_a/v1/crl" -o "$T/a0.crl"
curl -sf --cacert "$T/pki/tls-ca.pem" "$REPLICA_URL_b/v1/crl" -o "$T/b0.crl"
a0=$((16#$(crl_number "$T/a0.crl"))) b0=$((16#$(crl_number "$T/b0.crl")))
check "each replica serves a CRL signed by the operational CA (numbers $a0, $b0)" \
    sh -c "openssl crl -inform DER -in '$T/a0.crl' -CAfile '$T/pki/opca.pem' -noout &&
        openssl crl -inform DER -in '$T/b0.crl' -CAfile '$T/pki/opca.pem' -noout"
last=$(ledger_rows "SELECT last_number FROM crl_state")
for i in 1 2 3 4 5; do
    curl -sf --cacert "$T/pki/tls-ca.pem" "$REPLICA_URL_a/v1/crl" -o /dev/null
    curl -sf --cacert "$T/pki/tls-ca.pem" "$REPLICA_URL_b/v1/crl" -o /dev/null
done
check "serving GET /v1/crl writes nothing: the ledger's CRL number stays $last" \
    test "$(ledger_rows "SELECT last_number FROM crl_state")" = "$last"
"$VERIFIER" revoke --ledger "$PG_URI" --serial "$s1" --reason keyCompromise >"$T/revoke.out" 2>&1
rc=$?
check "revoke --serial through replica a's command exits 0 (got $rc)" test $rc -eq 0
check "replica b's GET /v1/crl lists $s1 once it polled the ledger" \
    crl_lists_soon "$REPLICA_URL_b" "$T/pki/tls-ca.pem" "$s1" "$T/b1.crl"
check "... as replica a's does" crl_lists_soon "$REPLICA_URL_a" "$T/pki/tls-ca.pem" "$s1" "$T/a1.crl"
check "replica b rebuilt it because the ledger's revocation revision moved" \
    grep -q "CRL number [0-9]* built: 1 revoked certificates, ledger revision 1" "$REPLICA_LOG_b"
a1=$((16#$(crl_number "$T/a1.crl"))) b1=$((16#$(crl_number "$T/b1.crl")))
check "the CRLs listing it have higher numbers than any before it ($a0, $b0 -> $a1, $b1)" \
    test "$a1" -gt "$a0" -a "$a1" -gt "$b0" -a "$b1" -gt "$a0" -a "$b1" -gt "$b0"
"$VERIFIER" revoke --ledger "$PG_URI" --device "$d2" --reason cessationOfOperation \
    >"$T/revoke2.out" 2>&1
rc=$?
check "revoke --device $d2 exits 0 (got $rc)" test $rc -eq 0
check "replica b's next CRL lists $s2 too" \
    crl_lists_soon "$REPLICA_URL_b" "$T/pki/tls-ca.pem" "$s2" "$T/b2.crl"
check "replica a's as well" crl_lists_soon "$REPLICA_URL_a" "$T/pki/tls-ca.pem" "$s2" "$T/a2.crl"
a2=$((16#$(crl_number "$T/a2.crl"))) b2=$((16#$(crl_number "$T/b2.crl")))
check "and the numbers went up again ($a1, $b1 -> $a2, $b2)" \
    test "$a2" -gt "$a1" -a "$a2" -gt "$b1" -a "$b2" -gt "$a1" -a "$b2" -gt "$b1"
"$VERIFIER" crl --ledger "$PG_URI" --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" \
    --out "$T/cli.crl" >"$T/crl.out" 2>&1
rc=$?
check "the crl command exits 0 on PostgreSQL (got $rc)" test $rc -eq 0
cli=$(openssl crl -in "$T/cli.crl" -noout -crlnumber | sed -n 's/^crlNumber=0x//p')
check "its CRL lists both, with a higher number still" \
    sh -c "openssl crl -in '$T/cli.crl' -noout -text | grep -c 'Serial Number' | grep -qx 2 &&
        test $((16#${cli:-0})) -gt $a2 -a $((16#${cli:-0})) -gt $b2"
check "/metrics shows the CRL number replica b serves" \
    test "$(metric "$REPLICA_METRICS_b" devid_crl_number)" -eq "$b2"

replicas_stop a b
finish
