#!/usr/bin/env bash
# The privilege-separated signer (verifier/pki/signer.c): serve forks a signer
# that alone holds the CA key; the serving process parses what devices send,
# keeps only the CA certificate, and runs as [server] user.
#
# serve starts as the shipped unit starts it: as root whose only capabilities
# are CAP_SETUID and CAP_SETGID (CapabilityBoundingSet=, here setpriv's
# --bounding-set), so root reads root's files and nobody else's.
# - The CA and log keys are root's (0600): the serving process, as nobody,
#   cannot open them, and a key it could open is warned about.
# - The signer drops to nobody too once its keys are loaded, and is not
#   dumpable: nobody cannot read its maps or memory.
# - The ledger is opened after the drop, in a directory only nobody can
#   write to, so it is made and written as nobody.
#
# - Through the test-only hook POST /test/sign (DEVID_TEST_HOOKS builds; the
#   hook hands the signer a certificate exactly as a worker would), the signer
#   signs a certificate in the profile and refuses another issuer, CA:TRUE, a
#   validity past the maximum, a reused serial, an extension outside the
#   profile and keyCertSign, logging what was wrong each time.
# - A memory scan finds the CA key's private scalar in the signer and not in
#   the serving process (which runs as nobody, with no capabilities).
# - kill -9 of the signer while devid-fleetsim enrolls (with the issuance
#   log on): serve exits non-zero,
#   clients see only retryable errors, and after a restart every certificate
#   a client received is in the ledger and, by audit, in the issuance log.
set -uo pipefail
TEST_NAME=signer
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

FLEETSIM=$DEVID_BIN/tests/fleetsim/devid-fleetsim
[[ -x $FLEETSIM ]] || die "no fleet simulator at $FLEETSIM (set DEVID_BIN)"
need openssl curl sqlite3 setpriv
[[ $(id -u) -eq 0 ]] || die "run as root: the test reads /proc/PID/mem and drops to nobody"
id nobody >/dev/null 2>&1 || die "no user nobody to run the serving process as"
# nobody must reach the ledger, the trust files and the token key.
root_searchable || die "cannot give the root directory o+x"
# As the unit starts it: root, with CAP_SETUID and CAP_SETGID alone.
VERIFIER_WRAP=(setpriv --bounding-set=-all,+setuid,+setgid --inh-caps=-all --)
# as_nobody CMD...: CMD as user nobody, the serving process's user.
as_nobody() { setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- "$@"; }
# nobody_cannot CMD...: CMD fails as nobody.
nobody_cannot() { ! as_nobody "$@" >/dev/null 2>&1; }

devid_tmpdir
T=$DEVID_TMP
lab_pki
# The serving process runs as nobody once everything is open: its ledger
# directory is nobody's (SQLite makes its -wal and -shm files there).
chmod 711 "$T"
install -d -o nobody -m 700 "$T/db"
# The issuance log's key, for the kill -9 case: what the clients received
# must be in the tree too.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/log.key" 2>/dev/null ||
    die "log key"
chmod 600 "$T/log.key"
openssl pkey -in "$T/log.key" -pubout -out "$T/log.pub" 2>/dev/null || die "log public key"
chmod 711 "$T/pki"
chmod 600 "$T/pki/opca.key" "$T/pki/server.key" "$T/pki/token.key"
# The trust files and the token key are read, at start and on SIGHUP, by
# the serving user.
chown nobody "$T/pki/token.key"
chmod 755 "$T/acme" "$T/roots"
chmod 644 "$T/acme/intermediate.pem" "$T/roots/acme.pem"
chmod 644 "$T/pki/tls-ca.pem"

