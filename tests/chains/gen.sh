#!/usr/bin/env bash
# tests/chains/gen.sh OUTDIR: generate the IDevID chain corpus that
# tests/chains/manifest describes. Only the openssl CLI (openssl ca with fixed
# dates, so the verdicts are deterministic at the manifest's --at time) and,
# for the non-DER certificate, bytes edited in bash and re-signed with
# `openssl dgst -sign`. Keys are fresh on every run; nothing in the manifest
# depends on them (the deny-list fingerprint goes into a generated policy).
#
# OUTDIR/<name>.pem   the IDevID, then the intermediates the device supplies
# OUTDIR/*.conf       manufacturers and policy files the manifest names
set -euo pipefail
umask 077

OUT=${1:?usage: gen.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd -P)
W=$OUT/work
rm -rf "$W"
mkdir -p "$W"

readonly OID_HMN=1.3.6.1.5.5.7.8.4
readonly OID_HWTYPE=1.3.6.1.4.1.32473.1.1
# The manifest's clock is 2025-01-01T00:00:00Z (1735689600).
readonly T_PAST=20200101000000Z T_LEAF=20240101000000Z T_END=20440101000000Z
readonly T_ROOT_END=20450101000000Z

die() { echo "gen.sh: $*" >&2; exit 1; }

# genkey SPEC FILE: ec:CURVE, rsa:BITS or ed25519.
genkey() {
    case $1 in
    ec:*) openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:${1#ec:}" \
        -pkeyopt ec_param_enc:named_curve -out "$2" ;;
    rsa:*) openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${1#rsa:}" -out "$2" ;;
    ed25519) openssl genpkey -algorithm ED25519 -out "$2" ;;
    *) die "bad key spec $1" ;;
    esac 2>/dev/null
}

# ca_init DIR: an `openssl ca` state directory for the CA whose key and
# certificate are DIR/key.pem and DIR/cert.pem.
ca_init() {
    local d=$1
    mkdir -p "$d/new"
    : >"$d/index.txt"
    printf '%s\n' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | sed 's/^./1/')" >"$d/serial"
    cat >"$d/ca.cnf" <<EOF
[ca]
default_ca = CA_default
[CA_default]
dir = $d
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir/new
certificate = \$dir/cert.pem
private_key = \$dir/key.pem
unique_subject = no
policy = pol
default_md = sha256
default_crl_days = 30
[pol]
organizationName = optional
commonName = optional
serialNumber = optional
[crl_ext]
authorityKeyIdentifier = keyid:always
EOF
}

# mkcert NAME KEYSPEC SUBJ ISSUER(dir|self) START END EXTENSIONS [MD]
# EXTENSIONS is the body of an openssl extension section. The certificate
# goes to $W/NAME/cert.pem, its key to $W/NAME/key.pem.
mkcert() {
    local name=$1 spec=$2 subj=$3 issuer=$4 start=$5 end=$6 ext=$7 md=${8:-sha256}
    local d=$W/$name args=()
    mkdir -p "$d"
    genkey "$spec" "$d/key.pem"
    printf '[ext]\n%s\n' "$ext" >"$d/ext.cnf"
    openssl req -new -key "$d/key.pem" -subj "$subj" -out "$d/req.csr" 2>/dev/null
    if [[ $issuer == self ]]; then
        ca_init "$d"
        args=(-selfsign -keyfile "$d/key.pem" -config "$d/ca.cnf")
    else
        args=(-config "$W/$issuer/ca.cnf")
    fi
    if [[ $issuer == self ]]; then
        [[ $spec != ed25519 ]] || md=null
    else
        [[ $(cat "$W/$issuer/spec") != ed25519 ]] || md=null
    fi
    openssl ca -batch -notext -preserveDN -utf8 "${args[@]}" -in "$d/req.csr" \
        -out "$d/cert.pem" -startdate "$start" -enddate "$end" -md "$md" \
        -extfile "$d/ext.cnf" -extensions ext >"$d/ca.log" 2>&1 ||
        { cat "$d/ca.log" >&2; die "openssl ca failed for $name"; }
    echo "$spec" >"$d/spec"
    [[ $issuer == self ]] || ca_init "$d"
    [[ -f $d/ca.cnf ]] || ca_init "$d"
}

readonly EXT_ROOT='basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash'
readonly EXT_CA='basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always'

