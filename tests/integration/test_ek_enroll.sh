#!/usr/bin/env bash
# Credential activation with the endorsement key (docs/protocol.md section
# 7), with real parts: swtpm whose EK certificates swtpm_setup
# --create-ek-cert signed with its own swtpm_localca (a CA made in this
# test's directory: the simulated TPM vendor), behind tpm2-abrmd; the
# factory gives the device only an IDevID (no IAK). devid-agent --ek rsa and
# --ek ecc enroll at level ek and the certificate carries the ek OID. A
# device whose factory stored the vendor's EK intermediate at NV 0x01C00100
# (provision --ek-chain) enrolls at a verifier that knows only the vendor
# root; one without is refused REASON_EK_CERTIFICATE there. The
# hostile cases are tests/interop/client.py: an EK certificate of an unknown
# vendor (REASON_EK_CERTIFICATE); the credential answered by a second TPM
# that holds a copy of the first's EK certificate (REASON_CREDENTIAL); the
# credential activated for a key of the first TPM, then a key created in a
# second TPM enrolled (REASON_CREDENTIAL_NAME); an activation answer of an
# earlier challenge replayed under a new nonce (REASON_CREDENTIAL).
set -uo pipefail
TEST_NAME=ek_enroll
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

need swtpm_setup swtpm_localca protoc stdbuf openssl tpm2_readpublic
need_py_protobuf

devid_tmpdir
T=$DEVID_TMP
ARC=2.25.155771893908230422273977835285324693140
OID_NONE=$ARC.1
OID_EK=$ARC.2

log "the simulated TPM vendor (swtpm_localca in this directory)"
mkdir -p "$T/vendor"
cat >"$T/vendor/localca.conf" <<EOC
statedir = $T/vendor
signingkey = $T/vendor/signkey.pem
issuercert = $T/vendor/issuercert.pem
certserial = $T/vendor/certserial
EOC
cat >"$T/vendor/setup.conf" <<EOC
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $T/vendor/localca.conf
create_certs_tool_options = /etc/swtpm-localca.options
active_pcr_banks = sha256
EOC
# ek_tpm NAME: the state of device NAME's TPM as its vendor ships it: an RSA
# EK (certificate at 0x01C00002) and an ECC P-384 EK (0x01C00016), both
# persistent.
ek_tpm() {
    mkdir -p "$T/dev-$1/tpm"
    swtpm_setup --tpm2 --tpmstate "$T/dev-$1/tpm" --create-ek-cert --ecc \
        --config "$T/vendor/setup.conf" --overwrite >"$T/setup-$1.log" 2>&1 ||
        { sed 's/^/    /' "$T/setup-$1.log" >&2; return 1; }
}

log "manufacturer CA, verifier PKI, a verifier that knows the vendors"
lab_pki
# The factory's own simulated TPM vendor (provision --ek), for device C.
"$FACTORY" ca --dir "$T/simvendor" --name "Sim TPM Vendor" --tpm-vendor >"$T/simvendor.log" 2>&1 ||
    die "devid-factory ca --tpm-vendor failed"
cat >"$T/manufacturers.conf" <<EOF
[manufacturer "Acme Devices"]
roots = $T/acme/root.pem
intermediates = $T/acme/intermediate.pem
[tpm_vendor "swtpm"]
roots = $T/vendor/swtpm-localca-rootca-cert.pem
intermediates = $T/vendor/issuercert.pem
[tpm_vendor "Sim TPM Vendor"]
roots = $T/simvendor/root.pem
intermediates = $T/simvendor/intermediate.pem
EOF
printf '[policy]\nallow_manufacturer = Acme Devices\n[assurance "Acme Devices"]\nminimum = ek\n' \
    >"$T/policy.conf"
ek_tpm a || die "swtpm_setup for device a"
verifier_start main --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --manufacturers "$T/manufacturers.conf" --policy "$T/policy.conf" \
    --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
    --ledger "sqlite:$T/ledger.db" || die "verifier did not start"

