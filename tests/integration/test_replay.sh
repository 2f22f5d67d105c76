#!/usr/bin/env bash
# The replay path re-checks: a byte-identical enroll request (the retry after
# a lost answer) gets the stored certificate back only while the device is
# still allowed. Deny-listed or revoked since, it is refused with the same
# reason as a first enrollment, and the ledger does not change. Also: a
# hard-mode CRL that is stale is REASON_REVOCATION_UNKNOWN, 503, retryable.
# Real swtpm behind tpm2-abrmd, the factory, devid-verifier, and
# tests/interop/client.py to send the same bytes again.
set -uo pipefail
TEST_NAME=replay
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

need protoc stdbuf openssl tpm2_send tpm2_create tpm2_sign tpm2_readpublic
need_py_protobuf

devid_tmpdir
T=$DEVID_TMP
LEDGER=sqlite:$T/ledger.db

log "manufacturer CA with a CRL, verifier PKI"
lab_pki
# An `openssl ca` state for the factory's IDevID CA, to write its CRLs.
mkdir -p "$T/crlca"
: >"$T/crlca/index.txt"
cat >"$T/crlca/ca.cnf" <<EOF
[ca]
default_ca = d
[d]
database = $T/crlca/index.txt
certificate = $T/acme/intermediate.pem
private_key = $T/acme/intermediate.key
default_md = sha256
default_crl_days = 30
[crl_ext]
authorityKeyIdentifier = keyid:always
EOF
gencrl() { # gencrl OUT [openssl ca -gencrl options]
    local out=$1
    shift
    openssl ca -batch -gencrl -config "$T/crlca/ca.cnf" -crlexts crl_ext "$@" -out "$out" \
        >"$T/gencrl.log" 2>&1 || { sed 's/^/    /' "$T/gencrl.log" >&2; die "gencrl failed"; }
}
gencrl "$T/acme.crl"
mfrs() { # mfrs FILE CRL
    cat >"$1" <<EOF
[manufacturer "Acme Devices"]
roots = $T/acme/root.pem
intermediates = $T/acme/intermediate.pem
crl = $2
revocation = hard
EOF
}
mfrs "$T/manufacturers.conf" "$T/acme.crl"
printf '[policy]\nallow_manufacturer = Acme Devices\n' >"$T/policy.conf"

# start NAME MANUFACTURERS POLICY: a verifier on the one ledger and token key
# (a restart with new trust files: the token still opens).
start() {
    verifier_start "$1" --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
        --manufacturers "$2" --policy "$3" --ca-cert "$T/pki/opca.pem" \
        --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" --token-ttl 900 \
        --ledger "$LEDGER" || die "verifier $1 did not start"
}
stop() {
    kill -TERM "$VERIFIER_PID"
    wait "$VERIFIER_PID" 2>/dev/null
}

# client WORK ARGS...: the interop client for device r.
client() { interop_client r "$VERIFIER_URL" "$@"; }
# field WORK KEY[.KEY]: a value from a client's result.json (booleans as
# true/false).
field() { interop_field "$@"; }
# ledger_state: the whole ledger as the operator sees it: every row (list)
# and the full record of the first certificate (show).
ledger_state() {
    "$VERIFIER" list --ledger "$LEDGER" --limit 1000 2>&1
    "$VERIFIER" show --ledger "$LEDGER" --serial "$serial" 2>&1
}

# ---------------------------------------------------------------------------
log "device R enrolls; the byte-identical request is answered again"
start main "$T/manufacturers.conf" "$T/policy.conf"
device_new r "$T/acme" SN-RP-0001 "Gateway X1" || die "device r"
client "$T/first"
rc=$?
check "device R enrolls (exit $rc)" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/first.log" >&2
serial=$(field "$T/first" serial)
REQ=$T/first/enroll_request.bin
check "the client kept the request it sent" test -s "$REQ"
ledger_state >"$T/ledger-0.txt"
check "the ledger lists one certificate" test "$(grep -c SN-RP-0001 "$T/ledger-0.txt")" -ge 1
client "$T/again" --resend "$REQ"
rc=$?
check "the same bytes again: the stored certificate (exit $rc)" test $rc -eq 0
check "... byte for byte the first answer's" same_file "$T/first/cert.der" "$T/again/cert.der"
ledger_state >"$T/ledger-1.txt"
check "... and the ledger is unchanged" same_file "$T/ledger-0.txt" "$T/ledger-1.txt"
check "the verifier logged a replay" grep -q 'result=replayed.*device_serial="SN-RP-0001"' \
    "$VERIFIER_LOG"
stop

