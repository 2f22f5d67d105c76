#!/usr/bin/env bash
# tests/packaging/test_deb.sh: the Debian packages, end to end.
#
#   1. builds devid-verifier, devid-agent and devid-tools with
#      `cmake -DDEVID_DEB=ON` and `cpack -G DEB` (deploy/debian/cpack.cmake);
#   2. checks their control data and runs lintian: no error, and no warning
#      but the ones listed in KEPT_WARNINGS below with the reason;
#   3. installs them with `dpkg -i` and `apt-get -f install` into a fresh
#      Debian 12 root (a tarball of a minimal debootstrap root, FRESH_ROOT_TAR,
#      default /tmp/fresh-root.tar) entered with chroot;
#   4. runs the demo enrollment there from the installed programs and the
#      installed configuration only (demo_root.sh);
#   5. removes and purges them, twice: keeping the ledger (the default) and
#      with devid-verifier/purge-ledger=true; shows what is left each time.
#
# Needs root (chroot, mount, unshare), the tarball and a Debian mirror in the
# host's apt sources; without them it is skipped (exit 77, ctest's
# SKIP_RETURN_CODE) and says why. DEVID_DEB_BUILD=DIR builds in DIR (kept,
# so a second run is incremental); DEVID_KEEP_TMP=1 keeps the root.
#
# Like the integration scripts, checks count failures instead of stopping
# the script (set -u and pipefail, not -e): the closing line is
# "N passed, M failed, K skipped".
set -uo pipefail
TEST_NAME=deb
here=$(cd "$(dirname "$0")" && pwd -P)
src=$(cd "$here/../.." && pwd -P)
FRESH_ROOT_TAR=${FRESH_ROOT_TAR:-/tmp/fresh-root.tar}
PATH_IN=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
PKGS=(devid-verifier devid-agent devid-tools)

# Warnings lintian gives that are kept, one tag per line, with the reason.
#   initial-upload-closes-no-bugs: the packages are not uploaded to Debian,
#     so there is no ITP bug to close.
KEPT_WARNINGS="initial-upload-closes-no-bugs"

log() { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }
# shellcheck source=tests/lib/check.sh
. "$here/../lib/check.sh"
# skip_all REASON: nothing can run here; say why and exit 77.
skip_all() {
    log "SKIP: $*"
    echo "0 passed, 0 failed, 1 skipped"
    exit 77
}
die() {
    log "ERROR: $*"
    FAILED=$((FAILED + 1))
    finish
    exit 1
}

[[ $(id -u) -eq 0 ]] || skip_all "needs root (chroot, mount, dpkg in a root)"
[[ -s $FRESH_ROOT_TAR ]] || skip_all "no fresh Debian 12 root at $FRESH_ROOT_TAR: make one with \
debootstrap --variant=minbase \
--include=git,ca-certificates,sudo bookworm DIR && tar --numeric-owner -cpf $FRESH_ROOT_TAR -C DIR ."
[[ -f /etc/apt/sources.list.d/debian.sources || -s /etc/apt/sources.list ]] ||
    skip_all "no Debian mirror in this machine's apt sources for the root's apt-get"
for t in cmake cpack dpkg-deb dpkg-shlibdeps lintian unshare chroot; do
    command -v "$t" >/dev/null || die "$t is missing (deploy/install-deps.sh --tests installs it)"
done

T=$(mktemp -d "${TMPDIR:-/tmp}/devid-deb.XXXXXX") || die "mktemp failed"
R=$T/root
B=${DEVID_DEB_BUILD:-$T/build}