policies() {
    openssl x509 -in "$1" -noout -text 2>/dev/null |
        sed -n '/X509v3 Certificate Policies/,/X509v3/s/^ *Policy: *//p'
}
enroll() { # enroll NAME OUT ARGS...
    local name=$1 out=$2
    shift 2
    agent "$name" enroll --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
        --chain "$T/dev-$name/factory/chain.pem" --out-dir "$out" --tls-version 1.3 \
        --deadline 20 --timeout 10 "$@" >"$out.out" 2>"$out.err"
}

# ---------------------------------------------------------------------------
log "device A (IDevID, no IAK; RSA and ECC EK certificates from the vendor)"
device_new a "$T/acme" SN-EK-0001 "Gateway X1" || die "device a"
for kind in rsa ecc; do
    enroll a "$T/out-$kind" --ek "$kind"
    rc=$?
    check "$kind EK: the device enrolls under minimum = ek (exit $rc)" test $rc -eq 0
    [[ $rc -eq 0 ]] || sed 's/^/    /' "$T/out-$kind.err" >&2
    check "$kind EK: openssl x509 -text shows the ek OID $OID_EK" \
        same_text "$(policies "$T/out-$kind/cert.pem")" "$OID_EK"
done
check "the log lines of both issuances name level ek" same_text \
    "$("$PY" "$here/logfields.py" "$VERIFIER_LOG" \
        --count event=enroll,result=issued,device_serial=SN-EK-0001,assurance=ek)" 2
enroll a "$T/out-off" --ek off
rc=$?
check "without the EK (--ek off) it is refused under minimum = ek (exit $rc)" test $rc -eq 1
check "... assurance none below minimum ek" grep -q 'assurance none is below minimum ek' "$T/out-off.err"

# ---------------------------------------------------------------------------
log "device C: a plain swtpm to which devid-factory provision --ek gives RSA and ECC P-256 EKs"
"$FACTORY" provision --ca "$T/acme" --tcti none --serial X --model X --out "$T/x" --ek rsa \
    >"$T/factory-usage.out" 2>&1
check "provision --ek without --ek-ca is a usage error (exit 64)" test $? -eq 64
device_new c "$T/acme" SN-EK-0003 "Gateway X1" --ek rsa --ek ecc --ek-ca "$T/simvendor" \
    --nv-layout tcg-padded || die "device c"
check "the factory names both EKs" grep -q 'ek-rsa=0x81010001 ek-rsa-nv=0x01c00002 .*ek-ecc=0x81010002 ek-ecc-nv=0x01c0000a' \
    "$T/dev-c/factory.log"
for kind in rsa ecc; do
    enroll c "$T/out-c-$kind" --ek "$kind"
    rc=$?
    check "device C, $kind EK (TCG header, padded): enrolls at ek (exit $rc)" test $rc -eq 0
    [[ $rc -eq 0 ]] || sed 's/^/    /' "$T/out-c-$kind.err" >&2
    check "... the ek OID" same_text "$(policies "$T/out-c-$kind/cert.pem")" "$OID_EK"
done

# What the EK costs in TPM commands (the pcap TCTI in front of the agent's).
. "$here/../lib/tpm_pcap.sh"
pcap_enroll() { # pcap_enroll LABEL ARGS...
    local label=$1
    shift
    (
        # shellcheck disable=SC1090
        . "$T/dev-c/env"
        TCTI_PCAP_FILE=$T/$label.pcap "$AGENT" enroll --tcti "pcap:$DEV_TCTI" \
            --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
            --chain "$T/dev-c/factory/chain.pem" --out-dir "$T/out-$label" --tls-version 1.3 \
            --deadline 20 --timeout 10 "$@"
    ) >"$T/out-$label.out" 2>"$T/out-$label.err"
}
# --ek off is refused under minimum = ek, at the enrollment: after the same
# TPM commands as an issuance.
pcap_enroll pcap-off --ek off
pcap_enroll pcap-rsa --ek rsa
rc=$?
n_off=$(tpm_pcap_total "$T/pcap-off.pcap") n_rsa=$(tpm_pcap_total "$T/pcap-rsa.pcap")
log "TPM commands: $n_off without the EK, $n_rsa with the RSA EK"
tpm_pcap_summary "$T/pcap-rsa.pcap" >"$T/pcap-rsa.txt"
check "with the EK the agent still enrolls (exit $rc)" test $rc -eq 0
check "the RSA EK adds 8 TPM commands (GetCapability, NV_ReadPublic, NV_Read, ReadPublic, GetCapability of the EK chain, StartAuthSession, PolicySecret, ActivateCredential): $n_off + 8 = $n_rsa" \
    test "$((n_off + 8))" -eq "$n_rsa"
