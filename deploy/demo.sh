#!/usr/bin/env bash
# The demo: installs what is missing, builds, factory-provisions a software TPM
# device, starts a verifier with a fresh lab CA, enrolls the device and prints
# the certificate it got. Everything it makes stays in build/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd -P)

deploy/install-deps.sh

# step LOG CMD...: run a build step quietly; when it fails, show its output
# (which names, for example, the missing package) and stop.
step() {
    local log=$1
    shift
    if ! "$@" >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "demo: '$*' failed; its whole output is in $log" >&2
        exit 1
    fi
}
mkdir -p build
echo "building devid in build/ (logs: build/demo-configure.log, build/demo-build.log)"
# The demo needs only the two programs; the test suite (cmocka) is for tests/run.sh.
step build/demo-configure.log cmake -S "$src" -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDEVID_TESTS=OFF
step build/demo-build.log cmake --build build -j"$(nproc)" --target devid-verifier devid-agent

TEST_NAME=demo
DEVID_KEEP_TMP=1
. tests/lib/swtpm.sh
DEVID_BIN=$src/build
. tests/lib/devid.sh
DEVID_TMP=$src/build/demo
rm -rf "$DEVID_TMP"
mkdir -p "$DEVID_TMP"
export DEVID_TMP
T=$DEVID_TMP

echo "1. manufacturer: root and intermediate CA (build/demo/acme)"
"$FACTORY" ca --dir "$T/acme" --name "Acme Devices" >/dev/null
echo "2. factory line: provision a software TPM as device SN-DEMO-0001, model Gateway X1"
device_new demo "$T/acme" SN-DEMO-0001 "Gateway X1"
echo "3. operator: lab PKI and a verifier trusting Acme's root"
"$DEV_PKI" --dir "$T/pki" >/dev/null
mkdir -p "$T/roots"
cp "$T/acme/root.pem" "$T/roots/acme.pem"
verifier_start demo --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --roots "$T/roots" --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" \
    --token-key "$T/pki/token.key" --ledger "sqlite:$T/ledger.db"
echo "   verifier at $VERIFIER_URL, log in $VERIFIER_LOG"
echo "4. first boot: devid-agent enroll"
agent demo enroll --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
    --chain "$T/dev-demo/factory/chain.pem" --out-dir "$T/device-out"
echo
echo "issued certificate:"
openssl x509 -in "$T/device-out/cert.pem" -noout -subject -issuer -serial -enddate \
    -nameopt RFC2253 | sed 's/^/  /'
echo "  written to: $T/device-out/cert.pem (key: $T/device-out/key.tss2.pem)"
echo
echo "verifier's decision:"
grep "result=" "$VERIFIER_LOG" | sed 's/^/  /'