# mounts_under DIR: mount points at or below DIR, deepest first.
mounts_under() {
    awk -v d="$1" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r
}
# root_pids: processes whose root directory is the test root.
root_pids() {
    local p r
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        [[ $r == "$R" ]] && echo "${p#/proc/}"
    done
}
cleanup() {
    local sig pids m i
    trap - EXIT INT TERM
    for sig in TERM KILL; do
        pids=$(root_pids)
        [[ -z $pids ]] && break
        # shellcheck disable=SC2086
        kill -s "$sig" $pids 2>/dev/null
        for ((i = 0; i < 30; i++)); do
            [[ -z $(root_pids) ]] && break
            sleep 0.1
        done
    done
    for m in $(mounts_under "$R"); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "WARNING: cannot unmount $m"
    done
    if [[ -n $(mounts_under "$R") ]]; then
        log "WARNING: mounts left under $R; not removing $T"
    elif [[ ${DEVID_KEEP_TMP:-0} == 1 ]]; then
        log "kept $T"
    else
        rm -rf --one-file-system -- "$T"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# in_root CMD: run CMD with bash in the root, as a fresh root login would.
in_root() {
    chroot "$R" /usr/bin/env -i HOME=/root USER=root LOGNAME=root TERM=dumb PATH="$PATH_IN" \
        DEBIAN_FRONTEND=noninteractive /bin/bash -c "$1" </dev/null
}
# in_root_log LOG CMD: in_root CMD with its output in LOG; shows the end of
# LOG when CMD fails. Returns CMD's status.
in_root_log() {
    local log=$1 rc
    timeout --kill-after=30 900 chroot "$R" /usr/bin/env -i HOME=/root USER=root LOGNAME=root \
        TERM=dumb PATH="$PATH_IN" DEBIAN_FRONTEND=noninteractive /bin/bash -c "$2" \
        >"$log" 2>&1 </dev/null
    rc=$?
    [[ $rc -eq 0 ]] || { log "    '$2' exited $rc; end of $log:"; tail -n 25 "$log" | sed 's/^/    | /' >&2; }
    return $rc
}

# --- 1. build ------------------------------------------------------------------
log "building the packages in $B (log $T/build.log)"
start=$SECONDS
mkdir -p "$B"
rm -f "$B"/*.deb
{
    cmake -S "$src" -B "$B" -DDEVID_DEB=ON -DDEVID_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
        cmake --build "$B" -j"$(nproc)" && (cd "$B" && cpack -G DEB)
} >"$T/build.log" 2>&1
rc=$?
[[ $rc -eq 0 ]] || { tail -n 40 "$T/build.log" >&2; die "cmake, build or cpack failed (exit $rc)"; }
log "built in $((SECONDS - start)) s"
debs=()
for p in "${PKGS[@]}"; do
    f=$(find "$B" -maxdepth 1 -name "${p}_*.deb" | head -n 1)
    check "cpack made $p" test -s "$f" || die "no $p package"
    debs+=("$f")
done
V=${debs[0]} A=${debs[1]}

# --- 2. control data and lintian -------------------------------------------------
deps=$(dpkg-deb -f "$V" Depends)
log "devid-verifier Depends: $deps"
check "devid-verifier's dependencies come from dpkg-shlibdeps (libevent, libsqlite3, libpq5)" \
    sh -c "echo '$deps' | grep -q 'libevent-core-2.1-7 (>=' && echo '$deps' | grep -q 'libsqlite3-0 (>=' &&
        echo '$deps' | grep -q 'libpq5 (>='"
check "devid-agent's too (libtss2-esys, libcurl4)" \
    sh -c "dpkg-deb -f '$A' Depends | grep -q 'libtss2-esys-3.0.2-0 (>=' &&
        dpkg-deb -f '$A' Depends | grep -q 'libcurl4 (>='"
check "/etc/devid/verifier.conf is devid-verifier's conffile" \
    sh -c "dpkg-deb --ctrl-tarfile '$V' | tar -xOf - ./conffiles | grep -qx /etc/devid/verifier.conf"
mkdir -p "$T/x/v" "$T/x/a"
dpkg-deb -x "$V" "$T/x/v" && dpkg-deb -x "$A" "$T/x/a"
for b in "$T/x/v/usr/bin/devid-verifier" "$T/x/a/usr/bin/devid-agent"; do
    check "$(basename "$b") is stripped" sh -c "file -b '$b' | grep -q ', stripped'"
    check "$(basename "$b") has no test hooks (DEVID_TEST_SIGNER, /test/sign)" \
        sh -c "! grep -aq -e DEVID_TEST_SIGNER -e /test/sign '$b'"
    check "$(basename "$b") is built with BIND_NOW (Debian hardening flags)" \
        sh -c "LC_ALL=C readelf -d '$b' | grep -q 'BIND_NOW'"
done
check "the verifier's unit runs /usr/bin/devid-verifier and names its package's docs" \
    sh -c "grep -qx 'ExecStart=/usr/bin/devid-verifier serve --config /etc/devid/verifier.conf' \
        '$T/x/v/usr/lib/systemd/system/devid-verifier.service' &&
        grep -q 'file:///usr/share/doc/devid-verifier/README.md' \
        '$T/x/v/usr/lib/systemd/system/devid-verifier.service'"
check "the man page names the example where the package puts it" \
    sh -c "zcat '$T/x/v/usr/share/man/man5/devid-verifier.conf.5.gz' |
        grep -q '^.I /usr/share/doc/devid-verifier/examples/verifier.conf.example'"

log "lintian ${debs[*]##*/}"
lintian --info "${debs[@]}" >"$T/lintian.out" 2>&1
rc=$?
sed 's/^/    /' "$T/lintian.out" >&2
check "lintian reports no error (exit $rc)" sh -c "test $rc -eq 0 && ! grep -q '^E: ' '$T/lintian.out'"
unexpected=$(sed -n 's/^W: [^:]*: \([^ ]*\).*/\1/p' "$T/lintian.out" | sort -u | grep -vxF "$KEPT_WARNINGS")
check "lintian warns of nothing but the kept warnings${unexpected:+ (new: $unexpected)}" \
    test -z "$unexpected"

