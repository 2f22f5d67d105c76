#!/usr/bin/env bash
# A token key change without downtime (docs/operator.md, "Rotate the token
# key"): two replicas on one ledger go through its three steps by replacing
# key files and sending SIGHUP, never restarting. During the change a token
# sealed by the replica that still seals with the old key opens on the one
# that seals with the new key, and the other way round; once the old key is
# dropped, its tokens are refused with REASON_TOKEN_INVALID. /metrics names
# the keys each replica holds and counts the tokens the accept-only key
# opened. A broken key file fails the reload and keeps the keys; at start it
# stops the verifier, naming the file.
#
# Tokens are bound to their TLS connection, so a token crosses replicas only
# in the retry of a recorded request (protocol.md section 8, step 4): the
# interop client's --resend sends such a retry, byte for byte, to the other
# replica. Real swtpm behind tpm2-abrmd, the factory, two devid-verifier
# processes on one SQLite ledger, tests/interop/client.py.
set -uo pipefail
TEST_NAME=token_rotation
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

need protoc stdbuf openssl curl sha256sum tpm2_send tpm2_create tpm2_sign tpm2_readpublic
need_py_protobuf

devid_tmpdir
T=$DEVID_TMP
LEDGER=sqlite:$T/ledger.db

log "manufacturer CA, verifier PKI, two token keys"
lab_pki
umask 077
K1=$T/k1.key
K2=$T/k2.key
cp "$T/pki/token.key" "$K1"
head -c 32 /dev/urandom >"$K2"
ID1=$(sha256sum "$K1" | cut -c1-8)
ID2=$(sha256sum "$K2" | cut -c1-8)
check "the two keys have different ids ($ID1, $ID2)" differ_text "$ID1" "$ID2"

# put SRC DST: install key SRC as DST, mode 0600 (what the operator does).
put() {
    install -m 0600 "$1" "$2"
}

# start NAME: replica NAME with its own key files in $T/NAME; sets NAME_URL,
# NAME_PID, NAME_LOG and NAME_M (its metrics port).
start() {
    local name=$1 up=${1^^} mport
    mport=$(devid_free_port) || die "no free port"
    verifier_start "$name" --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
        --roots "$T/roots" --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" \
        --token-key "$T/$name/token.key" --token-accept-key "$T/$name/token-accept.key" \
        --token-ttl 900 --ledger "$LEDGER" --workers 2 --metrics-listen "127.0.0.1:$mport" ||
        die "replica $name did not start"
    printf -v "${up}_URL" %s "$VERIFIER_URL"
    printf -v "${up}_PID" %s "$VERIFIER_PID"
    printf -v "${up}_LOG" %s "$VERIFIER_LOG"
    printf -v "${up}_M" %s "$mport"
}

# scrape PORT OUT: the replica's /metrics into OUT.
scrape() {
    curl -fsS "http://127.0.0.1:$1/metrics" -o "$2"
}

# keys_are PORT CURRENT [ACCEPT]: /metrics names exactly these keys.
keys_are() {
    local out=$T/keys-$1.txt want got
    scrape "$1" "$out" || return 1
    want="devid_token_key_info{key=\"current\",id=\"$2\"} 1"
    [[ -n ${3:-} ]] && want+=$'\n'"devid_token_key_info{key=\"accept\",id=\"$3\"} 1"
    got=$(grep '^devid_token_key_info{' "$out")
    [[ $got == "$want" ]] || { log "    keys: $got"; return 1; }
}

# opened PORT KEY: devid_tokens_opened_total{key=KEY} of the replica.
opened() {
    scrape "$1" "$T/opened.txt" &&
        sed -n "s/^devid_tokens_opened_total{key=\"$2\"} //p" "$T/opened.txt"
}

# hup NAME: SIGHUP replica NAME and wait for its reload to end; fails when
# the reload failed.
hup() {
    local up=${1^^} pid log n
    pid=${up}_PID
    log=${up}_LOG
    n=$(grep -c 'reload done\|reload failed' "${!log}")
    kill -HUP "${!pid}"
    wait_for 30 sh -c "test \$(grep -c 'reload done\|reload failed' '${!log}') -gt $n" ||
        { log "    no reload logged"; return 1; }
    test "$(grep 'reload done\|reload failed' "${!log}" | tail -n 1 | grep -c 'reload done')" = 1
}

