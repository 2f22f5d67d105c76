#!/usr/bin/env bash
# End-to-end enrollment with real parts: swtpm (behind tpm2-abrmd), the factory
# simulator, devid-verifier and devid-agent over mutual TLS on loopback.
set -uo pipefail
TEST_NAME=enroll
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

devid_tmpdir
T=$DEVID_TMP

log "manufacturer CAs and verifier PKI"
"$FACTORY" ca --dir "$T/acme" --name "Acme Devices" >/dev/null || die "factory ca failed"
"$FACTORY" ca --dir "$T/evil" --name "Evil Clones" >/dev/null || die "factory ca failed"
"$DEV_PKI" --dir "$T/pki" >/dev/null || die "dev pki failed"
mkdir -p "$T/roots"
cp "$T/acme/root.pem" "$T/roots/acme.pem"

verifier_start main --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --roots "$T/roots" --intermediates "$T/acme/intermediate.pem" \
    --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" --ledger "sqlite:$T/ledger.db" ||
    die "verifier did not start"

log "device A: provision and enroll over TLS 1.3"
device_new a "$T/acme" SN-A-0001 "Gateway X1" || die "device a"
out_a=$T/out-a
agent a enroll --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
    --chain "$T/dev-a/factory/chain.pem" --out-dir "$out_a" --persist-handle 0x81020001 \
    --tls-version 1.3 >"$T/agent-a.out" 2>"$T/agent-a.err"
rc=$?
check "agent A enrolls (exit 0, got $rc)" test "$rc" -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/agent-a.err" "$VERIFIER_LOG" >&2
check "agent A prints subject, issuer and path" \
    grep -q "certificate: $out_a/cert.pem" "$T/agent-a.out"
check "certificate verifies against the operational CA" \
    openssl verify -CAfile "$T/pki/opca.pem" "$out_a/cert.pem"
check "certificate is a clientAuth certificate" \
    sh -c "openssl x509 -in '$out_a/cert.pem' -noout -ext extendedKeyUsage | grep -q 'TLS Web Client Authentication'"

subject=$(openssl x509 -in "$out_a/cert.pem" -noout -subject -nameopt RFC2253)
check "subject carries the factory serial ($subject)" grep -q "serialNumber=SN-A-0001" <<<"$subject"
check "subject carries the factory model" grep -q "CN=Gateway X1" <<<"$subject"
check "hardwareModuleName SAN carried over" \
    sh -c "openssl x509 -in '$out_a/cert.pem' -noout -text | grep -q 'SN-A-0001'"
check "serial is at least 64 bits" \
    sh -c "test \$(openssl x509 -in '$out_a/cert.pem' -noout -serial | cut -d= -f2 | wc -c) -ge 17"

# Each side is a file that must be there and not empty: a failed
# tpm2_readpublic must not compare equal to a failed openssl.
cert_pub_der "$out_a/cert.pem" "$T/cert-pub.der"
tpm a tpm_pub_der 0x81020001 "$T/tpm-pub.der"
check "certificate key equals the key read back from the TPM (tpm2_readpublic)" \
    same_file "$T/cert-pub.der" "$T/tpm-pub.der"
tpm a tpm_pub_der 0x81020000 "$T/idevid-pub.der"
check "operational key is a new key, not the IDevID" \
    differ_file "$T/idevid-pub.der" "$T/cert-pub.der"
check "key blob is a TSS2 PEM key" grep -q "BEGIN TSS2 PRIVATE KEY" "$out_a/key.tss2.pem"
check "key blob is not readable by others" \
    sh -c "test \$(stat -c %a '$out_a/key.tss2.pem') = 600"

issued_before=$(grep -c "result=issued" "$VERIFIER_LOG")
check "the verifier logged A's issuance ($issued_before)" test "$issued_before" -ge 1
agent a enroll --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
    --chain "$T/dev-a/factory/chain.pem" --out-dir "$out_a" >"$T/agent-a2.out" 2>&1
rc=$?
check "second run exits 0 (got $rc)" test "$rc" -eq 0
check "second run does not enroll again" \
    test "$(grep -c "result=issued" "$VERIFIER_LOG")" -eq "$issued_before"
check "second run says it is already enrolled" grep -qi "already enrolled" "$T/agent-a2.out"

log "device B: TLS 1.2"
device_new b "$T/acme" SN-B-0002 "Gateway X1" || die "device b"
agent b enroll --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
    --chain "$T/dev-b/factory/chain.pem" --out-dir "$T/out-b" --tls-version 1.2 \
    >"$T/agent-b.out" 2>"$T/agent-b.err"
rc=$?
check "agent B enrolls over TLS 1.2 (exit 0, got $rc)" test "$rc" -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/agent-b.err" >&2
check "B's certificate verifies" openssl verify -CAfile "$T/pki/opca.pem" "$T/out-b/cert.pem"
check "A enrolled over TLS 1.3" sh -c "grep 'SN-A-0001' '$VERIFIER_LOG' | grep -q 'tls=TLSv1.3'"
check "B enrolled over TLS 1.2" sh -c "grep 'SN-B-0002' '$VERIFIER_LOG' | grep -q 'tls=TLSv1.2'"