# --- 3. a fresh Debian 12 root ---------------------------------------------------
log "a fresh root from $FRESH_ROOT_TAR in $R"
mkdir -p "$R"
tar --numeric-owner -xpf "$FRESH_ROOT_TAR" -C "$R" || die "cannot unpack $FRESH_ROOT_TAR"
# The tarball's ./ may be 0700 (made in a mktemp directory); a machine's / is
# 0755, and the devid user must be able to walk it.
chmod 0755 "$R"
cp /etc/resolv.conf "$R/etc/resolv.conf"
if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    cp /etc/apt/sources.list.d/debian.sources "$R/etc/apt/sources.list.d/" &&
        rm -f "$R/etc/apt/sources.list"
else
    cp /etc/apt/sources.list "$R/etc/apt/sources.list"
fi
for m in proc sys dev dev/pts; do
    mount --bind "/$m" "$R/$m" || skip_all "cannot bind-mount /$m into a root here"
done
# /run of its own, with /run/systemd/system so that maintainer scripts act
# as on a booted system: deb-systemd-invoke asks policy-rc.d, which logs
# every start request and refuses it (nothing can start in a chroot).
mount -t tmpfs -o mode=0755 tmpfs "$R/run" || die "cannot mount a tmpfs on $R/run"
mkdir -p "$R/run/systemd/system" "$R/root/debs"
cat >"$R/usr/sbin/policy-rc.d" <<'EOF'
#!/bin/sh
echo "$*" >>/var/log/policy-rc.d.log
exit 101
EOF
chmod 0755 "$R/usr/sbin/policy-rc.d"
cp "${debs[@]}" "$R/root/debs/"
check "the root has no devid user and no /var/lib/devid before" \
    sh -c "! grep -q '^devid:' '$R/etc/passwd' && test ! -e '$R/var/lib/devid'"