check "... one ActivateCredential, and the policy session leaves with it (no FlushContext of it)" \
    sh -c "grep -q '^ActivateCredential 1' '$T/pcap-rsa.txt' && grep -q '^FlushContext 1' '$T/pcap-rsa.txt'"

# ---------------------------------------------------------------------------
log "device D: provision --ek-chain stores the vendor's EK intermediate at NV 0x01C00100"
"$FACTORY" provision --ca "$T/acme" --tcti none --serial X --model X --out "$T/x" \
    --ek-chain >"$T/factory-usage2.out" 2>&1
check "provision --ek-chain without --ek is a usage error (exit 64)" test $? -eq 64
device_new d "$T/acme" SN-EK-0004 "Gateway X1" --ek rsa --ek-ca "$T/simvendor" --ek-chain \
    --nv-layout tcg-padded || die "device d"
check "the factory names the EK chain index" grep -q 'ek-chain-nv=0x01c00100' "$T/dev-d/factory.log"
check "... and device.env has it" grep -qx 'EK_CHAIN_NV_INDEX=0x01c00100' "$T/dev-d/factory/device.env"
# A verifier that knows only the vendor's root: the intermediate must come
# from the device.
cat >"$T/manufacturers-rootonly.conf" <<EOF
[manufacturer "Acme Devices"]
roots = $T/acme/root.pem
intermediates = $T/acme/intermediate.pem
[tpm_vendor "Sim TPM Vendor"]
roots = $T/simvendor/root.pem
EOF
URL_MAIN=$VERIFIER_URL
verifier_start rootonly --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --manufacturers "$T/manufacturers-rootonly.conf" --policy "$T/policy.conf" \
    --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
    --ledger "sqlite:$T/ledger-rootonly.db" || die "verifier (vendor root only) did not start"
enroll d "$T/out-d-chain" --ek rsa -v
rc=$?
check "device D, EK chain in NV, vendor root only: enrolls at ek (exit $rc)" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/out-d-chain.err" >&2
check "... the ek OID" same_text "$(policies "$T/out-d-chain/cert.pem")" "$OID_EK"
check "... the agent read 1 chain certificate from NV" \
    grep -q '1 chain certificates in NV' "$T/out-d-chain.err"
enroll c "$T/out-c-nochain" --ek rsa -v
rc=$?
check "device C, no EK chain in NV, vendor root only: refused (exit $rc, want 1)" test $rc -eq 1
check "... REASON_EK_CERTIFICATE" grep -q 'REASON_EK_CERTIFICATE.*EK certificate' \
    "$T/out-c-nochain.err"
check "... the agent read no chain certificate" grep -q '0 chain certificates in NV' \
    "$T/out-c-nochain.err"