MPORT=$(devid_free_port) || die "no free port"
COMMON=(--tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" --roots "$T/roots"
    --intermediates "$T/acme/intermediate.pem" --ca-cert "$T/pki/opca.pem"
    --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" --validity-days 365 --user nobody)

verifier_start main "${COMMON[@]}" --ledger "sqlite:$T/db/ledger.db" --log-key "$T/log.key" \
    --metrics-listen "127.0.0.1:$MPORT" || die "verifier did not start"
SERVE_PID=$VERIFIER_PID
SIGNER_PID=$(sed -n 's/.*signer: pid \([0-9]*\) holds the CA key.*/\1/p' "$VERIFIER_LOG" | tail -n 1)
check "the log names the signer's pid ($SIGNER_PID)" test -n "$SIGNER_PID"
check "the signer is a child of serve" \
    test "$(awk '/^PPid:/ {print $2}' "/proc/$SIGNER_PID/status" 2>/dev/null)" = "$SERVE_PID"

# ---- credentials --------------------------------------------------------------
status_field() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
nobody_uid=$(id -u nobody)
check "the serving process runs as nobody (uid $nobody_uid)" \
    test "$(status_field "$SERVE_PID" Uid)" = "$nobody_uid"
check "the serving process has no effective capabilities" \
    test "$(status_field "$SERVE_PID" CapEff)" = 0000000000000000
check "the serving process has no_new_privs" test "$(status_field "$SERVE_PID" NoNewPrivs)" = 1
check "the signer has no_new_privs" test "$(status_field "$SIGNER_PID" NoNewPrivs)" = 1
check "the signer runs as nobody too, once its keys are loaded" \
    test "$(status_field "$SIGNER_PID" Uid)" = "$nobody_uid"
check "the signer has no effective capabilities" \
    test "$(status_field "$SIGNER_PID" CapEff)" = 0000000000000000
check "the signer logs its uid" grep -q "signer: pid $SIGNER_PID holds the CA key and the log key, as uid $nobody_uid" "$VERIFIER_LOG"
check "nobody cannot read the signer's maps (it is not dumpable)" \
    nobody_cannot cat "/proc/$SIGNER_PID/maps"
check "nobody cannot read the signer's memory" \
    nobody_cannot /usr/bin/python3 "$here/memscan.py" "$SIGNER_PID" 00
check "the ledger was made by the serving user, after the drop" \
    test "$(stat -c %U "$T/db/ledger.db")" = nobody

# ---- the keys on disk are root's alone ----------------------------------------
for key in "$T/pki/opca.key" "$T/log.key"; do
    check "the serving user cannot open $(basename "$key")" \
        nobody_cannot cat "$key"
    check "the serving process holds no descriptor on $(basename "$key")" \
        bash -c "! ls -l /proc/$SERVE_PID/fd 2>/dev/null | grep -qF '$key'"
done
check "root's keys raise no warning" bash -c "! grep -q 'can be read by user' '$VERIFIER_LOG'"

# ---- the key is in the signer's memory only ---------------------------------
scalar=$(openssl pkey -in "$T/pki/opca.key" -noout -text 2>/dev/null |
    sed -n '/^priv:/,/^pub:/p' | sed '1d;$d' | tr -d ' :\n')
scalar=${scalar#00}
check "the CA key's private scalar is 32 bytes (${#scalar} hex digits)" test "${#scalar}" -eq 64
# A few enrollments first, so the serving process has done its work.
timeout 120 "$FLEETSIM" --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
    --factory-ca "$T/acme" --devices 5 --parallel 2 --serial-prefix SCAN >"$T/scan.report" \
    2>"$T/scan.err"
check "five devices enroll through the signer, served as nobody" \
    grep -qx "ok=5" "$T/scan.report"
/usr/bin/python3 "$here/memscan.py" "$SIGNER_PID" "$scalar" >"$T/scan-signer.out" 2>&1
check "the scan finds the key in the signer: $(cat "$T/scan-signer.out")" test $? -eq 0
/usr/bin/python3 "$here/memscan.py" "$SERVE_PID" "$scalar" >"$T/scan-serve.out" 2>&1
rc=$?
check "the scan of the serving process reads it and finds no key: $(cat "$T/scan-serve.out")" \
    test "$rc" -eq 1

# ---- the signer's profile check ---------------------------------------------
# A certificate as a compromised worker would build it. The lookalike CA has
# the operational CA's subject and key identifier, but another key: the
# signer ignores the signature it carries and signs with its own.
ca_subject=$(openssl x509 -in "$T/pki/opca.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
ca_ski=$(openssl x509 -in "$T/pki/opca.pem" -noout -ext subjectKeyIdentifier | sed -n 2p | tr -d ' ')
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/fake.key" 2>/dev/null
subj_slash="/$(awk -F, '{for (i = NF; i > 0; i--) printf "%s%s", $i, (i > 1 ? "/" : "")}' <<<"$ca_subject")"
openssl req -x509 -new -key "$T/fake.key" -subj "$subj_slash" -days 30 \
    -addext "subjectKeyIdentifier=$ca_ski" -addext "basicConstraints=critical,CA:TRUE" \
    -out "$T/lookalike.pem" 2>/dev/null
openssl req -x509 -new -key "$T/fake.key" -subj "/O=Evil/CN=Other CA" -days 30 \
    -addext "subjectKeyIdentifier=$ca_ski" -addext "basicConstraints=critical,CA:TRUE" \
    -out "$T/otherca.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/leaf.key" 2>/dev/null
openssl req -new -key "$T/leaf.key" -subj "/O=Acme Devices/CN=Gateway X1/serialNumber=HOOK-1" \
    -out "$T/leaf.csr" 2>/dev/null

# tbs NAME CA DAYS SERIAL [EXTRA EXTENSION LINES...]: $T/NAME.der
tbs() {
    local name=$1 ca=$2 days=$3 serial=$4
    shift 4
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature"
        echo "extendedKeyUsage=clientAuth"
        echo "subjectKeyIdentifier=hash"
        echo "authorityKeyIdentifier=keyid:always"
        printf '%s\n' "$@"
    } >"$T/$name.ext"
    openssl x509 -req -in "$T/leaf.csr" -CA "$ca" -CAkey "$T/fake.key" -set_serial "$serial" \
        -days "$days" -extfile "$T/$name.ext" -outform DER -out "$T/$name.der" 2>"$T/$name.err"
}
# sign NAME: POST $T/NAME.der to the hook; prints the HTTP status.
sign() {
    curl -s -o "$T/$1.signed" -w '%{http_code}' --data-binary "@$T/$1.der" \
        -H 'Content-Type: application/pkix-cert' "http://127.0.0.1:$MPORT/test/sign"
}
# refused NAME WHY: the hook answers 403 and the log has the signer's
# refusal with WHY.
refused() {
    local code
    code=$(sign "$1")
    [[ $code == 403 ]] || { log "    $1: HTTP $code, want 403"; return 1; }
    grep 'sign result=refused' "$VERIFIER_LOG" | grep -q -- "$2" ||
        { log "    no refusal naming \"$2\" in the log"; return 1; }
}

good_serial=0x5a0102030405060708090a0b0c0d0e0f
tbs good "$T/lookalike.pem" 365 "$good_serial"
check "the hook: a certificate in the profile is signed (HTTP 200)" test "$(sign good)" = 200
openssl x509 -inform DER -in "$T/good.signed" -out "$T/good.pem" 2>/dev/null
check "and it verifies against the real operational CA" \
    openssl verify -CAfile "$T/pki/opca.pem" "$T/good.pem"
check "and not against the lookalike key" \
    bash -c "! openssl verify -CAfile '$T/lookalike.pem' '$T/good.pem' >/dev/null 2>&1"

check "the same serial again is refused" refused good "serial 5a0102030405060708090a0b0c0d0e0f was signed before"
tbs other "$T/otherca.pem" 365 0x5a0102030405060708090a0b0c0d0e10
check "another issuer is refused" refused other "the issuer is not the CA's subject"
tbs catrue "$T/lookalike.pem" 365 0x5a0102030405060708090a0b0c0d0e11
sed -i 's/CA:FALSE/CA:TRUE/' "$T/catrue.ext"
openssl x509 -req -in "$T/leaf.csr" -CA "$T/lookalike.pem" -CAkey "$T/fake.key" \
    -set_serial 0x5a0102030405060708090a0b0c0d0e11 -days 365 -extfile "$T/catrue.ext" \
    -outform DER -out "$T/catrue.der" 2>/dev/null
check "CA:TRUE is refused" refused catrue "basicConstraints is not critical CA:FALSE"
tbs long "$T/lookalike.pem" 400 0x5a0102030405060708090a0b0c0d0e12
check "a validity past the maximum (400 days of 365) is refused" refused long \
    "the validity is 34560000 s, over the maximum of 31536300 s"
tbs extra "$T/lookalike.pem" 365 0x5a0102030405060708090a0b0c0d0e13 "1.2.3.4=ASN1:NULL"
check "an extension outside the profile is refused" refused extra "extension 1.2.3.4 is not in the profile"
tbs ku "$T/lookalike.pem" 365 0x5a0102030405060708090a0b0c0d0e14
sed -i 's/digitalSignature/digitalSignature,keyCertSign/' "$T/ku.ext"
openssl x509 -req -in "$T/leaf.csr" -CA "$T/lookalike.pem" -CAkey "$T/fake.key" \
    -set_serial 0x5a0102030405060708090a0b0c0d0e14 -days 365 -extfile "$T/ku.ext" \
    -outform DER -out "$T/ku.der" 2>/dev/null
check "keyUsage keyCertSign is refused" refused ku "keyUsage is not critical digitalSignature only"
check "six refusals logged, each by the signer" \
    test "$(grep -c 'sign result=refused what=certificate' "$VERIFIER_LOG")" -eq 6
check "the signer still serves after refusing (a seventh, good one: HTTP 200)" \
    bash -c "$(declare -f tbs sign); T='$T' MPORT=$MPORT; tbs good2 '$T/lookalike.pem' 30 0x5a0102030405060708090a0b0c0d0e20 && test \"\$(sign good2)\" = 200"
curl -s "http://127.0.0.1:$MPORT/metrics" >"$T/metrics.txt"
metric() { sed -n "s/^$1 //p" "$T/metrics.txt"; }
check "/metrics counts the six refusals (devid_signer_requests_total)" \
    test "$(metric 'devid_signer_requests_total{type="certificate",result="refused"}')" = 6
check "and the certificates it signed: 5 enrollments and 2 through the hook" \
    test "$(metric 'devid_signer_requests_total{type="certificate",result="signed"}')" = 7
head_size_reaches() {
    [[ $(curl -s "http://127.0.0.1:$MPORT/metrics" | sed -n 's/^devid_log_head_size //p') -ge $1 ]]
}
check "and the head the log serves covers the 5 issuances (devid_log_head_size)" \
    wait_for 15 head_size_reaches 5
log "$(curl -s "http://127.0.0.1:$MPORT/metrics" | grep -E '^devid_(log|signer)_' | tr '\n' ' ')"
verifier_stop_checked
check "the signer exited with serve" bash -c "! kill -0 $SIGNER_PID 2>/dev/null"

# ---- a CA key the serving user can read is warned about -----------------------
# (A key group or others can read is refused outright; this one is the
# serving user's own.)
install -m 600 -o nobody "$T/pki/opca.key" "$T/opca-open.key"
OPEN_ARGS=("${COMMON[@]/$T\/pki\/opca.key/$T/opca-open.key}" --ledger "sqlite:$T/db/open.db")
# As the unit starts it, root cannot read nobody's key: refused at start.
"${VERIFIER_WRAP[@]}" "$VERIFIER" serve --listen 127.0.0.1:1 --metrics-listen "" "${OPEN_ARGS[@]}" \
    >"$T/open-unit.log" 2>&1
rc=$?
check "under the unit's capabilities, a CA key that is not root's is refused (exit $rc, want 78)" \
    test "$rc" -eq 78
check "and the error names the file, its owner and why" \
    grep -q "cannot read CA key $T/opca-open.key (owner uid $nobody_uid, read as uid 0): Permission denied" \
    "$T/open-unit.log"
# As root with every capability, it starts, and warns.
saved_wrap=("${VERIFIER_WRAP[@]}")
VERIFIER_WRAP=()
verifier_start open "${OPEN_ARGS[@]}" || die "verifier did not start"
VERIFIER_WRAP=("${saved_wrap[@]}")
check "a CA key the serving user can read is warned about, naming file and user" \
    grep -q "the CA key $T/opca-open.key can be read by user nobody" "$VERIFIER_LOG"
verifier_stop_checked

# ---- kill -9 of the signer mid-load -------------------------------------------
PORT=$(devid_free_port) || die "no free port"
LEDGER=$T/db/kill.db
LOGARGS=(--log-key "$T/log.key" --log-poll 1)
verifier_start_at kill "$PORT" "${COMMON[@]}" --ledger "sqlite:$LEDGER" "${LOGARGS[@]}" ||
    die "verifier did not start"
KILL_LOG=$VERIFIER_LOG
SERVE_PID=$VERIFIER_PID
SIGNER_PID=$(sed -n 's/.*signer: pid \([0-9]*\) holds the CA key.*/\1/p' "$KILL_LOG" | tail -n 1)
N=300
timeout 400 "$FLEETSIM" --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
    --factory-ca "$T/acme" --devices "$N" --parallel 16 --serial-prefix KILL --retries 40 \
    --timeout 30 --out "$T/kill-serials.txt" >"$T/kill.report" 2>"$T/kill.err" &
FLEET=$!
issued() { grep -c 'result=issued' "$KILL_LOG"; }
at_least() { [[ $(issued) -ge $1 ]]; }
check "the load is running (50 issued)" wait_for 60 at_least 50
kill -KILL "$SIGNER_PID"
log "killed the signer (pid $SIGNER_PID) after $(issued) issuances"
wait "$SERVE_PID"
rc=$?
check "serve exits non-zero when its signer dies (got $rc)" test "$rc" -ne 0
check "and says why" grep -q "the signer process exited; stopping" "$KILL_LOG"
sleep 1
verifier_start_at kill "$PORT" "${COMMON[@]}" --ledger "sqlite:$LEDGER" "${LOGARGS[@]}" ||
    die "verifier did not restart"
wait "$FLEET"
frc=$?
sed 's/^/    /' "$T/kill.report" >&2
check "every device enrolled in the end (fleetsim exit $frc)" grep -qx "ok=$N" "$T/kill.report"
errors=$(sed -n 's/^attempt_error\.\([^=]*\)=.*/\1/p' "$T/kill.report" | sort -u | tr '\n' ' ')
check "the clients saw errors while the signer was down: $errors" test -n "$errors"
check "every error they saw was retryable" \
    test -z "$(tr ' ' '\n' <<<"$errors" | grep -Evx 'REASON_INTERNAL|REASON_OVERLOADED|connect|closed|timeout|tls-handshake|http-503|')"
sort -u "$T/kill-serials.txt" >"$T/received.txt"
sqlite3 "$LEDGER" "SELECT cert_serial FROM issuance" | sort -u >"$T/ledger.txt"
check "the clients received $N certificates" test "$(wc -l <"$T/received.txt")" -eq "$N"
check "every certificate a client received is in the ledger" \
    test -z "$(comm -23 "$T/received.txt" "$T/ledger.txt")"
# ... and in the issuance log: audit checks that every issuance in the ledger
# is an entry of the tree under the signed head the restarted verifier serves.
rows=$(wc -l <"$T/ledger.txt")
head_covers() {
    curl -sf --cacert "$T/pki/tls-ca.pem" "$VERIFIER_URL/v1/log/head" -o "$T/kill-head.bin" &&
        [[ $(od -An -j18 -N8 -tu1 "$T/kill-head.bin" | awk '{ n = 0; for (i = 1; i <= NF; i++) n = n * 256 + $i; print n }') -ge $rows ]]
}
check "the restarted verifier serves a signed head over all $rows issuances" wait_for 60 head_covers
"$VERIFIER" audit --log-key "$T/log.pub" --ledger "sqlite:$LEDGER" --head "$T/kill-head.bin" \
    >"$T/kill-audit.out" 2>&1
rc=$?
check "audit passes: every issuance, so every certificate a client received, is in the tree (exit $rc)" \
    sh -c "test $rc -eq 0 && grep -q 'audit: ok' '$T/kill-audit.out'"
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/kill-audit.out" >&2
verifier_stop_checked

finish
