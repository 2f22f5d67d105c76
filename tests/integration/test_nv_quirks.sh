#!/usr/bin/env bash
# NV quirks of real TPMs, on swtpm: the IDevID certificate padded with 0xFF
# (ST33), behind a TCG stored-certificate header, and the chain at a second
# NV index read through a chain_nv range. Each device enrolls, and the
# verifier records the IDevID certificate's original DER: its SHA-256 in the
# ledger (`show`) is the `openssl x509 -fingerprint` of what the factory
# issued. The verifier gets no --intermediates, so a device enrolls only if
# the intermediate it read from NV reached the verifier intact. Malformed NV
# contents are refused naming the index, and `check-idevid --nv-dump` takes
# the same dumps (exit 0) and refuses malformed ones (exit 78).
set -uo pipefail
TEST_NAME=nv_quirks
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

devid_tmpdir
T=$DEVID_TMP
need xxd
lab_pki

verifier_start main --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --roots "$T/roots" --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" \
    --token-key "$T/pki/token.key" --ledger "sqlite:$T/ledger.db" ||
    die "verifier did not start"

# fp_of PEM: the SHA-256 fingerprint of certificate PEM, lower-case hex.
fp_of() {
    openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/^.*=//; s/://g' | tr 'A-F' 'a-f'
}

# recorded_fp NAME: the IDevID SHA-256 the ledger recorded for the
# certificate device NAME was issued (show's "idevid sha256").
recorded_fp() {
    local serial
    serial=$(openssl x509 -in "$T/out-$1/cert.pem" -noout -serial | cut -d= -f2) || return 1
    "$VERIFIER" show --ledger "sqlite:$T/ledger.db" --serial "$serial" 2>/dev/null |
        sed -n 's/^idevid sha256: *//p' | tr 'A-F' 'a-f'
}

# enroll_device NAME ARGS...: run the agent's enroll for device NAME into
# $T/out-NAME, logs in $T/agent-NAME.{out,err}; returns the agent's exit code.
enroll_device() {
    local name=$1
    shift
    agent "$name" enroll --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
        --out-dir "$T/out-$name" "$@" >"$T/agent-$name.out" 2>"$T/agent-$name.err"
}

# enrolls_original NAME WHAT ARGS...: device NAME enrolls with ARGS, and the
# verifier recorded its factory certificate's fingerprint.
enrolls_original() {
    local name=$1 what=$2 rc want got
    shift 2
    enroll_device "$name" "$@"
    rc=$?
    check "$what: enrolls (exit 0, got $rc)" test "$rc" -eq 0 ||
        sed 's/^/    /' "$T/agent-$name.err" >&2
    want=$(fp_of "$T/dev-$name/factory/idevid.pem")
    got=$(recorded_fp "$name")
    check "$what: the verifier recorded the original IDevID DER (sha256 $want, got ${got:-none})" \
        same_text "$want" "$got"
}

# nv_dump NAME INDEX OUT: the whole contents of NV INDEX of device NAME.
nv_dump() {
    tpm "$1" timeout 30 tpm2_nvread "$2" -o "$3" >/dev/null 2>&1 && [[ -s $3 ]]
}

log "device P: IDevID and chain padded with 0xFF"
device_new p "$T/acme" SN-NV-P1 "Gateway X1" --nv-layout padded \
    --chain-nv-index 0x01C90001 || die "device p"
nv_dump p 0x01C90000 "$T/p-idevid.bin" || die "cannot dump device p's NV"
check "P's NV index ends in 0xFF padding" \
    sh -c "tail -c 256 '$T/p-idevid.bin' | xxd -p | tr -d '\n' | grep -qx '\(ff\)*'"
enrolls_original p "padded" --chain-nv 0x01C90001

log "device H: IDevID and chain behind a TCG header"
device_new h "$T/acme" SN-NV-H1 "Gateway X1" --nv-layout tcg \
    --chain-nv-index 0x01C90001 || die "device h"
nv_dump h 0x01C90000 "$T/h-idevid.bin" || die "cannot dump device h's NV"
nv_dump h 0x01C90001 "$T/h-chain.bin" || die "cannot dump device h's chain NV"
check "H's NV index starts with the TCG header 10 01 00 .. .. 10 02" \
    sh -c "head -c 7 '$T/h-idevid.bin' | xxd -p | grep -q '^100100....1002$'"
enrolls_original h "TCG header" --chain-nv 0x01C90001

log "device C: the chain at a second index, read through a range"
device_new c "$T/acme" SN-NV-C1 "Gateway X1" --nv-layout tcg-padded \
    --chain-nv-index 0x01C00180 || die "device c"
enroll_device c
rc=$?
check "C without its chain is refused: the verifier has no intermediates (exit 1, got $rc)" \
    test "$rc" -eq 1
enrolls_original c "chain in 0x01C00100-0x01C001FF" --chain-nv 0x01C00100-0x01C001FF

