#!/usr/bin/env bash
# credvec.sh MAKE_CREDVEC OUT.h: makes the committed credential vectors
# (vectors.h) once. It manufactures a swtpm with swtpm_setup (RSA 2048 EK at
# 0x81010001 and ECC P-384 EK at 0x81010016, as swtpm 0.7 makes them),
# creates an object (a primary key in the owner hierarchy), makes a credential
# for each EK and that object's Name with make_credvec (our MakeCredential),
# and has the TPM recover it with TPM2_ActivateCredential (the RSA EK with a
# PolicySecret(TPM_RH_ENDORSEMENT) session, the ECC EK, which has
# userWithAuth, with its empty password). A vector is written only when the
# TPM gave back exactly the credential. Run by hand:
#   bash tests/unit/verifier/credvec/credvec.sh build/tests/unit/verifier/make_credvec \
#       tests/unit/verifier/credvec/vectors.h
set -euo pipefail
make=$(realpath "$1")
out=$(realpath -m "$2")
d=$(mktemp -d)
trap 'kill $(cat "$d/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$d"' EXIT
cd "$d"
mkdir tpm
# One call makes both EKs (swtpm 0.7: RSA and ECC unless --ecc alone).
swtpm_setup --tpm2 --tpmstate "$d/tpm" --createek >/dev/null
port=$((20000 + RANDOM % 20000))
swtpm socket --tpm2 --server type=tcp,port=$port --ctrl type=tcp,port=$((port + 1)) \
    --tpmstate dir="$d/tpm" --flags not-need-init,startup-clear --daemon --pid file="$d/pid"
export TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=$port
sleep 0.5
# A bare swtpm has 3 object slots and no resource manager: flush after each.
tpm2_createprimary -Q -C o -G ecc -c obj.ctx
tpm2_flushcontext -t
tpm2_readpublic -Q -c obj.ctx -n obj.name
tpm2_flushcontext -t
{
    echo "/* Credential vectors, made by credvec.sh ($(swtpm --version | head -1),"
    echo " * tpm2-tools $(tpm2_createprimary --version | sed -n "s/.*version=\"\([^\"]*\)\".*/\1/p")). Do not edit. */"
    for kind in rsa ecc; do
        if [ $kind = rsa ]; then h=0x81010001; else h=0x81010016; fi
        tpm2_readpublic -Q -c $h -o ek.pub
        "$make" $kind ek.pub obj.name cred.blob >vec.h
        if [ $kind = rsa ]; then
            tpm2_startauthsession -Q --policy-session -S s.ctx
            tpm2_policysecret -Q -S s.ctx -c e
            tpm2_activatecredential -Q -c obj.ctx -C $h -i cred.blob -o got.bin -P session:s.ctx
            tpm2_flushcontext s.ctx
        else
            tpm2_activatecredential -Q -c obj.ctx -C $h -i cred.blob -o got.bin
        fi
        tpm2_flushcontext -t
        want=$(sed -n "/${kind}_credential\\[\\]/,/};/p" vec.h | grep -o '0x..' | tr -d '\n' | sed 's/0x//g')
        [ "$(xxd -p got.bin | tr -d '\n')" = "$want" ] || { echo "credvec: $kind: TPM recovered another credential" >&2; exit 1; }
        cat vec.h
    done
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "credvec: wrote $out"
