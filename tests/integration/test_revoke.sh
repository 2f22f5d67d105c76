#!/usr/bin/env bash
# Ledger and revocation with real parts: a device enrolls through a verifier
# that records into a SQLite ledger; the operator commands (list, show,
# revoke, crl) run against that ledger while the verifier keeps it open, and
# OpenSSL checks the CRL they write.
set -uo pipefail
TEST_NAME=revoke
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

devid_tmpdir
T=$DEVID_TMP
LEDGER=sqlite:$T/ledger.db

log "manufacturer CA and verifier PKI"
"$FACTORY" ca --dir "$T/acme" --name "Acme Devices" >/dev/null || die "factory ca failed"
"$DEV_PKI" --dir "$T/pki" >/dev/null || die "dev pki failed"
mkdir -p "$T/roots"
cp "$T/acme/root.pem" "$T/roots/acme.pem"

log "operator commands: usage and a missing ledger"
"$VERIFIER" revoke --help >"$T/revoke-help.out" 2>&1
rc=$?
check "revoke --help exits 0 (got $rc)" test $rc -eq 0
check "revoke --help names the reasons" grep -q keyCompromise "$T/revoke-help.out"
for cmd in list show crl; do
    "$VERIFIER" $cmd --help >/dev/null 2>&1
    rc=$?
    check "$cmd --help exits 0 (got $rc)" test $rc -eq 0
done
"$VERIFIER" revoke --ledger "$LEDGER" --reason keyCompromise >/dev/null 2>&1
rc=$?
check "revoke without --serial or --device is a usage error (64, got $rc)" test $rc -eq 64
"$VERIFIER" list --ledger "$LEDGER" >/dev/null 2>"$T/list-missing.err"
rc=$?
check "list on a missing ledger exits 66 (got $rc)" test $rc -eq 66
check "a missing ledger is not created by list" test ! -e "$T/ledger.db"

verifier_start main --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --roots "$T/roots" --intermediates "$T/acme/intermediate.pem" \
    --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
    --ledger "$LEDGER" ||
    die "verifier did not start (does serve take --ledger yet?)"

log "device R enrolls; the issuance is recorded"
device_new r "$T/acme" SN-R-0001 "Gateway X1" || die "device r"
out_r=$T/out-r
agent r enroll --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
    --chain "$T/dev-r/factory/chain.pem" --out-dir "$out_r" >"$T/agent-r.out" 2>"$T/agent-r.err"
rc=$?
check "agent R enrolls (exit 0, got $rc)" test "$rc" -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/agent-r.err" "$VERIFIER_LOG" >&2
[[ -s $out_r/cert.pem ]] || die "no certificate to revoke"
serial=$(openssl x509 -in "$out_r/cert.pem" -noout -serial | cut -d= -f2)
serial_lc=$(tr 'A-F' 'a-f' <<<"$serial")
log "certificate serial $serial"

"$VERIFIER" list --ledger "$LEDGER" >"$T/list.out" 2>&1
rc=$?
check "list exits 0 (got $rc)" test $rc -eq 0
check "list shows the device" grep -q "SN-R-0001" "$T/list.out"
check "list shows the certificate serial" grep -qi "$serial_lc" "$T/list.out"
check "list shows it active" sh -c "grep SN-R-0001 '$T/list.out' | grep -q active"
"$VERIFIER" list --ledger "$LEDGER" --device SN-R-0001 --limit 1 >"$T/list-dev.out" 2>&1
rc=$?
check "list --device exits 0 (got $rc)" test $rc -eq 0
check "list --limit 1 prints one row" test "$(grep -c SN-R-0001 "$T/list-dev.out")" -eq 1
"$VERIFIER" list --ledger "$LEDGER" --device SN-NOPE >/dev/null 2>&1
rc=$?
check "list of an unknown device exits 1 (got $rc)" test $rc -eq 1

"$VERIFIER" show --ledger "$LEDGER" --serial "$serial" >"$T/show.out" 2>&1
rc=$?
check "show exits 0 (got $rc)" test $rc -eq 0
check "show prints the subject" grep -q "^subject: .*serialNumber=SN-R-0001" "$T/show.out"
check "show prints the issuer" grep -q "^issuer: .*devid lab operational CA" "$T/show.out"
check "show prints the device identity" \
    sh -c "grep -q '^manufacturer: Acme Devices' '$T/show.out' && grep -q '^model: Gateway X1' '$T/show.out'"
check "show prints the IDevID fingerprint" \
    grep -q "^idevid sha256: $(openssl x509 -in "$T/dev-r/factory/idevid.pem" -outform DER | sha256sum | cut -d' ' -f1)" \
    "$T/show.out"
