#!/usr/bin/env bash
# The verifier as a service: worker threads, the connection limit (503 and
# Retry-After), the request deadline against a client that trickles its
# headers, /healthz and /metrics against the ledger (and promtool's lint of
# it, the shipped alerting rules and dashboard against it), SIGHUP with a
# broken file, and SIGTERM with enrollments in flight. Devices are simulated by
# devid-fleetsim (software IDevIDs and TPM evidence built with tss2-mu), the
# verifier is the real one on loopback.
set -uo pipefail
TEST_NAME=service
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

FLEETSIM=$DEVID_BIN/tests/fleetsim/devid-fleetsim
[[ -x $FLEETSIM ]] || die "no fleet simulator at $FLEETSIM"
have promtool || die "promtool is missing (deploy/install-deps.sh --tests installs prometheus)"

devid_tmpdir
T=$DEVID_TMP
LEDGER=sqlite:$T/ledger.db

"$FACTORY" ca --dir "$T/acme" --name "Acme Devices" >/dev/null || die "factory ca failed"
"$FACTORY" ca --dir "$T/other" --name "Other Devices" >/dev/null || die "factory ca failed"
"$DEV_PKI" --dir "$T/pki" >/dev/null || die "dev pki failed"
mkdir -p "$T/roots"
cp "$T/acme/root.pem" "$T/roots/acme.pem"

mport=$(devid_free_port) || die "no free port"
verifier_start svc --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --roots "$T/roots" --intermediates "$T/acme/intermediate.pem" \
    --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
    --ledger "$LEDGER" --workers 2 --metrics-listen "127.0.0.1:$mport" \
    --max-connections 8 --timeout-request 3 --timeout-idle 5 --verbose ||
    die "verifier did not start"
check "verifier starts 2 workers" grep -q "with 2 workers" "$VERIFIER_LOG"

# fleet ARGS...: run the simulator against this verifier; output in $T/fleet.out.
fleet() {
    "$FLEETSIM" --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" --timeout 20 "$@"
}
# field NAME FILE: the value of NAME=... in a fleetsim report.
field() {
    sed -n "s/^$1=//p" "$2" | head -n 1
}
# metric NAME: the value of one series from /metrics.
metric() {
    curl -fsS "http://127.0.0.1:$mport/metrics" | grep -F "$1 " | grep -v "^#" | awk '{print $NF}' | head -n 1
}
ledger_rows() {
    "$VERIFIER" list --ledger "$LEDGER" --limit 100000 2>/dev/null | tail -n +2 | wc -l
}

log "health and metrics listener"
check "/healthz answers ok" sh -c "curl -fsS 'http://127.0.0.1:$mport/healthz' | grep -qx ok"
check "/metrics is Prometheus text" sh -c \
    "curl -fsS 'http://127.0.0.1:$mport/metrics' | grep -q '^# TYPE devid_enrollments_total counter'"

log "no TLS session is resumed: the verifier sends no session ticket (docs/protocol.md)"
# s_client writes -sess_out once a TLS 1.3 ticket arrives; the second
# second of stdin gives the verifier time to send one.
(sleep 1) | openssl s_client -connect "${VERIFIER_URL#https://}" -CAfile "$T/pki/tls-ca.pem" \
    -sess_out "$T/sess.pem" >"$T/sess.out" 2>&1
check "a TLS 1.3 handshake without a client certificate completes" grep -q "^New, TLSv1.3" \
    "$T/sess.out"
tickets=0
[[ -s $T/sess.pem ]] &&
    tickets=$(openssl sess_id -in "$T/sess.pem" -text -noout 2>&1 | grep -c "TLS session ticket:")
check "no session ticket arrived ($tickets)" test "$tickets" -eq 0

log "connection limit 8, 24 devices 16 at a time: the excess get 503 + Retry-After, then succeed"
fleet --factory-ca "$T/acme" --devices 24 --parallel 16 --retries 30 --serial-prefix OVL \
    --out "$T/ovl.serials" >"$T/ovl.out" 2>"$T/ovl.err"
rc=$?
check "all 24 enroll after retrying (exit $rc)" test "$rc" -eq 0
check "some were answered 503 ($(field http_503 "$T/ovl.out"))" \
    test "$(field http_503 "$T/ovl.out")" -gt 0
