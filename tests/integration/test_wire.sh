#!/usr/bin/env bash
# The wire under hostile input (docs/protocol.md sections 2, 3 and 8): raw
# requests over TLS (tests/integration/wire.py) break each rule of the HTTP
# table, and each gets the verifier's own Error with the documented Reason,
# status and close; a token is used on another connection; intermediates
# arrive only in the ChallengeRequest; a TLS 1.2 handshake without EMS is
# refused with its reason; GET /v1/crl during a ledger fault still serves
# the CRL built in the background. Throughout, the verifier stays up, and the ledger changes only for
# the one real enrollment (a swtpm device and devid-agent).
#
# The software IDevIDs here are made with openssl from the factory CA: the
# checks before the evidence need no TPM. The ledger fault is a preloaded
# shim (tests/lib/ledgerfault.c): a real one cannot be made on demand.
set -uo pipefail
TEST_NAME=wire
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

need protoc openssl cc
need_py_protobuf

devid_tmpdir
T=$DEVID_TMP
LEDGER=sqlite:$T/ledger.db

log "manufacturer CA, verifier PKI, a software IDevID"
lab_pki
issue_idevid "$T/acme" "$T/soft" "/O=Acme Devices/CN=Wire Gateway/serialNumber=SN-W-0001" SN-W-0001 ||
    die "cannot make a software IDevID"
cc -shared -fPIC -o "$T/ledgerfault.so" "$DEVID_SRC/tests/lib/ledgerfault.c" -ldl ||
    die "cannot build tests/lib/ledgerfault.c"

# The root only: the device brings its intermediate. The shim fails the
# ledger while $T/fault exists. Under ASan the preloaded shim comes first.
LD_PRELOAD=$T/ledgerfault.so DEVID_LEDGER_FAULT=$T/fault \
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
    verifier_start main --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --roots "$T/roots" --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" \
    --token-key "$T/pki/token.key" --ledger "$LEDGER" || die "verifier did not start"

# wire ARGS...: one wire.py command against the verifier with the software
# IDevID as client certificate (--anonymous first: none).
wire() {
    local id=(--cert "$T/soft.pem" --key "$T/soft.key")
    [[ ${1:-} == --anonymous ]] && { id=(); shift; }
    timeout 60 "$PY" "$here/wire.py" --url "$VERIFIER_URL" --ca "$T/pki/tls-ca.pem" \
        --proto "$DEVID_SRC/proto" "${id[@]}" "$@" 2>>"$T/wire.err"
}

# answer_has ANSWER KEY=VALUE...: the wire.py answer line has each pair.
answer_has() {
    local a=$1 kv
    shift
    [[ -n $a ]] || { log "    no answer"; return 1; }
    for kv in "$@"; do
        [[ " $a " == *" $kv "* ]] || { log "    '$kv' not in: $a"; return 1; }
    done
}

# refused NAME STATUS REQUEST [KEY=VALUE...]: REQUEST (wire.py raw text) is
# refused with an Error: STATUS, REASON_BAD_REQUEST, the protobuf type, and
# the connection closed after it.
REFUSED_N=0
refused() {
    local name=$1 status=$2 req=$3 a
    shift 3
    REFUSED_N=$((REFUSED_N + 1))
    a=$(wire raw "$req")
    check "$name: $status REASON_BAD_REQUEST, an Error, Connection: close, closed" \
        answer_has "$a" "status=$status" reason=REASON_BAD_REQUEST \
        ctype=application/x-protobuf connection=close closed=yes "$@"
}

rows() {
    "$VERIFIER" list --ledger "$LEDGER" --limit 100000 2>/dev/null | tail -n +2 | wc -l
}

H='Host: v\r\n'
CT='Content-Type: application/x-protobuf\r\n'
rows_before=$(rows)