# leaf_ext SERIAL [critical]: IDevID extensions with a hardwareModuleName SAN.
leaf_ext() {
    local crit=${2:+critical, }
    printf '%s\n' 'basicConstraints = critical, CA:FALSE' \
        'keyUsage = critical, digitalSignature' \
        'subjectKeyIdentifier = hash' 'authorityKeyIdentifier = keyid:always' \
        "subjectAltName = ${crit}otherName:$OID_HMN;SEQUENCE:hmn" '[hmn]' \
        "hwType = OID:$OID_HWTYPE" "hwSerialNum = OCTETSTRING:$1"
}

# bundle NAME CERT...: the corpus file NAME.pem.
bundle() {
    local name=$1
    shift
    cat "$@" >"$OUT/$name.pem"
}

# leaf NAME KEYSPEC SERIAL ISSUER [MD] [START] [END]: a normal IDevID bundled
# with ISSUER's certificate.
leaf() {
    mkcert "$1" "$2" "/O=Test/CN=Widget 3000/serialNumber=$3" "$4" "${6:-$T_LEAF}" \
        "${7:-$T_END}" "$(leaf_ext "$3")" "${5:-sha256}"
    bundle "$1" "$W/$1/cert.pem" "$W/$4/cert.pem"
}

# hex FILE / unhex HEX FILE: bytes to and from lowercase hex, bash only.
hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }
unhex() { printf '%b' "$(printf '%s' "$1" | sed 's/../\\x&/g')" >"$2"; }

# der_len N: a DER length field for N.
der_len() {
    local n=$1
    if ((n < 128)); then printf '%02x' "$n"
    elif ((n < 256)); then printf '81%02x' "$n"
    else printf '82%04x' "$n"; fi
}