check "503 carried Retry-After ($(field retry_after_seen "$T/ovl.out"))" \
    test "$(field retry_after_seen "$T/ovl.out")" -gt 0
check "the verifier counted the overload rejections" \
    test "$(metric devid_overload_rejections_total)" -gt 0

log "a client that trickles its headers is cut off, while others enroll"
closes_before=$(metric devid_deadline_closes_total)
# trickle: one byte a second of a request whose headers never end (120 bytes:
# two minutes), to stdout. When the verifier closes the connection, s_client
# exits and the next write fails: $T/trickle.result then says "cut I NS" (I
# bytes written, at NS ns since the epoch), else "sent all". $T/trickle.start
# holds the time of the first byte.
trickle() {
    local req=$'POST /v1/challenge HTTP/1.1\r\nHost: verifier\r\nX-Trickle: ' i
    while ((${#req} < 120)); do req+=a; done
    trap '' PIPE
    date +%s%N >"$T/trickle.start"
    for ((i = 0; i < ${#req}; i++)); do
        printf '%s' "${req:i:1}" 2>/dev/null ||
            { echo "cut $i $(date +%s%N)" >"$T/trickle.result"; return 0; }
        sleep 1
    done
    echo "sent all ${#req}" >"$T/trickle.result"
}
# In a subshell, so that waiting for it waits for both ends of the pipe.
(
    trickle | openssl s_client -quiet -connect "${VERIFIER_URL#https://}" \
        -CAfile "$T/pki/tls-ca.pem" >"$T/trickle.out" 2>"$T/trickle.err"
) &
trickle_pid=$!
fleet --factory-ca "$T/acme" --devices 10 --parallel 4 --retries 10 --serial-prefix TRK \
    >"$T/trk.out" 2>&1
rc=$?
check "10 devices enroll while the trickler holds a connection (exit $rc)" test "$rc" -eq 0
wait "$trickle_pid"
how= sent= cut_ns= start_ns=
read -r how sent cut_ns <"$T/trickle.result"
start_ns=$(<"$T/trickle.start")
if [[ $how == cut ]]; then
    log "trickler: cut off after $sent bytes, $(((cut_ns - start_ns) / 1000000)) ms after its first"
else
    log "trickler: not cut off ($how $sent $cut_ns)"
fi
check "the verifier cut the trickling client off before its headers were done (${sent:-?} of 120 bytes)" \
    test "$how" = cut -a "${sent:-120}" -lt 120
# A lower bound (waiting longer is allowed): the verifier held the request for
# its 3 s deadline (less 0.1 s for the clocks' granularity).
check "the trickler was held for the request deadline, 3 s" \
    test "$how" = cut -a -n "$start_ns" -a $((${cut_ns:-0} - ${start_ns:-0})) -ge 2900000000
check "the verifier logged a request deadline close" \
    grep -q "closing connection: request deadline passed" "$VERIFIER_LOG"
closes_after=$(metric devid_deadline_closes_total)
check "the deadline close is counted ($closes_before -> $closes_after)" \
    test "$closes_after" -gt "$closes_before"

log "metrics agree with the ledger"
rows=$(ledger_rows)
issued=$(metric 'devid_enrollments_total{result="issued",reason=""}')
check "ledger holds 34 issuances (got $rows)" test "$rows" -eq 34
check "/metrics counts the same issuances (got $issued)" test "$issued" -eq "$rows"

log "promtool check metrics on the live /metrics, after that traffic"
curl -fsS "http://127.0.0.1:$mport/metrics" >"$T/metrics.txt"
promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1
rc=$?
check "promtool check metrics passes: Prometheus naming, no lint (exit 0, got $rc)" \
    sh -c "test $rc -eq 0 && ! test -s '$T/promtool.out'" || sed 's/^/    /' "$T/promtool.out" >&2

log "the shipped alerting rules and dashboard (deploy/prometheus, deploy/grafana)"
RULES=$DEVID_SRC/deploy/prometheus/devid-alerts.yml
DASH=$DEVID_SRC/deploy/grafana/devid.json
check "promtool check rules accepts devid-alerts.yml" \
    sh -c "promtool check rules '$RULES' >'$T/rules.out' 2>&1" || sed 's/^/    /' "$T/rules.out" >&2
check "promtool test rules: the alerts fire on what they watch (devid-alerts.test.yml)" \
    sh -c "promtool test rules '$DEVID_SRC/deploy/prometheus/devid-alerts.test.yml' >'$T/rules.out' 2>&1" ||
    sed 's/^/    /' "$T/rules.out" >&2
check "the dashboard is JSON" /usr/bin/python3 -m json.tool "$DASH" /dev/null
check "every devid_ metric the rules and the dashboard query is in this /metrics" \
    sh -c "/usr/bin/python3 '$here/promnames.py' '$T/metrics.txt' '$RULES' '$DASH' >'$T/names.out' 2>&1" ||
    sed 's/^/    /' "$T/names.out" >&2
sed 's/devid_ledger_errors_total/devid_ledger_failures_total/' "$DASH" >"$T/renamed.json"
/usr/bin/python3 "$here/promnames.py" "$T/metrics.txt" "$T/renamed.json" >"$T/names.out" 2>&1
rc=$?
check "... and a dashboard querying a metric that is not there fails (exit 1, got $rc)" \
    sh -c "test $rc -eq 1 && grep -q devid_ledger_failures_total '$T/names.out'"

log "SIGHUP with a broken trust directory keeps the old state"
cp "$T/pki/server.pem" "$T/roots/not-a-root.pem"
kill -HUP "$VERIFIER_PID"
# Wait for the event, not for a fixed time (a bound against hangs only).
check "the verifier says it keeps the previous state" \
    wait_for 30 grep -q "reload failed" "$VERIFIER_LOG"
check "the failed reload is logged with the file" \
    grep -q "not-a-root.pem.*self-signed CA" "$VERIFIER_LOG"
fleet --factory-ca "$T/acme" --devices 3 --parallel 3 --retries 5 --serial-prefix HUP1 \
    >"$T/hup1.out" 2>&1
check "devices still enroll under the old state" test $? -eq 0
rm -f "$T/roots/not-a-root.pem"
fleet --factory-ca "$T/other" --devices 1 --parallel 1 --serial-prefix OTH0 >"$T/oth0.out" 2>&1
rc=$?
check "a second manufacturer is refused before it is trusted (fleetsim exit 1, got $rc)" \
    test $rc -eq 1
check "... as REASON_CHAIN_UNTRUSTED" grep -qx "error.REASON_CHAIN_UNTRUSTED=1" "$T/oth0.out"
check "... and the verifier logged why" \
    sh -c "grep 'result=refused' '$VERIFIER_LOG' | grep 'OTH0' | grep -q 'reason=\"chain not trusted\"'"
cp "$T/other/root.pem" "$T/roots/other.pem"
kill -HUP "$VERIFIER_PID"
check "the good reload is logged" wait_for 30 grep -q "reload done" "$VERIFIER_LOG"
fleet --factory-ca "$T/other" --devices 2 --parallel 2 --serial-prefix OTH \
    --out "$T/oth.serials" >"$T/oth.out" 2>&1
rc=$?
check "after the reload the second manufacturer enrolls (exit $rc)" test "$rc" -eq 0
check "reloads are counted: one failed, one ok" sh -c \
    "curl -fsS 'http://127.0.0.1:$mport/metrics' >'$T/reload-metrics.txt' &&
    grep -qx 'devid_reloads_total{result=\"failed\"} 1' '$T/reload-metrics.txt' &&
    grep -qx 'devid_reloads_total{result=\"ok\"} 1' '$T/reload-metrics.txt'"

log "SIGHUP with a broken policy file keeps serving under the old policy"
cat >"$T/manufacturers.conf" <<EOF
[manufacturer "Acme Devices"]
roots = $T/acme/root.pem
intermediates = $T/acme/intermediate.pem
EOF
cat >"$T/policy.conf" <<EOF
[policy]
allow_manufacturer = Acme Devices
deny_model = Recalled Gateway
EOF
main_url=$VERIFIER_URL main_pid=$VERIFIER_PID main_log=$VERIFIER_LOG
verifier_start pol --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --manufacturers "$T/manufacturers.conf" --policy "$T/policy.conf" \
    --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
    --ledger "sqlite:$T/ledger-pol.db" --workers 2 || die "policy verifier did not start"
fleet --factory-ca "$T/acme" --devices 1 --parallel 1 --model "Recalled Gateway" \
    --serial-prefix POL0 >"$T/pol0.out" 2>&1
check "the policy refuses the recalled model" grep -qx "error.REASON_POLICY_DENIED=1" "$T/pol0.out"
check "... and the verifier logged why" \
    sh -c "grep 'result=refused' '$VERIFIER_LOG' | grep 'POL0' | grep -q 'reason=\"denied by policy\"'"
printf '[policy]\nallow_manufacturer = Acme Devices\nthis line is broken\n' >"$T/policy.conf"
kill -HUP "$VERIFIER_PID"
check "the broken policy file is named with its line" \
    wait_for 30 grep -q "policy.conf:3: syntax error" "$VERIFIER_LOG"
check "the verifier keeps the previous policy" grep -q "reload failed" "$VERIFIER_LOG"
fleet --factory-ca "$T/acme" --devices 2 --parallel 2 --serial-prefix POL1 >"$T/pol1.out" 2>&1
check "other models still enroll" test $? -eq 0
fleet --factory-ca "$T/acme" --devices 1 --parallel 1 --model "Recalled Gateway" \
    --serial-prefix POL2 >"$T/pol2.out" 2>&1
check "the recalled model is still refused under the old policy" \
    grep -qx "error.REASON_POLICY_DENIED=1" "$T/pol2.out"
kill -TERM "$VERIFIER_PID"
wait "$VERIFIER_PID"
vrc=$?
check "the policy verifier exits 0 after SIGTERM (got $vrc)" test "$vrc" -eq 0
VERIFIER_URL=$main_url VERIFIER_PID=$main_pid VERIFIER_LOG=$main_log

log "SIGTERM with 200 enrollments in flight loses no acknowledged issuance"
# The first verifier stops too, cleanly, with its connection limit of 8.
kill -TERM "$VERIFIER_PID"
wait "$VERIFIER_PID"
vrc=$?
check "the first verifier exits 0 after SIGTERM (got $vrc)" test "$vrc" -eq 0
LEDGER=sqlite:$T/ledger-term.db
verifier_start term --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --roots "$T/roots" --intermediates "$T/acme/intermediate.pem" \
    --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
    --ledger "$LEDGER" --workers 2 || die "verifier did not start"
before=0
fleet --factory-ca "$T/acme" --devices 400 --parallel 200 --serial-prefix TERM \
    --out "$T/term.serials" >"$T/term.out" 2>&1 &
fleet_pid=$!
for _ in $(seq 1 100); do
    [[ $(ledger_rows) -ge $((before + 20)) ]] && break
    sleep 0.1
done
kill -TERM "$VERIFIER_PID"
wait "$VERIFIER_PID"
vrc=$?
wait "$fleet_pid"
check "the verifier exits 0 after SIGTERM (got $vrc)" test "$vrc" -eq 0
check "the verifier logged the drain" grep -q "finishing requests in flight" "$VERIFIER_LOG"
"$VERIFIER" list --ledger "$LEDGER" --limit 100000 >"$T/term-ledger.txt" 2>&1
rc=$?
check "list of the drained ledger exits 0 (got $rc)" test $rc -eq 0
tail -n +2 "$T/term-ledger.txt" | cut -f2 | sort >"$T/ledger.serials"
tr 'A-F' 'a-f' <"$T/term.serials" | sed '/^$/d' | sort >"$T/term.sorted"
received=$(wc -l <"$T/term.sorted")
recorded=$(( $(wc -l <"$T/ledger.serials") - before ))
log "in flight at SIGTERM: $received certificates received, $recorded recorded"
check "some enrollments finished before the stop ($received)" test "$received" -gt 0
check "every certificate a client received is in the ledger" \
    test -s "$T/term.sorted" -a -z "$(comm -23 "$T/term.sorted" "$T/ledger.serials")"
check "no more rows than were attempted" test "$recorded" -le 400
check "every issuance recorded during the drain reached its client ($recorded recorded)" \
    test "$received" -eq "$recorded"

finish
