#!/usr/bin/env bash
# The boot-state gate with real parts: swtpm behind tpm2-abrmd, the factory
# (devices with an IAK), devid-verifier and devid-agent on loopback, and
# tests/interop/client.py for the forged quotes. The policy allows two values
# of PCR 7 for model "Gateway X1": a device whose PCR 7 was extended to one of
# them enrolls, and the ledger records the quoted value; one extended to
# another value is refused with a reason naming PCR 7, its value and the
# allowed set; a device without an IAK cannot pass, unless it has an EK and
# binds an AK to it by credential activation ([tpm] ak = auto); a quote
# signed by the unrestricted IDevID, or over another qualifyingData, is
# refused.
set -uo pipefail
TEST_NAME=boot_gate
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"
. "$here/../lib/tpm_pcap.sh"

need protoc openssl tpm2_pcrextend tpm2_pcrread tpm2_quote tpm2_readpublic
need_py_protobuf

devid_tmpdir
T=$DEVID_TMP

# pcr_after DIGEST...: the value of a SHA-256 PCR that starts at zero and is
# extended with each DIGEST (hex) in turn.
pcr_after() {
    "$PY" - "$@" <<'EOF'
import hashlib, sys
v = bytes(32)
for d in sys.argv[1:]:
    v = hashlib.sha256(v + bytes.fromhex(d)).digest()
print(v.hex())
EOF
}
sha() { printf '%s' "$1" | openssl dgst -sha256 -r | cut -d' ' -f1; }

GOOD_EVENT=$(sha "secure boot on, vendor keys")
OTHER_EVENT=$(sha "secure boot on, vendor keys, dbx 2026")
BAD_EVENT=$(sha "secure boot off")
GOOD=$(pcr_after "$GOOD_EVENT")
OTHER=$(pcr_after "$OTHER_EVENT")
BAD=$(pcr_after "$BAD_EVENT")

log "manufacturer CA, verifier PKI, a verifier whose policy gates PCR 7 of Gateway X1"
lab_pki
# The factory's simulated TPM vendor (provision --ek), for the EK-only devices.
"$FACTORY" ca --dir "$T/simvendor" --name "Sim TPM Vendor" --tpm-vendor >"$T/simvendor.log" 2>&1 ||
    die "devid-factory ca --tpm-vendor failed"
cat >"$T/manufacturers.conf" <<EOF
[manufacturer "Acme Devices"]
roots = $T/acme/root.pem
intermediates = $T/acme/intermediate.pem
[tpm_vendor "Sim TPM Vendor"]
roots = $T/simvendor/root.pem
intermediates = $T/simvendor/intermediate.pem
EOF
cat >"$T/policy.conf" <<EOF
[policy]
allow_manufacturer = Acme Devices
[assurance "Acme Devices" "Gateway X1"]
pcr.7 = sha256:$GOOD, sha256:${OTHER^^}
EOF
verifier_start gate --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --manufacturers "$T/manufacturers.conf" --ca-cert "$T/pki/opca.pem" \
    --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" --policy "$T/policy.conf" \
    --ledger "sqlite:$T/ledger.db" || die "verifier did not start"

# enroll NAME OUT [ARGS...]: devid-agent enroll for device NAME.
enroll() {
    local name=$1 out=$2
    shift 2
    agent "$name" enroll --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
        --chain "$T/dev-$name/factory/chain.pem" --out-dir "$out" --tls-version 1.3 \
        --deadline 20 --timeout 10 "$@" >"$out.out" 2>"$out.err"
}

serial_of() {
    openssl x509 -in "$1" -noout -serial 2>/dev/null | cut -d= -f2 | tr 'A-F' 'a-f' |
        sed 's/^\(00\)*//'
}

