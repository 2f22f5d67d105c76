#!/usr/bin/env bash
# Assurance levels with real parts: swtpm behind tpm2-abrmd, the factory,
# devid-verifier and devid-agent on loopback, and tests/interop/client.py for
# the forged evidence. What each enrollment proved is recorded in the
# certificate (certificatePolicies), the ledger (show), and the log line, and
# a policy minimum of iak refuses what only the IDevID signed, including a
# TPMS_ATTEST that software made up for a key outside the TPM.
set -uo pipefail
TEST_NAME=assurance
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

need protoc stdbuf openssl tpm2_sign tpm2_readpublic
need_py_protobuf

devid_tmpdir
T=$DEVID_TMP
ARC=2.25.155771893908230422273977835285324693140
OID_NONE=$ARC.1
OID_IAK=$ARC.3

log "manufacturer CA, verifier PKI, one verifier per policy"
lab_pki
cat >"$T/manufacturers.conf" <<EOF
[manufacturer "Acme Devices"]
roots = $T/acme/root.pem
intermediates = $T/acme/intermediate.pem
EOF
printf '[policy]\nallow_manufacturer = Acme Devices\n' >"$T/policy-default.conf"
printf '[policy]\nallow_manufacturer = Acme Devices\n[assurance "Acme Devices"]\nminimum = iak\n' \
    >"$T/policy-iak.conf"