# The chain costs D more TPM commands than C: NV_ReadPublic and NV_Read(s)
# of 0x01C00100 (C's RSA enrollment above is n_rsa).
(
    # shellcheck disable=SC1090
    . "$T/dev-d/env"
    TCTI_PCAP_FILE=$T/pcap-d.pcap "$AGENT" enroll --tcti "pcap:$DEV_TCTI" \
        --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
        --chain "$T/dev-d/factory/chain.pem" --out-dir "$T/out-pcap-d" --tls-version 1.3 \
        --deadline 20 --timeout 10 --ek rsa
) >"$T/out-pcap-d.out" 2>"$T/out-pcap-d.err"
rc=$?
n_d=$(tpm_pcap_total "$T/pcap-d.pcap")
check "device D enrolls through the pcap TCTI (exit $rc)" test $rc -eq 0
tpm_pcap_summary "$T/pcap-d.pcap" >"$T/pcap-d.txt"
n_rp_c=$(awk '$1 == "NV_ReadPublic" { print $2 }' "$T/pcap-rsa.txt")
n_rp_d=$(awk '$1 == "NV_ReadPublic" { print $2 }' "$T/pcap-d.txt")
check "the EK chain adds TPM commands, one NV_ReadPublic more: ${n_rp_c:-?} + 1 = ${n_rp_d:-?} (total $n_rsa, $n_d)" \
    test "$((${n_rp_c:-0} + 1))" -eq "${n_rp_d:-0}" -a "$n_d" -gt "$n_rsa"
# A chain index that holds no certificate is skipped, named, and D still
# enrolls with the one at 0x01C00100.
printf 'not a certificate' >"$T/junk.bin"
tpm d tpm2_nvdefine 0x01C00101 -C o -s 17 -a 'ownerwrite|ownerread|authread|no_da' >/dev/null &&
    tpm d tpm2_nvwrite 0x01C00101 -C o -i "$T/junk.bin" || die "cannot write NV 0x01C00101 of TPM D"
enroll d "$T/out-d-junk" --ek rsa -v
rc=$?
check "device D, junk at NV 0x01C00101: still enrolls at ek (exit $rc)" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/out-d-junk.err" >&2
check "... warning that names the index it skipped" \
    grep -q 'skipping EK chain NV index 0x01c00101' "$T/out-d-junk.err"
check "... and sent the one at 0x01C00100" grep -q '1 chain certificates in NV' "$T/out-d-junk.err"
VERIFIER_URL=$URL_MAIN

# ---------------------------------------------------------------------------
# client DEV WORK ARGS...: tests/interop/client.py as device DEV.
client() { interop_client "$1" "$URL" "${@:2}"; }
# field WORK KEY[.KEY]: a value from a client's result.json.
field() { interop_field "$@"; }
URL=$VERIFIER_URL

log "a client written from docs/protocol.md reaches ek too (RSA EK: PolicySecret; ECC: userWithAuth)"
client a "$T/c-rsa" --ek-handle 0x81010001 --key-handle 0x81020011
rc=$?
check "client, RSA EK: enrolled under minimum = ek (exit $rc)" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/c-rsa.log" >&2
check "... its certificate carries the ek OID" same_text "$(policies "$T/c-rsa/cert.pem")" "$OID_EK"
client a "$T/c-ecc" --ek-handle 0x81010016 --key-handle 0x81020012
rc=$?
check "client, ECC P-384 EK: enrolled (exit $rc)" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/c-ecc.log" >&2
check "... its certificate carries the ek OID" same_text "$(policies "$T/c-ecc/cert.pem")" "$OID_EK"

log "refused: a replayed activation answer, under a new nonce"
client a "$T/replay" --ek-handle 0x81010016 --key-handle 0x81020013 \
    --ek-secret "$T/c-ecc/activated_secret.bin"
rc=$?
check "the earlier answer sent again: refused (exit $rc, want 1)" test $rc -eq 1
check "... 403 REASON_CREDENTIAL" sh -c "test '$(field "$T/replay" enroll.status)' = 403 &&
    test '$(field "$T/replay" enroll.reason)' = REASON_CREDENTIAL"
check "... saying the answer is not this challenge's credential" \
    grep -q 'is not the credential made for this challenge' "$T/replay/result.json"

log "device B: another TPM of the same vendor, with its own IDevID"
ek_tpm b || die "swtpm_setup for device b"
device_new b "$T/acme" SN-EK-0002 "Gateway X1" || die "device b"
B_TCTI=$(. "$T/dev-b/env" && echo "$DEV_TCTI")
tpm a tpm2_readpublic -Q -c 0x81010001 -f tss -o "$T/a-ek.tss" || die "EK public of A"
tail -c +3 "$T/a-ek.tss" >"$T/a-ek.tpmt"
cp "$T/c-rsa/ek_certificate.der" "$T/a-ek.der"

