#!/usr/bin/env bash
# Installs the Debian 12 packages devid needs to build, run its demo and run its
# tests, when any is missing. Uses sudo when not run as root.
set -euo pipefail

build=(cmake make gcc pkg-config libssl-dev openssl libtss2-dev libcurl4-openssl-dev
       libprotobuf-c-dev protobuf-c-compiler libevent-dev libsqlite3-dev libinih-dev)
runtime=(swtpm swtpm-tools tpm2-tools tpm2-openssl tpm2-abrmd libtss2-tcti-tabrmd0 dbus
         iproute2 procps)
tests=(libcmocka-dev clang clang-format-14 libclang-rt-14-dev tinyproxy systemd)

want=("${build[@]}" "${runtime[@]}")
[ "${1:-}" = "--tests" ] && want+=("${tests[@]}")

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