log "device E: untrusted manufacturer"
device_new e "$T/evil" SN-E-0666 "Gateway X1" || die "device e"
agent e enroll --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
    --chain "$T/dev-e/factory/chain.pem" --out-dir "$T/out-e" >"$T/agent-e.out" 2>"$T/agent-e.err"
rc=$?
check "untrusted device is refused with exit 1 (got $rc)" test "$rc" -eq 1
check "agent names the reason (REASON_CHAIN_UNTRUSTED)" grep -q "REASON_CHAIN_UNTRUSTED" "$T/agent-e.err"
check "agent names the certificate that has no trusted issuer" \
    grep -q "Evil Clones IDevID CA.*unable to get local issuer" "$T/agent-e.err"
check "verifier log names the reason for the untrusted device" \
    sh -c "grep 'result=refused' '$VERIFIER_LOG' | grep 'SN-E-0666' | grep -q 'reason=\"chain not trusted\"'"
check "no certificate written for the refused device" test ! -e "$T/out-e/cert.pem"

log "device M: another device's IDevID certificate on this TPM"
device_new m "$T/acme" SN-M-0003 "Gateway X1" || die "device m"
agent m enroll --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
    --idevid-cert "$T/dev-a/factory/idevid.pem" --chain "$T/dev-m/factory/chain.pem" \
    --out-dir "$T/out-m" >"$T/agent-m.out" 2>"$T/agent-m.err"
rc=$?
check "mismatched certificate and TPM key: TPM error, exit 2 (got $rc)" test "$rc" -eq 2
check "agent says the certificate does not match the TPM key" \
    grep -qi "does not match" "$T/agent-m.err"
check "no certificate written for the mismatched device" test ! -e "$T/out-m/cert.pem"

log "check-idevid, offline"
"$VERIFIER" check-idevid --roots "$T/roots" --intermediates "$T/acme/intermediate.pem" \
    "$T/dev-a/factory/idevid.pem" >"$T/check-a.out" 2>&1
rc=$?
check "check-idevid accepts device A (exit 0, got $rc)" test $rc -eq 0
check "check-idevid prints manufacturer, model and serial" \
    sh -c "grep -q 'manufacturer: Acme Devices' '$T/check-a.out' && grep -q 'model: Gateway X1' '$T/check-a.out' && grep -q 'serial: SN-A-0001' '$T/check-a.out'"
cat "$T/dev-e/factory/idevid.pem" "$T/dev-e/factory/chain.pem" >"$T/e-with-chain.pem"
"$VERIFIER" check-idevid --roots "$T/roots" "$T/e-with-chain.pem" >"$T/check-e.out" 2>&1
rc=$?
check "check-idevid refuses the untrusted device with exit 1 (got $rc)" test $rc -eq 1
check "check-idevid prints the reason" grep -q "refused: chain not trusted" "$T/check-e.out"
"$VERIFIER" check-idevid "$T/dev-a/factory/idevid.pem" >/dev/null 2>&1
rc=$?
check "check-idevid without --roots is a usage error (64, got $rc)" test $rc -eq 64

log "serve: documented exit codes for usage, unreadable input, bad configuration"
"$VERIFIER" serve --no-such-option >"$T/serve-usage.out" 2>&1
rc=$?
check "serve with an unknown option is a usage error (64, got $rc)" test $rc -eq 64
"$VERIFIER" serve --listen 127.0.0.1:1 --metrics-listen "" --tls-cert "$T/pki/server.pem" \
    --tls-key "$T/pki/server.key" --roots "$T/roots" --ca-cert "$T/pki/opca.pem" \
    --ca-key "$T/pki/opca.key" --token-key "$T/no-such-token.key" --ledger "sqlite:$T/l66.db" \
    >"$T/serve-66.out" 2>&1
rc=$?
check "serve with an unreadable token key exits 66 (got $rc)" test $rc -eq 66
check "and names the file" grep -q "no-such-token.key" "$T/serve-66.out"
printf '[server]\nno_such_key = 1\n' >"$T/bad-verifier.conf"
"$VERIFIER" serve --config "$T/bad-verifier.conf" >"$T/serve-78.out" 2>&1
rc=$?
check "serve with an unknown configuration key exits 78 (got $rc)" test $rc -eq 78
check "and names file, line and key" \
    grep -q 'bad-verifier.conf:2: unknown key "no_such_key"' "$T/serve-78.out"

check "verifier still running" pid_alive "$VERIFIER_PID"
kill -TERM "$VERIFIER_PID"
wait "$VERIFIER_PID"
rc=$?
check "verifier exits 0 on SIGTERM (no sanitizer report; got $rc)" test $rc -eq 0
finish