log "refused: the credential answered by TPM B, which holds a copy of A's EK certificate"
client b "$T/other-tpm" --ek-handle 0x81010001 --key-handle 0x81020011 \
    --ek-cert "$T/a-ek.der" --ek-public "$T/a-ek.tpmt" --fault ek-other-tpm
rc=$?
check "A's EK certificate sent by B is refused (exit $rc, want 1)" test $rc -eq 1
check "... TPM B could not activate the credential" same_text "$(field "$T/other-tpm" activated)" false
check "... 403 REASON_CREDENTIAL" sh -c "test '$(field "$T/other-tpm" enroll.status)' = 403 &&
    test '$(field "$T/other-tpm" enroll.reason)' = REASON_CREDENTIAL"

log "refused: the credential activated for a key of A, then a key created in TPM B enrolled"
client a "$T/second" --ek-handle 0x81010001 --key-handle 0x81020014 \
    --fault ek-second-tpm-key --second-tcti "$B_TCTI"
rc=$?
check "a new key in a second TPM is refused (exit $rc, want 1)" test $rc -eq 1
check "... the credential was activated (in A)" same_text "$(field "$T/second" activated)" true
check "... 403 REASON_CREDENTIAL_NAME" sh -c "test '$(field "$T/second" enroll.status)' = 403 &&
    test '$(field "$T/second" enroll.reason)' = REASON_CREDENTIAL_NAME"

log "refused: an EK certificate of a vendor the verifier does not know"
cat >"$T/manufacturers-other.conf" <<EOF
[manufacturer "Acme Devices"]
roots = $T/acme/root.pem
intermediates = $T/acme/intermediate.pem
[tpm_vendor "Other"]
roots = $T/acme/root.pem
EOF
verifier_start other --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --manufacturers "$T/manufacturers-other.conf" --policy "$T/policy.conf" \
    --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
    --ledger "sqlite:$T/ledger-other.db" || die "verifier (other vendor) did not start"
enroll a "$T/out-unknown" --ek rsa
rc=$?
check "the agent is refused at the challenge (exit $rc, want 1)" test $rc -eq 1
check "... REASON_EK_CERTIFICATE, naming the check" \
    grep -q 'REASON_EK_CERTIFICATE.*EK certificate' "$T/out-unknown.err"
check "... and no certificate was made" test ! -e "$T/out-unknown/cert.pem"

log "EKs that are not persistent: the agent makes them from the TCG templates"
VERIFIER_URL=$URL
tpm c tpm2_evictcontrol -Q -C o -c 0x81010001 && tpm c tpm2_evictcontrol -Q -C o -c 0x81010002 &&
    tpm a tpm2_evictcontrol -Q -C o -c 0x81010016 || die "cannot evict the EKs"
for x in "c rsa L-1 (RSA 2048)" "c ecc L-2 (ECC P-256)" "a ecc H-3 (ECC P-384)"; do
    read -r dev kind what <<<"$x"
    enroll "$dev" "$T/out-made-$dev-$kind" --ek "$kind" -v
    rc=$?
    check "template $what: enrolls at ek (exit $rc)" test $rc -eq 0
    [[ $rc -eq 0 ]] || sed 's/^/    /' "$T/out-made-$dev-$kind.err" >&2
    check "... with the EK made from the template" \
        grep -q 'creating the .* EK from its TCG template' "$T/out-made-$dev-$kind.err"
    check "... the ek OID" same_text "$(policies "$T/out-made-$dev-$kind/cert.pem")" "$OID_EK"
done
check "no transient object is left in TPM C" \
    sh -c "test -z \"\$(. '$T/dev-c/env' && TPM2TOOLS_TCTI=\$DEV_TCTI tpm2_getcap handles-transient)\""

finish
