#!/usr/bin/env bash
# Logs that cannot be forged (docs/verifier.md, "Logs"). IDevIDs whose subjects hold
# quotes, '=', newlines and a fake `result=issued device_serial="SN-FAKE"`
# enroll or are refused, and a parser of docs/verifier.md's line format
# (tests/integration/logfields.py) recovers exactly one decision for each,
# with the right fields and nothing forged. Then the verifier runs with
# stderr as a journal stream: a stand-in journald (wire.py journal, on the
# native protocol's socket in a private mount namespace, since no journald
# runs here) gets the decision with one DEVID_* field per value.
set -uo pipefail
TEST_NAME=logs
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

need protoc openssl unshare mount stat
need_py_protobuf

devid_tmpdir
T=$DEVID_TMP
FAKE_CN='Gw" result=issued device_serial="SN-FAKE'
NL_CN=$'Line\nenroll result=issued device_serial="SN-FAKE" model="x"'
NL_O=$'Acme\n" result=issued manufacturer="Evil'

log "manufacturer CA, verifier PKI"
lab_pki
VARGS=(--tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" --roots "$T/roots"
    --intermediates "$T/acme/intermediate.pem" --ca-cert "$T/pki/opca.pem"
    --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key"
    ${VERIFIER_AS_ROOT[@]+"${VERIFIER_AS_ROOT[@]}"})
verifier_start main "${VARGS[@]}" --ledger "sqlite:$T/ledger.db" || die "verifier did not start"

# fields ARGS...: logfields.py over the verifier's log.
fields() {
    "$PY" "$here/logfields.py" "$VERIFIER_LOG" "$@"
}

# wire ID ARGS...: wire.py with the software IDevID $T/ID.
wire() {
    local id=$1
    shift
    timeout 60 "$PY" "$here/wire.py" --url "$VERIFIER_URL" --ca "$T/pki/tls-ca.pem" \
        --proto "$DEVID_SRC/proto" --cert "$T/$id.pem" --key "$T/$id.key" "$@" 2>>"$T/wire.err"
}

# ---------------------------------------------------------------------------
log "device A: a TPM IDevID whose CN holds quotes, '=' and a fake decision"
device_new a "$T/acme" SN-LOG-0001 "Plain Model" || die "device a"
tpm a tpm2_readpublic -c 0x81020000 -f pem -o "$T/a-pub.pem" >/dev/null 2>&1 ||
    die "cannot read device a's IDevID key"
issue_idevid "$T/acme" "$T/a-idevid" "/O=Acme Devices/CN=$FAKE_CN/serialNumber=SN-LOG-0001" \
    SN-LOG-0001 "$T/a-pub.pem" || die "cannot issue the hostile IDevID for device a"
check "the certificate's CN is the hostile text, byte for byte" same_text \
    "$(openssl x509 -in "$T/a-idevid.pem" -noout -subject -nameopt multiline,-esc_msb,utf8 |
        sed -n 's/^ *commonName *= //p')" "$FAKE_CN"
agent a enroll --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
    --idevid-cert "$T/a-idevid.pem" --chain "$T/dev-a/factory/chain.pem" --out-dir "$T/out-a" \
    >"$T/agent-a.out" 2>"$T/agent-a.err"
rc=$?
check "device A enrolls (exit 0, got $rc)" test "$rc" -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/agent-a.err" "$VERIFIER_LOG" >&2

log "device B: a software IDevID with newlines in CN and O"
issue_idevid "$T/acme" "$T/b" "/O=$NL_O/CN=$NL_CN/serialNumber=SN-LOG-0002" SN-LOG-0002 ||
    die "cannot issue device b's IDevID"
a=$(wire b challenge)
check "device B is refused at the challenge: REASON_IDENTITY_INVALID (got: $a)" \
    grep -q "status=403 .*reason=REASON_IDENTITY_INVALID" <<<"$a"

# ---------------------------------------------------------------------------
log "what a parser of the log recovers"
out=$(fields --malformed)
check "every line parses; none is a fragment of another" test -z "$out"
[[ -z $out ]] || sed 's/^/    /' <<<"$out" >&2
check "exactly one decision for device A: enroll, issued" \
    same_text "$(fields --count device_serial=SN-LOG-0001)" 1
check "... and it is result=issued for SN-LOG-0001" same_text \
    "$(fields --count event=enroll,result=issued,device_serial=SN-LOG-0001)" 1
check "... with the model exactly as the certificate says" \
    same_text "$(fields --get model --where event=enroll,device_serial=SN-LOG-0001)" "$FAKE_CN"
check "... the manufacturer from the trusted root" \
    same_text "$(fields --get manufacturer --where event=enroll,device_serial=SN-LOG-0001)" \
    "Acme Devices"
check "no decision names the fake serial" same_text "$(fields --count device_serial=SN-FAKE)" 0
check "one issued decision in all" same_text "$(fields --count result=issued)" 1
check "exactly one decision for device B: challenge, refused, identity invalid" same_text \
    "$(fields --count 'event=challenge,result=refused,reason=device identity invalid')" 1
client_b=$(fields --get client --where event=challenge,result=refused)
check "... naming B's subject with its newlines (as OpenSSL escapes them: \\0A)" \
    grep -qF 'CN=Line\0Aenroll result=issued device_serial=\"SN-FAKE\" model=\"x\"' <<<"$client_b"
check "no raw line carries the fake field unescaped" \
    test "$(grep -cF 'device_serial="SN-FAKE"' "$VERIFIER_LOG")" -eq 0