# ---------------------------------------------------------------------------
log "device G: IAK, PCR 7 extended to an allowed value"
device_new g "$T/acme" SN-BG-GOOD "Gateway X1" --iak || die "device g"
tpm g tpm2_pcrextend "7:sha256=$GOOD_EVENT" || die "tpm2_pcrextend on device g"
check "PCR 7 of device G holds the allowed value" sh -c \
    "$(declare -f tpm); DEVID_TMP='$T'; tpm g tpm2_pcrread sha256:7 | grep -qi '0x$GOOD'"
enroll g "$T/out-g" --iak-handle 0x81020002
rc=$?
check "it enrolls (exit $rc)" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/out-g.err" >&2
serial_g=$(serial_of "$T/out-g/cert.pem")
"$VERIFIER" show --ledger "sqlite:$T/ledger.db" --serial "$serial_g" >"$T/show-g.out" 2>&1
check "show prints the quoted PCR 7 value" grep -qx "quoted pcrs: 7=sha256:$GOOD" "$T/show-g.out"
check "... at assurance iak" grep -q '^assurance: iak ' "$T/show-g.out"
check "the enroll log line names the value" same_text \
    "$("$PY" "$here/logfields.py" "$VERIFIER_LOG" --get pcrs --where event=enroll,result=issued,device_serial=SN-BG-GOOD)" \
    "7=sha256:$GOOD"

log "device O: the other allowed value (given in upper case in the policy), through the pcap TCTI"
device_new o "$T/acme" SN-BG-OTHER "Gateway X1" --iak || die "device o"
tpm o tpm2_pcrextend "7:sha256=$OTHER_EVENT" || die "tpm2_pcrextend on device o"
(
    # shellcheck disable=SC1090
    . "$T/dev-o/env"
    TCTI_PCAP_FILE=$T/o.pcap "$AGENT" enroll --tcti "pcap:$DEV_TCTI" --url "$VERIFIER_URL" \
        --ca-bundle "$T/pki/tls-ca.pem" --chain "$T/dev-o/factory/chain.pem" --out-dir "$T/out-o" \
        --tls-version 1.3 --deadline 20 --timeout 10 --iak-handle 0x81020002
) >"$T/out-o.out" 2>"$T/out-o.err"
rc=$?
check "it enrolls too (exit $rc)" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/out-o.err" >&2
tpm_pcap_commands "$T/o.pcap" >"$T/o.txt" || : >"$T/o.txt"
check "the gate costs one TPM2_PCR_Read and one TPM2_Quote" \
    same_text "$(grep -Ec '^PCR_Read 0x000' "$T/o.txt") $(grep -Ec '^Quote 0x000' "$T/o.txt")" "1 1"

# ---------------------------------------------------------------------------
log "device B: IAK, PCR 7 extended to a value the policy does not allow"
device_new b "$T/acme" SN-BG-BAD "Gateway X1" --iak || die "device b"
tpm b tpm2_pcrextend "7:sha256=$BAD_EVENT" || die "tpm2_pcrextend on device b"
enroll b "$T/out-b" --iak-handle 0x81020002
rc=$?
check "it is refused (exit $rc, not 0)" test $rc -ne 0
check "... and gets no certificate" test ! -e "$T/out-b/cert.pem"
check "... with REASON_PCR_VALUE" grep -q REASON_PCR_VALUE "$T/out-b.err"
check "... naming PCR 7 and its value" grep -q "PCR 7 of model .*Gateway X1.* holds sha256:$BAD" \
    "$T/out-b.err"
check "... and the allowed set" grep -q "allowed: sha256:$GOOD, sha256:$OTHER" "$T/out-b.err"
grep -q "allowed: sha256:$GOOD" "$T/out-b.err" || sed "s/^/    /" "$T/out-b.err" >&2
check "the verifier's log line says the same" sh -c \
    "grep 'result=refused' '$VERIFIER_LOG' | grep 'device_serial=\"SN-BG-BAD\"' | grep -q 'holds sha256:$BAD'"

