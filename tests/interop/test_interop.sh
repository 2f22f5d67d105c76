#!/usr/bin/env bash
# Interoperability: devid-verifier enrolls devices driven by tests/interop/client.py,
# a client written from docs/protocol.md and proto/devid/v1/enroll.proto alone,
# with off-the-shelf tools (python3-protobuf, openssl s_client with the tpm2
# provider, tpm2-tools). Real swtpm behind tpm2-abrmd, factory-provisioned.
#
#   DEVID_BIN=build bash tests/interop/test_interop.sh
#
# Device A enrolls over TLS 1.3 and device B over TLS 1.2; the refusals and
# the other devices use DEVID_INTEROP_TLS (1.3 unless set to 1.2).
#
# Each check is what the specification promises; where the verifier does not
# (yet) do what the specification says, the check fails and says so.
set -uo pipefail
TEST_NAME=interop
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

TLS=${DEVID_INTEROP_TLS:-1.3}
[[ $TLS == 1.3 || $TLS == 1.2 ]] || die "DEVID_INTEROP_TLS is 1.3 or 1.2, not '$TLS'"

need protoc stdbuf openssl tpm2_send tpm2_create tpm2_sign tpm2_readpublic
# PY: the system python, the one python3-protobuf is installed for.
need_py_protobuf

devid_tmpdir
T=$DEVID_TMP
LEDGER=sqlite:$T/ledger.db

log "manufacturer CA and verifier PKI"
lab_pki
# The root only: the device brings its intermediate (handshake and messages).
verifier_start main --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --roots "$T/roots" --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" \
    --token-key "$T/pki/token.key" --ledger "$LEDGER" ||
    die "verifier did not start"

# client NAME ARGS...: run the interop client for device NAME; its files go
# to $T/client-NAME (result.json, cert.pem, ...), its log to $T/client-NAME.log.
client() { interop_client "$1" "$VERIFIER_URL" "$T/client-$1" "${@:2}"; }

# field NAME KEY[.KEY]: a value from device NAME's result.json (booleans as
# true/false); prints nothing when it is absent.
field() { interop_field "$T/client-$1" "$2"; }

# persistent NAME: the persistent handles in device NAME's TPM, one line.
persistent() {
    tpm "$1" tpm2_getcap handles-persistent 2>/dev/null | sed -n 's/^- //p' | tr '\n' ' '
}

# issued_in_log SERIAL CERT_SERIAL TLS: the verifier logged that issuance.
issued_in_log() {
    [[ -n $2 ]] || { log "    no certificate serial"; return 1; }
    grep 'result=issued' "$VERIFIER_LOG" | grep -F "device_serial=\"$1\"" |
        grep -F "cert_serial=$2" | grep -q "tls=$3"
}

# in_ledger DEVICE CERT_SERIAL: the ledger lists that certificate for DEVICE.
in_ledger() {
    [[ -n $2 ]] || { log "    no certificate serial"; return 1; }
    "$VERIFIER" list --ledger "$LEDGER" --device "$1" >"$T/list-$1.out" 2>&1 &&
        grep -F "$2" "$T/list-$1.out" | grep -q "$1"
}

# none_in_ledger DEVICE: the ledger has no issuance for DEVICE ("list" exits
# 1, "no issuance matches"; any other status is a failure to look).
none_in_ledger() {
    local rc
    "$VERIFIER" list --ledger "$LEDGER" --device "$1" >"$T/list-$1.out" 2>&1
    rc=$?
    [[ $rc -eq 1 ]] || { log "    list --device $1 exited $rc:"; sed 's/^/    /' "$T/list-$1.out" >&2; return 1; }
}

# san_hex CERT: the DER of CERT's subjectAltName extension value, in hex.
san_hex() {
    openssl asn1parse -in "$1" 2>/dev/null | grep -A1 ':X509v3 Subject Alternative Name' |
        sed -n 's/.*\[HEX DUMP\]://p'
}

# ext_text CERT EXT: openssl's text of one extension of CERT, on one line
# with single spaces.
ext_text() {
    openssl x509 -in "$1" -noout -ext "$2" 2>/dev/null | tr -s ' \n' '  '
}

# same_serial A B: EnrollResponse.serial A (lowercase hex) is the
# certificate's serial B (openssl's uppercase hex), apart from case and
# leading zeros.
same_serial() {
    [[ $1 =~ ^[0-9a-f]+$ ]] || { log "    '$1' is not lowercase hex"; return 1; }
    [[ $2 =~ ^[0-9A-F]+$ ]] || { log "    '$2' is not a serial"; return 1; }
    local a b
    a=$(sed 's/^0*//' <<<"$1")
    b=$(tr 'A-F' 'a-f' <<<"$2" | sed 's/^0*//')
    [[ $a == "$b" ]]
}