# hup_fails NAME: SIGHUP replica NAME; its reload fails.
hup_fails() {
    local up=${1^^} log
    log=${up}_LOG
    ! hup "$1" && grep -q 'reload failed' "${!log}"
}

# client DEVICE WORK URL ARGS...: the interop client for DEVICE against URL.
client() { interop_client "$1" "$3" "$2" "${@:4}"; }
# field WORK KEY[.KEY]: a value from a client's result.json.
field() { interop_field "$@"; }
# enrolls DEVICE WORK URL ARGS...: the client enrolls (exit 0).
enrolls() {
    local rc
    client "$@"
    rc=$?
    [[ $rc -eq 0 ]] || { sed 's/^/    /' "$2.log" >&2; log "    client exit $rc"; return 1; }
}

# ---------------------------------------------------------------------------
log "two replicas on one ledger, both sealing with key 1, no accept-only key yet"
for r in a b; do
    mkdir -p "$T/$r"
    put "$K1" "$T/$r/token.key"
done
start a
start b
check "replica a says it has no accept-only key" \
    grep -q "no accept-only token key: $T/a/token-accept.key does not exist" "$A_LOG"
check "replica a logs its token key's id" grep -q "token key $T/a/token.key (id $ID1)" "$A_LOG"
check "/metrics of a names key 1 alone" keys_are "$A_M" "$ID1"
check "/metrics of b names key 1 alone" keys_are "$B_M" "$ID1"

log "step 1, on every replica: key 2 is accepted, key 1 still seals"
for r in a b; do
    put "$K2" "$T/$r/token-accept.key"
done
check "replica a reloads" hup a
check "replica b reloads" hup b
check "/metrics of a: key 1 current, key 2 accepted" keys_are "$A_M" "$ID1" "$ID2"
check "/metrics of b: key 1 current, key 2 accepted" keys_are "$B_M" "$ID1" "$ID2"
check "replica a logs the accept-only key's id" \
    grep -q "accept-only token key $T/a/token-accept.key (id $ID2) opens tokens too" "$A_LOG"

device_new r "$T/acme" SN-ROT-0001 "Gateway X1" || die "device r"
device_new s "$T/acme" SN-ROT-0002 "Gateway X1" || die "device s"
check "device R enrolls on replica a (its token sealed with key 1)" enrolls r "$T/r1" "$A_URL"
REQ_R=$T/r1/enroll_request.bin
check "... and the client kept the request" test -s "$REQ_R"

log "step 2 on replica b only: key 2 seals, key 1 is accepted"
put "$K2" "$T/b/token.key"
put "$K1" "$T/b/token-accept.key"
check "replica b reloads" hup b
check "/metrics of b: key 2 current, key 1 accepted" keys_are "$B_M" "$ID2" "$ID1"
check "replica a still seals with key 1" keys_are "$A_M" "$ID1" "$ID2"

check "R's request, challenged on a under key 1, is answered again on b" \
    enrolls r "$T/r1-on-b" "$B_URL" --resend "$REQ_R"
check "... with the certificate a issued" same_file "$T/r1/cert.der" "$T/r1-on-b/cert.der"
check "... and b logged a replay" grep -q 'result=replayed.*device_serial="SN-ROT-0001"' "$B_LOG"
check "... opened by b's accept-only key (devid_tokens_opened_total)" \
    test "$(opened "$B_M" accept)" = 1

check "device S enrolls on replica b (its token sealed with key 2)" enrolls s "$T/s1" "$B_URL"
REQ_S=$T/s1/enroll_request.bin
check "S's request is answered again on a, which still seals with key 1" \
    enrolls s "$T/s1-on-a" "$A_URL" --resend "$REQ_S"
check "... with the certificate b issued" same_file "$T/s1/cert.der" "$T/s1-on-a/cert.der"
check "... opened by a's accept-only key" test "$(opened "$A_M" accept)" = 1
check "b counts the token of its own current key" test "$(opened "$B_M" current)" = 1

log "step 2 on replica a"
put "$K2" "$T/a/token.key"
put "$K1" "$T/a/token-accept.key"
check "replica a reloads" hup a
check "/metrics of a: key 2 current, key 1 accepted" keys_are "$A_M" "$ID2" "$ID1"

log "step 3 on replica b: key 1 is dropped"
rm -f "$T/b/token-accept.key"
check "replica b reloads" hup b
check "/metrics of b names key 2 alone" keys_are "$B_M" "$ID2"
check "... and b says it has no accept-only key" \
    sh -c "grep 'no accept-only token key' '$B_LOG' | tail -n 1 | grep -q '$T/b/token-accept.key'"