# ---------------------------------------------------------------------------
log "methods and paths"
refused "PUT /v1/enroll" 405 "PUT /v1/enroll HTTP/1.1\r\n$H\r\n" allow=POST
refused "DELETE /v1/crl" 405 "DELETE /v1/crl HTTP/1.1\r\n$H\r\n" allow=GET
refused "unknown method BREW" 405 "BREW /v1/challenge HTTP/1.1\r\n$H\r\n" allow=POST
refused "GET on /v1/challenge" 405 "GET /v1/challenge HTTP/1.1\r\n$H\r\n" allow=POST
refused "unknown path /v2/enroll" 404 "POST /v2/enroll HTTP/1.1\r\n$H${CT}Content-Length: 0\r\n\r\n"
refused "the synthetic path from outside" 404 "POST /.devid/refused HTTP/1.1\r\n$H\r\n"
refused "HTTP/2.0" 505 "GET /v1/crl HTTP/2.0\r\n$H\r\n"
refused "a request target over 256 bytes" 414 "GET /v1/crl?$(printf 'a%.0s' {1..300}) HTTP/1.1\r\n$H\r\n"

log "sizes"
refused "challenge body over 16 KiB" 413 \
    "POST /v1/challenge HTTP/1.1\r\n$H${CT}Content-Length: 16385\r\n\r\n$(printf 'x%.0s' {1..200})"
refused "enroll body over 64 KiB" 413 \
    "POST /v1/enroll HTTP/1.1\r\n$H${CT}Content-Length: 65537\r\n\r\n"
big=$(printf 'z%.0s' {1..9000})
refused "a header of 9000 bytes" 431 "GET /v1/crl HTTP/1.1\r\n${H}X-Big: $big\r\n\r\n"
many=$(for i in $(seq 1 40); do printf 'X-%d: y\\r\\n' "$i"; done)
refused "40 header fields" 431 "GET /v1/crl HTTP/1.1\r\n$H$many\r\n"

log "framing"
refused "POST without Content-Length" 411 "POST /v1/challenge HTTP/1.1\r\n$H$CT\r\n"
refused "POST with another Content-Type" 415 \
    "POST /v1/challenge HTTP/1.1\r\n${H}Content-Type: text/plain\r\nContent-Length: 0\r\n\r\n"
refused "chunked Transfer-Encoding" 400 \
    "POST /v1/challenge HTTP/1.1\r\n$H${CT}Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"
refused "corrupt chunked framing" 400 \
    "POST /v1/enroll HTTP/1.1\r\n$H${CT}Transfer-Encoding: chunked\r\n\r\nzz\r\nabcd\r\n"
refused "Content-Length and Transfer-Encoding" 400 \
    "POST /v1/enroll HTTP/1.1\r\n$H${CT}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\nabcd"
refused "two equal Content-Length" 400 \
    "POST /v1/challenge HTTP/1.1\r\n$H${CT}Content-Length: 2\r\nContent-Length: 2\r\n\r\nab"
refused "two different Content-Length" 400 \
    "POST /v1/challenge HTTP/1.1\r\n$H${CT}Content-Length: 2\r\nContent-Length: 3\r\n\r\nabc"
refused "Content-Length that is not a number" 400 \
    "POST /v1/challenge HTTP/1.1\r\n$H${CT}Content-Length: 2x\r\n\r\nab"
refused "NUL in a header value" 400 "GET /v1/crl HTTP/1.1\r\n${H}X-A: a\0b\r\n\r\n"
refused "0x01 in a header value" 400 "GET /v1/crl HTTP/1.1\r\n${H}X-A: a\x01b\r\n\r\n"
refused "DEL in a header value" 400 "GET /v1/crl HTTP/1.1\r\n${H}X-A: a\x7fb\r\n\r\n"
refused "NUL in a header name" 400 "GET /v1/crl HTTP/1.1\r\n${H}X-\0A: b\r\n\r\n"
refused "bare LF line ends" 400 "GET /v1/crl HTTP/1.1\nHost: v\n\n"
refused "obsolete line folding" 400 "GET /v1/crl HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n"
refused "HTTP/1.1 without Host" 400 "GET /v1/crl HTTP/1.1\r\n\r\n"
refused "Expect other than 100-continue" 417 "GET /v1/crl HTTP/1.1\r\n${H}Expect: 200-ok\r\n\r\n"

