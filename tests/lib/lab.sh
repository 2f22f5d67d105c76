# shellcheck shell=bash
# tests/lib/lab.sh: a verifier and bare software TPMs for the agent's tests
# and benchmarks, with the command counting of tpm_pcap.sh. Sourcing it
# sources swtpm.sh, devid.sh and tpm_pcap.sh; call devid_tmpdir before these:
#
#   lab_start NAME [ARGS...]     manufacturer CA, lab PKI, a verifier trusting it
#   bare_device DIR SERIAL       a bare swtpm, factory-provisioned; sets TCTI
#   srk_make HANDLE              an SRK in that TPM, as an OS image makes one
#   filter_build                 tests/lib/tcti_filter.c built; sets FILTER
#
# Files: $DEVID_TMP/acme (the manufacturer CA), $DEVID_TMP/pki (the verifier's
# TLS certificate, tls-ca.pem for the agent, the operational CA, the token
# key), $DEVID_TMP/roots, $DEVID_TMP/ledger.db; DIR/factory/chain.pem for
# each device.

DEVID_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
. "$DEVID_LIB/swtpm.sh"
. "$DEVID_LIB/devid.sh"
. "$DEVID_LIB/tpm_pcap.sh"

# lab_start NAME [ARGS...]: the manufacturer CA "Acme Devices", the lab PKI
# and verifier NAME trusting the CA, with a SQLite ledger and ARGS after the
# others. Exports what verifier_start exports; dies when any part fails.
lab_start() {
    local name=$1 t=$DEVID_TMP
    shift
    "$FACTORY" ca --dir "$t/acme" --name "Acme Devices" >/dev/null || die "factory ca failed"
    "$DEV_PKI" --dir "$t/pki" >/dev/null || die "dev pki failed"
    mkdir -p "$t/roots"
    cp "$t/acme/root.pem" "$t/roots/acme.pem"
    verifier_start "$name" --tls-cert "$t/pki/server.pem" --tls-key "$t/pki/server.key" \
        --roots "$t/roots" --intermediates "$t/acme/intermediate.pem" \
        --ca-cert "$t/pki/opca.pem" --ca-key "$t/pki/opca.key" --token-key "$t/pki/token.key" \
        --ledger "sqlite:$t/ledger.db" "$@" || die "verifier did not start"
}

# bare_device DIR SERIAL: a fresh swtpm with its state in DIR/tpm, provisioned
# by the factory straight over its TCTI (no tpm2-abrmd: one client at a
# time) into DIR/factory, with model "Gateway X1". Sets TCTI to the swtpm's
# TCTI string; dies when any part fails.
bare_device() {
    local dir=$1 serial=$2
    mkdir -p "$dir"
    swtpm_start "$dir/tpm" || die "swtpm for $serial did not start"
    TCTI=$SWTPM_TCTI
    "$FACTORY" provision --ca "$DEVID_TMP/acme" --tcti "$TCTI" --serial "$serial" \
        --model "Gateway X1" --out "$dir/factory" >"$dir/factory.log" 2>&1 ||
        die "factory provision of $serial: $(cat "$dir/factory.log")"
}

# srk_make HANDLE: an ECC P-256 storage root key at persistent HANDLE of the
# TPM at TCTI, made with tpm2-tools as an OS image would have made it, its
# transient copy flushed. Dies on failure.
srk_make() {
    (
        export TPM2TOOLS_TCTI=$TCTI
        tpm2_createprimary -Q -C o -g sha256 -G ecc256:aes128cfb -c "$DEVID_TMP/srk.ctx" \
            -a 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda' &&
            tpm2_evictcontrol -Q -C o -c "$DEVID_TMP/srk.ctx" "$1" && tpm2_flushcontext -t
    ) || die "cannot make the SRK with tpm2-tools"
}

# filter_build: tests/lib/tcti_filter.c (a TCTI that plays a TPM lacking some
# commands) built as $DEVID_TMP/libtcti-filter.so, whose path FILTER names for
# a TCTI string ("$FILTER:$TCTI"). Dies when it does not build.
filter_build() {
    FILTER=$DEVID_TMP/libtcti-filter.so
    # shellcheck disable=SC2046 # pkg-config prints several flags
    cc -shared -fPIC -O1 -o "$FILTER" "$DEVID_LIB/tcti_filter.c" \
        $(pkg-config --cflags --libs tss2-tctildr) || die "cannot build tests/lib/tcti_filter.c"
}
