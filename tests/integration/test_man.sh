#!/usr/bin/env bash
# The man pages: built from --help and the key tables (deploy/man), they name
# every option of every subcommand's --help and every configuration key, and
# groff renders them without a warning. mancheck.py compares the pages with
# the built binaries' --help, the example configurations and the agent's
# parser; fed a page with one option or key removed, it must fail and name it.
set -uo pipefail
TEST_NAME=man
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

have groff || die "groff is missing (deploy/install-deps.sh --tests installs groff-base)"
devid_tmpdir
T=$DEVID_TMP
PAGES=$DEVID_BIN/deploy/man
MANGEN=$PAGES/devid-mangen
ALL="devid-verifier.8 devid-agent.8 devid-verifier.conf.5 devid-agent.conf.5 devid-factory.1
    devid-dev-pki.1"

mancheck() {
    /usr/bin/python3 "$here/mancheck.py" --verifier "$VERIFIER" --agent "$AGENT" \
        --mangen "$MANGEN" --src "$DEVID_SRC" --pages "$1"
}

# cut PAGE OUT TAG: PAGE without the tagged paragraph whose tag starts with TAG.
cut() {
    /usr/bin/python3 - "$@" <<'PY'
import sys
page, out, tag = sys.argv[1:]
lines, res, skip = open(page).read().splitlines(), [], False
for i, l in enumerate(lines):
    if l == ".TP" and i + 1 < len(lines) and lines[i + 1].startswith(tag):
        skip = True
        continue
    if skip and l[:3] in (".TP", ".SS", ".SH", ".PP"):
        skip = False
    if not skip:
        res.append(l)
open(out, "w").write("\n".join(res) + "\n")
sys.exit(0 if len(res) < len(lines) else 1)
PY
}

for p in $ALL; do
    check "$p was built" test -s "$PAGES/$p"
    LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$PAGES/$p" >"$T/groff.err" 2>&1
    rc=$?
    check "groff -man -ww renders $p without a warning (exit 0, got $rc)" \
        sh -c "test $rc -eq 0 && ! test -s '$T/groff.err'" || sed 's/^/    /' "$T/groff.err" >&2
done

mancheck "$PAGES" >"$T/check.out" 2>&1
rc=$?
check "every --help option and every key is on its page (exit 0, got $rc)" test $rc -eq 0 ||
    sed 's/^/    /' "$T/check.out" >&2

# mutate NAME PAGE TAG EXPECT: a copy of the pages with TAG's entry cut from
# PAGE must fail, naming EXPECT.
mutate() {
    local name=$1 page=$2 tag=$3 expect=$4 d=$T/$1
    mkdir -p "$d"
    cp "$PAGES"/*.[158] "$d"/
    check "$name: the entry is found and cut" cut "$PAGES/$page" "$d/$page" "$tag" || return
    mancheck "$d" >"$d/out" 2>&1
    rc=$?
    check "$name: the check fails (exit 1, got $rc)" test $rc -eq 1
    check "$name: and names $expect" grep -qF -- "$expect" "$d/out" ||
        sed 's/^/    /' "$d/out" >&2
}
mutate serve-option devid-verifier.8 '\fB\-\-max\-handshakes\fR' "--max-handshakes"
mutate crl-option devid-verifier.8 '\fB\-\-next\-update\-hours\fR' "--next-update-hours"
mutate agent-option devid-agent.8 '\fB\-\-deadline\fR' "--deadline"
mutate verifier-key devid-verifier.conf.5 '\fBshutdown_grace\fR' "shutdown_grace"
mutate agent-key devid-agent.conf.5 '\fBbackoff_max\fR' "backoff_max"
mutate factory-option devid-factory.1 '\fB\-\-nv\-layout\fR' "--nv-layout"
mutate dev-pki-option devid-dev-pki.1 '\fB\-\-host\fR' "--host"

finish
