#!/usr/bin/env bash
# The issuance log, end to end, on SQLite and on PostgreSQL: devid-fleetsim
# enrolls a fleet through a verifier with a [log] key, the operator revokes
# some certificates, and `devid-verifier audit` passes on the honest ledger
# against the head GET /v1/log/head serves. `show --proof` prints an
# inclusion proof that tests/integration/logproof.py (hashlib only, the
# algorithm of docs/protocol.md) accepts. Then, each on its own copy of the
# ledger, the tampering the log is there to show, each of which audit must
# refuse, naming the entry: an issuance row deleted (sqlite3 / psql), a log
# row deleted, a certificate replaced, a revocation removed, and the log
# rewritten and signed again (by a fresh signer), which only the saved
# earlier head reveals.
#
# DEVID_TLOG_DEVICES (default 1000) and DEVID_TLOG_REVOKE (default 10) size
# it; DEVID_TLOG_BACKENDS (default "sqlite pg") picks the ledgers.
set -uo pipefail
TEST_NAME=tlog
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"
. "$here/../lib/pg.sh"

FLEETSIM=$DEVID_BIN/tests/fleetsim/devid-fleetsim
[[ -x $FLEETSIM ]] || die "no fleet simulator at $FLEETSIM (set DEVID_BIN)"
N=${DEVID_TLOG_DEVICES:-1000}
K=${DEVID_TLOG_REVOKE:-10}
BACKENDS=${DEVID_TLOG_BACKENDS:-sqlite pg}
PY=/usr/bin/python3
need sqlite3 curl openssl

devid_tmpdir
T=$DEVID_TMP

log "manufacturer CA, verifier PKI, and a log key apart from the CA key"
"$FACTORY" ca --dir "$T/acme" --name "Acme Devices" >/dev/null || die "factory ca failed"
"$DEV_PKI" --dir "$T/pki" >/dev/null || die "dev pki failed"
mkdir -p "$T/roots"
cp "$T/acme/root.pem" "$T/roots/acme.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/log.key" 2>/dev/null ||
    die "log key"
chmod 600 "$T/log.key"
openssl pkey -in "$T/log.key" -pubout -out "$T/log.pub" 2>/dev/null || die "log public key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/other.key" 2>/dev/null
openssl pkey -in "$T/other.key" -pubout -out "$T/other.pub" 2>/dev/null

"$VERIFIER" audit --help >"$T/audit-help.out" 2>&1
rc=$?
check "audit --help exits 0 (got $rc)" test $rc -eq 0
check "audit --help documents the exit codes" grep -q "1 the audit failed" "$T/audit-help.out"
"$VERIFIER" audit --ledger "sqlite:$T/none.db" >/dev/null 2>&1
rc=$?
check "audit without --log-key is a usage error (64, got $rc)" test $rc -eq 64

# start LEDGER NAME: a verifier on LEDGER with the log key.
start() {
    verifier_start "$2" --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
        --roots "$T/roots" --intermediates "$T/acme/intermediate.pem" \
        --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
        --ledger "$1" --log-key "$T/log.key" --log-poll 1
}

# head_size FILE: the tree size a signed head carries.
head_size() {
    "$PY" -c 'import struct,sys; print(struct.unpack(">Q", open(sys.argv[1],"rb").read()[18:26])[0])' "$1"
}

# fetch_head OUT: GET /v1/log/head into OUT.
fetch_head() {
    curl -sf --cacert "$T/pki/tls-ca.pem" "$VERIFIER_URL/v1/log/head" -o "$1"
}

# head_reaches SIZE OUT: the served head covers SIZE entries.
head_reaches() {
    fetch_head "$2" && [[ $(head_size "$2") -ge $1 ]]
}

# audit NAME ARGS...: run audit; output in $T/NAME.out, exit code in RC.
audit() {
    local name=$1
    shift
    "$VERIFIER" audit --log-key "$T/log.pub" "$@" >"$T/$name.out" 2>&1
    RC=$?
}

# fails_naming NAME WHAT: audit NAME exited 1 and its output names WHAT.
fails_naming() {
    if [[ $RC -eq 1 ]] && grep -q -- "$2" "$T/$1.out" && grep -q "audit: FAILED" "$T/$1.out"; then
        return 0
    fi
    echo "    audit exited $RC:" >&2
    head -n 20 "$T/$1.out" | sed 's/^/    /' >&2
    return 1
}

