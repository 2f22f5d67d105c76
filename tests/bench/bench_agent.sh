#!/usr/bin/env bash
# TPM commands per devid-agent run, counted with the pcap TCTI
# (libtss2-tcti-pcap0) wrapped around a bare swtpm: no resource manager in
# between, so every command the agent sends is one the TPM runs. Prints the
# commands by command code and the total for each run; never asserts them
# (STYLE.md: benchmarks print figures). Not run by ctest.
#
#   DEVID_BIN=build tests/bench/bench_agent.sh
#
# The runs, each on a factory-provisioned swtpm (IDevID key and certificate
# in NV, intermediates in a file):
#   (a) first enrollment on a device whose SRK exists (made with tpm2-tools,
#       as an OS image would have made it);
#   (b) first enrollment on a fresh device: the agent creates the SRK;
#   (c) a second run on (b): already enrolled;
#   (d) a renewal on (b): `devid-agent renew --force`;
#   (e)-(g) as (a), (c) and (d) with the new key also at a persistent handle
#       (persist_handle 0x81020001);
#   (h) as (a) on a TPM that lacks TPM2_CreateLoaded, played by
#       tests/lib/tcti_filter.c in front of the swtpm.
#
# Environment:
#   DEVID_BIN          build directory (default: <source>/build)
#   BENCH_KEEP_PCAP    a directory to copy each run's capture into
set -uo pipefail
TEST_NAME=bench_agent
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/lab.sh"

SRK=0x81000001
PERSIST=0x81020001

devid_tmpdir
T=$DEVID_TMP
lab_start bench

SUMMARY=()

# run LABEL DESCRIPTION NAME ARGS...: devid-agent ARGS on device NAME through
# the pcap TCTI (and whatever TCTI PREFIX names between it and the swtpm);
# prints its TPM commands by code and its total.
run() {
    local label=$1 what=$2 name=$3 pcap=$T/$1.pcap rc=0 total
    shift 3
    rm -f "$pcap"
    TCTI_PCAP_FILE=$pcap timeout 120 "$AGENT" "$@" --tcti "pcap:${PREFIX:-}$TCTI" \
        --url "$VERIFIER_URL" \
        --ca-bundle "$T/pki/tls-ca.pem" --chain "$T/dev-$name/factory/chain.pem" \
        --out-dir "$T/out-$name" --deadline 60 --timeout 20 >"$T/$label.log" 2>&1 || rc=$?
    printf '(%s) %s: exit %s\n' "$label" "$what" "$rc"
    ((rc == 0)) || sed 's/^/      agent: /' "$T/$label.log"
    if ! tpm_pcap_summary "$pcap" >"$T/$label.txt"; then
        printf '      no readable capture\n'
        SUMMARY+=("$(printf '(%s) %-52s %s' "$label" "$what" "?")")
        return
    fi
    sed 's/^/      /' "$T/$label.txt"
    [[ -n ${BENCH_KEEP_PCAP:-} ]] && mkdir -p "$BENCH_KEEP_PCAP" && cp "$pcap" "$BENCH_KEEP_PCAP/"
    total=$(sed -n 's/^total //p' "$T/$label.txt")
    SUMMARY+=("$(printf '(%s) %-52s %s' "$label" "$what" "$total")")
}

printf 'devid-agent TPM commands: %s, swtpm %s, tpm2-tss %s\n' "$(uname -m)" \
    "$(swtpm --version 2>&1 | sed -n 's/.*version \([0-9.]*\).*/\1/p')" \
    "$(pkg-config --modversion tss2-esys 2>/dev/null || echo '?')"

bare_device "$T/dev-srk" SN-BENCH-SRK
srk_make "$SRK"
run a "first enrollment, SRK exists" srk enroll
bare_device "$T/dev-fresh" SN-BENCH-FRESH
run b "first enrollment, fresh device (SRK created)" fresh enroll
run c "second run, already enrolled" fresh enroll
run d "renewal (renew --force)" fresh renew --force
bare_device "$T/dev-persist" SN-BENCH-PERSIST
srk_make "$SRK"
run e "first enrollment, SRK exists, persist_handle" persist enroll --persist-handle "$PERSIST"
run f "second run, persist_handle" persist enroll --persist-handle "$PERSIST"
run g "renewal (renew --force), persist_handle" persist renew --force \
    --persist-handle "$PERSIST"
filter_build
bare_device "$T/dev-nocl" SN-BENCH-NOCL
srk_make "$SRK"
PREFIX=$FILTER: TCTI_FILTER_LACK=0x191 run h "first enrollment, SRK exists, no CreateLoaded" \
    nocl enroll

printf '\nTPM commands per run\n'
printf '%s\n' "${SUMMARY[@]}"
exit 0