log "device R: a range with a second index holding junk"
device_new r "$T/acme" SN-NV-R1 "Gateway X1" --chain-nv-index 0x01C00100 || die "device r"
printf 'not a certificate' >"$T/junk.bin"
tpm r tpm2_nvdefine 0x01C00101 -C o -s 17 -a 'ownerwrite|ownerread|authread|no_da' >/dev/null &&
    tpm r tpm2_nvwrite 0x01C00101 -C o -i "$T/junk.bin" || die "cannot write junk to device r"
enroll_device r --chain-nv 0x01C00100-0x01C001FF
rc=$?
check "junk in a chain index: TPM error, exit 2 (got $rc)" test "$rc" -eq 2
check "the agent names the index and what is wrong" \
    grep -q "NV index 0x01c00101 (17 bytes, in chain_nv 0x01c00100-0x01c001ff) does not hold one intermediate certificate: first byte 0x6e" "$T/agent-r.err"
check "nothing written for R" test ! -e "$T/out-r/cert.pem"

log "device J: bytes after the IDevID certificate that are not padding"
device_new j "$T/acme" SN-NV-J1 "Gateway X1" --chain-nv-index 0x01C90001 || die "device j"
openssl x509 -in "$T/dev-j/factory/idevid.pem" -outform DER -out "$T/j.der"
{ cat "$T/j.der"; printf '\xff\xffAB'; } >"$T/j-junk.bin"
tpm j tpm2_nvundefine -C o 0x01C90000 >/dev/null &&
    tpm j tpm2_nvdefine 0x01C90000 -C o -s "$(stat -c %s "$T/j-junk.bin")" \
        -a 'ownerwrite|ownerread|authread|no_da' >/dev/null &&
    tpm j tpm2_nvwrite 0x01C90000 -C o -i "$T/j-junk.bin" || die "cannot rewrite device j's NV"
enroll_device j --chain-nv 0x01C90001
rc=$?
check "junk after the IDevID: TPM error, exit 2 (got $rc)" test "$rc" -eq 2
check "the agent names the index, its size and the byte" \
    grep -q "NV index 0x01c90000 ($(stat -c %s "$T/j-junk.bin") bytes) does not hold one IDevID certificate: byte 0x41 at offset $(($(stat -c %s "$T/j.der") + 2))" "$T/agent-j.err"

log "check-idevid --nv-dump"
nv_dump p 0x01C90001 "$T/p-chain.bin" || die "cannot dump device p's chain NV"
# check_dump WHAT NAME ARGS...: check-idevid accepts the dumps, exit 0, and
# prints device NAME's original fingerprint.
check_dump() {
    local what=$1 name=$2 rc
    shift 2
    "$VERIFIER" check-idevid --roots "$T/roots" "$@" >"$T/check-$name.out" 2>&1
    rc=$?
    check "check-idevid --nv-dump, $what: accepted (exit 0, got $rc)" test "$rc" -eq 0 ||
        sed 's/^/    /' "$T/check-$name.out" >&2
    check "check-idevid --nv-dump, $what: prints the original fingerprint" \
        grep -qi "$(fp_of "$T/dev-$name/factory/idevid.pem")" "$T/check-$name.out"
}
check_dump "0xFF padded, chain dump" p --nv-dump "$T/p-idevid.bin" "$T/p-chain.bin"
check_dump "TCG header, chain dump" h --nv-dump "$T/h-idevid.bin" "$T/h-chain.bin"
check_dump "TCG header, chain from --intermediates" h \
    --intermediates "$T/acme/intermediate.pem" --nv-dump "$T/h-idevid.bin"
check_dump "plain DER" j --nv-dump "$T/j.der" "$T/p-chain.bin"

# refused_dump WHAT TEXT FILE...: check-idevid refuses the dump as malformed
# (exit 78) and says TEXT.
refused_dump() {
    local what=$1 text=$2 rc
    shift 2
    "$VERIFIER" check-idevid --roots "$T/roots" --nv-dump "$@" >"$T/refused.out" 2>&1
    rc=$?
    check "check-idevid --nv-dump, $what: malformed (exit 78, got $rc)" test "$rc" -eq 78
    check "check-idevid --nv-dump, $what: names the file and the reason" \
        grep -q "NV dump .*$text" "$T/refused.out" || sed 's/^/    /' "$T/refused.out" >&2
}
refused_dump "bytes after the certificate" "byte 0x41 at offset" "$T/j-junk.bin"
head -c $(($(stat -c %s "$T/j.der") - 10)) "$T/j.der" >"$T/truncated.bin"
refused_dump "truncated" "truncated certificate at byte 0" "$T/truncated.bin"
{ head -c 3 "$T/h-idevid.bin"; printf '\x00\x01'; tail -c +6 "$T/h-idevid.bin"; } >"$T/badsize.bin"
refused_dump "TCG header with a wrong certSize" "TCG header certSize" "$T/badsize.bin"
refused_dump "junk as a chain dump" "first byte 0x6e" "$T/p-idevid.bin" "$T/junk.bin"
"$VERIFIER" check-idevid --roots "$T/roots" --nv-dump "$T/missing.bin" >/dev/null 2>&1
rc=$?
check "check-idevid --nv-dump, a missing file: exit 66 (got $rc)" test "$rc" -eq 66

verifier_stop_checked
finish
