#!/usr/bin/env bash
# The install path: `cmake --install --prefix /usr` into a DESTDIR gives a tree
# whose units systemd-analyze accepts, whose sysusers and tmpfiles entries
# apply, and whose installed programs and example configurations (edited only
# for paths) run the demo enrollment.
set -uo pipefail
TEST_NAME=install
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

command -v systemd-analyze >/dev/null ||
    die "systemd-analyze is missing (deploy/install-deps.sh --tests installs systemd)"
devid_tmpdir
T=$DEVID_TMP
R=$T/root

log "cmake --install --prefix /usr with DESTDIR"
DESTDIR=$R cmake --install "$DEVID_BIN" --prefix /usr >"$T/install.log" 2>&1
rc=$?
check "cmake --install exits 0 (got $rc)" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/install.log" >&2

for f in usr/bin/devid-verifier usr/bin/devid-agent usr/bin/devid-factory usr/bin/devid-dev-pki; do
    check "$f is installed and executable" test -x "$R/$f"
done
UNITS="devid-verifier.service devid-agent.service devid-agent-renew.service devid-agent-renew.timer"
for u in $UNITS; do
    check "unit $u is installed" test -f "$R/usr/lib/systemd/system/$u"
done
for f in usr/lib/sysusers.d/devid.conf usr/lib/tmpfiles.d/devid.conf \
    usr/share/doc/devid/README.md usr/share/doc/devid/examples/verifier.conf.example \
    usr/share/doc/devid/examples/agent.conf.example \
    usr/share/doc/devid/examples/manufacturers.conf.example \
    usr/share/doc/devid/examples/policy.conf.example \
    usr/share/doc/devid/examples/haproxy.cfg.example usr/share/doc/devid/README.postgresql.md \
    usr/share/doc/devid/examples/devid-alerts.yml usr/share/doc/devid/examples/devid.json \
    usr/share/doc/devid/protocol.md usr/share/devid/proto/devid/v1/enroll.proto; do
    check "$f is installed" test -s "$R/$f"
done
# The man pages (deploy/man), gzip-compressed as Debian policy wants, each
# rendered by man(1) without a groff warning.
have man || die "man is missing (deploy/install-deps.sh --tests installs man-db)"
for f in usr/share/man/man8/devid-verifier.8.gz usr/share/man/man8/devid-agent.8.gz \
    usr/share/man/man5/devid-verifier.conf.5.gz usr/share/man/man5/devid-agent.conf.5.gz; do
    check "$f is installed, gzip-compressed" gzip -t "$R/$f"
    LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$R/$f" >"$T/man.out" 2>"$T/man.err"
    rc=$?
    check "man -l renders $f (exit 0, got $rc)" \
        sh -c "test $rc -eq 0 && grep -q 'SEE ALSO' '$T/man.out'"
    check "without a warning" test ! -s "$T/man.err" || sed 's/^/    /' "$T/man.err" >&2
done
check "the installed schema decodes a message (protoc --decode, docs/protocol.md)" \
    sh -c "printf '\\010\\001' | protoc --proto_path='$R/usr/share/devid/proto' \
        --decode=devid.v1.ChallengeRequest devid/v1/enroll.proto | grep -qx 'protocol_version: 1'"
check "no installed unit names /usr/local" \
    test -z "$(grep -l /usr/local "$R"/usr/lib/systemd/system/devid-* 2>&1)"
check "the verifier unit runs the installed binary with /etc/devid/verifier.conf" \
    grep -qx "ExecStart=/usr/bin/devid-verifier serve --config /etc/devid/verifier.conf" \
    "$R/usr/lib/systemd/system/devid-verifier.service"
check "the first-boot unit runs the installed agent" \
    grep -qx "ExecStart=/usr/bin/devid-agent enroll --config /etc/devid/agent.conf" \
    "$R/usr/lib/systemd/system/devid-agent.service"
check "the sysusers entry names the path it is installed at" \
    grep -q "/usr/lib/sysusers.d/devid.conf" "$R/usr/lib/sysusers.d/devid.conf"

A=$T/agent-only
DESTDIR=$A cmake --install "$DEVID_BIN" --prefix /usr --component agent >"$T/install-agent.log" 2>&1
rc=$?
check "cmake --install --component agent exits 0 (got $rc)" test $rc -eq 0
check "the agent component has the agent, its units and its example" \
    test -x "$A/usr/bin/devid-agent" -a -f "$A/usr/lib/systemd/system/devid-agent.service" \
    -a -f "$A/usr/lib/systemd/system/devid-agent-renew.timer" \
    -a -f "$A/usr/share/doc/devid/examples/agent.conf.example"
check "the agent component has nothing of the verifier's" \
    test ! -e "$A/usr/bin/devid-verifier" -a ! -e "$A/usr/lib/systemd/system/devid-verifier.service" \
    -a ! -e "$A/usr/lib/sysusers.d/devid.conf"

