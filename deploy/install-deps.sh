#!/usr/bin/env bash
# Installs the Debian 12 packages devid needs, when any is missing. Uses sudo
# when not run as root.
#
#   deploy/install-deps.sh           build devid and run its demo (deploy/demo.sh)
#   deploy/install-deps.sh --tests   also run the whole test suite (tests/run.sh)
#   deploy/install-deps.sh --packages  also build the Debian packages
#                                    (cpack -G DEB, deploy/debian/cpack.cmake)
#
# Each list was found by running the README's commands in a fresh Debian 12
# root (debootstrap minbase plus git, ca-certificates and sudo), not guessed.
# apt's own output is shown when it fails, so a missing package or mirror
# problem is named.
set -euo pipefail

# Compilers, build tools and the -dev packages CMakeLists.txt asks pkg-config for
# (libpq-dev: the verifier's PostgreSQL ledger backend; python3: deploy/man/
# mangen.py builds the man pages, and a minbase root has no python3).
build=(cmake make gcc pkg-config libssl-dev libtss2-dev libcurl4-openssl-dev
       libprotobuf-c-dev protobuf-c-compiler libevent-dev libsqlite3-dev libinih-dev
       libsystemd-dev libpq-dev python3)
# The demo: a software TPM with its resource manager, tpm2-tools for the
# factory simulator, the openssl command for the lab PKI, ss for free ports.
runtime=(openssl swtpm swtpm-tools tpm2-tools tpm2-openssl tpm2-abrmd libtss2-tcti-tabrmd0
         dbus iproute2 procps)
# The test suite: cmocka for unit tests; clang with its sanitizer and fuzzer
# runtime for the libFuzzer targets; the plain clang-format command (the
# clang-format-14 package alone installs only clang-format-14); the curl
# command for raw HTTP checks; tinyproxy for the proxy test; systemd for
# systemd-analyze; python3-protobuf and protobuf-compiler for the interop
# client (tests/interop), which generates its Python bindings with protoc; a
# PostgreSQL server and HAProxy for the ledger's tests on PostgreSQL and the
# replica tests (tests/lib/pg.sh, tests/lib/haproxy.sh); groff-base (groff)
# and man-db (man) to render the man pages with warnings on, in test_man.sh
# and test_install.sh, since a minimal image has neither; prometheus for
# promtool, which checks the live /metrics and the example alerting rules
# (test_service.sh). On a booted system the package starts prometheus.service
# on :9090, which no test uses or minds; in a chroot or a container with
# policy-rc.d it starts nothing. --no-install-recommends keeps
# its exporters and web console out. The sqlite3 command, with which the
# signer and issuance-log tests read and tamper with a ledger file, and xxd,
# with which the NV tests write padded and TCG-framed certificates: a
# minimal image has neither.
# The Debian packages: dpkg-dev for dpkg-shlibdeps (the packages' library
# dependencies) and dpkg-buildflags, file, with which CPack finds the ELF
# files to give dpkg-shlibdeps, and lintian to check the result. The test
# suite builds and checks them too (tests/packaging/test_deb.sh).
packages=(dpkg-dev file lintian)
tests=(libcmocka-dev clang libclang-rt-14-dev clang-format curl tinyproxy systemd
       python3-protobuf protobuf-compiler postgresql haproxy groff-base man-db prometheus
       sqlite3 xxd "${packages[@]}")

usage() {
    echo "usage: $0 [--tests | --packages]" >&2
    exit 64
}

want=("${build[@]}" "${runtime[@]}")
case "${1:-}" in
"") ;;
--tests) want+=("${tests[@]}") ;;
--packages) want+=("${packages[@]}") ;;
*) usage ;;
esac

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
        echo "install-deps: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
        exit 1
    }
    sudo=(sudo)
fi
log=$(mktemp "${TMPDIR:-/tmp}/devid-install-deps.XXXXXX")
trap 'rm -f "$log"' EXIT
if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-deps: apt-get failed (its output is above); packages wanted: ${missing[*]}" >&2
    exit 1
fi