common=(--tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key"
    --manufacturers "$T/manufacturers.conf" --ca-cert "$T/pki/opca.pem"
    --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key")
verifier_start iak "${common[@]}" --policy "$T/policy-iak.conf" --ledger "sqlite:$T/ledger-iak.db" ||
    die "verifier (minimum iak) did not start"
URL_IAK=$VERIFIER_URL LOG_IAK=$VERIFIER_LOG PID_IAK=$VERIFIER_PID
verifier_start default "${common[@]}" --policy "$T/policy-default.conf" \
    --ledger "sqlite:$T/ledger.db" || die "verifier (default policy) did not start"
URL_DEF=$VERIFIER_URL LOG_DEF=$VERIFIER_LOG

# fields LOG ARGS...: logfields.py on a verifier's log.
fields() {
    "$PY" "$here/logfields.py" "$@"
}

# enroll NAME URL OUT [ARGS...]: devid-agent enroll for device NAME.
enroll() {
    local name=$1 url=$2 out=$3
    shift 3
    agent "$name" enroll --url "$url" --ca-bundle "$T/pki/tls-ca.pem" \
        --chain "$T/dev-$name/factory/chain.pem" --out-dir "$out" --tls-version 1.3 \
        --deadline 20 --timeout 10 "$@" >"$out.out" 2>"$out.err"
}

# policies CERT: the certificatePolicies OIDs of CERT, one per line, as
# `openssl x509 -text` prints them.
policies() {
    openssl x509 -in "$1" -noout -text 2>/dev/null |
        sed -n '/X509v3 Certificate Policies/,/X509v3/s/^ *Policy: *//p'
}

# show SERIAL: devid-verifier show for SERIAL in the default ledger.
show() {
    "$VERIFIER" show --ledger "sqlite:$T/ledger.db" --serial "$1" 2>&1
}

serial_of() {
    openssl x509 -in "$1" -noout -serial 2>/dev/null | cut -d= -f2 | tr 'A-F' 'a-f' |
        sed 's/^\(00\)*//'
}

# ---------------------------------------------------------------------------
log "device I (with an IAK): level iak everywhere"
device_new i "$T/acme" SN-AS-IAK "Gateway X1" --iak || die "device i"
enroll i "$URL_DEF" "$T/out-i" --iak-handle 0x81020002
rc=$?
check "device with an IAK enrolls (exit $rc)" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/out-i.err" >&2
openssl x509 -in "$T/out-i/cert.pem" -noout -text >"$T/cert-i.txt" 2>&1
check "openssl x509 -text shows the certificatePolicies extension" \
    grep -q "X509v3 Certificate Policies:" "$T/cert-i.txt"
check "... holding the iak OID $OID_IAK" same_text "$(policies "$T/out-i/cert.pem")" "$OID_IAK"
serial_i=$(serial_of "$T/out-i/cert.pem")
check "show names level iak" sh -c "'$VERIFIER' show --ledger 'sqlite:$T/ledger.db' \
    --serial '$serial_i' | grep -qx 'assurance: iak (certified by the device.s restricted IAK: the key is in its TPM)'"
check "the log line names level iak" same_text \
    "$(fields "$LOG_DEF" --get assurance --where event=enroll,result=issued,device_serial=SN-AS-IAK)" iak
check "the log line names the IAK signer" same_text \
    "$(fields "$LOG_DEF" --get signer --where event=enroll,result=issued,device_serial=SN-AS-IAK)" iak
enroll i "$URL_IAK" "$T/out-i-min" --iak-handle 0x81020002
rc=$?
check "under minimum = iak the device with an IAK enrolls (exit $rc)" test $rc -eq 0

# ---------------------------------------------------------------------------
log "device N (no IAK): level none by default, refused under minimum = iak"
device_new n "$T/acme" SN-AS-NONE "Gateway X1" || die "device n"
enroll n "$URL_DEF" "$T/out-n"
rc=$?
check "device without an IAK enrolls under the default policy (exit $rc)" test $rc -eq 0
check "its certificate carries the none OID $OID_NONE" \
    same_text "$(policies "$T/out-n/cert.pem")" "$OID_NONE"
serial_n=$(serial_of "$T/out-n/cert.pem")
show "$serial_n" >"$T/show-n.out"
check "show names level none and what it means" grep -qx \
    'assurance: none (certified by the unrestricted IDevID: proves possession of the IDevID, not where the key lives)' \
    "$T/show-n.out"
check "the log line names level none" same_text \
    "$(fields "$LOG_DEF" --get assurance --where event=enroll,result=issued,device_serial=SN-AS-NONE)" none
enroll n "$URL_IAK" "$T/out-n-min"
rc=$?
check "under minimum = iak it is refused (exit $rc, not 0)" test $rc -ne 0
check "... and makes no certificate" test ! -e "$T/out-n-min/cert.pem"
check "the agent is told why: assurance none below minimum iak" \
    grep -q 'assurance none is below minimum iak (\[assurance \\\?"Acme Devices\\\?"\]' "$T/out-n-min.err"
check "the refusal's log line says the level and the reason" sh -c \
    "grep 'result=refused' '$LOG_IAK' | grep 'device_serial=\"SN-AS-NONE\"' | grep 'assurance=none' |
     grep -q 'not where the new key lives'"

# ---------------------------------------------------------------------------
log "device F: a forged TPMS_ATTEST for a software key, signed by the IDevID"
device_new f "$T/acme" SN-AS-FORGED "Gateway X1" || die "device f"
# client NAME URL WORK ARGS...: the interop client for device NAME.
client() { interop_client "$@"; }
# field WORK KEY[.KEY]: a value from a client's result.json.
field() { interop_field "$@"; }
client f "$URL_IAK" "$T/forged-iak" --fault forged-attest
rc=$?
check "forged evidence under minimum = iak: refused (exit $rc, want 1)" test $rc -eq 1
[[ $rc -eq 1 ]] || sed 's/^/    /' "$T/forged-iak.log" >&2
check "... REASON_POLICY_DENIED" same_text "$(field "$T/forged-iak" enroll.reason)" \
    REASON_POLICY_DENIED
check "... because only the IDevID signed it" sh -c \
    "'$PY' -c 'import json,sys; m=json.load(open(sys.argv[1]))[\"enroll\"][\"message\"];
sys.exit(0 if \"assurance none is below minimum iak\" in m else 1)' '$T/forged-iak/result.json'"
client f "$URL_DEF" "$T/forged-def" --fault forged-attest
rc=$?
check "forged evidence under the default policy: a certificate (exit $rc, want 0)" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/forged-def.log" >&2
check "... for the software key, which is in no TPM" sh -c \
    "openssl x509 -in '$T/forged-def/cert.pem' -noout -pubkey | cmp -s - '$T/forged-def/ldevid-pub.pem'"
check "... and the certificate says so: the none OID" \
    same_text "$(policies "$T/forged-def/cert.pem")" "$OID_NONE"
serial_f=$(serial_of "$T/forged-def/cert.pem")
check "show names level none for it" sh -c "'$VERIFIER' show --ledger 'sqlite:$T/ledger.db' \
    --serial '$serial_f' | grep -q '^assurance: none '"
check "the log line names level none for it" same_text \
    "$(fields "$LOG_DEF" --get assurance --where event=enroll,result=issued,device_serial=SN-AS-FORGED)" none

check "no malformed log lines" fields "$LOG_DEF" --malformed
check "the minimum-iak verifier still runs" pid_alive "$PID_IAK"
verifier_stop_checked
finish
