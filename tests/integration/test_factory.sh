#!/usr/bin/env bash
# tests/integration/test_factory.sh: deploy/factory/devid-factory against real swtpm
# instances (one fresh TPM per key type), plus the tpm2-abrmd path.
#
# Needs: swtpm, tpm2-tools, tpm2-openssl, tpm2-abrmd, dbus-daemon, openssl.
# Safe to run in parallel with other tests (random ports, private state and buses).

set -euo pipefail

TEST_NAME=test_factory
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
FACTORY=$HERE/../../deploy/factory/devid-factory
# shellcheck source=../lib/swtpm.sh
. "$HERE/../lib/swtpm.sh"
# For the counters and finish; the checks below are this test's own.
# shellcheck source=../lib/devid.sh
. "$HERE/../lib/devid.sh"
FACTORY=$HERE/../../deploy/factory/devid-factory

PASSED=0
FAILED=0

pass() { PASSED=$((PASSED + 1)); log "ok   - $*"; }
fail() { FAILED=$((FAILED + 1)); log "FAIL - $*"; }

# check DESC CMD...: CMD succeeds.
check() {
    local desc=$1
    shift
    if "$@" >"$DEVID_TMP/check.out" 2>&1; then
        pass "$desc"
    else
        fail "$desc (command: $*)"
        sed 's/^/        /' "$DEVID_TMP/check.out" >&2
    fi
}

# check_eq DESC WANT GOT
check_eq() {
    if [[ $2 == "$3" ]]; then
        pass "$1"
    else
        fail "$1: want '$2', got '$3'"
    fi
}

# check_rc DESC WANT_RC WANT_MSG CMD...: CMD exits WANT_RC and says WANT_MSG.
check_rc() {
    local desc=$1 want=$2 want_msg=$3 rc=0
    shift 3
    "$@" >"$DEVID_TMP/check.out" 2>&1 || rc=$?
    if ((rc != want)); then
        fail "$desc: exit $rc, want $want"
        sed 's/^/        /' "$DEVID_TMP/check.out" >&2
    elif ! grep -qF -- "$want_msg" "$DEVID_TMP/check.out"; then
        fail "$desc: output lacks '$want_msg'"
        sed 's/^/        /' "$DEVID_TMP/check.out" >&2
    else
        pass "$desc"
    fi
}

# no_transients TCTI: tpm2_getcap answers and lists no transient object (a
# tpm2_getcap that fails or is cut off by its timeout does not count as none).
no_transients() {
    local out
    out=$(timeout 10 tpm2_getcap -T "$1" handles-transient 2>&1) ||
        { log "    tpm2_getcap handles-transient failed: $out"; return 1; }
    [[ -z $out ]] || { log "    transient objects left: $(tr '\n' ' ' <<<"$out")"; return 1; }
}

# subject_field CERT NAME: one subject attribute (short name), e.g. CN.
subject_field() {
    openssl x509 -in "$1" -noout -subject -nameopt sep_multiline,sname,utf8 |
        sed -n "s/^ *$2=//p"
}

# hmn_dump CERT: asn1parse of the subjectAltName extension value.
hmn_dump() {
    local off
    off=$(openssl asn1parse -in "$1" |
        awk -F: '/:X509v3 Subject Alternative Name/ { getline; gsub(/ /, "", $1); print $1; exit }')
    [[ -n $off ]] || return 1
    openssl asn1parse -in "$1" -strparse "$off"
}

# hmn_serial CERT: the hwSerialNum of the hardwareModuleName otherName.
hmn_serial() {
    hmn_dump "$1" | awk '
        /OBJECT *:1\.3\.6\.1\.5\.5\.7\.8\.4$/ { on = 1 }
        on && /OBJECT *:1\.3\.6\.1\.4\.1\.32473\.1\.1$/ { hw = 1; next }
        hw && /OCTET STRING/ { sub(/^[^:]*:[^:]*: *OCTET STRING *:/, ""); print; exit }'
}

devid_tmpdir
[[ -x $FACTORY ]] || die "devid-factory not found or not executable at $FACTORY"

# --- usage errors, no TPM needed
check_rc "no command is a usage error" 64 "Usage:" "$FACTORY"
check_rc "unknown command is a usage error" 64 "unknown command" "$FACTORY" frobnicate
check "ca --help" "$FACTORY" ca --help
check "provision --help" "$FACTORY" provision --help
check_rc "ca without --name" 64 "--name is required" "$FACTORY" ca --dir "$DEVID_TMP/x"
check_rc "ca with a bad key type" 64 "key type" \
    "$FACTORY" ca --dir "$DEVID_TMP/x" --name Acme --key-type ed25519