check "show prints the state active" grep -q "^status: active" "$T/show.out"
"$VERIFIER" show --ledger "$LEDGER" --serial "$serial" --pem >"$T/show.pem" 2>&1
openssl x509 -in "$T/show.pem" -outform DER -out "$T/show.der" 2>/dev/null
openssl x509 -in "$out_r/cert.pem" -outform DER -out "$T/cert-r.der" 2>/dev/null
check "show --pem prints the issued certificate" same_file "$T/show.der" "$T/cert-r.der"

log "revoke the certificate and publish a CRL"
"$VERIFIER" revoke --ledger "$LEDGER" --serial 0123456789abcdef --reason keyCompromise \
    >/dev/null 2>&1
rc=$?
check "revoking an unknown serial exits 1 (got $rc)" test $rc -eq 1
"$VERIFIER" revoke --ledger "$LEDGER" --serial "$serial" --reason unheardOf >/dev/null 2>&1
rc=$?
check "an unknown reason is a usage error (64, got $rc)" test $rc -eq 64
"$VERIFIER" revoke --ledger "$LEDGER" --serial "$serial" --reason keyCompromise \
    >"$T/revoke.out" 2>&1
rc=$?
check "revoke --serial exits 0 while the verifier holds the ledger (got $rc)" test $rc -eq 0
check "revoke reports one certificate" grep -q "revoked 1 certificate" "$T/revoke.out"
"$VERIFIER" show --ledger "$LEDGER" --serial "$serial" >"$T/show2.out" 2>&1
check "show prints the revocation and its reason" \
    grep -q "^status: revoked .*(keyCompromise)" "$T/show2.out"

"$VERIFIER" crl --ledger "$LEDGER" --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" \
    --out "$T/crl.pem" --next-update-hours 12 >"$T/crl.out" 2>&1
rc=$?
check "crl exits 0 (got $rc)" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/crl.out" >&2
check "the CRL's signature verifies against the operational CA" \
    openssl crl -in "$T/crl.pem" -CAfile "$T/pki/opca.pem" -noout
openssl crl -in "$T/crl.pem" -noout -text >"$T/crl.txt" 2>&1
check "the CRL lists the serial" grep -q "Serial Number: $serial" "$T/crl.txt"
check "the CRL carries the reason code" grep -q "Key Compromise" "$T/crl.txt"
check "the CRL is version 2 with a CRL number" \
    sh -c "grep -q 'Version 2' '$T/crl.txt' && grep -q 'X509v3 CRL Number' '$T/crl.txt'"
check "the CRL carries the authority key identifier" \
    grep -q "X509v3 Authority Key Identifier" "$T/crl.txt"
check "openssl verify -crl_check refuses the revoked certificate" \
    sh -c "openssl verify -crl_check -CRLfile '$T/crl.pem' -CAfile '$T/pki/opca.pem' \
        '$out_r/cert.pem' 2>&1 | grep -q 'certificate revoked'"
check "no temporary file is left beside the CRL" \
    test "$(find "$T" -maxdepth 1 -name 'crl.pem.tmp.*' | wc -l)" -eq 0
crl1=$(openssl crl -in "$T/crl.pem" -noout -crlnumber | cut -d= -f2)
"$VERIFIER" crl --ledger "$LEDGER" --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" \
    --out "$T/crl.pem" >/dev/null 2>&1
rc=$?
check "the next crl exits 0 (got $rc)" test $rc -eq 0
crl2=$(openssl crl -in "$T/crl.pem" -noout -crlnumber | cut -d= -f2)
# higher NEW OLD: both are CRL numbers (hex, as openssl prints them) and NEW > OLD.
higher() {
    [[ $1 =~ ^(0x)?[0-9A-Fa-f]+$ && $2 =~ ^(0x)?[0-9A-Fa-f]+$ ]] || return 1
    ((16#${1#0x} > 16#${2#0x}))
}
check "the next CRL has a higher CRL number ($crl1 -> $crl2)" higher "$crl2" "$crl1"

"$VERIFIER" revoke --ledger "$LEDGER" --device SN-R-0001 --reason superseded >"$T/revoke2.out" 2>&1
rc=$?
check "revoke --device of an already revoked device exits 0 (got $rc)" test $rc -eq 0
check "the first revocation is kept" grep -q "already revoked" "$T/revoke2.out"

check "verifier still running" pid_alive "$VERIFIER_PID"
kill -TERM "$VERIFIER_PID"
wait "$VERIFIER_PID"
rc=$?
check "verifier exits 0 on SIGTERM (got $rc)" test $rc -eq 0
finish
