#!/usr/bin/env bash
# The TPM commands the agent sends, read from what the pcap TCTI
# (libtss2-tcti-pcap0) records between the agent and a bare swtpm: a first
# enrollment on a device whose SRK exists sends at most 12 and reads no
# public area twice, and every transient object is flushed. Then TPMs smaller
# than swtpm, each still enrolling: one that lacks TPM2_CreateLoaded (the
# agent falls back to TPM2_Create and TPM2_Load), one whose NV buffer is
# smaller than the certificate's first read, and one that nothing has started
# (the agent sends TPM2_Startup). Real parts: swtpm, the factory, tpm2-tools,
# devid-verifier, devid-agent. The stand-in is tests/lib/tcti_filter.c, a
# TCTI that answers for the commands such a TPM lacks, because no software
# TPM here lacks them.
set -uo pipefail
TEST_NAME=tpm_commands
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/lab.sh"

devid_tmpdir
T=$DEVID_TMP
SRK=0x81000001

filter_build
lab_start main

# A bare swtpm, factory-provisioned, with an SRK that tpm2-tools made (as an
# OS image would have).
bare_device "$T/dev" SN-PCAP-1
srk_make "$SRK"

# enroll LABEL [TCTI-PREFIX]: a first enrollment (the output directory
# emptied) through the pcap TCTI, recorded in $T/LABEL.pcap; TCTI-PREFIX
# (such as the filter's path and a colon) goes between the pcap TCTI and the
# swtpm. Leaves the agent's exit status in RC.
enroll() {
    local label=$1 prefix=${2:-}
    rm -rf "$T/out" "$T/$label.pcap"
    RC=0
    TCTI_PCAP_FILE=$T/$label.pcap timeout 90 "$AGENT" enroll --tcti "pcap:$prefix$TCTI" \
        --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" --chain "$T/dev/factory/chain.pem" \
        --out-dir "$T/out" --deadline 60 --timeout 20 >"$T/$label.log" 2>&1 || RC=$?
    ((RC == 0)) || sed 's/^/    agent: /' "$T/$label.log" >&2
    tpm_pcap_commands "$T/$label.pcap" >"$T/$label.txt" || : >"$T/$label.txt"
}

# at_most LABEL N: the capture of LABEL holds at most N TPM commands.
at_most() {
    local n
    n=$(tpm_pcap_total "$T/$1.pcap") || return 1
    ((n <= $2)) && return 0
    log "    $n TPM commands, want at most $2:"
    tpm_pcap_summary "$T/$1.pcap" | sed 's/^/        /' >&2
    return 1
}

# no_public_twice LABEL: no ReadPublic or NV_ReadPublic names a handle that
# an earlier one named.
no_public_twice() {
    local twice
    twice=$(awk '$1 ~ /ReadPublic$/ { print $3 }' "$T/$1.txt" | sort | uniq -d)
    [[ -z $twice ]] && return 0
    log "    public area read more than once: $(tr '\n' ' ' <<<"$twice")"
    return 1
}

# has LABEL LINE: the commands of LABEL include LINE ("NAME RC", a prefix).
has() {
    grep -q "^$2\\b" "$T/$1.txt" || { log "    no \"$2\" in the commands of $1"; return 1; }
}

# clean: the TPM holds no transient object.
clean() {
    local out
    out=$(TPM2TOOLS_TCTI=$TCTI timeout 20 tpm2_getcap handles-transient 2>&1) ||
        { log "    tpm2_getcap handles-transient failed: $out"; return 1; }
    [[ -z $out ]] || { log "    transient objects left: $(tr '\n' ' ' <<<"$out")"; return 1; }
}

# enrolled LABEL: the run succeeded, its certificate verifies, the TPM is
# clean, and a plain second run finds the device enrolled (the key blob loads
# under the SRK).
enrolled() {
    local rc=0
    check "$1: agent enrolls (exit $RC)" test "$RC" -eq 0
    check "$1: certificate verifies against the operational CA" \
        openssl verify -CAfile "$T/pki/opca.pem" "$T/out/cert.pem"
    check "$1: no transient object left in the TPM" clean
    timeout 90 "$AGENT" enroll --tcti "$TCTI" --url "$VERIFIER_URL" \
        --ca-bundle "$T/pki/tls-ca.pem" --chain "$T/dev/factory/chain.pem" --out-dir "$T/out" \
        --deadline 60 >"$T/$1-again.log" 2>&1 || rc=$?
    check "$1: a second run finds it enrolled (exit $rc)" \
        grep -q "already enrolled" "$T/$1-again.log"
}

log "--- first enrollment on a device whose SRK exists"
enroll first
enrolled first
check "first: at most 12 TPM commands" at_most first 12
check "first: no public area read twice" no_public_twice first
check "first: one TPM2_CreateLoaded makes the new key" has first "CreateLoaded 0x000"
check "first: no PCR read or quote without a PCR policy (the boot-state gate)" \
    sh -c "! grep -Eq '^(PCR_Read|Quote) ' '$T/first.txt'"

log "--- a TPM that lacks TPM2_CreateLoaded"
TCTI_FILTER_LACK=0x191 enroll no-createloaded "$FILTER:"
enrolled no-createloaded
check "no-createloaded: the TPM said it lacks TPM2_CreateLoaded" \
    has no-createloaded "CreateLoaded 0x143"
check "no-createloaded: TPM2_Create, then TPM2_Load" \
    sh -c "grep -A1 '^Create 0x000' '$T/no-createloaded.txt' | grep -q '^Load 0x000'"
check "no-createloaded: still at most 12 TPM commands" at_most no-createloaded 12

log "--- the same, told by the kernel's resource manager (TSS2_RESMGR_TPM_RC_LAYER)"
TCTI_FILTER_LACK=0x191 TCTI_FILTER_RC=0xb0143 enroll rm-no-createloaded "$FILTER:"
enrolled rm-no-createloaded
check "rm-no-createloaded: TPM2_Create, then TPM2_Load" \
    sh -c "grep -A1 '^Create 0x000' '$T/rm-no-createloaded.txt' | grep -q '^Load 0x000'"

log "--- a TPM whose NV buffer holds 200 bytes"
TCTI_FILTER_NV_MAX=200 enroll small-nv "$FILTER:"
enrolled small-nv
check "small-nv: a read larger than the NV buffer was refused" has small-nv "NV_Read 0x1c4"
check "small-nv: the certificate was read in smaller pieces" has small-nv "NV_Read 0x000"

log "--- a TPM that nothing has started since power-on"
swtpm_ioctl --tcp "127.0.0.1:$SWTPM_CTRL_PORT" -i || die "swtpm_ioctl -i failed"
enroll unstarted
enrolled unstarted
check "unstarted: the agent sent TPM2_Startup" has unstarted "Startup 0x000"

finish