# provision_case KEY_TYPE SERIAL MODEL: fresh swtpm, fresh CA of the same key type,
# provision, and check everything the verifier and agent rely on.
provision_case() {
    local kt=$1 serial=$2 model=$3 ca dev tpmdir name
    ca=$DEVID_TMP/ca-$kt
    dev=$DEVID_TMP/dev-$kt
    tpmdir=$DEVID_TMP/tpm-$kt
    name="Acme Devices"
    log "--- $kt"

    check "ca $kt" "$FACTORY" ca --dir "$ca" --name "$name" --key-type "$kt"
    check_rc "ca $kt refuses to overwrite" 73 "CA already exists" \
        "$FACTORY" ca --dir "$ca" --name "$name" --key-type "$kt"
    check_eq "ca $kt root.key mode" 600 "$(stat -c %a "$ca/root.key")"
    check_eq "ca $kt intermediate.key mode" 600 "$(stat -c %a "$ca/intermediate.key")"
    check "ca $kt intermediate verifies" \
        openssl verify -CAfile "$ca/root.pem" "$ca/intermediate.pem"
    check "ca $kt intermediate is CA:TRUE pathlen:0, critical" \
        grep -q 'CA:TRUE, pathlen:0' <(openssl x509 -in "$ca/intermediate.pem" -noout -ext basicConstraints)
    check_eq "ca $kt root CN" "$name Root CA" "$(subject_field "$ca/root.pem" CN)"

    swtpm_start "$tpmdir" || die "cannot start swtpm for $kt"
    local tcti=$SWTPM_TCTI
    check "provision $kt" "$FACTORY" provision --ca "$ca" --tcti "$tcti" \
        --serial "$serial" --model "$model" --out "$dev" --key-type "$kt" \
        --chain-nv-index 0x01C90001
    [[ -s $dev/idevid.pem ]] || { fail "provision $kt wrote no idevid.pem"; return; }

    check "provision $kt: chain verifies" openssl verify -CAfile "$ca/root.pem" \
        -untrusted "$dev/chain.pem" "$dev/idevid.pem"

    openssl x509 -in "$dev/idevid.pem" -outform DER -out "$dev/idevid.der"
    timeout 10 tpm2_nvread -T "$tcti" 0x01C90000 -o "$dev/nv.der" 2>/dev/null ||
        fail "provision $kt: tpm2_nvread 0x01C90000"
    check "provision $kt: NV 0x01C90000 holds exactly the certificate" \
        cmp "$dev/idevid.der" "$dev/nv.der"
    openssl x509 -in "$dev/chain.pem" -outform DER -out "$dev/chain.der"
    timeout 10 tpm2_nvread -T "$tcti" 0x01C90001 -o "$dev/nvchain.der" 2>/dev/null ||
        fail "provision $kt: tpm2_nvread 0x01C90001"
    check "provision $kt: NV 0x01C90001 holds the intermediate" \
        cmp "$dev/chain.der" "$dev/nvchain.der"

    timeout 10 tpm2_readpublic -T "$tcti" -c 0x81020000 -f pem -o "$dev/tpmpub.pem" \
        >"$dev/readpublic.txt" 2>&1 || fail "provision $kt: tpm2_readpublic 0x81020000"
    openssl x509 -in "$dev/idevid.pem" -noout -pubkey >"$dev/certpub.pem"
    check "provision $kt: TPM key at 0x81020000 is the certificate's key" \
        cmp "$dev/tpmpub.pem" "$dev/certpub.pem"
    check "provision $kt: key attributes" grep -q \
        'value: fixedtpm|fixedparent|sensitivedataorigin|userwithauth|adminwithpolicy|sign$' \
        "$dev/readpublic.txt"

    check_eq "provision $kt: subject serialNumber" "$serial" \
        "$(subject_field "$dev/idevid.pem" serialNumber)"
    check_eq "provision $kt: subject CN" "$model" "$(subject_field "$dev/idevid.pem" CN)"
    check_eq "provision $kt: subject O" "$name" "$(subject_field "$dev/idevid.pem" O)"
    check_eq "provision $kt: hardwareModuleName hwSerialNum" "$serial" \
        "$(hmn_serial "$dev/idevid.pem")"
    check "provision $kt: keyUsage digitalSignature critical" grep -qz \
        'critical.*Digital Signature' <(openssl x509 -in "$dev/idevid.pem" -noout -ext keyUsage)
    check "provision $kt: CA:FALSE critical" grep -qz 'critical.*CA:FALSE' \
        <(openssl x509 -in "$dev/idevid.pem" -noout -ext basicConstraints)
    check "provision $kt: device.env" grep -qx "SERIAL=\"$serial\"" "$dev/device.env"

    check_rc "provision $kt: re-provisioning is refused" 73 \
        "TPM already provisioned: handle 0x81020000 in use" \
        "$FACTORY" provision --ca "$ca" --tcti "$tcti" --serial "$serial" \
        --model "$model" --out "$dev" --key-type "$kt"
    timeout 10 tpm2_nvread -T "$tcti" 0x01C90000 -o "$dev/nv2.der" 2>/dev/null ||
        log "tpm2_nvread 0x01C90000 failed: the next check fails"
    check "provision $kt: refused run left NV alone" same_file "$dev/idevid.der" "$dev/nv2.der"
    check "provision $kt: no transient objects left" no_transients "$tcti"
}

