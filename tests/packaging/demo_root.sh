#!/usr/bin/env bash
# tests/packaging/demo_root.sh: the demo enrollment inside the Debian 12 root
# that test_deb.sh installed the packages into. It is run there, alone in a
# network namespace of its own, and uses only what the packages installed:
# /usr/bin/devid-*, /etc/devid/verifier.conf as shipped, and the agent's
# example configuration copied unchanged to /etc/devid/agent.conf
# (verifier.example.com, the URL it names, is 127.0.0.1 in this root's
# /etc/hosts). The software TPM, its resource manager and this script's
# helpers (swtpm.sh, beside it) are test tools, not devid's. Prints one
# "ok: ..." or "FAIL: ..." line per check, for test_deb.sh to count.
set -uo pipefail
# shellcheck disable=SC2034 # swtpm.sh's log() prefixes its lines with it
TEST_NAME=deb-root
# shellcheck source=tests/lib/swtpm.sh # copied beside this script in the root
. "$(dirname "$0")/swtpm.sh"

check() {
    local what=$1
    shift
    if "$@"; then
        log "ok: $what"
    else
        log "FAIL: $what"
    fi
}

# wait_port PORT SECONDS: something listens on 127.0.0.1:PORT within SECONDS.
wait_port() {
    local deadline=$((SECONDS + $2))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

devid_tmpdir
T=$DEVID_TMP
E=/etc/devid

check "the programs are the packaged ones in /usr/bin" test \
    "$(command -v devid-verifier) $(command -v devid-agent) $(command -v devid-factory)" = \
    "/usr/bin/devid-verifier /usr/bin/devid-agent /usr/bin/devid-factory"
check "/etc/devid/verifier.conf is the packaged example, unchanged" \
    cmp "$E/verifier.conf" /usr/share/doc/devid-verifier/examples/verifier.conf.example

log "manufacturer: devid-factory ca; operator: devid-dev-pki into the paths verifier.conf names"
devid-factory ca --dir "$T/acme" --name "Acme Devices" >/dev/null || die "devid-factory ca failed"
devid-dev-pki --dir "$T/pki" --host verifier.example.com >/dev/null || die "devid-dev-pki failed"
install -d -m 0755 "$E/roots"
install -d -m 0700 "$E/tls" "$E/ca"
install -m 0644 "$T/pki/server.pem" "$E/tls/server.pem"
install -m 0600 "$T/pki/server.key" "$E/tls/server.key"
install -m 0644 "$T/pki/opca.pem" "$E/ca/opca.pem"
install -m 0600 "$T/pki/opca.key" "$E/ca/opca.key"
# The token key is devid's: the serving process reads it after it drops
# root, at start and on SIGHUP. The TLS and CA keys stay root's.
install -o devid -g devid -m 0600 "$T/pki/token.key" "$E/token.key"
install -m 0644 "$T/acme/root.pem" "$E/roots/acme.pem"

log "verifier: devid-verifier serve --config /etc/devid/verifier.conf, as root with only CAP_SETUID and CAP_SETGID, as the unit starts it"
setpriv --bounding-set=-all,+setuid,+setgid --inh-caps=-all -- \
    devid-verifier serve --config "$E/verifier.conf" >"$T/verifier.log" 2>&1 &
vpid=$!
DEVID_PIDS+=("$vpid")
DEVID_PIDFILES+=("")
wait_port 8443 15
rc=$?
check "the verifier listens on 0.0.0.0:8443, the shipped configuration's address" test $rc -eq 0
if [[ $rc -ne 0 ]]; then
    sed 's/^/    /' "$T/verifier.log" >&2
    exit 1
fi

log "factory line: a software TPM provisioned as SN-DEB-0001"
swtpm_start "$T/tpm" || die "swtpm"
abrmd_start || die "tpm2-abrmd"
devid-factory provision --ca "$T/acme" --tcti "$ABRMD_TCTI" --serial SN-DEB-0001 \
    --model "Gateway X1" --out "$T/factory" >"$T/factory.log" 2>&1 ||
    { sed 's/^/    /' "$T/factory.log" >&2; die "devid-factory provision failed"; }

log "first boot: devid-agent enroll --config /etc/devid/agent.conf (the example, unchanged)"
cp /usr/share/doc/devid-agent/examples/agent.conf.example "$E/agent.conf"
cp "$T/pki/tls-ca.pem" "$E/verifier-ca.pem"
devid-agent enroll --config "$E/agent.conf" --tcti "$ABRMD_TCTI" \
    --chain "$T/factory/chain.pem" >"$T/agent.out" 2>"$T/agent.err"
rc=$?
check "the agent enrolls (exit 0, got $rc)" test $rc -eq 0 ||
    sed 's/^/    /' "$T/agent.err" "$T/verifier.log" >&2
check "it wrote its certificate to /var/lib/devid, the default [output] dir" \
    test -s /var/lib/devid/cert.pem
check "the certificate verifies against the operational CA" \
    openssl verify -CAfile "$E/ca/opca.pem" /var/lib/devid/cert.pem
openssl x509 -in /var/lib/devid/cert.pem -noout -subject -issuer -nameopt RFC2253 2>/dev/null |
    sed 's/^/    /' >&2
check "the verifier logged the issuance" grep -q 'result=issued.*SN-DEB-0001' "$T/verifier.log"
grep 'result=' "$T/verifier.log" | sed 's/^/    /' >&2
check "the serving process runs as the devid user the package made" \
    test "$(ps -o user= -p "$vpid")" = devid
check "the ledger was made by devid, after the drop" \
    test "$(stat -c %U /var/lib/devid/ledger.db)" = devid
kill -TERM "$vpid"
wait "$vpid"
rc=$?
check "the verifier exits 0 on SIGTERM (got $rc)" test $rc -eq 0
check "the ledger at /var/lib/devid/ledger.db records the device" \
    sh -c "devid-verifier list --ledger sqlite:/var/lib/devid/ledger.db --device SN-DEB-0001 |
        grep -q SN-DEB-0001"