# exited PID...: none of the PIDs runs any more (and there was at least one).
exited() {
    (($#)) || { log "    no pid"; return 1; }
    local p
    for p in "$@"; do
        ! pid_alive "$p" || { log "    $p still runs"; return 1; }
    done
}

# validity_span_ok CERT DAYS: notAfter - notBefore is DAYS days, or DAYS days
# and the 5 minutes the certificate is backdated by (section 7 allows either
# reading). Uses only the certificate's own fields.
validity_span_ok() {
    local nb na span
    nb=$(date -u -d "$(openssl x509 -in "$1" -noout -startdate | cut -d= -f2)" +%s) || return 1
    na=$(date -u -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s) || return 1
    span=$((na - nb))
    log "    validity span ${span}s"
    [[ $span -eq $(($2 * 86400)) || $span -eq $(($2 * 86400 + 300)) ]]
}

# verifies CA CERT: openssl verify accepts CERT under CA (its output only
# when it does not).
verifies() {
    local out
    out=$(openssl verify -CAfile "$1" "$2" 2>&1) || { log "    $out"; return 1; }
}

# enrolled_ok NAME SERIAL TLS: the common checks of a successful enrollment.
enrolled_ok() {
    local name=$1 serial=$2 tls=$3 dir=$T/client-$1 cert_serial N=${1^^}
    check "$N: TLS version is $tls" same_text "$(field "$name" tls)" "$tls"
    check "$N: challenge answered 200" same_text "$(field "$name" challenge.status)" 200
    check "$N: enroll answered 200" same_text "$(field "$name" enroll.status)" 200
    check "$N: certificate verifies against the operational CA" \
        verifies "$T/pki/opca.pem" "$dir/cert.pem"
    cert_pub_der "$dir/cert.pem" "$T/$name-cert-pub.der"
    tpm "$name" tpm_pub_der 0x81020001 "$T/$name-tpm-pub.der"
    check "$N: certificate key is the new TPM key (tpm2_readpublic 0x81020001)" \
        same_file "$T/$name-cert-pub.der" "$T/$name-tpm-pub.der"
    tpm "$name" tpm_pub_der 0x81020000 "$T/$name-idevid-pub.der"
    check "$N: and not the IDevID key" \
        differ_file "$T/$name-idevid-pub.der" "$T/$name-cert-pub.der"
    cert_serial=$(field "$name" serial)
    check "$N: the verifier logged the issuance ($cert_serial, $tls)" \
        issued_in_log "$serial" "$cert_serial" "$tls"
    check "$N: the ledger records it" in_ledger "$serial" "$cert_serial"
    check "$N: the TPM keeps SRK, IDevID and the new key, nothing else" \
        same_text "$(persistent "$name")" "0x81000001 0x81020000 0x81020001 "
}

# refused_ok NAME SERIAL STATUS REASON: the enroll was refused as documented,
# and nothing was issued.
refused_ok() {
    local name=$1 serial=$2 status=$3 reason=$4 rc N=${1^^}
    rc=$(<"$T/client-$name.rc")
    check "$N: client reports a refusal (exit 1, got $rc)" test "$rc" -eq 1
    [[ $rc -eq 1 ]] || sed 's/^/    /' "$T/client-$name.log" >&2
    check "$N: challenge answered 200" same_text "$(field "$name" challenge.status)" 200
    check "$N: enroll refused with $status (got $(field "$name" enroll.status))" \
        same_text "$(field "$name" enroll.status)" "$status"
    check "$N: Error.reason is $reason (got $(field "$name" enroll.reason))" \
        same_text "$(field "$name" enroll.reason)" "$reason"
    check "$N: no certificate written" test ! -e "$T/client-$name/cert.pem"
    check "$N: nothing issued to $serial in the ledger" none_in_ledger "$serial"
    check "$N: the new key was evicted; the TPM keeps SRK and IDevID" \
        same_text "$(persistent "$name")" "0x81000001 0x81020000 "
}

# ---------------------------------------------------------------------------
log "device A: enroll over TLS 1.3"
device_new a "$T/acme" SN-A-0001 "Gateway X1" || die "device a"
client a --tls 1.3
rc=$?
check "A: client enrolls (exit 0, got $rc)" test "$rc" -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/client-a.log" "$VERIFIER_LOG" >&2
enrolled_ok a SN-A-0001 TLSv1.3

# Section 7, on A's certificate.
ca=$T/client-a/cert.pem
idevid=$T/dev-a/factory/idevid.pem
subject=$(openssl x509 -in "$ca" -noout -subject -nameopt RFC2253 2>/dev/null)
check "A: subject is serialNumber, CN = model, O = manufacturer ($subject)" \
    same_text "$subject" "subject=serialNumber=SN-A-0001,CN=Gateway X1,O=Acme Devices"
san_a=$(san_hex "$ca")
san_i=$(san_hex "$idevid")
check "A: subjectAltName is the IDevID's, byte for byte" same_text "$san_a" "$san_i"
check "A: basicConstraints critical CA:FALSE" \
    same_text "$(ext_text "$ca" basicConstraints)" "X509v3 Basic Constraints: critical CA:FALSE "
check "A: keyUsage critical digitalSignature" \
    same_text "$(ext_text "$ca" keyUsage)" "X509v3 Key Usage: critical Digital Signature "
check "A: extKeyUsage clientAuth" \
    same_text "$(ext_text "$ca" extendedKeyUsage)" "X509v3 Extended Key Usage: TLS Web Client Authentication "
ski_ca=$(ext_text "$T/pki/opca.pem" subjectKeyIdentifier | sed 's/^X509v3 Subject Key Identifier: //')
aki=$(ext_text "$ca" authorityKeyIdentifier | sed 's/^X509v3 Authority Key Identifier: //')
check "A: authorityKeyIdentifier is the operational CA's key id" same_text "${aki#keyid:}" "$ski_ca"
ski=$(ext_text "$ca" subjectKeyIdentifier | sed -n 's/^X509v3 Subject Key Identifier: //p')
check "A: has a subjectKeyIdentifier" test -n "$ski"
x509_serial=$(openssl x509 -in "$ca" -noout -serial 2>/dev/null | cut -d= -f2)
resp_serial=$(field a serial)
check "A: EnrollResponse.serial ($resp_serial) is the certificate's, lowercase hex" \
    same_serial "$resp_serial" "$x509_serial"
check "A: serial is 128 bits at most, more than 64" \
    test "${#x509_serial}" -le 32 -a "${#x509_serial}" -ge 17
check "A: validity is [ca] validity_days, 365" validity_span_ok "$ca" 365
check "A: EnrollResponse.chain is empty: the operational CA is self-signed (got $(field a chain_len))" \
    same_text "$(field a chain_len)" 0

# ---------------------------------------------------------------------------
log "device B: enroll over TLS 1.2 (with EMS)"
device_new b "$T/acme" SN-B-0002 "Gateway X1" || die "device b"
client b --tls 1.2
rc=$?
check "B: client enrolls over TLS 1.2 (exit 0, got $rc)" test "$rc" -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/client-b.log" >&2
check "B: the handshake negotiated the Extended Master Secret" same_text "$(field b ems)" true
enrolled_ok b SN-B-0002 TLSv1.2

# ---------------------------------------------------------------------------
log "device C: token of connection 1, transcript and enroll on connection 2 (TLS $TLS)"
device_new c "$T/acme" SN-C-0003 "Gateway X1" || die "device c"
client c --tls "$TLS" --fault wrong-connection
echo $? >"$T/client-c.rc"
check "C: the two connections have different exporters" same_text "$(field c exporters_differ)" true
refused_ok c SN-C-0003 403 REASON_TOKEN_WRONG_CONNECTION

log "device D: new key without fixedTPM (TLS $TLS)"
device_new d "$T/acme" SN-D-0004 "Gateway X1" || die "device d"
client d --tls "$TLS" --fault no-fixedtpm
echo $? >"$T/client-d.rc"
refused_ok d SN-D-0004 403 REASON_ATTEST_ATTRIBUTES

log "device E: CSR made by another key than the certified one (TLS $TLS)"
device_new e "$T/acme" SN-E-0005 "Gateway X1" || die "device e"
client e --tls "$TLS" --fault csr-mismatch
echo $? >"$T/client-e.rc"
refused_ok e SN-E-0005 403 REASON_CSR_KEY_MISMATCH

# ---------------------------------------------------------------------------
# Two more promises of sections 2 and 4 that the client can exercise.
log "device F: TLS 1.2 without the Extended Master Secret"
device_new f "$T/acme" SN-F-0006 "Gateway X1" || die "device f"
client f --tls 1.2 --fault no-ems
rc=$?
check "F: the handshake did not negotiate EMS" same_text "$(field f ems)" false
check "F: client reports a refusal (exit 1, got $rc)" test "$rc" -eq 1
check "F: challenge refused with 403 (got $(field f challenge.status))" \
    same_text "$(field f challenge.status)" 403
check "F: Error.reason is REASON_TLS_NO_EMS (got $(field f challenge.reason))" \
    same_text "$(field f challenge.reason)" REASON_TLS_NO_EMS
check "F: nothing issued to SN-F-0006 in the ledger" none_in_ledger SN-F-0006

log "device G: intermediates only in ChallengeRequest and EnrollRequest, not in the handshake (TLS $TLS)"
device_new g "$T/acme" SN-G-0007 "Gateway X1" || die "device g"
client g --tls "$TLS" --no-handshake-chain
rc=$?
check "G: challenge accepted with the chain from ChallengeRequest.intermediates (got $(field g challenge.status) $(field g challenge.reason))" \
    same_text "$(field g challenge.status)" 200
check "G: client enrolls (exit 0, got $rc)" test "$rc" -eq 0

# ---------------------------------------------------------------------------
pids=()
for d in a b c d e f g; do
    read -ra p <<<"$(field "$d" s_client_pids | tr -d '[],')"
    pids+=("${p[@]}")
done
check "every s_client the client started has exited (${#pids[@]})" exited "${pids[@]}"
verifier_stop_checked
finish