# ---------------------------------------------------------------------------
log "deny-listed since: the same bytes are refused"
printf '[policy]\nallow_manufacturer = Acme Devices\n[denylist]\nserial = SN-RP-0001\n' \
    >"$T/policy-deny.conf"
start deny "$T/manufacturers.conf" "$T/policy-deny.conf"
client "$T/deny" --resend "$REQ"
rc=$?
check "deny-listed: refused (exit $rc, want 1)" test $rc -eq 1
check "... 403 REASON_POLICY_DENIED" sh -c "test '$(field "$T/deny" enroll.status)' = 403 &&
    test '$(field "$T/deny" enroll.reason)' = REASON_POLICY_DENIED"
check "... naming the deny list" sh -c "'$PY' -c 'import json,sys
m = json.load(open(sys.argv[1]))[\"enroll\"][\"message\"]
sys.exit(0 if m == \"serial \\\"SN-RP-0001\\\" is on the local deny list\" else 1)' '$T/deny/result.json'"
check "... no certificate came back" test ! -e "$T/deny/cert.der"
ledger_state >"$T/ledger-2.txt"
check "... and the ledger is unchanged" same_file "$T/ledger-0.txt" "$T/ledger-2.txt"
client "$T/deny-fresh" --key-handle 0x81020003
rc=$?
check "a first enrollment of the deny-listed device is refused too (exit $rc)" test $rc -eq 1
# A first enrollment is refused at its challenge already (the policy is
# checked there too); the reason and the message are the replay's.
check "... with the same reason and message" sh -c \
    "test '$(field "$T/deny-fresh" challenge.reason)' = '$(field "$T/deny" enroll.reason)' &&
     test '$(field "$T/deny-fresh" challenge.message)' = '$(field "$T/deny" enroll.message)'"
stop

# ---------------------------------------------------------------------------
log "revoked since (the manufacturer's CRL lists the IDevID): the same bytes are refused"
openssl ca -batch -config "$T/crlca/ca.cnf" -revoke "$T/dev-r/factory/idevid.pem" \
    -crl_reason keyCompromise >"$T/revoke.log" 2>&1 || die "openssl ca -revoke failed"
gencrl "$T/acme-revoked.crl"
mfrs "$T/manufacturers-revoked.conf" "$T/acme-revoked.crl"
start revoked "$T/manufacturers-revoked.conf" "$T/policy.conf"
client "$T/revoked" --resend "$REQ"
rc=$?
check "revoked: refused (exit $rc, want 1)" test $rc -eq 1
check "... 403 REASON_CHAIN_REVOKED" sh -c "test '$(field "$T/revoked" enroll.status)' = 403 &&
    test '$(field "$T/revoked" enroll.reason)' = REASON_CHAIN_REVOKED"
check "... naming the CRL" sh -c "'$PY' -c 'import json,sys
m = json.load(open(sys.argv[1]))[\"enroll\"][\"message\"]
sys.exit(0 if \"is listed in the CRL of issuer\" in m else 1)' '$T/revoked/result.json'"
ledger_state >"$T/ledger-3.txt"
check "... and the ledger is unchanged" same_file "$T/ledger-0.txt" "$T/ledger-3.txt"
stop

# ---------------------------------------------------------------------------
log "hard mode with a stale CRL: REASON_REVOCATION_UNKNOWN, 503, retryable"
gencrl "$T/acme-stale.crl" -crl_lastupdate 20200101000000Z -crl_nextupdate 20200201000000Z
mfrs "$T/manufacturers-stale.conf" "$T/acme-stale.crl"
start stale "$T/manufacturers-stale.conf" "$T/policy.conf"
client "$T/stale" --resend "$REQ"
rc=$?
check "stale CRL: refused (exit $rc, want 1)" test $rc -eq 1
check "... 503 REASON_REVOCATION_UNKNOWN" sh -c "test '$(field "$T/stale" enroll.status)' = 503 &&
    test '$(field "$T/stale" enroll.reason)' = REASON_REVOCATION_UNKNOWN"
check "... retryable, with a retry delay" sh -c "test '$(field "$T/stale" enroll.retryable)' = true &&
    test '$(field "$T/stale" enroll.retry_after_seconds)' -gt 0"
check "... the message says the CRL is stale" sh -c "'$PY' -c 'import json,sys
m = json.load(open(sys.argv[1]))[\"enroll\"][\"message\"]
sys.exit(0 if \"revocation status unknown (revocation = hard)\" in m and \"stale\" in m else 1)' \
    '$T/stale/result.json'"
ledger_state >"$T/ledger-4.txt"
check "... and the ledger is unchanged" same_file "$T/ledger-0.txt" "$T/ledger-4.txt"
verifier_stop_checked
finish
