#!/usr/bin/env bash
# The agent's and the verifier's systemd units pass `systemd-analyze verify`, are hardened, and
# keep systemd from restarting the agent on the exit codes retrying cannot fix.
set -uo pipefail
TEST_NAME=systemd
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

command -v systemd-analyze >/dev/null ||
    die "systemd-analyze is missing (deploy/install-deps.sh --tests installs systemd)"
devid_tmpdir
U=$DEVID_TMP/units
mkdir -p "$U"
# verify checks that ExecStart exists: point it at the build.
UNITS="devid-agent.service devid-agent-renew.service devid-agent-renew.timer devid-verifier.service"
for f in $UNITS; do
    sed "s|/usr/local/bin/devid-agent|$AGENT|; s|/usr/local/bin/devid-verifier|$VERIFIER|" \
        "$DEVID_SRC/deploy/systemd/$f" >"$U/$f"
done

for f in $UNITS; do
    systemd-analyze verify --man=no "$U/$f" >"$DEVID_TMP/verify-$f.out" 2>&1
    rc=$?
    # Outside a booted systemd, verify may mention the host's own units; only
    # lines about ours count.
    ours=$(grep -E "devid-(agent|verifier)" "$DEVID_TMP/verify-$f.out" || true)
    check "systemd-analyze verify $f (exit $rc)" test $rc -eq 0 -a -z "$ours"
    [[ $rc -eq 0 && -z $ours ]] || sed 's/^/    /' "$DEVID_TMP/verify-$f.out" >&2
done

S=$DEVID_SRC/deploy/systemd/devid-agent.service
R=$DEVID_SRC/deploy/systemd/devid-agent-renew.service
for unit in "$S" "$R"; do
    b=$(basename "$unit")
    for want in "ProtectSystem=strict" "ReadWritePaths=/var/lib/devid" "NoNewPrivileges=yes" \
        "PrivateTmp=yes" "DevicePolicy=closed" "DeviceAllow=/dev/tpmrm0 rw" \
        "CapabilityBoundingSet=$" "Type=oneshot"; do
        check "$b has $want" grep -q "^$want" "$unit"
    done
done
check "first-boot unit waits for the network" grep -q "^After=network-online.target" "$S"
check "first-boot unit wants the network" grep -q "^Wants=network-online.target" "$S"
check "first-boot unit runs only without a certificate" \
    grep -q "^ConditionPathExists=!/var/lib/devid/cert.pem" "$S"
check "first-boot unit restarts on failure, rate-limited" \
    sh -c "grep -q '^Restart=on-failure' '$S' && grep -q '^StartLimitBurst=' '$S' && grep -q '^StartLimitIntervalSec=' '$S'"
# Every exit code the agent documents as not worth retrying is in
# RestartPreventExitStatus, and 3 (gave up at the deadline) is not.
prevent=" $(sed -n 's/^RestartPreventExitStatus=//p' "$S") "
check "first-boot unit has a RestartPreventExitStatus= list ($prevent)" test -n "${prevent// /}"
"$AGENT" enroll --help >"$DEVID_TMP/help.out"
rc=$?
check "devid-agent enroll --help exits 0 (got $rc)" test $rc -eq 0
for code in 1 2 4 5 64 78; do
    check "exit $code is documented" grep -qE "^  $code +" "$DEVID_TMP/help.out"
    check "exit $code prevents a restart" test "${prevent/ $code /}" != "$prevent"
done
check "exit 3 (deadline) is documented" grep -qE "^  3 +" "$DEVID_TMP/help.out"
check "exit 3 (deadline) is restarted" test -n "${prevent// /}" -a "${prevent/ 3 /}" = "$prevent"
check "timer starts the renew service" \
    sh -c "grep -q '^OnUnitActiveSec=' '$DEVID_SRC/deploy/systemd/devid-agent-renew.timer' && test -e '$R'"
# systemd 252 (Debian 12, what install-deps installs) has --offline: without
# it, this fails rather than leaving the check out.
check "systemd-analyze security has --offline" \
    sh -c "systemd-analyze security --help 2>/dev/null | grep -q -- --offline"
for u in devid-agent.service devid-agent-renew.service; do
    systemd-analyze security --offline=yes --no-pager "$U/$u" >"$DEVID_TMP/security-$u.out" 2>&1
    rc=$?
    score=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p' "$DEVID_TMP/security-$u.out")
    log "systemd-analyze security $u: exposure ${score:-?} (exit $rc)"
    check "systemd-analyze security --offline $u exits 0 (got $rc)" test $rc -eq 0
    [[ $rc -eq 0 ]] || sed 's/^/    /' "$DEVID_TMP/security-$u.out" >&2
    check "$u exposure level is below 3.0 (${score:-none printed})" \
        awk -v s="$score" 'BEGIN { exit !(s != "" && s < 3.0) }'
done

# The verifier's unit starts serve as root so that the keys can be root's
# alone; serve drops both its processes to devid itself (integration.signer
# runs it under the same capability set).
V=$DEVID_SRC/deploy/systemd/devid-verifier.service
check "the verifier unit sets no User= (serve drops to devid after reading root's keys)" \
    bash -c "! grep -q '^User=' '$V'"
check "its only capabilities are the drop's" grep -qx "CapabilityBoundingSet=CAP_SETUID CAP_SETGID" "$V"
check "its system call filter gives back setuid, setgid and setgroups after ~@privileged" \
    sh -c "grep -n '^SystemCallFilter=' '$V' | tail -n 1 | grep -q ':SystemCallFilter=setuid setgid setgroups$'"
check "no StateDirectory= (it would make /var/lib/devid root's)" bash -c "! grep -q '^StateDirectory=' '$V'"
check "/var/lib/devid is its one writable path" grep -qx "ReadWritePaths=/var/lib/devid" "$V"
check "the tmpfiles entry makes /var/lib/devid devid's" \
    grep -qx "d /var/lib/devid 0750 devid devid -" "$DEVID_SRC/deploy/systemd/devid.tmpfiles"
systemd-analyze security --offline=yes --no-pager "$U/devid-verifier.service" \
    >"$DEVID_TMP/security-verifier.out" 2>&1
score=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p' "$DEVID_TMP/security-verifier.out")
log "systemd-analyze security devid-verifier.service: exposure ${score:-?}"
check "devid-verifier.service exposure level is below 3.0 (${score:-none printed})" \
    awk -v s="$score" 'BEGIN { exit !(s != "" && s < 3.0) }'
finish