provision_case ec-p256 "SN-P256-0001" "Widget 9000"
P256_TCTI=$SWTPM_TCTI
provision_case ec-p384 "SN-P384 (rev.2)" "Widget:Pro_384"
P384_TCTI=$SWTPM_TCTI
provision_case rsa2048 "0123456789" "Gadget R-2048"

# --- bad input is refused before the TPM is touched
log "--- bad input"
CA=$DEVID_TMP/ca-ec-p256
for bad in "SN/1" "SN,1" "SN=1" "SN+1" "" "$(printf 'x%.0s' {1..65})" 'SN$1' 'SN"1' " SN1" "SN_1"; do
    check_rc "bad serial '$bad' refused" 64 "serial" \
        "$FACTORY" provision --ca "$CA" --tcti "$P256_TCTI" --serial "$bad" \
        --model M --out "$DEVID_TMP/bad" --force
done
check_rc "bad model refused" 64 "model" "$FACTORY" provision --ca "$CA" \
    --tcti "$P256_TCTI" --serial SN1 --model "a/b" --out "$DEVID_TMP/bad" --force
check_rc "bad handle refused" 64 "--idevid-handle" "$FACTORY" provision --ca "$CA" \
    --tcti "$P256_TCTI" --serial SN1 --model M --out "$DEVID_TMP/bad" --idevid-handle 0x81800000
check_rc "missing CA refused" 64 "missing" "$FACTORY" provision --ca "$DEVID_TMP/none" \
    --tcti "$P256_TCTI" --serial SN1 --model M --out "$DEVID_TMP/bad"
check "bad input left the TPM alone" cmp "$DEVID_TMP/dev-ec-p256/idevid.der" \
    <(timeout 10 tpm2_nvread -T "$P256_TCTI" 0x01C90000 2>/dev/null)

# --- --force re-provisions (the rsa2048 TPM is the last one started)
check "provision --force replaces the IDevID" "$FACTORY" provision \
    --ca "$DEVID_TMP/ca-rsa2048" --tcti "$SWTPM_TCTI" --serial "SN-NEW" --model "Gadget" \
    --out "$DEVID_TMP/dev-force" --key-type rsa2048 --force
timeout 10 tpm2_nvread -T "$SWTPM_TCTI" 0x01C90000 -o "$DEVID_TMP/force.der" 2>/dev/null ||
    log "tpm2_nvread 0x01C90000 failed: the next check fails"
openssl x509 -in "$DEVID_TMP/dev-force/idevid.pem" -outform DER -out "$DEVID_TMP/force-cert.der" ||
    log "no certificate from provision --force: the next check fails"
check "provision --force: NV holds the new certificate" \
    same_file "$DEVID_TMP/force.der" "$DEVID_TMP/force-cert.der"
check_eq "provision --force: new serial" "SN-NEW" \
    "$(subject_field "$DEVID_TMP/dev-force/idevid.pem" serialNumber)"

# --- --iak: a restricted IAK beside the IDevID, with its certificate in NV
log "--- iak"
swtpm_start "$DEVID_TMP/tpm-iak" || die "cannot start swtpm for the IAK case"
IAK_DEV=$DEVID_TMP/dev-iak
check "provision --iak" "$FACTORY" provision --ca "$DEVID_TMP/ca-ec-p256" --tcti "$SWTPM_TCTI" \
    --serial "SN-IAK-1" --model "Widget 9000" --out "$IAK_DEV" --iak
check "iak: certificate verifies" openssl verify -CAfile "$DEVID_TMP/ca-ec-p256/root.pem" \
    -untrusted "$DEVID_TMP/ca-ec-p256/intermediate.pem" "$IAK_DEV/iak.pem"
check_eq "iak: same subject serialNumber as the IDevID" "SN-IAK-1" \
    "$(subject_field "$IAK_DEV/iak.pem" serialNumber)"
