#!/usr/bin/env bash
# The issuing CA key: from a PEM file (and refused when others can read it),
# and from a key inside a TPM (swtpm) reached through OpenSSL's tpm2 provider
# by a store URI. Certificates and the CRL signed in the TPM verify with
# openssl.
set -uo pipefail
TEST_NAME=catpm
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

FLEETSIM=$DEVID_BIN/tests/fleetsim/devid-fleetsim
[[ -x $FLEETSIM ]] || die "no fleet simulator at $FLEETSIM"

devid_tmpdir
T=$DEVID_TMP
"$FACTORY" ca --dir "$T/acme" --name "Acme Devices" >/dev/null || die "factory ca failed"
"$DEV_PKI" --dir "$T/pki" >/dev/null || die "dev pki failed"
mkdir -p "$T/roots"
cp "$T/acme/root.pem" "$T/roots/acme.pem"
common=(--tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" --roots "$T/roots"
    --intermediates "$T/acme/intermediate.pem" --token-key "$T/pki/token.key")

log "a CA key file readable by others is refused"
cp "$T/pki/opca.key" "$T/loose.key"
chmod 644 "$T/loose.key"
"$VERIFIER" serve --listen 127.0.0.1:1 --metrics-listen "" ${VERIFIER_AS_ROOT[@]+"${VERIFIER_AS_ROOT[@]}"} "${common[@]}" --ca-cert "$T/pki/opca.pem" \
    --ca-key "$T/loose.key" --ledger "sqlite:$T/l0.db" >"$T/loose.log" 2>&1
rc=$?
check "the verifier refuses to start (exit 78, got $rc)" test "$rc" -eq 78
check "and says why, naming the file" grep -q "loose.key is accessible by group or others" "$T/loose.log"

log "a CA key inside a TPM"
swtpm_start "$T/tpm" || die "swtpm"
export TPM2TOOLS_TCTI=$SWTPM_TCTI
tpm2_createprimary -Q -C o -G ecc256:ecdsa-sha256 -c "$T/ca.ctx" \
    -a "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign" || die "createprimary"
tpm2_evictcontrol -Q -C o -c "$T/ca.ctx" 0x81000002 >/dev/null || die "evictcontrol"
tpm2_flushcontext -t
TPM2OPENSSL_TCTI=$SWTPM_TCTI openssl req -new -x509 -provider default -provider tpm2 \
    -propquery '?provider=tpm2' -key handle:0x81000002 -subj "/O=devid lab/CN=devid lab TPM operational CA" -days 365 \
    -sha256 -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -addext "subjectKeyIdentifier=hash" \
    -out "$T/opca-tpm.pem" 2>"$T/req.err" || {
    cat "$T/req.err" >&2
    die "CA certificate for the TPM key"
}

mport=$(devid_free_port) || die "no port"
verifier_start tpm "${common[@]}" --metrics-listen "127.0.0.1:$mport" \
    --ca-cert "$T/opca-tpm.pem" --ca-key handle:0x81000002 --ca-provider tpm2 \
    --ca-tcti "$SWTPM_TCTI" --ledger "sqlite:$T/ledger.db" --workers 2 ||
    die "verifier with a TPM CA key did not start"
check "the verifier names the provider holding the key" \
    grep -q "key handle:0x81000002 via provider tpm2" "$VERIFIER_LOG"

"$FLEETSIM" --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" --factory-ca "$T/acme" \
    --devices 12 --parallel 4 --serial-prefix TPMCA --out "$T/serials" >"$T/fleet.out" 2>&1
rc=$?
check "12 devices enroll with certificates signed in the TPM (exit $rc)" test "$rc" -eq 0
serial=$(head -n 1 "$T/serials" 2>/dev/null)
check "the simulator wrote 12 serials (first: ${serial:-none})" \
    sh -c "test \$(grep -c '^[0-9a-fA-F]\{16,\}$' '$T/serials') -eq 12"
"$VERIFIER" show --ledger "sqlite:$T/ledger.db" --serial "$serial" --pem >"$T/one.pem" 2>&1
check "an issued certificate verifies against the TPM CA's certificate" \
    openssl verify -CAfile "$T/opca-tpm.pem" "$T/one.pem"
"$VERIFIER" revoke --ledger "sqlite:$T/ledger.db" --serial "$serial" --reason keyCompromise \
    >"$T/revoke.out" 2>&1
rc=$?
check "revoke exits 0 (got $rc)" test $rc -eq 0
check "GET /v1/crl lists the revoked certificate once the verifier rebuilt it" \
    crl_lists_soon "$VERIFIER_URL" "$T/pki/tls-ca.pem" "$serial" "$T/crl.der"
check "GET /v1/crl answers a CRL signed in the TPM" \
    openssl crl -inform DER -in "$T/crl.der" -CAfile "$T/opca-tpm.pem" -noout

kill -TERM "$VERIFIER_PID"
wait "$VERIFIER_PID"
rc=$?
check "the verifier exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0

# Started as root and dropping to another user, as the unit does: the signer
# opens the TPM as root, keeps that connection after it becomes the user,
# and signs through it.
if [[ $(id -u) -eq 0 ]] && id nobody >/dev/null 2>&1; then
    root_searchable || die "cannot give the root directory o+x"
    chmod 711 "$T" "$T/pki"
    install -d -o nobody -m 700 "$T/db"
    # What the serving user reads at start and on SIGHUP: the trust files and
    # the token key.
    chown nobody "$T/pki/token.key"
    chmod 755 "$T/acme" "$T/roots"
    chmod 644 "$T/acme/intermediate.pem" "$T/roots/acme.pem"
    verifier_start tpm-drop "${common[@]}" --ca-cert "$T/opca-tpm.pem" \
        --ca-key handle:0x81000002 --ca-provider tpm2 --ca-tcti "$SWTPM_TCTI" \
        --ledger "sqlite:$T/db/ledger.db" --workers 2 --user nobody ||
        die "verifier with a TPM CA key, dropping to nobody, did not start"
    signer=$(sed -n 's/.*signer: pid \([0-9]*\) holds the CA key.*/\1/p' "$VERIFIER_LOG" | tail -n 1)
    check "the signer runs as nobody after opening the TPM" \
        test "$(awk '$1 == "Uid:" {print $2}' "/proc/$signer/status" 2>/dev/null)" = "$(id -u nobody)"
    "$FLEETSIM" --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" --factory-ca "$T/acme" \
        --devices 3 --parallel 2 --serial-prefix TPMDROP >"$T/fleet-drop.out" 2>&1
    rc=$?
    check "3 devices enroll, signed in the TPM by a signer that dropped root (exit $rc)" \
        test "$rc" -eq 0
    verifier_stop_checked
else
    skip "the drop to nobody with a TPM CA key" "needs root and a nobody user"
fi
finish