# ---------------------------------------------------------------------------
log "device N: no IAK, so nothing restricted can sign the quote"
device_new n "$T/acme" SN-BG-NOIAK "Gateway X1" || die "device n"
tpm n tpm2_pcrextend "7:sha256=$GOOD_EVENT" || die "tpm2_pcrextend on device n"
enroll n "$T/out-n"
rc=$?
check "it is refused (exit $rc, not 0) although PCR 7 is allowed" test $rc -ne 0
check "... with REASON_QUOTE_SIGNATURE: a device without an IAK or an AK cannot pass" \
    grep -q "REASON_QUOTE_SIGNATURE.*an IAK, or an AK bound by the EK" "$T/out-n.err"
[[ $rc -ne 0 ]] || sed 's/^/    /' "$T/out-n.err" >&2

# ---------------------------------------------------------------------------
log "device E: no IAK, an ECC EK from the vendor: the AK bound by the EK signs the quote"
device_new e "$T/acme" SN-BG-EKAK "Gateway X1" --ek ecc --ek-ca "$T/simvendor" || die "device e"
tpm e tpm2_pcrextend "7:sha256=$GOOD_EVENT" || die "tpm2_pcrextend on device e"
enroll e "$T/out-e-noak" --ek ecc
rc=$?
check "with the EK but without an AK ([tpm] ak off): refused (exit $rc, not 0)" test $rc -ne 0
check "... REASON_QUOTE_SIGNATURE, naming the AK way out" \
    grep -q "REASON_QUOTE_SIGNATURE.*ak = auto" "$T/out-e-noak.err"
(
    # shellcheck disable=SC1090
    . "$T/dev-e/env"
    TCTI_PCAP_FILE=$T/e.pcap "$AGENT" enroll --tcti "pcap:$DEV_TCTI" --url "$VERIFIER_URL" \
        --ca-bundle "$T/pki/tls-ca.pem" --chain "$T/dev-e/factory/chain.pem" --out-dir "$T/out-e" \
        --tls-version 1.3 --deadline 20 --timeout 10 --ek ecc --ak auto
) >"$T/out-e.out" 2>"$T/out-e.err"
rc=$?
check "with --ak auto it enrolls (exit $rc)" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/out-e.err" >&2
serial_e=$(serial_of "$T/out-e/cert.pem")
"$VERIFIER" show --ledger "sqlite:$T/ledger.db" --serial "$serial_e" >"$T/show-e.out" 2>&1
check "show prints the quoted PCR 7 value" grep -qx "quoted pcrs: 7=sha256:$GOOD" "$T/show-e.out"
check "... at assurance ek" grep -q '^assurance: ek ' "$T/show-e.out"
tpm_pcap_commands "$T/e.pcap" >"$T/e.txt" || : >"$T/e.txt"
check "the AK path costs two TPM2_ActivateCredential and one TPM2_Quote" \
    same_text "$(grep -Ec '^ActivateCredential 0x000' "$T/e.txt") $(grep -Ec '^Quote 0x000' "$T/e.txt")" "2 1"
check "every object it loaded is flushed (CreateLoaded, Load, CreatePrimary: FlushContext)" \
    same_text "$(grep -Ec '^(CreateLoaded|Load|CreatePrimary) 0x000' "$T/e.txt")" \
    "$(grep -Ec '^FlushContext 0x000' "$T/e.txt")"

log "forged AK answers from the interop client, on device E (ECC EK at 0x81010002)"
# akclient WORK ARGS...: the interop client for device E with its EK and an AK.
akclient() {
    local work=$1
    shift
    interop_client e "$VERIFIER_URL" "$work" --ek-handle 0x81010002 --ak-handle 0x81020011 "$@"
}
akclient "$T/ak-ok" --key-handle 0x81020010
rc=$?
check "the client with an AK bound by the EK enrolls (exit $rc, want 0)" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/ak-ok.log" >&2
check "... the verifier made the AK credential" same_text "$(interop_field "$T/ak-ok" ak_credential)" true
akclient "$T/ak-wrong" --key-handle 0x81020012 --fault ak-secret-wrong
rc=$?
check "an AK secret with a bit flipped: refused (exit $rc, want 1)" test $rc -eq 1
[[ $rc -eq 1 ]] || sed 's/^/    /' "$T/ak-wrong.log" >&2
check "... REASON_CREDENTIAL" same_text "$(interop_field "$T/ak-wrong" enroll.reason)" \
    REASON_CREDENTIAL