log "answers that keep the connection"
a=$(wire raw "POST /v1/challenge HTTP/1.1\r\n$H${CT}Content-Length: 3\r\n\r\n\xff\xff\xff")
check "a body that is not a ChallengeRequest: 400 REASON_BAD_REQUEST, connection kept" \
    answer_has "$a" status=400 reason=REASON_BAD_REQUEST ctype=application/x-protobuf closed=no
a=$(wire raw "GET /v1/crl HTTP/1.1\r\n$H\r\n")
check "GET /v1/crl: 200 with a CRL, connection kept" \
    answer_has "$a" status=200 ctype=application/pkix-crl closed=no
a=$(wire pipeline "GET /v1/crl HTTP/1.1\r\n$H\r\n" "PUT /v1/crl HTTP/1.1\r\n$H\r\n")
check "pipelined: the good request is answered first (200)" \
    answer_has "$(sed -n 1p <<<"$a")" answer=first status=200
check "pipelined: then the refused one (405 Error)" \
    answer_has "$(sed -n 2p <<<"$a")" answer=second status=405 reason=REASON_BAD_REQUEST
a=$(wire --anonymous challenge --intermediates "$T/acme/intermediate.pem")
check "a challenge without a client certificate: 401 REASON_NO_CLIENT_CERTIFICATE" \
    answer_has "$a" status=401 reason=REASON_NO_CLIENT_CERTIFICATE

# ---------------------------------------------------------------------------
log "the chain at the challenge: intermediates only in the ChallengeRequest"
a=$(wire challenge)
check "no intermediate anywhere: 403 REASON_CHAIN_UNTRUSTED" \
    answer_has "$a" status=403 reason=REASON_CHAIN_UNTRUSTED
a=$(wire challenge --intermediates "$T/acme/intermediate.pem")
check "the intermediate only in ChallengeRequest.intermediates: 200" answer_has "$a" status=200
cat "$T/acme/intermediate.pem" "$T/acme/intermediate.pem" "$T/acme/intermediate.pem" >"$T/three.pem"
a=$(wire challenge --intermediates "$T/three.pem")
check "a ChallengeRequest over 1 KiB (three intermediates): 200" answer_has "$a" status=200

log "a token used on another connection"
a=$(wire other-connection --intermediates "$T/acme/intermediate.pem")
check "token of connection 1 on connection 2: 403 REASON_TOKEN_WRONG_CONNECTION" \
    answer_has "$a" challenge=200 status=403 reason=REASON_TOKEN_WRONG_CONNECTION
a=$(wire other-connection --same --intermediates "$T/acme/intermediate.pem")
check "the same token on its own connection passes that check (REASON_CHALLENGE_SIGNATURE next)" \
    answer_has "$a" challenge=200 status=403 reason=REASON_CHALLENGE_SIGNATURE

log "TLS 1.2 without the Extended Master Secret"
cat >"$T/no-ems.cnf" <<'EOF'
openssl_conf = init
[init]
ssl_conf = ssl
[ssl]
system_default = sys
[sys]
Options = -ExtendedMasterSecret
EOF
a=$(OPENSSL_CONF=$T/no-ems.cnf wire --tls 1.2 challenge --intermediates "$T/acme/intermediate.pem")
check "TLS 1.2 without EMS: 403 REASON_TLS_NO_EMS" answer_has "$a" status=403 reason=REASON_TLS_NO_EMS
a=$(wire --tls 1.2 challenge --intermediates "$T/acme/intermediate.pem")
check "TLS 1.2 with EMS: 200" answer_has "$a" status=200
grep 'result=refused' "$VERIFIER_LOG" | grep -F 'reason="TLS 1.2 without Extended Master Secret"' \
    >"$T/no-ems.log"