# systemd-analyze verify --root checks ExecStart= inside the tree, and needs
# the units ours depend on (sysinit.target, ...): a copy of the tree with the
# host's units beside ours.
V=$T/vroot
cp -a "$R" "$V"
mkdir -p "$V/etc"
cp -rn /usr/lib/systemd/system/. "$V/usr/lib/systemd/system/"
for u in $UNITS; do
    systemd-analyze verify --root="$V" --man=no "/usr/lib/systemd/system/$u" \
        >"$T/verify-$u.out" 2>&1
    rc=$?
    check "systemd-analyze verify --root accepts $u (exit $rc)" \
        test $rc -eq 0 -a ! -s "$T/verify-$u.out"
    [[ -s $T/verify-$u.out ]] && sed 's/^/    /' "$T/verify-$u.out" >&2
done
rm "$V/usr/bin/devid-verifier"
systemd-analyze verify --root="$V" --man=no /usr/lib/systemd/system/devid-verifier.service \
    >"$T/verify-missing.out" 2>&1
rc=$?
check "verify --root refuses the verifier unit when its binary is missing (exit $rc)" \
    sh -c "test $rc -ne 0 && grep -q 'devid-verifier is not executable' '$T/verify-missing.out'"

systemd-sysusers --root="$V" >"$T/sysusers.out" 2>&1
rc=$?
check "systemd-sysusers applies the installed entry (exit $rc)" test $rc -eq 0
check "it creates the devid user" grep -q '^devid:' "$V/etc/passwd"
if [[ $(id -u) -eq 0 ]]; then
    systemd-tmpfiles --root="$V" --create >"$T/tmpfiles.out" 2>&1
    rc=$?
    check "systemd-tmpfiles applies the installed entry (exit $rc)" test $rc -eq 0
    devid_uid=$(awk -F: '$1 == "devid" {print $3}' "$V/etc/passwd")
    check "it makes /var/lib/devid, mode 0750, owned by devid" \
        test "$(stat -c '%a %u' "$V/var/lib/devid" 2>&1)" = "750 ${devid_uid:-none}"
else
    skip "systemd-tmpfiles --create needs root to chown /var/lib/devid"
fi

log "the demo enrollment from the installed programs and example configurations"
VERIFIER=$R/usr/bin/devid-verifier
AGENT=$R/usr/bin/devid-agent
FACTORY=$R/usr/bin/devid-factory
E=$T/etc/devid
S=$T/var/lib/devid
mkdir -p "$E/tls" "$E/ca" "$E/roots" "$S"
"$FACTORY" ca --dir "$T/acme" --name "Acme Devices" >/dev/null || die "factory ca failed"
"$R/usr/bin/devid-dev-pki" --dir "$T/pki" >/dev/null || die "devid-dev-pki failed"
cp "$T/pki/server.pem" "$T/pki/server.key" "$E/tls/"
cp "$T/pki/opca.pem" "$T/pki/opca.key" "$E/ca/"
cp "$T/pki/token.key" "$E/token.key"
cp "$T/acme/root.pem" "$E/roots/acme.pem"
chmod 600 "$E/tls/server.key" "$E/ca/opca.key" "$E/token.key"
sed "s|/etc/devid|$E|g; s|/var/lib/devid|$S|g" \
    "$R/usr/share/doc/devid/examples/verifier.conf.example" >"$E/verifier.conf"
check "the edited configuration differs from the example only in paths" \
    cmp -s <(sed "s|$E|/etc/devid|g; s|$S|/var/lib/devid|g" "$E/verifier.conf") \
    "$R/usr/share/doc/devid/examples/verifier.conf.example"
verifier_start installed --config "$E/verifier.conf" ||
    die "the installed verifier did not start from the example configuration"

device_new inst "$T/acme" SN-INST-0001 "Gateway X1" || die "device"
sed "s|https://verifier.example.com:8443|$VERIFIER_URL|; s|/etc/devid|$T/dev-etc|g" \
    "$R/usr/share/doc/devid/examples/agent.conf.example" >"$T/agent.conf"
mkdir -p "$T/dev-etc"
cp "$T/pki/tls-ca.pem" "$T/dev-etc/verifier-ca.pem"
agent inst enroll --config "$T/agent.conf" --chain "$T/dev-inst/factory/chain.pem" \
    --out-dir "$T/device-out" >"$T/agent.out" 2>"$T/agent.err"
rc=$?
check "the installed agent enrolls against the installed verifier (exit 0, got $rc)" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/agent.err" "$VERIFIER_LOG" >&2
check "its certificate verifies against the operational CA" \
    openssl verify -CAfile "$T/pki/opca.pem" "$T/device-out/cert.pem"
check "the verifier logged the issuance" \
    sh -c "grep 'result=issued' '$VERIFIER_LOG' | grep -q 'SN-INST-0001'"
check "the ledger is where the configuration puts it" test -s "$S/ledger.db"
check "the ledger records the device" \
    sh -c "'$VERIFIER' list --ledger 'sqlite:$S/ledger.db' --device SN-INST-0001 | grep -q SN-INST-0001"
finish
