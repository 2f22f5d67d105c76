#!/usr/bin/env bash
# devid-agent as a first-boot service: configuration, retries and exit codes,
# status, crash safety, the TPM key-type matrix (with and without an IAK), an
# HTTP CONNECT proxy and a TPM restart. Real parts throughout: swtpm behind
# tpm2-abrmd, the factory, devid-verifier, tinyproxy. The one stand-in is
# tests/lib/fake503.c (a verifier that always answers 503 + Retry-After), because
# the real verifier only does that under an overload a test cannot time.
set -uo pipefail
TEST_NAME=agent
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

devid_tmpdir
T=$DEVID_TMP

# expect_rc DESC WANT CMD...: CMD exits WANT.
expect_rc() {
    local desc=$1 want=$2 rc=0
    shift 2
    "$@" || rc=$?
    check "$desc (exit $rc, want $want)" test "$rc" -eq "$want"
}

# conf FILE KEY=VALUE...: write an agent.conf with [section] key = value lines
# given as section.key=value.
conf() {
    local file=$1 kv sec key val last=
    shift
    : >"$file"
    for kv in $(printf '%s\n' "$@" | sort -t. -k1,1 -s); do
        sec=${kv%%.*}
        key=${kv#*.}
        val=${key#*=}
        key=${key%%=*}
        [[ $sec != "$last" ]] && printf '[%s]\n' "$sec" >>"$file"
        last=$sec
        printf '%s = %s\n' "$key" "$val" >>"$file"
    done
}

# no_strays NAME [EXTRA-HANDLES...]: the TPM holds no transient objects and no
# persistent ones beyond the SRK, the IDevID and EXTRA.
# A TPM that cannot be asked fails the check; so does a listing without the
# IDevID, which every device has.
no_strays() {
    local name=$1 h ok=0 out
    shift
    local allowed=" 0x81000001 0x81020000 $* "
    out=$(tpm "$name" tpm2_getcap handles-transient 2>&1) ||
        { log "tpm2_getcap handles-transient failed: $out"; return 1; }
    [[ -z $out ]] || { log "transient objects left: $(tr '\n' ' ' <<<"$out")"; ok=1; }
    out=$(tpm "$name" tpm2_getcap handles-persistent 2>&1) ||
        { log "tpm2_getcap handles-persistent failed: $out"; return 1; }
    [[ $out == *"- 0x81020000"* ]] || { log "no IDevID in the persistent handles: $out"; return 1; }
    for h in $(sed -n 's/^- //p' <<<"$out"); do
        h=$(printf '0x%08x' "$h")
        [[ $allowed == *" $h "* ]] || { log "stray persistent object $h"; ok=1; }
    done
    return $ok
}

# cert_matches NAME OUT [HANDLE]: OUT/cert.pem verifies, is for the key in
# OUT/key.tss2.pem (status says so) and, with HANDLE, for the key at HANDLE.
cert_matches() {
    local name=$1 out=$2 handle=${3:-}
    openssl verify -CAfile "$T/pki/opca.pem" "$out/cert.pem" >/dev/null 2>&1 || return 1
    agent "$name" status --out-dir "$out" ${handle:+--persist-handle "$handle"} \
        >"$T/status.out" 2>&1 || { sed 's/^/    /' "$T/status.out" >&2; return 1; }
    if [[ -n $handle ]]; then
        cert_pub_der "$out/cert.pem" "$T/cm-cert.der" || return 1
        tpm "$name" tpm_pub_der "$handle" "$T/cm-tpm.der" || return 1
        same_file "$T/cm-cert.der" "$T/cm-tpm.der" || return 1
    fi
    [[ -d $out ]] && ! ls "$out" | grep -qE '\.new$|\.tmp\.'
}

# at_least N PATTERN FILE: FILE has at least N lines matching PATTERN.
at_least() {
    local n
    n=$(grep -c -- "$2" "$3" 2>/dev/null)
    [[ $n =~ ^[0-9]+$ ]] && ((n >= $1))
}

# retried_in_order FILE: the agent's log FILE numbers its attempts 1..K in
# order; attempts 1..K-1 each failed and were retried, attempt K did not fail.
retried_in_order() {
    awk '
        /: attempt [0-9]+: enrolling with / {
            n = $0; sub(/.*: attempt /, "", n); sub(/:.*/, "", n)
            if (n != k + 1) { print "    attempt " n " after attempt " k; bad = 1 }
            k = n
        }
        /: attempt [0-9]+ failed / {
            n = $0; sub(/.*: attempt /, "", n); sub(/ .*/, "", n)
            if (n != k) { print "    failure of attempt " n " during attempt " k; bad = 1 }
            failed[n] = 1
        }
        END {
            for (i = 1; i < k; i++) if (!failed[i]) { print "    attempt " i " did not fail"; bad = 1 }
            if (k < 2 || failed[k]) { print "    last attempt " k " failed or was the only one"; bad = 1 }
            exit bad
        }' "$1" >&2
}

# waits_in_deadline FILE: every wait the agent logged in FILE is within its
# ceiling and ends before the deadline (true when it made no retry at all).
waits_in_deadline() {
    ! grep -q "retrying in" "$1" || agent_waits_ok "$1"
}

log "manufacturer CA, verifier PKI"
"$FACTORY" ca --dir "$T/acme" --name "Acme Devices" >/dev/null || die "factory ca failed"
"$DEV_PKI" --dir "$T/pki" >/dev/null || die "dev pki failed"
mkdir -p "$T/roots"
cp "$T/acme/root.pem" "$T/roots/acme.pem"
VARGS=(--tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" --roots "$T/roots"
    --intermediates "$T/acme/intermediate.pem" --ca-cert "$T/pki/opca.pem"
    --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" --metrics-listen ""
    --ledger "sqlite:$T/ledger.db" ${VERIFIER_AS_ROOT[@]+"${VERIFIER_AS_ROOT[@]}"})

# ---------------------------------------------------------------------------
log "configuration file and flags"
device_new a "$T/acme" SN-AG-0001 "Gateway X1" || die "device a"
conf "$T/bad.conf" "verifier.url=https://127.0.0.1:1" "verifier.ca_bundle=$T/pki/tls-ca.pem" \
    "tpm.colour=blue"
agent a enroll --config "$T/bad.conf" >"$T/bad.out" 2>&1
rc=$?
check "unknown key refused with exit 78 (got $rc)" test $rc -eq 78
check "message names file, line and key" grep -q "bad.conf:[0-9]*: unknown key \"colour\" in section \[tpm\]" "$T/bad.out"
printf '[retry]\ndeadline = soon\n' >"$T/bad2.conf"
expect_rc "bad value refused with exit 78" 78 agent a enroll --config "$T/bad2.conf" --url https://x --ca-bundle x
expect_rc "explicit missing config file is an error (78)" 78 \
    agent a enroll --config "$T/none.conf" --url https://x --ca-bundle x
"$AGENT" enroll --url https://127.0.0.1:1 --ca-bundle "$T/pki/tls-ca.pem" \
    --tcti "swtpm:host=127.0.0.1,port=1" --deadline 2 --timeout 1 >"$T/bare.out" 2>&1
rc=$?
check "bare swtpm: TCTI accepted, unreachable TPM retried to the deadline (exit 3, got $rc)" \
    test $rc -eq 3
check "bare swtpm: message names the TCTI" grep -q 'cannot open TPM TCTI "swtpm:' "$T/bare.out"
: >"$T/a-file"
agent a enroll --url https://127.0.0.1:1 --ca-bundle "$T/pki/tls-ca.pem" \
    --out-dir "$T/a-file/out" --deadline 2 --timeout 1 >"$T/outdir.out" 2>&1
rc=$?
check "an output directory that cannot be made is a local error (exit 4, got $rc)" test $rc -eq 4
check "message names the directory" grep -q "cannot create output directory $T/a-file/out" "$T/outdir.out"
expect_rc "bad flag value is a usage error (64)" 64 agent a enroll --url https://x --ca-bundle x --deadline -3
"$AGENT" enroll --help >"$T/help.out"
rc=$?
check "enroll --help exits 0 (got $rc)" test $rc -eq 0
check "--help documents the exit codes" grep -q "^  5   the verifier's TLS certificate is not trusted" "$T/help.out"

# ---------------------------------------------------------------------------
log "verifier down at start: retries with growing jittered delays, then enrolls"
vport=$(devid_free_port)
conf "$T/a.conf" "verifier.url=https://127.0.0.1:$vport" "verifier.ca_bundle=$T/pki/tls-ca.pem" \
    "tpm.chain_file=$T/dev-a/factory/chain.pem" "output.dir=$T/out-a" \
    "retry.deadline=60" "retry.backoff_initial=400" "retry.backoff_max=3000"
agent a enroll --config "$T/a.conf" >"$T/a.out" 2>"$T/a.err" &
apid=$!
# The verifier comes up only after the agent has logged four failed attempts:
# that fixes the order of events, whatever the machine's load.
check "agent retries while the verifier is down (4 failed attempts logged)" \
    wait_for 55 at_least 4 "failed (network); retrying in" "$T/a.err"
log "starting the verifier on port $vport"
"$VERIFIER" serve --listen "127.0.0.1:$vport" "${VARGS[@]}" >"$T/verifier-a.log" 2>&1 &
VPID=$!
DEVID_PIDS+=("$VPID")
DEVID_PIDFILES+=("")
wait_port "$vport" 10 || die "verifier did not start"
wait "$apid"
rc=$?
check "agent enrolls once the verifier is up (exit $rc)" test $rc -eq 0
check "attempts in order: each failed one retried, the last one succeeded" retried_in_order "$T/a.err"
check "the verifier issued exactly one certificate to the device" \
    test "$(grep 'result=issued' "$T/verifier-a.log" | grep -c 'device_serial="SN-AG-0001"')" -eq 1
check "each wait is within its jitter ceiling (<= backoff_max 3 s) and the deadline" \
    agent_waits_ok "$T/a.err"
nfail=$(grep -c "failed (network); retrying in" "$T/a.err")
check "log shows each failed attempt and its reason ($nfail)" test "$nfail" -ge 3
ceilings=$(sed -n 's/.*backoff ceiling \([0-9]*\) ms.*/\1/p' "$T/a.err" | head -4 | tr '\n' ' ')
check "backoff ceilings grow ($ceilings)" test "$ceilings" = "400 800 1600 3000 "
check "delays are jittered (not all equal)" \
    test "$(sed -n 's/.*retrying in \([0-9.]*\) s.*/\1/p' "$T/a.err" | sort -u | wc -l)" -ge 2
check "log names the connection failure" grep -q "Couldn't connect\|Connection refused\|Failed to connect" "$T/a.err"
check "certificate and key agree" cert_matches a "$T/out-a"
[[ $FAILED -eq 0 ]] || sed 's/^/    /' "$T/a.err" >&2

log "idempotence and status"
agent a enroll --config "$T/a.conf" >"$T/a2.out" 2>&1
rc=$?
check "second run: exit 0 (got $rc)" test $rc -eq 0
check "second run: already enrolled" grep -q "already enrolled" "$T/a2.out"
agent a status --config "$T/a.conf" >"$T/status-a.out" 2>&1
rc=$?
check "status exits 0 with a valid certificate (got $rc)" test $rc -eq 0
for want in "serial: SN-AG-0001" "model: Gateway X1" "manufacturer: Acme Devices" \
    "subject: .*serialNumber=SN-AG-0001" "issuer: " "not after: " "blob: $T/out-a/key.tss2.pem" \
    "persistent handle: none"; do
    check "status prints '$want'" grep -q "$want" "$T/status-a.out"
done
expect_rc "status without a certificate exits 1" 1 agent a status --out-dir "$T/nothing"

# ---------------------------------------------------------------------------
log "TPM key and certificate disagree: enroll again, do not trust"
device_new b "$T/acme" SN-AG-0002 "Gateway X1" || die "device b"
conf "$T/b.conf" "verifier.url=https://127.0.0.1:$vport" "verifier.ca_bundle=$T/pki/tls-ca.pem" \
    "tpm.chain_file=$T/dev-b/factory/chain.pem" "output.dir=$T/out-b"
mkdir -p "$T/out-b"
cp "$T/out-a/cert.pem" "$T/out-a/chain.pem" "$T/out-a/key.tss2.pem" "$T/out-b/"
agent b enroll --config "$T/b.conf" >"$T/b.out" 2>"$T/b.err"
rc=$?
check "another TPM's key blob is not trusted, device enrolls again (exit $rc)" test $rc -eq 0
check "log says why the old files are not trusted" grep -q "enrolling again" "$T/b.err"
check "B now has its own certificate" grep -q "SN-AG-0002" <(openssl x509 -in "$T/out-b/cert.pem" -noout -subject)
check "B's certificate matches B's TPM" cert_matches b "$T/out-b"

# ---------------------------------------------------------------------------
log "overloaded verifier (fake503 stand-in): Retry-After: 2 is honoured"
cc -D_GNU_SOURCE -O1 -o "$T/fake503" "$DEVID_SRC/tests/lib/fake503.c" -lssl -lcrypto ||
    die "cannot build tests/lib/fake503.c"
fport=$(devid_free_port)
"$T/fake503" "$fport" "$T/pki/server.pem" "$T/pki/server.key" 2 >"$T/fake503.log" 2>&1 &
DEVID_PIDS+=("$!")
DEVID_PIDFILES+=("")
wait_port "$fport" 5 || die "fake503 did not start"
start=$SECONDS
agent b enroll --url "https://127.0.0.1:$fport" --ca-bundle "$T/pki/tls-ca.pem" \
    --out-dir "$T/out-503" --deadline 9 --timeout 5 >"$T/503.out" 2>"$T/503.err"
rc=$?
check "agent gives up at the deadline with exit 3 (got $rc, $((SECONDS - start)) s)" test $rc -eq 3
n503=$(grep -c "^request [0-9]* at [0-9]*$" "$T/fake503.log")
check "agent asked several times ($n503)" test "$n503" -ge 3
check "one request per attempt the agent logged ($(agent_attempts "$T/503.err") attempts)" \
    test "$(agent_attempts "$T/503.err")" = "$n503"
gaps=$(awk '{ if (p) print $4 - p; p = $4 }' "$T/fake503.log" | tr '\n' ' ')
# A lower bound, measured by fake503's monotonic clock: waiting longer is
# allowed, a loaded machine only makes it longer.
check "each wait between requests was at least 2 s ($gaps ms)" \
    awk -v g="$gaps" 'BEGIN { n = split(g, a, " "); if (n < 2) exit 1
        for (i = 1; i <= n; i++) if (a[i] < 2000) exit 1 }'
check "each wait the agent logged was at least Retry-After and within the deadline" \
    agent_waits_ok "$T/503.err" 2
check "log says Retry-After was honoured" grep -q "Retry-After honoured" "$T/503.err"
check "log says the deadline was reached" grep -q "deadline of 9 s reached\|past the deadline" "$T/503.err"
check "no certificate written after giving up" test ! -e "$T/out-503/cert.pem"

# ---------------------------------------------------------------------------
log "untrusted verifier certificate: stop at once, exit 5"
agent b enroll --url "https://127.0.0.1:$vport" --ca-bundle "$T/acme/root.pem" \
    --out-dir "$T/out-untrusted" --deadline 60 >"$T/untrusted.out" 2>"$T/untrusted.err"
rc=$?
check "exit 5 for an untrusted verifier (got $rc)" test $rc -eq 5
check "stopped at once: one attempt, no retry for an untrusted verifier" \
    agent_one_attempt "$T/untrusted.err"
check "message names the cause" grep -q "TLS certificate is not trusted" "$T/untrusted.err"

log "refusal by policy: stop at once, exit 1"
verifier_start deny "${VARGS[@]}" --deny-model "Gateway X1" || die "verifier deny"
device_new d "$T/acme" SN-AG-0004 "Gateway X1" || die "device d"
agent d enroll --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
    --chain "$T/dev-d/factory/chain.pem" --out-dir "$T/out-d" --deadline 60 \
    >"$T/deny.out" 2>"$T/deny.err"
rc=$?
check "exit 1 for a policy refusal (got $rc)" test $rc -eq 1
check "stopped at once: one attempt, no retry for a policy refusal" agent_one_attempt "$T/deny.err"
check "message names the reason (REASON_POLICY_DENIED)" grep -q "REASON_POLICY_DENIED" "$T/deny.err"
check "the verifier logged the refusal and its reason" \
    sh -c "grep 'result=refused' '$VERIFIER_LOG' | grep 'device_serial=\"SN-AG-0004\"' | grep -q 'reason=\"denied by policy\"'"
check "no certificate written after a refusal" test ! -e "$T/out-d/cert.pem"
stop_pid "$VERIFIER_PID"

# ---------------------------------------------------------------------------
log "crash at each point, then run again"
device_new k "$T/acme" SN-AG-0005 "Gateway X1" || die "device k"
conf "$T/k.conf" "verifier.url=https://127.0.0.1:$vport" "verifier.ca_bundle=$T/pki/tls-ca.pem" \
    "tpm.chain_file=$T/dev-k/factory/chain.pem" "output.dir=$T/out-k" \
    "tpm.persist_handle=0x81020001"
for point in key-created response write commit persist; do
    # Start from an enrolled device whose certificate is gone (as if it had
    # expired), so every point is reached.
    if [[ -e $T/out-k/cert.pem ]]; then
        rm -f "$T/out-k/cert.pem"
    fi
    DEVID_AGENT_CRASH_AT=$point agent k enroll --config "$T/k.conf" >"$T/crash-$point.out" 2>&1
    rc=$?
    check "crash at $point: agent killed (exit $rc)" test $rc -eq 137
    agent k enroll --config "$T/k.conf" >"$T/after-$point.out" 2>&1
    rc=$?
    check "after crash at $point: next run exits 0 (got $rc)" test $rc -eq 0
    [[ $rc -eq 0 ]] || sed 's/^/    /' "$T/crash-$point.out" "$T/after-$point.out" >&2
    check "after crash at $point: one valid cert matching key blob and handle" \
        cert_matches k "$T/out-k" 0x81020001
    check "after crash at $point: no stray TPM objects" no_strays k 0x81020001
done
check "crash after commit is finished, not redone" \
    grep -q "finishing an interrupted write" "$T/after-commit.out"
check "crash during write is rolled back" grep -q "removing .*key.tss2.pem.new" "$T/after-write.out"

# ---------------------------------------------------------------------------
log "key types x IAK"
for kt in ec-p256 ec-p384 rsa2048; do
    for iak in no yes; do
        n=m-$kt-$iak
        fargs=(--key-type "$kt")
        aargs=(--tls-version 1.3)
        if [[ $iak == yes ]]; then
            fargs+=(--iak)
            aargs+=(--iak-handle 0x81020002)
        fi
        device_new "$n" "$T/acme" "SN-$kt-$iak" "Gateway X1" "${fargs[@]}" || die "device $n"
        agent "$n" enroll --url "https://127.0.0.1:$vport" --ca-bundle "$T/pki/tls-ca.pem" \
            --chain "$T/dev-$n/factory/chain.pem" --out-dir "$T/out-$n" "${aargs[@]}" \
            --deadline 20 --timeout 10 >"$T/$n.out" 2>"$T/$n.err"
        rc=$?
        check "$kt IDevID, IAK $iak: enrolls over TLS 1.3 (exit $rc)" test $rc -eq 0
        [[ $rc -eq 0 ]] || sed 's/^/    /' "$T/$n.err" >&2
        check "$kt IDevID, IAK $iak: cert matches" cert_matches "$n" "$T/out-$n"
        if [[ $iak == yes ]]; then
            check "$kt IDevID, IAK yes: verifier saw IAK evidence" \
                grep -q "SN-$kt-yes.*signer=iak\|signer=iak.*SN-$kt-yes" "$T/verifier-a.log"
        else
            check "$kt IDevID, IAK no: verifier saw IDevID evidence" \
                grep -q "SN-$kt-no.*signer=idevid" "$T/verifier-a.log"
        fi
        check "$kt IDevID, IAK $iak: no stray TPM objects" no_strays "$n" \
            $([[ $iak == yes ]] && echo 0x81020002)
    done
done
n=m-ec-p256-yes
agent "$n" enroll --url "https://127.0.0.1:$vport" --ca-bundle "$T/pki/tls-ca.pem" \
    --out-dir "$T/out-iak-missing" --iak-handle 0x81020003 >"$T/iak-missing.out" 2>&1
rc=$?
check "a missing IAK is a TPM error (exit $rc)" test $rc -eq 2
check "message names the IAK handle" grep -q "no IAK at persistent handle 0x81020003" "$T/iak-missing.out"
agent "$n" enroll --url "https://127.0.0.1:$vport" --ca-bundle "$T/pki/tls-ca.pem" \
    --out-dir "$T/out-nv-missing" --idevid-nv 0x01C9000F >"$T/nv-missing.out" 2>&1
rc=$?
check "an undefined IDevID NV index is a TPM error (exit $rc)" test $rc -eq 2
check "message names the NV index and what to check" \
    grep -q "no IDevID certificate in NV index 0x01c9000f: check" "$T/nv-missing.out"
agent "$n" enroll --url "https://127.0.0.1:$vport" --ca-bundle "$T/pki/tls-ca.pem" \
    --out-dir "$T/out-h-missing" --idevid-handle 0x81020009 >"$T/h-missing.out" 2>&1
rc=$?
check "a missing IDevID key is a TPM error (exit $rc)" test $rc -eq 2
check "message names the handle" grep -q "no IDevID key at persistent handle 0x81020009" "$T/h-missing.out"

# ---------------------------------------------------------------------------
log "through an HTTP CONNECT proxy (tinyproxy)"
# deploy/install-deps.sh --tests installs tinyproxy: without it this part fails.
check "tinyproxy is installed (deploy/install-deps.sh --tests)" have tinyproxy
pport=$(devid_free_port)
cat >"$T/tinyproxy.conf" <<EOC
Port $pport
Listen 127.0.0.1
Timeout 30
Allow 127.0.0.1
ConnectPort $vport
LogLevel Connect
LogFile "$T/tinyproxy.log"
PidFile "$T/tinyproxy.pid"
MaxClients 10
EOC
tinyproxy -d -c "$T/tinyproxy.conf" >/dev/null 2>&1 &
DEVID_PIDS+=("$!")
DEVID_PIDFILES+=("")
check "tinyproxy listens" wait_port "$pport" 5
# connects TUNNEL: CONNECT requests tinyproxy logged for the verifier.
connects() {
    local n
    n=$(grep -c "Request (file descriptor [0-9]*): CONNECT 127.0.0.1:$vport HTTP/" \
        "$T/tinyproxy.log" 2>/dev/null)
    echo "${n:-0}"
}
device_new p "$T/acme" SN-AG-0006 "Gateway X1" || die "device p"
agent p enroll --url "https://127.0.0.1:$vport" --ca-bundle "$T/pki/tls-ca.pem" \
    --chain "$T/dev-p/factory/chain.pem" --out-dir "$T/out-p" \
    --proxy "http://127.0.0.1:$pport" >"$T/p.out" 2>"$T/p.err"
rc=$?
check "enrolls through the proxy (exit $rc)" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/p.err" >&2
c1=$(connects)
check "the proxy carried a CONNECT to the verifier ($c1)" test "$c1" -ge 1
device_new p2 "$T/acme" SN-AG-0007 "Gateway X1" || die "device p2"
(
    export https_proxy="http://127.0.0.1:$pport"
    agent p2 enroll --url "https://127.0.0.1:$vport" --ca-bundle "$T/pki/tls-ca.pem" \
        --chain "$T/dev-p2/factory/chain.pem" --out-dir "$T/out-p2" >"$T/p2.out" 2>&1
)
rc=$?
check "https_proxy from the environment is honoured too (exit $rc)" test $rc -eq 0
c2=$(connects)
check "the proxy saw both ($c1, then $c2 CONNECTs)" test "$c2" -gt "$c1"

# ---------------------------------------------------------------------------
log "swtpm restarted in the middle of an enrollment"
stop_pid "$VPID"
device_new r "$T/acme" SN-AG-0008 "Gateway X1" || die "device r"
rport=$SWTPM_PORT
rdir=$SWTPM_DIR
rpid=$SWTPM_PID
agent r enroll --url "https://127.0.0.1:$vport" --ca-bundle "$T/pki/tls-ca.pem" \
    --chain "$T/dev-r/factory/chain.pem" --out-dir "$T/out-r" --deadline 25 --timeout 8 \
    >"$T/r.out" 2>"$T/r.err" &
apid=$!
# Events in order: the agent is retrying (one failed attempt logged), swtpm
# restarts, the agent fails again with the new swtpm, then the verifier comes up.
wait_for 20 at_least 1 " failed (" "$T/r.err" || log "agent logged no failed attempt yet"
log "restarting swtpm on port $rport"
stop_pid "$rpid"
swtpm socket --tpm2 --server "type=tcp,port=$rport,bindaddr=127.0.0.1" \
    --ctrl "type=tcp,port=$((rport + 1)),bindaddr=127.0.0.1" --tpmstate "dir=$rdir" \
    --flags not-need-init,startup-clear --log "file=$rdir/swtpm2.log" \
    --pid "file=$rdir/swtpm2.pid" --daemon || die "swtpm restart"
wait_for 10 test -s "$rdir/swtpm2.pid" || die "swtpm restart wrote no pid file"
DEVID_PIDS+=("$(cat "$rdir/swtpm2.pid")")
DEVID_PIDFILES+=("$rdir/swtpm2.pid")
nf=$(grep -c " failed (" "$T/r.err")
wait_for 20 at_least $((nf + 1)) " failed (" "$T/r.err" ||
    log "agent logged no failed attempt after the restart"
"$VERIFIER" serve --listen "127.0.0.1:$vport" "${VARGS[@]}" >>"$T/verifier-a.log" 2>&1 &
VPID=$!
DEVID_PIDS+=("$VPID")
DEVID_PIDFILES+=("")
wait "$apid"
rc=$?
# Not a wall-clock bound: the agent ended by itself, with a documented code,
# and its own log shows no wait reaching past its 25 s deadline.
check "TPM restart: the agent ended by itself (exit $rc, not a signal)" test $rc -lt 128
check "TPM restart: no wait past the deadline of 25 s (agent's log)" waits_in_deadline "$T/r.err"
if [[ $rc -eq 0 ]]; then
    check "TPM restart: retried and enrolled" cert_matches r "$T/out-r"
else
    check "TPM restart: a clear error (exit $rc) naming the TPM" \
        grep -q "TPM\|tabrmd" "$T/r.err"
    check "TPM restart: exit is TPM (2) or gave up (3), got $rc" test $rc -eq 2 -o $rc -eq 3
    if [[ $rc -eq 3 ]]; then
        check "TPM restart: gave up at the deadline, says the agent" \
            grep -q "deadline of 25 s reached\|past the deadline" "$T/r.err"
    fi
    check "TPM restart: no certificate written" test ! -e "$T/out-r/cert.pem"
fi
log "TPM restart: agent exit $rc; last lines:"
tail -n 4 "$T/r.err" | sed 's/^/    /' >&2

finish