client r "$T/r1-dropped" "$B_URL" --resend "$REQ_R"
rc=$?
check "R's request under key 1 is now refused on b (exit $rc, want 1)" test $rc -eq 1
check "... 400 REASON_TOKEN_INVALID" sh -c "test '$(field "$T/r1-dropped" enroll.status)' = 400 &&
    test '$(field "$T/r1-dropped" enroll.reason)' = REASON_TOKEN_INVALID"
check "... saying the MAC does not verify" test "$(field "$T/r1-dropped" enroll.message)" = \
    "token is malformed or its MAC does not verify"
check "... and b logged the refusal" \
    grep -q 'result=refused.*device_serial="SN-ROT-0001".*why="token is malformed' "$B_LOG"
check "S's request under key 2 is still answered on b" \
    enrolls s "$T/s1-on-b" "$B_URL" --resend "$REQ_S"
check "a new enrollment on b works under key 2 alone" \
    enrolls r "$T/r2" "$B_URL" --key-handle 0x81020003

log "broken accept-only key files: the reload fails, the keys stay"
head -c 31 /dev/urandom >"$T/short.key"
put "$T/short.key" "$T/a/token-accept.key"
check "a 31-byte accept-only key fails a's reload" hup_fails a
check "... naming the file and its size" \
    grep -q "accept-only token key $T/a/token-accept.key must hold exactly 32 random bytes (it holds 31)" \
    "$A_LOG"
check "... and a keeps key 2 current, key 1 accepted" keys_are "$A_M" "$ID2" "$ID1"
put "$K1" "$T/a/token-accept.key"
chmod 0644 "$T/a/token-accept.key"
check "an accept-only key readable by others fails a's reload" hup_fails a
check "... naming the file" grep -q \
    "accept-only token key $T/a/token-accept.key is accessible by group or others; chmod 600 it" \
    "$A_LOG"
check "... and a keeps its keys" keys_are "$A_M" "$ID2" "$ID1"
check "both failed reloads are counted" sh -c "curl -fsS 'http://127.0.0.1:$A_M/metrics' |
    grep -qx 'devid_reloads_total{result=\"failed\"} 2'"
rm -f "$T/a/token-accept.key"
check "step 3 on replica a" hup a
check "/metrics of a names key 2 alone" keys_are "$A_M" "$ID2"

log "a broken accept-only key file stops the verifier at start"
put "$K1" "$T/open.key"
chmod 0644 "$T/open.key"
"$VERIFIER" serve --listen 127.0.0.1:1 --metrics-listen "" ${VERIFIER_AS_ROOT[@]+"${VERIFIER_AS_ROOT[@]}"} \
    --tls-cert "$T/pki/server.pem" \
    --tls-key "$T/pki/server.key" --roots "$T/roots" --ca-cert "$T/pki/opca.pem" \
    --ca-key "$T/pki/opca.key" --token-key "$K1" --token-accept-key "$T/open.key" \
    --ledger "sqlite:$T/l78.db" >"$T/serve-78.out" 2>&1
rc=$?
check "serve with an accept-only key readable by others exits 78 (got $rc)" test $rc -eq 78
check "... naming the file" grep -q "accept-only token key $T/open.key is accessible" \
    "$T/serve-78.out"
"$VERIFIER" serve --listen 127.0.0.1:1 --metrics-listen "" ${VERIFIER_AS_ROOT[@]+"${VERIFIER_AS_ROOT[@]}"} \
    --tls-cert "$T/pki/server.pem" \
    --tls-key "$T/pki/server.key" --roots "$T/roots" --ca-cert "$T/pki/opca.pem" \
    --ca-key "$T/pki/opca.key" --token-key "$K1" --token-accept-key "$T/short.key" \
    --ledger "sqlite:$T/l78.db" >"$T/serve-78b.out" 2>&1
rc=$?
check "serve with a 31-byte accept-only key exits 78 (got $rc)" test $rc -eq 78
check "... naming the file" grep -q "accept-only token key $T/short.key must hold exactly 32" \
    "$T/serve-78b.out"

VERIFIER_PID=$A_PID
verifier_stop_checked
VERIFIER_PID=$B_PID
verifier_stop_checked
finish