check "the verifier logged the refusal and its reason" test -s "$T/no-ems.log"
main_url=$VERIFIER_URL main_pid=$VERIFIER_PID main_log=$VERIFIER_LOG
verifier_start tls13 --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --roots "$T/roots" --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" \
    --token-key "$T/pki/token.key" --ledger "sqlite:$T/ledger-13.db" --tls-min 1.3 ||
    die "the TLS 1.3-only verifier did not start"
a=$(wire --tls 1.2 challenge --intermediates "$T/acme/intermediate.pem")
check "--tls-min 1.3 switches TLS 1.2 off: the handshake fails" answer_has "$a" tls=refused
a=$(wire challenge --intermediates "$T/acme/intermediate.pem")
check "... and TLS 1.3 is served" answer_has "$a" status=200
verifier_stop_checked
VERIFIER_URL=$main_url VERIFIER_PID=$main_pid VERIFIER_LOG=$main_log

# ---------------------------------------------------------------------------
log "GET /v1/crl during a ledger fault"
# The CRL is built in the background (crlcache.c): a request reads neither the
# ledger nor the signing key, so a fault does not reach it.
touch "$T/fault"
a=$(wire raw "GET /v1/crl HTTP/1.1\r\n$H\r\n")
rm -f "$T/fault"
check "200 with the CRL built before the fault" answer_has "$a" status=200 ctype=application/pkix-crl

# Nothing so far was an issuance.
check "the ledger did not change for any of it ($rows_before rows)" \
    test "$(rows)" -eq "$rows_before"

# ---------------------------------------------------------------------------
log "a real enrollment still works, and is the one new row"
device_new a "$T/acme" SN-W-0002 "Wire Gateway" || die "device a"
agent a enroll --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
    --chain "$T/dev-a/factory/chain.pem" --out-dir "$T/out-a" >"$T/agent-a.out" 2>"$T/agent-a.err"
rc=$?
check "agent enrolls (exit 0, got $rc)" test "$rc" -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/agent-a.err" >&2
check "the ledger has exactly one more row" test "$(rows)" -eq $((rows_before + 1))
check "chain.pem is empty: the lab operational CA is self-signed" \
    test -e "$T/out-a/chain.pem" -a ! -s "$T/out-a/chain.pem"
check "every refused head ($REFUSED_N and the pipelined one) was logged as a request event" \
    test "$(grep -c 'request result=refused status=' "$VERIFIER_LOG")" -eq $((REFUSED_N + 1))

# ---------------------------------------------------------------------------
log "a reload reaches a connection that passed the challenge before it"
# Acme's root is replaced by another manufacturer's between the challenge and
# the enroll on one connection: whatever the verifier keeps about the
# connection, the enroll is judged with the roots it has now. The evidence is
# a placeholder, so without the reload the next check refuses it instead.
a=$(wire other-connection --same --intermediates "$T/acme/intermediate.pem")
check "without a reload: the chain passes (REASON_CHALLENGE_SIGNATURE next)" \
    answer_has "$a" challenge=200 status=403 reason=REASON_CHALLENGE_SIGNATURE
"$FACTORY" ca --dir "$T/globex" --name "Globex Devices" >/dev/null || die "factory ca globex"
reloads() { grep -c "reload done" "$VERIFIER_LOG"; }
n=$(reloads)
a=$(wire other-connection --same --intermediates "$T/acme/intermediate.pem" --between \
    "cp '$T/globex/root.pem' '$T/roots/globex.pem' && rm '$T/roots/acme.pem' &&
     kill -HUP $VERIFIER_PID && timeout 30 sh -c 'until [ \$(grep -c \"reload done\" \"$VERIFIER_LOG\") -gt $n ]; do sleep 0.1; done'")
check "Acme removed by SIGHUP after the challenge: the enroll on that connection is 403 REASON_CHAIN_UNTRUSTED" \
    answer_has "$a" challenge=200 status=403 reason=REASON_CHAIN_UNTRUSTED
check "the reload happened in between ($(reloads) reloads)" test "$(reloads)" -eq $((n + 1))
check "and the ledger did not change" test "$(rows)" -eq $((rows_before + 1))

verifier_stop_checked
finish