# --- 4. dpkg -i, apt-get -f install -------------------------------------------------
start=$SECONDS
in_root_log "$T/apt-update.log" "apt-get update -q" || die "apt-get update in the root failed"
in_root "dpkg -i /root/debs/*.deb" >"$T/dpkg-i.log" 2>&1
rc=$?
log "dpkg -i exited $rc (dependencies missing in a fresh root): $(grep -c 'depends on' "$T/dpkg-i.log") unmet"
check "apt-get -f install installs what the packages depend on and configures them" \
    in_root_log "$T/apt-f.log" "apt-get -f install -y -q"
for p in "${PKGS[@]}"; do
    check "$p is installed" sh -c "chroot '$R' dpkg-query -W -f='\${Status}' $p |
        grep -qx 'install ok installed'"
done
log "installed in $((SECONDS - start)) s"
check "every library the programs link is there (ldd: nothing not found)" \
    sh -c "! chroot '$R' ldd /usr/bin/devid-verifier /usr/bin/devid-agent | grep 'not found'"
check "devid-verifier --help runs" in_root "devid-verifier serve --help >/dev/null"
check "postinst made the devid user (a system user, no login shell)" \
    sh -c "chroot '$R' getent passwd devid | awk -F: '\$3 < 1000 && \$6 == \"/var/lib/devid\" && \$7 ~ /nologin\$/' | grep -q ."
check "and /var/lib/devid, mode 0750, owned by devid" \
    test "$(chroot "$R" stat -c '%a %U:%G' /var/lib/devid 2>&1)" = "750 devid:devid"
check "no unit is enabled" \
    sh -c "! ls '$R'/etc/systemd/system/*.wants/devid-* 2>/dev/null | grep -q ."
# start_requests: what maintainer scripts asked deb-systemd-invoke to start
# or restart (try-restart, which starts nothing, is not one).
start_requests() {
    grep -E ' (start|restart|reload-or-restart)$' "$R/var/log/policy-rc.d.log" 2>/dev/null
}
no_devid_start() {
    local r
    r=$(start_requests)
    [[ $r != *devid* ]]
}
check "no maintainer script asked to start a devid unit (policy-rc.d log)" no_devid_start
check "nothing of devid runs" test -z "$(for p in $(root_pids); do
    grep -l devid "/proc/$p/cmdline" 2>/dev/null; done)"

# --- 5. the demo from the installed files ------------------------------------------
log "test tools in the root: swtpm, tpm2-abrmd, dbus (log $T/apt-tools.log)"
in_root_log "$T/apt-tools.log" "apt-get install -y -q --no-install-recommends swtpm tpm2-abrmd \
    libtss2-tcti-tabrmd0 dbus iproute2 procps" || die "cannot install the test tools in the root"
dbus_started() {
    local r
    r=$(start_requests)
    [[ $r == *dbus* ]]
}
check "policy-rc.d does see start requests: dbus's postinst asked (so the check above means something)" \
    dbus_started
mkdir -p "$R/root/devid-test"
cp "$src/tests/lib/swtpm.sh" "$here/demo_root.sh" "$R/root/devid-test/"
echo "127.0.0.1 verifier.example.com" >>"$R/etc/hosts"
log "demo enrollment in the root, in a network namespace of its own"
timeout --kill-after=30 300 unshare --net chroot "$R" /usr/bin/env -i HOME=/root PATH="$PATH_IN" \
    /bin/bash -c 'ip link set lo up && exec bash /root/devid-test/demo_root.sh' \
    >"$T/demo.log" 2>&1 </dev/null
rc=$?
sed 's/^/    /' "$T/demo.log" >&2
n_ok=$(grep -c '^\[deb-root\] ok: ' "$T/demo.log")
n_fail=$(grep -c '^\[deb-root\] FAIL: ' "$T/demo.log")
PASSED=$((PASSED + n_ok))
FAILED=$((FAILED + n_fail))
check "the demo ran to its end (exit $rc, $n_ok checks passed, $n_fail failed)" \
    test "$rc" -eq 0 -a "$n_ok" -ge 10