check_eq "iak: same hardwareModuleName serial" "SN-IAK-1" "$(hmn_serial "$IAK_DEV/iak.pem")"
timeout 10 tpm2_readpublic -T "$SWTPM_TCTI" -c 0x81020002 -f pem -o "$IAK_DEV/tpmpub.pem" \
    >"$IAK_DEV/readpublic.txt" 2>&1 || fail "iak: tpm2_readpublic 0x81020002"
check "iak: TPM key at 0x81020002 is the certificate's key" cmp "$IAK_DEV/tpmpub.pem" \
    <(openssl x509 -in "$IAK_DEV/iak.pem" -noout -pubkey)
check "iak: restricted signing key" grep -q \
    'value: fixedtpm|fixedparent|sensitivedataorigin|userwithauth|adminwithpolicy|restricted|sign$' \
    "$IAK_DEV/readpublic.txt"
openssl x509 -in "$IAK_DEV/iak.pem" -outform DER -out "$IAK_DEV/iak.der" ||
    log "no IAK certificate: the next check fails"
timeout 10 tpm2_nvread -T "$SWTPM_TCTI" 0x01C90002 -o "$IAK_DEV/iaknv.der" 2>/dev/null ||
    log "tpm2_nvread 0x01C90002 failed: the next check fails"
check "iak: NV 0x01C90002 holds the IAK certificate" \
    same_file "$IAK_DEV/iak.der" "$IAK_DEV/iaknv.der"
check "iak: device.env names the IAK" grep -qx "IAK_HANDLE=0x81020002" "$IAK_DEV/device.env"
check "iak: no transient objects left" no_transients "$SWTPM_TCTI"
check_rc "iak: --iak-handle equal to the IDevID handle refused" 64 "--iak-handle" \
    "$FACTORY" provision --ca "$DEVID_TMP/ca-ec-p256" --tcti "$SWTPM_TCTI" --serial SN1 \
    --model M --out "$DEVID_TMP/bad" --iak --iak-handle 0x81020000
swtpm_stop

# --- tpm2-abrmd in front of the ec-p256 TPM: two clients at once
log "--- tpm2-abrmd"
if abrmd_start "$P256_TCTI"; then
    pass "tpm2-abrmd answers on $ABRMD_TCTI"
    mkfifo "$DEVID_TMP/hold"
    # tpm2_send opens its TPM connection, then waits on stdin: a second client.
    tpm2_send -T "$ABRMD_TCTI" <"$DEVID_TMP/hold" >/dev/null 2>&1 &
    HOLDER=$!
    exec 3>"$DEVID_TMP/hold"
    sleep 0.3
    check "abrmd: getcap while another client is connected" \
        timeout 10 tpm2_getcap -T "$ABRMD_TCTI" handles-persistent
    check "abrmd: NV read while another client is connected" cmp \
        "$DEVID_TMP/dev-ec-p256/idevid.der" \
        <(timeout 10 tpm2_nvread -T "$ABRMD_TCTI" 0x01C90000 2>/dev/null)
    printf 'devid factory test\n' >"$DEVID_TMP/msg"
    check "abrmd: tpm2 provider signs with the IDevID key" env \
        TPM2OPENSSL_TCTI="$ABRMD_TCTI" timeout 20 openssl dgst -sha256 \
        -provider default -provider tpm2 -propquery '?tpm2.signature' \
        -sign handle:0x81020000 -out "$DEVID_TMP/msg.sig" "$DEVID_TMP/msg"
    check "abrmd: signature verifies with the certificate key" openssl dgst -sha256 \
        -verify "$DEVID_TMP/dev-ec-p256/certpub.pem" -signature "$DEVID_TMP/msg.sig" \
        "$DEVID_TMP/msg"
    exec 3>&-
    stop_pid "$HOLDER"
    P256_ABRMD=$ABRMD_TCTI
    # A second device in the same test: its own tpm2-abrmd on the same private bus.
    if abrmd_start "$P384_TCTI"; then
        pass "second tpm2-abrmd answers on $ABRMD_TCTI"
        check "abrmd: second TCTI reaches the ec-p384 TPM" cmp \
            "$DEVID_TMP/dev-ec-p384/idevid.der" \
            <(timeout 10 tpm2_nvread -T "$ABRMD_TCTI" 0x01C90000 2>/dev/null)
        check "abrmd: first TCTI still reaches the ec-p256 TPM" cmp \
            "$DEVID_TMP/dev-ec-p256/idevid.der" \
            <(timeout 10 tpm2_nvread -T "$P256_ABRMD" 0x01C90000 2>/dev/null)
    else
        fail "second tpm2-abrmd did not start"
    fi
else
    fail "tpm2-abrmd did not start"
fi

finish