check "... naming the AK's secret" sh -c \
    "grep -q 'ak_activated_secret' '$T/ak-wrong/result.json'"
akclient "$T/ak-replay" --key-handle 0x81020013 --ak-secret "$T/ak-ok/ak_activated_secret.bin"
rc=$?
check "the AK secret of an earlier challenge, replayed: refused (exit $rc, want 1)" test $rc -eq 1
[[ $rc -eq 1 ]] || sed 's/^/    /' "$T/ak-replay.log" >&2
check "... REASON_CREDENTIAL" same_text "$(interop_field "$T/ak-replay" enroll.reason)" \
    REASON_CREDENTIAL

# ---------------------------------------------------------------------------
log "forged quotes from the interop client, on a device with an IAK and PCR 7 allowed"
device_new f "$T/acme" SN-BG-FORGED "Gateway X1" --iak || die "device f"
tpm f tpm2_pcrextend "7:sha256=$GOOD_EVENT" || die "tpm2_pcrextend on device f"
# client WORK ARGS...: the interop client for device F, certifying with its IAK.
client() {
    local work=$1
    shift
    interop_client f "$VERIFIER_URL" "$work" --iak-handle 0x81020002 \
        --iak-cert "$T/dev-f/factory/iak.pem" "$@"
}
# field WORK KEY[.KEY]: a value from a client's result.json.
field() { interop_field "$@"; }
client "$T/quote-idevid" --fault quote-idevid
rc=$?
check "a quote signed by the unrestricted IDevID: refused (exit $rc, want 1)" test $rc -eq 1
[[ $rc -eq 1 ]] || sed 's/^/    /' "$T/quote-idevid.log" >&2
check "... REASON_QUOTE_SIGNATURE" same_text "$(field "$T/quote-idevid" enroll.reason)" \
    REASON_QUOTE_SIGNATURE
check "... the verifier asked for PCR 7" same_text "$(field "$T/quote-idevid" quote_pcrs)" "[7]"
client "$T/quote-nonce" --key-handle 0x81020003 --fault quote-wrong-nonce
rc=$?
check "a quote over SHA-256(T), not T: refused (exit $rc, want 1)" test $rc -eq 1
[[ $rc -eq 1 ]] || sed 's/^/    /' "$T/quote-nonce.log" >&2
check "... REASON_QUOTE_NONCE" same_text "$(field "$T/quote-nonce" enroll.reason)" \
    REASON_QUOTE_NONCE
client "$T/quote-ok" --key-handle 0x81020004
rc=$?
check "the same client quoting with the IAK over T enrolls (exit $rc, want 0)" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/quote-ok.log" >&2
# The retry after a lost answer: judged by the PCR values recorded with it.
client "$T/quote-again" --resend "$T/quote-ok/enroll_request.bin"
rc=$?
check "its request sent again gets the stored certificate (exit $rc, want 0)" test $rc -eq 0
check "... byte for byte" same_file "$T/quote-ok/cert.der" "$T/quote-again/cert.der"
check "... logged as a replay with the recorded PCR 7" sh -c \
    "grep 'result=replayed' '$VERIFIER_LOG' | grep 'device_serial=\"SN-BG-FORGED\"' |
     grep -q 'pcrs=\"7=sha256:$GOOD\"'"

check "no malformed log lines" "$PY" "$here/logfields.py" "$VERIFIER_LOG" --malformed
verifier_stop_checked
finish
