#!/usr/bin/env bash
# The agent on a bare swtpm: no tpm2-abrmd, TCTI swtpm:host=...,port=P, a TPM
# that serves one client at a time and has three transient object slots. The
# TLS handshake signs through the agent's own ESAPI connection (the built-in
# devid-tpm provider), so one connection is all it needs. Real parts: swtpm,
# the factory (tpm2-tools, one command at a time), devid-verifier, devid-agent.
# Every key type over TLS 1.3 and 1.2.
set -uo pipefail
TEST_NAME=bare_swtpm
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

devid_tmpdir
T=$DEVID_TMP

log "manufacturer CA and verifier PKI"
"$FACTORY" ca --dir "$T/acme" --name "Acme Devices" >/dev/null || die "factory ca failed"
"$DEV_PKI" --dir "$T/pki" >/dev/null || die "dev pki failed"
mkdir -p "$T/roots"
cp "$T/acme/root.pem" "$T/roots/acme.pem"
verifier_start main --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --roots "$T/roots" --intermediates "$T/acme/intermediate.pem" \
    --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
    --ledger "sqlite:$T/ledger.db" || die "verifier did not start"

# bare_device NAME KEYTYPE: a fresh swtpm, provisioned straight over its TCTI.
# Sets TCTI.
bare_device() {
    local name=$1 kt=$2 dir=$T/dev-$1
    mkdir -p "$dir"
    swtpm_start "$dir/tpm" || return 1
    TCTI=$SWTPM_TCTI
    "$FACTORY" provision --ca "$T/acme" --tcti "$TCTI" --serial "SN-BARE-$name" \
        --model "Gateway X1" --key-type "$kt" --out "$dir/factory" >"$dir/factory.log" 2>&1 || {
        sed 's/^/    /' "$dir/factory.log" >&2
        return 1
    }
}

# enroll_bare NAME TLS: run the agent on device NAME's bare TCTI. A second TPM
# client would block on the bare swtpm: bound the run.
enroll_bare() {
    local name=$1 tls=$2
    timeout 90 "$AGENT" enroll --tcti "$TCTI" --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
        --chain "$T/dev-$name/factory/chain.pem" --out-dir "$T/out-$name" \
        --persist-handle 0x81020001 --tls-version "$tls" --deadline 60 --timeout 20
}

for spec in ec-p256:1.3 ec-p384:1.3 rsa2048:1.3 ec-p256:1.2 ec-p384:1.2 rsa2048:1.2; do
    kt=${spec%%:*}
    tls=${spec#*:}
    name=$kt-tls$tls
    log "--- $kt IDevID over TLS $tls on a bare swtpm"
    bare_device "$name" "$kt" || die "device $name"
    enroll_bare "$name" "$tls" >"$T/$name.out" 2>"$T/$name.err"
    rc=$?
    check "$name: agent enrolls on the bare swtpm (exit $rc)" test "$rc" -eq 0
    [[ $rc -eq 0 ]] || sed 's/^/    /' "$T/$name.err" >&2
    check "$name: certificate verifies against the operational CA" \
        openssl verify -CAfile "$T/pki/opca.pem" "$T/out-$name/cert.pem"
    check "$name: verifier logged TLSv$tls" \
        sh -c "grep 'SN-BARE-$name' '$VERIFIER_LOG' | grep -q 'tls=TLSv$tls'"
    # The agent has exited: the bare swtpm takes the next client.
    cert_pub_der "$T/out-$name/cert.pem" "$T/$name-cert.der"
    TPM2TOOLS_TCTI=$TCTI tpm_pub_der 0x81020001 "$T/$name-tpm.der"
    check "$name: certificate key equals the persisted TPM key" \
        same_file "$T/$name-cert.der" "$T/$name-tpm.der"
    TPM2TOOLS_TCTI=$TCTI timeout 20 tpm2_getcap handles-transient >"$T/$name-transient.txt" 2>&1
    check "$name: no transient object left in the TPM" \
        test "$?" -eq 0 -a ! -s "$T/$name-transient.txt"
    [[ -s $T/$name-transient.txt ]] && sed 's/^/    /' "$T/$name-transient.txt" >&2
    check "$name: key blob loads with the tpm2 provider" \
        env TPM2OPENSSL_TCTI="$TCTI" timeout 20 openssl pkey -provider tpm2 -provider default \
        -in "$T/out-$name/key.tss2.pem" -pubout -out "$T/$name-blob.pem"
    enroll_bare "$name" "$tls" >"$T/$name-2.out" 2>&1
    rc=$?
    check "$name: second run exits 0 (exit $rc)" test "$rc" -eq 0
    check "$name: second run says already enrolled" grep -qi "already enrolled" "$T/$name-2.out"
done

finish