check "the issued line is one line with the model escaped" \
    grep -qF 'model="Gw\" result=issued device_serial=\"SN-FAKE"' "$VERIFIER_LOG"

log "command output"
"$VERIFIER" list --ledger "sqlite:$T/ledger.db" >"$T/list.out" 2>&1
check "list shows device A's row, one line, the model escaped" \
    test "$(grep -c 'SN-LOG-0001' "$T/list.out")" -eq 1 -a \
    "$(grep -cF 'Gw\" result=issued device_serial=\"SN-FAKE' "$T/list.out")" -eq 1
"$VERIFIER" check-idevid --roots "$T/roots" --intermediates "$T/acme/intermediate.pem" \
    "$T/b.pem" >"$T/check-b.out" 2>&1
rc=$?
check "check-idevid refuses device B (exit 1, got $rc)" test "$rc" -eq 1
check "check-idevid prints B's subject whole on its lines (certificate and chain)" \
    test "$(grep -c '"serialNumber=SN-LOG-0002,CN=Line.*Evil"$' "$T/check-b.out")" -eq 2
check "no line of its output starts with the forged text" \
    test "$(grep -c '^enroll result\|^" result\|^model=' "$T/check-b.out")" -eq 0
kill -TERM "$VERIFIER_PID"
wait "$VERIFIER_PID"

# ---------------------------------------------------------------------------
log "under systemd: one journal field per value"
cat >"$T/ns.sh" <<'EOF'
# In a private mount namespace: a tmpfs where journald's socket lives, the
# stand-in journald, then the verifier with stderr as the journal stream.
set -u
T=$1 PY=$2 WIRE=$3 port=$4
shift 4
base=/run/systemd
[[ -d $base ]] || base=/run
# Nothing mounted here may reach the parent namespace. Where / is not a
# mount point (a chroot), unshare cannot make it private, so /run is.
mount --make-rprivate / 2>/dev/null || mount --make-rprivate /run || exit 97
mount -t tmpfs tmpfs "$base" || exit 97
mkdir -p /run/systemd/journal || exit 97
"$PY" "$WIRE" journal /run/systemd/journal/socket "$T/journal.jsonl" 2>"$T/journal.err" &
echo $! >"$T/journal.pid"
for _ in $(seq 1 100); do
    [[ -S /run/systemd/journal/socket ]] && break
    sleep 0.05
done
[[ -S /run/systemd/journal/socket ]] || exit 97
exec 2>"$T/verifier-journal.stderr"
JOURNAL_STREAM=$(stat -c '%d:%i' "$T/verifier-journal.stderr")
export JOURNAL_STREAM
exec "$@" --listen "127.0.0.1:$port" --metrics-listen ""
EOF
port=$(devid_free_port) || die "no free port"
unshare -m --propagation unchanged bash "$T/ns.sh" "$T" "$PY" "$here/wire.py" "$port" \
    "$VERIFIER" serve "${VARGS[@]}" --ledger "sqlite:$T/ledger-j.db" --deny-model "$FAKE_CN" &
VERIFIER_PID=$!
DEVID_PIDS+=("$VERIFIER_PID")
DEVID_PIDFILES+=("")
if wait_port "$port" 10 && pid_alive "$VERIFIER_PID"; then
    DEVID_PIDS+=("$(cat "$T/journal.pid")")
    DEVID_PIDFILES+=("")
    VERIFIER_URL=https://127.0.0.1:$port
    issue_idevid "$T/acme" "$T/c" "/O=Acme Devices/CN=$FAKE_CN/serialNumber=SN-LOG-0003" \
        SN-LOG-0003 || die "cannot issue device c's IDevID"
    a=$(wire c challenge)
    check "device C is refused by policy at the challenge (got: $a)" \
        grep -q "status=403 .*reason=REASON_POLICY_DENIED" <<<"$a"
    entry() {
        "$PY" - "$T/journal.jsonl" "$1" <<'PYEOF'
import json, sys
want = sys.argv[2]
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("DEVID_EVENT") == "challenge" and e.get("DEVID_DEVICE_SERIAL") == "SN-LOG-0003":
        print(e.get(want, "(absent)"))
PYEOF
    }
    check "the journal got the decision, PRIORITY 6 (info)" same_text "$(entry PRIORITY)" 6
    check "DEVID_RESULT=refused" same_text "$(entry DEVID_RESULT)" refused
    check "DEVID_REASON is the reason" same_text "$(entry DEVID_REASON)" "denied by policy"
    check "DEVID_MODEL is the CN as it is, quotes and all" same_text "$(entry DEVID_MODEL)" "$FAKE_CN"
    check "MESSAGE is the escaped line" grep -qE \
        'challenge result=refused peer=127\.0\.0\.1:[0-9]+ device_serial="SN-LOG-0003" model="Gw\\" result=issued' \
        <<<"$(entry MESSAGE)"
    check "SYSLOG_IDENTIFIER is the program" same_text "$(entry SYSLOG_IDENTIFIER)" devid-verifier
    check "the decision went to the journal, not to stderr as well" \
        test "$(grep -c 'result=refused' "$T/verifier-journal.stderr")" -eq 0
    kill -TERM "$VERIFIER_PID"
    wait "$VERIFIER_PID"
    rc=$?
    check "the journal-mode verifier exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
else
    wait "$VERIFIER_PID"
    rc=$?
    if [[ $rc -eq 97 ]]; then
        skip "journal fields: no private mount namespace here (unshare -m and mount need root)"
    else
        check "the journal-mode verifier starts" false
        sed 's/^/    /' "$T/verifier-journal.stderr" "$T/journal.err" >&2 2>/dev/null
    fi
fi
finish
