#!/usr/bin/env bash
# The boot-state gate's AK ([tpm] ak = auto) on a bare swtpm: no tpm2-abrmd, a
# TPM with three transient object slots. The new key, the AK and the EK are
# loaded at once for the credential activations; an EK made from its TCG
# template (none persistent) is flushed while the new key and the AK are
# created and made again for the activations, so both cases enroll under a
# PCR 7 rule and leave no transient object behind. Real parts: swtpm, the
# factory (an ECC EK and its certificate from a simulated vendor),
# devid-verifier, devid-agent.
set -uo pipefail
TEST_NAME=ak_bare_swtpm
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"
devid_tmpdir
T=$DEVID_TMP
log "manufacturer CA, simulated TPM vendor, a verifier gating PCR 7 (still zero) of Gateway X1"
"$FACTORY" ca --dir "$T/acme" --name "Acme Devices" >/dev/null || die "factory ca failed"
"$DEV_PKI" --dir "$T/pki" >/dev/null || die "dev pki failed"
"$FACTORY" ca --dir "$T/simvendor" --name "Sim TPM Vendor" --tpm-vendor >/dev/null 2>&1 || die vendor
cat >"$T/manufacturers.conf" <<EOC
[manufacturer "Acme Devices"]
roots = $T/acme/root.pem
intermediates = $T/acme/intermediate.pem
[tpm_vendor "Sim TPM Vendor"]
roots = $T/simvendor/root.pem
intermediates = $T/simvendor/intermediate.pem
EOC
Z=0000000000000000000000000000000000000000000000000000000000000000
printf '[policy]\nallow_manufacturer = Acme Devices\n[assurance "Acme Devices" "Gateway X1"]\npcr.7 = sha256:%s\n' $Z >"$T/policy.conf"
verifier_start main --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --manufacturers "$T/manufacturers.conf" --policy "$T/policy.conf" \
    --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
    --ledger "sqlite:$T/ledger.db" || die "verifier did not start"
for mode in persistent template; do
    log "--- $mode EK"
    dir=$T/dev-$mode
    mkdir -p "$dir"
    swtpm_start "$dir/tpm" || die swtpm
    TCTI=$SWTPM_TCTI
    "$FACTORY" provision --ca "$T/acme" --tcti "$TCTI" --serial "SN-AKB-$mode" \
        --model "Gateway X1" --ek ecc --ek-ca "$T/simvendor" --out "$dir/factory" >"$dir/factory.log" 2>&1 ||
        { sed 's/^/    /' "$dir/factory.log"; die provision; }
    if [[ $mode == template ]]; then
        TPM2TOOLS_TCTI=$TCTI tpm2_evictcontrol -C o -c 0x81010002 >/dev/null 2>&1 || die evict
    fi
    timeout 90 "$AGENT" enroll --tcti "$TCTI" --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
        --chain "$dir/factory/chain.pem" --out-dir "$T/out-$mode" --deadline 30 --timeout 20 \
        --ek ecc --ak auto >"$T/$mode.out" 2>"$T/$mode.err"
    rc=$?
    check "$mode EK, bare swtpm, --ak auto: enrolls (exit $rc)" test $rc -eq 0
    [[ $rc -eq 0 ]] || tail -15 "$T/$mode.err" | sed 's/^/    /' >&2
    TPM2TOOLS_TCTI=$TCTI timeout 20 tpm2_getcap handles-transient >"$T/$mode-transient.txt" 2>&1
    check "$mode: no transient object left" test ! -s "$T/$mode-transient.txt"
    check "$mode: the quote was the AK's (assurance ek, PCR 7 quoted)" sh -c \
        "grep 'result=issued' '$VERIFIER_LOG' | grep 'device_serial=\"SN-AKB-$mode\"' |
         grep 'assurance=ek' | grep -q 'pcrs=\"7=sha256:$Z\"'"
done
verifier_stop_checked
finish