# run_backend B URI SQL COPY: the whole story on one ledger; SQL runs SQL
# on a ledger copy (COPY NAME makes the copy and prints its URI).
run_backend() {
    local b=$1 uri=$2 sqlf=$3 copyf=$4 serial rserial victim other c size
    log "[$b] $N enrollments through a verifier with a log key"
    start "$uri" "$b" || die "[$b] verifier did not start"
    timeout 540 "$FLEETSIM" --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
        --factory-ca "$T/acme" --timeout 60 --devices "$N" --parallel 32 \
        --serial-prefix "TL$b" --retries 3 --out "$T/$b-serials.txt" >"$T/$b-fleet.report" 2>&1
    rc=$?
    check "[$b] fleetsim enrolled $N devices (exit $rc)" \
        test $rc -eq 0 -a "$(wc -l <"$T/$b-serials.txt")" -eq "$N"
    for serial in $(head -n "$K" "$T/$b-serials.txt"); do
        "$VERIFIER" revoke --ledger "$uri" --serial "$serial" --reason keyCompromise >/dev/null 2>&1 ||
            log "[$b] revoking $serial failed"
    done
    check "[$b] GET /v1/log/head covers the $N issuances and $K revocations" \
        wait_for 60 head_reaches $((N + K)) "$T/$b-head1.bin"
    cp "$T/$b-head1.bin" "$T/$b-saved.bin"

    audit "$b-honest" --ledger "$uri" --head "$T/$b-saved.bin" --save-leaves "$T/$b-saved.leaves"
    check "[$b] audit passes on the honest ledger against the served head (exit $RC)" \
        sh -c "test $RC -eq 0 && grep -q 'audit: ok' '$T/$b-honest.out'"
    [[ $RC -eq 0 ]] || sed 's/^/    /' "$T/$b-honest.out" >&2
    check "[$b] and keeps the $((N + K)) leaves the head covers (--save-leaves)" \
        test "$(od -An -j20 -N8 -tu1 "$T/$b-saved.leaves" 2>/dev/null | awk '{ n = 0; for (i = 1; i <= NF; i++) n = n * 256 + $i; print n }')" = $((N + K))
    audit "$b-stored" --ledger "$uri" --save-head "$T/$b-stored.bin"
    check "[$b] audit passes against the newest head stored in the ledger (exit $RC)" test $RC -eq 0
    audit "$b-otherkey" --ledger "$uri" --head "$T/$b-saved.bin" --log-key "$T/other.pub"
    check "[$b] a head checked with another key fails the audit" \
        fails_naming "$b-otherkey" "does not verify with the log key"
    audit "$b-garbage" --ledger "$uri" --head "$T/log.pub"
    check "[$b] a file that is no signed head is malformed (78, got $RC)" test $RC -eq 78

    serial=$(sed -n "$((K + 5))p" "$T/$b-serials.txt")
    "$VERIFIER" show --ledger "$uri" --serial "$serial" --proof >"$T/$b-proof.txt" 2>&1
    rc=$?
    "$VERIFIER" show --ledger "$uri" --serial "$serial" --pem >"$T/$b-cert.pem" 2>/dev/null
    openssl x509 -in "$T/$b-cert.pem" -outform DER -out "$T/$b-cert.der" 2>/dev/null
    check "[$b] show --proof exits 0 (got $rc)" test $rc -eq 0
    check "[$b] the inclusion proof checks with the documented algorithm (logproof.py)" \
        "$PY" "$here/logproof.py" "$T/$b-proof.txt" "$T/$b-cert.der"
    other=$(sed -n "$((K + 6))p" "$T/$b-serials.txt")
    "$VERIFIER" show --ledger "$uri" --serial "$other" --pem 2>/dev/null |
        openssl x509 -outform DER -out "$T/$b-other.der" 2>/dev/null
    check "[$b] ... and refuses it for another certificate" \
        sh -c "! '$PY' '$here/logproof.py' '$T/$b-proof.txt' '$T/$b-other.der' >/dev/null"
    sed 's/^proof: \(.\)/proof: f/' "$T/$b-proof.txt" >"$T/$b-proof-bad.txt"
    check "[$b] ... and a changed audit path" \
        sh -c "! '$PY' '$here/logproof.py' '$T/$b-proof-bad.txt' '$T/$b-cert.der' >/dev/null"
    verifier_stop_checked

    victim=$(sed -n "$((K + 20))p" "$T/$b-serials.txt")
    rserial=$(sed -n 3p "$T/$b-serials.txt")
    log "[$b] tampering, each on its own copy of the ledger"

    c=$("$copyf" del-row)
    "$sqlf" del-row "DELETE FROM issuance WHERE cert_serial = '$victim'"
    audit "$b-del-row" --ledger "$c" --head "$T/$b-saved.bin"
    check "[$b] an issuance row deleted: audit fails naming certificate $victim" \
        fails_naming "$b-del-row" "certificate $victim.*it was deleted"

    c=$("$copyf" del-entry)
    "$sqlf" del-entry "DELETE FROM log_entry WHERE log_index = $((N / 2))"
    audit "$b-del-entry" --ledger "$c" --head "$T/$b-saved.bin"
    check "[$b] a log row deleted: audit fails naming entry $((N / 2))" \
        fails_naming "$b-del-entry" "entry $((N / 2)) is missing"

    c=$("$copyf" replace)
    "$sqlf" replace "UPDATE issuance SET cert_der = (SELECT cert_der FROM issuance WHERE cert_serial = '$other') WHERE cert_serial = '$victim'"
    audit "$b-replace" --ledger "$c" --head "$T/$b-saved.bin"
    check "[$b] a certificate replaced: audit fails naming certificate $victim" \
        fails_naming "$b-replace" "certificate $victim.*was replaced"

    c=$("$copyf" unrevoke)
    "$sqlf" unrevoke "UPDATE issuance SET revoked_at = NULL, revocation_reason = NULL WHERE cert_serial = '$rserial'"
    audit "$b-unrevoke" --ledger "$c" --head "$T/$b-saved.bin"
    check "[$b] a revocation removed: audit fails naming certificate $rserial" \
        fails_naming "$b-unrevoke" "revocation of.*certificate $rserial\|certificate $rserial.*revocation was removed"

    log "[$b] the log rewritten without $victim and signed again by a fresh signer"
    c=$("$copyf" rewrite)
    "$sqlf" rewrite "DELETE FROM log_entry WHERE cert_serial = '$victim'; DELETE FROM issuance WHERE cert_serial = '$victim'; UPDATE log_entry SET log_index = NULL; UPDATE log_state SET size = 0; DELETE FROM tree_head"
    start "$c" "$b-rewrite" || die "[$b] verifier on the rewritten ledger did not start"
    timeout 120 "$FLEETSIM" --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
        --factory-ca "$T/acme" --timeout 60 --devices 5 --parallel 5 \
        --serial-prefix "TX$b" --retries 3 >"$T/$b-more.report" 2>&1
    check "[$b] the rewritten log grows past the saved head and gets a new signed head" \
        wait_for 60 head_reaches $((N + K + 4)) "$T/$b-head2.bin"
    verifier_stop_checked
    audit "$b-rewritten-alone" --ledger "$c" --head "$T/$b-head2.bin"
    check "[$b] alone, the rewritten log matches its new head (why heads must be kept)" \
        test $RC -eq 0
    audit "$b-rewritten" --ledger "$c" --head "$T/$b-head2.bin" --earlier "$T/$b-saved.bin"
    check "[$b] with the saved earlier head, audit fails naming it" \
        fails_naming "$b-rewritten" "earlier head of size $((N + K)).*not a prefix"
    audit "$b-rewritten-leaves" --ledger "$c" --head "$T/$b-head2.bin" --earlier "$T/$b-saved.bin" \
        --earlier-leaves "$T/$b-saved.leaves"
    grep 'audit: FAIL' "$T/$b-rewritten-leaves.out" | head -n 4 | sed 's/^/    /' >&2
    check "[$b] with its saved leaves too, audit names the certificate the rewrite removed ($victim)" \
        fails_naming "$b-rewritten-leaves" "issued, certificate $victim, .* of the earlier log.* is no longer in the ledger's log"
    check "[$b] ... and the entry that took a place inside the earlier log" \
        fails_naming "$b-rewritten-leaves" "entry $((N + K - 1)) (issued, .*device TX$b.*) of the ledger's log was not in the earlier log"
    audit "$b-leaves-mismatch" --ledger "$c" --earlier "$T/$b-head2.bin" \
        --earlier-leaves "$T/$b-saved.leaves"
    check "[$b] leaves that are not the earlier head's are refused as malformed (78, got $RC)" \
        sh -c "test $RC -eq 78 && grep -q 'are not the ones the earlier head of size [0-9]* signed (another count)' '$T/$b-leaves-mismatch.out'"
    audit "$b-honest-earlier" --ledger "$uri" --earlier "$T/$b-saved.bin" \
        --earlier-leaves "$T/$b-saved.leaves"
    check "[$b] the honest ledger still passes with the saved head and leaves as --earlier (exit $RC)" \
        test $RC -eq 0
    [[ $RC -eq 0 ]] || sed 's/^/    /' "$T/$b-honest-earlier.out" >&2
}

# SQLite: copies are files, SQL goes through the sqlite3 command.
sqlite_copy() {
    sqlite3 "$T/sqlite.db" ".backup '$T/sqlite-$1.db'" && echo "sqlite:$T/sqlite-$1.db"
}
sqlite_sql() {
    sqlite3 "$T/sqlite-$1.db" "$2" || log "sqlite3 failed: $2"
}

# PostgreSQL: copies are databases made from the ledger as a template.
pg_copy() {
    pg_run "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
        -c "CREATE DATABASE \"copy_${1//-/_}\" TEMPLATE devid" >/dev/null &&
        echo "postgresql://postgres@127.0.0.1:$PG_PORT/copy_${1//-/_}"
}
pg_sql() {
    pg_run "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres \
        -d "copy_${1//-/_}" -c "$2" >/dev/null || log "psql failed: $2"
}

for b in $BACKENDS; do
    case $b in
        sqlite) run_backend sqlite "sqlite:$T/sqlite.db" sqlite_sql sqlite_copy ;;
        pg)
            pg_start || die "PostgreSQL did not start"
            run_backend pg "$PG_URI" pg_sql pg_copy
            ;;
        *) die "unknown backend $b" ;;
    esac
done
finish
