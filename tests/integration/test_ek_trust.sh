#!/usr/bin/env bash
# EK trust on real EK certificates: swtpm_setup --create-ek-cert, with its
# own swtpm_localca (a CA made in this test's directory, the simulated TPM
# vendor), writes an RSA 2048 EK certificate at NV 0x01C00002 and an ECC
# P-384 one at 0x01C00016, as a TPM vendor would. Read back with
# tpm2_nvread, `check-idevid --ek` accepts both against a [tpm_vendor]
# holding that CA, reports the TCG SAN (tpmManufacturer, tpmModel,
# tpmVersion, critical), accepts the same bytes behind a TCG header with
# 0xFF padding, and refuses them (exit 1, "is its TPM vendor configured?")
# when the vendor section names another CA.
set -uo pipefail
TEST_NAME=ek_trust
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

devid_tmpdir
T=$DEVID_TMP
need swtpm_setup
need swtpm_localca
need xxd

mkdir -p "$T/ca" "$T/tpm"
cat >"$T/ca/localca.conf" <<EOC
statedir = $T/ca
signingkey = $T/ca/signkey.pem
issuercert = $T/ca/issuercert.pem
certserial = $T/ca/certserial
EOC
cat >"$T/ca/setup.conf" <<EOC
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $T/ca/localca.conf
create_certs_tool_options = /etc/swtpm-localca.options
active_pcr_banks = sha256
EOC
swtpm_setup --tpm2 --tpmstate "$T/tpm" --create-ek-cert --config "$T/ca/setup.conf" \
    --overwrite >"$T/setup.log" 2>&1 || { cat "$T/setup.log" >&2; die "swtpm_setup failed"; }
swtpm_start "$T/tpm" || die "swtpm did not start"
export TPM2TOOLS_TCTI=$SWTPM_TCTI
tpm2_nvread -Q 0x01c00002 -o "$T/rsa.nv" 2>/dev/null || die "no RSA EK certificate at 0x01C00002"
tpm2_nvread -Q 0x01c00016 -o "$T/ecc.nv" 2>/dev/null || die "no ECC EK certificate at 0x01C00016"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/m.key" \
    -out "$T/m.pem" -subj "/O=Acme Devices/CN=Acme Root" -days 10 2>/dev/null
cat >"$T/m.conf" <<EOC
[manufacturer "Acme Devices"]
roots = m.pem
[tpm_vendor "swtpm"]
roots = ca/swtpm-localca-rootca-cert.pem
intermediates = ca/issuercert.pem
EOC

for kind in rsa ecc; do
    "$VERIFIER" check-idevid --manufacturers "$T/m.conf" --ek "$T/$kind.nv" >"$T/$kind.out" 2>&1
    check "$kind EK certificate accepted (exit 0)" test $? = 0
    check "$kind EK: chain to TPM vendor swtpm" grep -q 'chain: ok, 3 certificates to TPM vendor "swtpm"' "$T/$kind.out"
    check "$kind EK: TCG SAN reported" sh -c "grep -q '^tpm manufacturer: id:00001014' '$T/$kind.out' &&
        grep -q '^tpm model: swtpm' '$T/$kind.out' && grep -q '^subjectAltName: critical' '$T/$kind.out'"
done
check "ecc EK is P-384" grep -q 'EC P-384\|secp384r1\|384 bits' "$T/ecc.out"

# The TCG stored-certificate header and 0xFF padding, as some vendors store it.
len=$(stat -c %s "$T/rsa.nv")
{ printf '\x10\x01\x00'; printf "%04x" $((len + 2)) | xxd -r -p; printf '\x10\x02'
  cat "$T/rsa.nv"; head -c 300 /dev/zero | tr '\0' '\377'; } >"$T/rsa-tcg.nv"
"$VERIFIER" check-idevid --manufacturers "$T/m.conf" --ek "$T/rsa-tcg.nv" >"$T/tcg.out" 2>&1
check "EK behind a TCG header with 0xFF padding accepted" test $? = 0

# An unknown vendor: the section names another CA.
cat >"$T/other.conf" <<EOC
[manufacturer "Acme Devices"]
roots = m.pem
[tpm_vendor "Other"]
roots = m.pem
EOC
"$VERIFIER" check-idevid --manufacturers "$T/other.conf" --ek "$T/rsa.nv" >"$T/other.out" 2>&1
check "EK of an unknown vendor refused (exit 1)" test $? = 1
check "... saying the vendor is not configured" grep -q 'refused: EK certificate not trusted: .*is its TPM vendor configured?' "$T/other.out"

finish