# nonder NAME ISSUER RESIGN: the IDevID of NAME re-made with its
# basicConstraints "critical" BOOLEAN encoded 0x01 instead of 0xFF (BER, not
# DER). RESIGN=1 signs the edited TBS bytes with ISSUER's key (the signature
# then covers the non-DER bytes as received); RESIGN=0 keeps the old signature.
nonder() {
    local name=$1 issuer=$2 resign=$3 d=$W/$1 h tbs_hdr tbs_len tbs rest sigalg sig body
    openssl x509 -in "$d/cert.pem" -outform DER -out "$d/cert.der"
    h=$(hex "$d/cert.der")
    [[ ${h:0:4} == 3082 && ${h:8:4} == 3082 ]] || die "unexpected DER layout in $name"
    tbs_len=$((16#${h:12:4} + 4))
    tbs=${h:8:$((tbs_len * 2))}
    rest=${h:$((8 + tbs_len * 2))}
    [[ $tbs == *0603551d130101ff* ]] || die "no critical basicConstraints in $name"
    tbs=${tbs/0603551d130101ff/0603551d13010101}
    # rest = AlgorithmIdentifier SEQUENCE, then the signature BIT STRING.
    sigalg=${rest:0:$(((16#${rest:2:2} + 2) * 2))}
    if ((resign)); then
        unhex "$tbs" "$d/tbs.der"
        openssl dgst -sha256 -sign "$W/$issuer/key.pem" -out "$d/sig.bin" "$d/tbs.der"
        sig=$(hex "$d/sig.bin")
        sig=03$(der_len $((${#sig} / 2 + 1)))00$sig
    else
        sig=${rest:${#sigalg}}
    fi
    body=$tbs$sigalg$sig
    unhex "30$(der_len $((${#body} / 2)))$body" "$d/nonder.der"
    openssl x509 -inform DER -in "$d/nonder.der" -out "$d/nonder.pem" 2>/dev/null ||
        die "openssl does not parse the non-DER certificate"
    bundle "$name" "$d/nonder.pem" "$W/$issuer/cert.pem"
}

# ---------------------------------------------------------------------------
# manufacturers
mkcert acme-root ec:P-256 "/O=Acme Devices/CN=Acme Root CA" self $T_PAST $T_ROOT_END "$EXT_ROOT"
mkcert acme-ca ec:P-256 "/O=Acme Devices/CN=Acme IDevID CA" acme-root $T_PAST $T_ROOT_END "$EXT_CA"
mkcert beta-root rsa:3072 "/O=Beta Systems/CN=Beta Root" self $T_PAST $T_ROOT_END "$EXT_ROOT"
mkcert beta-ca rsa:2048 "/O=Beta Systems/CN=Beta IDevID CA" beta-root $T_PAST $T_ROOT_END "$EXT_CA"
mkcert evil-root ec:P-256 "/O=Evil Clones/CN=Evil Root" self $T_PAST $T_ROOT_END "$EXT_ROOT"
mkcert evil-ca ec:P-256 "/O=Evil Clones/CN=Evil IDevID CA" evil-root $T_PAST $T_ROOT_END "$EXT_CA"
cp "$W/acme-root/cert.pem" "$OUT/acme-root.pem"
cp "$W/beta-root/cert.pem" "$OUT/beta-root.pem"
cp "$W/beta-ca/cert.pem" "$OUT/beta-ca.pem"
cp "$W/acme-ca/cert.pem" "$OUT/acme-ca.pem"

# ---------------------------------------------------------------------------
# IDevIDs
leaf good-p256 ec:P-256 SN-P256 acme-ca
leaf good-p384 ec:P-384 SN-P384 acme-ca
leaf good-rsa2048 rsa:2048 SN-RSA2048 acme-ca
leaf good-ed25519 ed25519 SN-ED25519 acme-ca
leaf beta-rsa2048 rsa:2048 SN-BETA-1 beta-ca
bundle beta-config-intermediate "$W/beta-rsa2048/cert.pem"
bundle missing-intermediate "$W/good-p256/cert.pem"
bundle device-intermediate "$W/good-p256/cert.pem" "$W/acme-ca/cert.pem"
leaf expired ec:P-256 SN-EXPIRED acme-ca sha256 20200101000000Z 20240601000000Z
leaf not-yet-valid ec:P-256 SN-FUTURE acme-ca sha256 20260101000000Z $T_END
cp "$OUT/good-p256.pem" "$OUT/before-not-before.pem"
leaf untrusted-root ec:P-256 SN-EVIL evil-ca
bundle untrusted-root-with-root "$W/untrusted-root/cert.pem" "$W/evil-ca/cert.pem" \
    "$W/evil-root/cert.pem"
mkcert self-signed ec:P-256 "/CN=Widget 3000/serialNumber=SN-SELF" self $T_LEAF $T_END \
    "$(leaf_ext SN-SELF)"
bundle self-signed "$W/self-signed/cert.pem"

# intermediates that are not what they claim
mkcert notca-ca ec:P-256 "/O=Acme Devices/CN=Acme Not A CA" acme-root $T_PAST $T_ROOT_END \
    'basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always'
leaf intermediate-not-ca ec:P-256 SN-NOTCA notca-ca
mkcert kuonly-ca ec:P-256 "/O=Acme Devices/CN=Acme KU-only CA" acme-root $T_PAST $T_ROOT_END \
    'keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always'
leaf intermediate-ku-only ec:P-256 SN-KUONLY kuonly-ca
mkcert pl0-ca ec:P-256 "/O=Acme Devices/CN=Acme pathLen 0 CA" acme-root $T_PAST $T_ROOT_END \
    'basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always'
mkcert pl0-sub ec:P-256 "/O=Acme Devices/CN=Acme Sub CA" pl0-ca $T_PAST $T_ROOT_END "$EXT_CA"
leaf pathlen-violation ec:P-256 SN-PATHLEN pl0-sub
bundle pathlen-violation "$W/pathlen-violation/cert.pem" "$W/pl0-sub/cert.pem" \
    "$W/pl0-ca/cert.pem"
mkcert noaki-ca ec:P-256 "/O=Acme Devices/CN=Acme CA without AKI" acme-root $T_PAST \
    $T_ROOT_END 'basicConstraints = CA:TRUE
keyUsage = critical, keyCertSign'
leaf tolerant-intermediate ec:P-256 SN-TOLERANT noaki-ca
mkcert expired-ca ec:P-256 "/O=Acme Devices/CN=Acme Old CA" acme-root $T_PAST \
    20240101000000Z "$EXT_CA"
leaf expired-intermediate ec:P-256 SN-OLDCA expired-ca sha256 20200601000000Z 20231201000000Z

# signatures and algorithms
leaf broken-signature ec:P-256 SN-BROKEN acme-ca
openssl x509 -in "$W/broken-signature/cert.pem" -outform DER -out "$W/broken-signature/b.der"
h=$(hex "$W/broken-signature/b.der")
last=${h: -2}
unhex "${h:0:$((${#h} - 2))}$(printf '%02x' $((16#$last ^ 1)))" "$W/broken-signature/b2.der"
openssl x509 -inform DER -in "$W/broken-signature/b2.der" -out "$W/broken-signature/b2.pem"
bundle broken-signature "$W/broken-signature/b2.pem" "$W/acme-ca/cert.pem"
leaf sha1-signature ec:P-256 SN-SHA1 acme-ca sha1
cp "$OUT/sha1-signature.pem" "$OUT/sha1-allowed.pem"
leaf rsa1024 rsa:1024 SN-RSA1024 acme-ca
cp "$OUT/rsa1024.pem" "$OUT/rsa1024-allowed.pem"
leaf p192 ec:P-192 SN-P192 acme-ca
leaf p224 ec:P-224 SN-P224 acme-ca
mkcert weak-ca rsa:1024 "/O=Acme Devices/CN=Acme Weak CA" acme-root $T_PAST $T_ROOT_END "$EXT_CA"
leaf weak-intermediate ec:P-256 SN-WEAKCA weak-ca

# extensions
ext=$(leaf_ext SN-UNK | sed '/^\[hmn\]/,$d')
ext+=$'\n1.3.6.1.4.1.32473.99 = critical, ASN1:UTF8String:must understand\n'
ext+=$(leaf_ext SN-UNK | sed -n '/^\[hmn\]/,$p')
mkcert unknown-critical ec:P-256 "/O=Test/CN=Widget 3000/serialNumber=SN-UNK" acme-ca \
    $T_LEAF $T_END "$ext"
bundle unknown-critical "$W/unknown-critical/cert.pem" "$W/acme-ca/cert.pem"
mkcert critical-san ec:P-256 "/O=Test/CN=Widget 3000/serialNumber=SN-CRITSAN" acme-ca \
    $T_LEAF $T_END "$(leaf_ext SN-CRITSAN critical)"
bundle critical-san "$W/critical-san/cert.pem" "$W/acme-ca/cert.pem"
mkcert critical-san-permid ec:P-256 "/O=Test/CN=Widget 3000/serialNumber=SN-PERMID" acme-ca \
    $T_LEAF $T_END 'basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectAltName = critical, otherName:1.3.6.1.5.5.7.8.3;SEQUENCE:pid
[pid]
identifierValue = UTF8:SN-PERMID'
bundle critical-san-permid "$W/critical-san-permid/cert.pem" "$W/acme-ca/cert.pem"
mkcert critical-san-unknown ec:P-256 "/O=Test/CN=Widget 3000/serialNumber=SN-CRITUNK" acme-ca \
    $T_LEAF $T_END 'basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectAltName = critical, otherName:1.3.6.1.4.1.32473.77;UTF8:whatever'
bundle critical-san-unknown "$W/critical-san-unknown/cert.pem" "$W/acme-ca/cert.pem"
mkcert empty-subject-san ec:P-256 "/" acme-ca $T_LEAF $T_END "$(leaf_ext SN-EMPTYSUBJ critical)"
bundle empty-subject-san "$W/empty-subject-san/cert.pem" "$W/acme-ca/cert.pem"
mkcert leaf-no-digitalsignature ec:P-256 "/O=Test/CN=Widget 3000/serialNumber=SN-KU" acme-ca \
    $T_LEAF $T_END 'basicConstraints = critical, CA:FALSE
keyUsage = critical, keyEncipherment'
bundle leaf-no-digitalsignature "$W/leaf-no-digitalsignature/cert.pem" "$W/acme-ca/cert.pem"
leaf nonder-boolean ec:P-256 SN-NONDER acme-ca
cp -r "$W/nonder-boolean" "$W/nonder-boolean-unsigned"
nonder nonder-boolean acme-ca 1
nonder nonder-boolean-unsigned acme-ca 0

# identity
mkcert missing-serial ec:P-256 "/O=Test/CN=Widget 3000" acme-ca $T_LEAF $T_END \
    'basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature'
bundle missing-serial "$W/missing-serial/cert.pem" "$W/acme-ca/cert.pem"
mkcert serial-mismatch ec:P-256 "/O=Test/CN=Widget 3000/serialNumber=SN-SUBJECT" acme-ca \
    $T_LEAF $T_END "$(leaf_ext SN-SAN)"
bundle serial-mismatch "$W/serial-mismatch/cert.pem" "$W/acme-ca/cert.pem"
mkcert no-san ec:P-256 "/O=Test/CN=Widget 3000/serialNumber=SN-NOSAN" acme-ca $T_LEAF $T_END \
    'basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature'
bundle no-san "$W/no-san/cert.pem" "$W/acme-ca/cert.pem"

# policy
mkcert denied-model ec:P-256 "/O=Test/CN=Widget Recalled/serialNumber=SN-RECALL" acme-ca \
    $T_LEAF $T_END "$(leaf_ext SN-RECALL)"
bundle denied-model "$W/denied-model/cert.pem" "$W/acme-ca/cert.pem"
cp "$OUT/good-p256.pem" "$OUT/allowed-model.pem"
cp "$OUT/beta-config-intermediate.pem" "$OUT/unlisted-manufacturer.pem"
leaf denylist-serial ec:P-256 SN-STOLEN acme-ca
leaf denylist-fingerprint ec:P-256 SN-CLONED acme-ca
fp=$(openssl x509 -in "$W/denylist-fingerprint/cert.pem" -outform DER | openssl dgst -sha256 -c |
    sed 's/.*= //')
leaf denied-serial-glob ec:P-256 LAB-0042 acme-ca

# revocation: a current CRL revoking SN-REVOKED, a stale one, and one from
# the root only (none from the IDevID CA: "missing")
leaf revoked ec:P-256 SN-REVOKED acme-ca
leaf not-revoked ec:P-256 SN-NOTREVOKED acme-ca
openssl ca -batch -config "$W/acme-ca/ca.cnf" -revoke "$W/revoked/cert.pem" \
    -crl_reason keyCompromise >/dev/null 2>&1 || die "revoke failed"
openssl ca -batch -gencrl -config "$W/acme-ca/ca.cnf" -crlexts crl_ext \
    -crl_lastupdate 20241201000000Z -crl_nextupdate 20250601000000Z \
    -out "$OUT/acme-ca-current.crl" >/dev/null 2>&1 || die "gencrl failed"
openssl ca -batch -gencrl -config "$W/acme-ca/ca.cnf" -crlexts crl_ext \
    -crl_lastupdate 20240101000000Z -crl_nextupdate 20240201000000Z \
    -out "$OUT/acme-ca-stale.crl" >/dev/null 2>&1 || die "gencrl failed"
openssl ca -batch -gencrl -config "$W/acme-root/ca.cnf" -crlexts crl_ext \
    -crl_lastupdate 20241201000000Z -crl_nextupdate 20250601000000Z \
    -out "$OUT/acme-root.crl" >/dev/null 2>&1 || die "gencrl failed"
for n in revoked-hard revoked-soft-stale; do cp "$OUT/revoked.pem" "$OUT/$n.pem"; done
# a CRL that names the IDevID CA as its issuer but is signed by another key
mkcert fake-acme-ca ec:P-256 "/O=Acme Devices/CN=Acme IDevID CA" self $T_PAST $T_ROOT_END \
    "$EXT_ROOT"
openssl ca -batch -gencrl -config "$W/fake-acme-ca/ca.cnf" -crlexts crl_ext \
    -crl_lastupdate 20241201000000Z -crl_nextupdate 20250601000000Z \
    -out "$OUT/acme-ca-forged.crl" >/dev/null 2>&1 || die "gencrl failed"
for n in crl-checked crl-stale-hard crl-stale-soft crl-missing-hard crl-missing-soft \
    crl-wrong-signer-hard; do
    cp "$OUT/not-revoked.pem" "$OUT/$n.pem"
done

# depth: nine CAs below the root (more than CHAIN_MAX_DEPTH), in config
prev=acme-root
: >"$OUT/deep-intermediates.pem"
for i in 1 2 3 4 5 6 7 8 9; do
    mkcert "deep$i" ec:P-256 "/O=Acme Devices/CN=Acme Deep CA $i" $prev $T_PAST $T_ROOT_END \
        "$EXT_CA"
    cat "$W/deep$i/cert.pem" >>"$OUT/deep-intermediates.pem"
    prev=deep$i
done
leaf too-deep ec:P-256 SN-DEEP deep9
bundle too-deep "$W/too-deep/cert.pem"
# max_depth counts certificates from the leaf to the anchor, both counted:
# the default 5 takes three intermediates, not four; max_depth = 8 (the
# ceiling) takes six, not seven.
leaf depth-at-limit ec:P-256 SN-DEPTH5 deep3
bundle depth-at-limit "$W/depth-at-limit/cert.pem"
leaf depth-past-limit ec:P-256 SN-DEPTH6 deep4
bundle depth-past-limit "$W/depth-past-limit/cert.pem"
leaf depth8-at-limit ec:P-256 SN-DEPTH8 deep6
bundle depth8-at-limit "$W/depth8-at-limit/cert.pem"
leaf depth8-past-limit ec:P-256 SN-DEPTH9 deep7
bundle depth8-past-limit "$W/depth8-past-limit/cert.pem"
cp "$OUT/depth-at-limit.pem" "$OUT/depth-lowered.pem"

# end entities only: an IDevID or IAK that is a CA, or may sign certificates
mkcert leaf-ca-flag ec:P-256 "/O=Test/CN=Widget 3000/serialNumber=SN-CAFLAG" acme-ca \
    $T_LEAF $T_END "$(leaf_ext SN-CAFLAG | sed 's/CA:FALSE/CA:TRUE/')"
bundle leaf-ca-flag "$W/leaf-ca-flag/cert.pem" "$W/acme-ca/cert.pem"
mkcert leaf-keycertsign ec:P-256 "/O=Test/CN=Widget 3000/serialNumber=SN-KCS" acme-ca \
    $T_LEAF $T_END "$(leaf_ext SN-KCS | sed 's/digitalSignature$/digitalSignature, keyCertSign/')"
bundle leaf-keycertsign "$W/leaf-keycertsign/cert.pem" "$W/acme-ca/cert.pem"
mkcert leaf-crlsign ec:P-256 "/O=Test/CN=Widget 3000/serialNumber=SN-CRLS" acme-ca \
    $T_LEAF $T_END "$(leaf_ext SN-CRLS | sed 's/digitalSignature$/digitalSignature, cRLSign/')"
bundle leaf-crlsign "$W/leaf-crlsign/cert.pem" "$W/acme-ca/cert.pem"
mkcert iak-ca-flag ec:P-256 "/O=Test/CN=Widget 3000 IAK/serialNumber=SN-IAKCA" acme-ca \
    $T_LEAF $T_END "$(leaf_ext SN-IAKCA | sed 's/CA:FALSE/CA:TRUE/')"
bundle iak-ca-flag "$W/iak-ca-flag/cert.pem" "$W/acme-ca/cert.pem"

# ---------------------------------------------------------------------------
# configuration files
mfr() { # mfr FILE ACME-EXTRA-LINES [BETA]
    {
        printf '[manufacturer "Acme Devices"]\nroots = acme-root.pem\n%s\n' "$2"
        printf '\n[manufacturer "Beta Systems"]\nroots = beta-root.pem\nintermediates = beta-ca.pem\n'
    } >"$OUT/$1"
}
mfr base.conf ''
mfr sha1.conf 'allow_sha1 = yes'
mfr rsa1024.conf 'min_rsa_bits = 1024'
mfr acme-inter.conf 'intermediates = acme-ca.pem'
mfr deep.conf 'intermediates = deep-intermediates.pem'
mfr deep8.conf 'intermediates = deep-intermediates.pem
max_depth = 8'
mfr deep4.conf 'intermediates = deep-intermediates.pem
max_depth = 4'
mfr crl-hard.conf 'crl = acme-ca-current.crl
revocation = hard'
mfr crl-soft-stale.conf 'crl = acme-ca-stale.crl
revocation = soft'
mfr crl-hard-stale.conf 'crl = acme-ca-stale.crl
revocation = hard'
mfr crl-hard-missing.conf 'crl = acme-root.crl
revocation = hard'
mfr crl-soft-missing.conf 'crl = acme-root.crl'
mfr crl-hard-forged.conf 'crl = acme-ca-forged.crl
revocation = hard'
cat >"$OUT/policy.conf" <<EOF
# The corpus policy: Acme only (Beta Systems is trusted but not listed).
[policy]
allow_manufacturer = Acme Devices
deny_model = Widget Recalled
deny_serial = LAB-*
reenroll = deny
require_iak = no

[denylist]
serial = SN-STOLEN
fingerprint = $fp
EOF
# The minimum assurance, per manufacturer and per model.
cat >"$OUT/assurance.conf" <<EOF
[policy]
allow_manufacturer = Acme Devices
allow_manufacturer = Beta Systems

[assurance "Acme Devices"]
minimum = iak

[assurance "Acme Devices" "Widget Legacy"]
minimum = none
EOF
mkcert legacy-model ec:P-256 "/O=Test/CN=Widget Legacy/serialNumber=SN-LEGACY" acme-ca \
    $T_LEAF $T_END "$(leaf_ext SN-LEGACY)"
bundle legacy-model "$W/legacy-model/cert.pem" "$W/acme-ca/cert.pem"
cp "$OUT/good-p256.pem" "$OUT/assurance-mfr.pem"
cp "$OUT/beta-rsa2048.pem" "$OUT/assurance-default.pem"
rm -rf "$W"
echo "gen.sh: corpus in $OUT"