# --- 6. remove, purge ------------------------------------------------------------
# left: what is left of devid in the root: packages dpkg knows, files under
# /etc/devid and /var/lib/devid, unit state, the user.
left() {
    chroot "$R" sh -c 'dpkg -l "devid-*" 2>/dev/null | grep "^[a-z][a-z]" || true
        find /etc/devid /var/lib/devid /var/lib/systemd/deb-systemd-helper-enabled \
            -path "*devid*" -printf "%p %u:%g %m\n" 2>/dev/null | sort
        getent passwd devid || true' | sed 's/^/    /' >&2
}
check "apt-get remove removes the three packages" \
    in_root_log "$T/remove.log" "apt-get remove -y -q ${PKGS[*]}"
check "the programs are gone, verifier.conf (a conffile) is kept" \
    sh -c "test ! -e '$R/usr/bin/devid-verifier' -a ! -e '$R/usr/bin/devid-agent' \
        -a -f '$R/etc/devid/verifier.conf'"
log "after remove:"
left
check "dpkg --purge, with devid-verifier/purge-ledger at its default (false)" \
    in_root_log "$T/purge.log" "dpkg --purge ${PKGS[*]}"
log "after purge (the ledger kept; the rest of /etc/devid is the operator's keys and files):"
left
check "the ledger is kept" test -s "$R/var/lib/devid/ledger.db"
# only_ledger_left: /var/lib/devid holds the ledger's files and nothing else.
only_ledger_left() {
    local f
    for f in "$R"/var/lib/devid/* "$R"/var/lib/devid/.[!.]*; do
        [[ -e $f ]] || continue
        [[ ${f##*/} == ledger.db* ]] || { log "    also left: $f"; return 1; }
    done
}
check "and it is all that is left in /var/lib/devid (the agent's files went with it)" \
    only_ledger_left
check "the conffile is gone, dpkg knows no devid package" \
    sh -c "test ! -e '$R/etc/devid/verifier.conf' && ! chroot '$R' dpkg -l 'devid-*' 2>/dev/null | grep -q '^[a-z][a-z] '"
check "no unit state is left" \
    test -z "$(find "$R/var/lib/systemd/deb-systemd-helper-enabled" -name '*devid*' 2>/dev/null)"

log "again, with systemd in the root (systemd-sysusers, systemd-tmpfiles) and no devid user yet"
in_root_log "$T/apt-systemd.log" "userdel devid && apt-get install -y -q --no-install-recommends systemd" ||
    die "cannot install systemd in the root"
log "dpkg -i, then apt-get purge with devid-verifier/purge-ledger=true"
check "dpkg -i installs them again (their dependencies are there now)" \
    in_root_log "$T/dpkg-i2.log" "dpkg -i /root/debs/*.deb"
check "systemd-sysusers made the devid user from the packaged entry this time" \
    test "$(chroot "$R" getent passwd devid | cut -d: -f5,6,7)" = \
    "devid enrollment verifier:/var/lib/devid:/usr/sbin/nologin"
check "systemd-tmpfiles gave /var/lib/devid, with the kept ledger, to the new user" \
    test "$(chroot "$R" stat -c '%a %U:%G' /var/lib/devid 2>&1)" = "750 devid:devid"
check "the operator asks for the ledger to go (debconf-set-selections)" \
    in_root_log "$T/debconf.log" \
    "echo 'devid-verifier devid-verifier/purge-ledger boolean true' | debconf-set-selections"
check "apt-get purge" in_root_log "$T/purge2.log" "apt-get purge -y -q ${PKGS[*]}"
log "after purge with purge-ledger=true:"
left
check "the ledger and /var/lib/devid are gone" test ! -e "$R/var/lib/devid"
finish
