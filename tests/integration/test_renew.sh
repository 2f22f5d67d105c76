#!/usr/bin/env bash
# devid-agent renew: not due -> nothing happens; due (a tiny renew_at) or
# --force -> a new TPM key and certificate, the verifier's ledger links it to
# the old one and the CRL lists the old one, and the old key is gone from the
# TPM. Then a crash at every point of a renewal, each repaired by the next
# renew or enroll run. Real parts throughout: swtpm behind tpm2-abrmd, the
# factory, devid-verifier with a SQLite ledger, devid-agent.
set -uo pipefail
TEST_NAME=renew
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

devid_tmpdir
T=$DEVID_TMP
H=0x81020001 # the LDevID's persistent handle

# conf FILE NAME OUT [persist [RENEW_AT]]: an agent.conf for device NAME
# writing to OUT, with the LDevID at $H when "persist" is given.
conf() {
    local file=$1 name=$2 out=$3
    shift 3
    {
        printf '[verifier]\nurl = %s\nca_bundle = %s\n' "$VERIFIER_URL" "$T/pki/tls-ca.pem"
        printf '[tpm]\nchain_file = %s\n' "$T/dev-$name/factory/chain.pem"
        [[ $# -gt 0 && $1 == persist ]] && printf 'persist_handle = %s\n' "$H"
        printf '[output]\ndir = %s\n' "$out"
        printf '[retry]\ndeadline = 60\n'
        [[ $# -gt 1 ]] && printf '[renew]\nrenew_at = %s\n' "$2"
    } >"$file"
}

# serial FILE: the certificate's serial, lowercase hex without leading zeros.
serial() {
    openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-Z' 'a-z' | sed 's/^0*//'
}

# cert_pub FILE: the certificate's public key, DER, as hex.
cert_pub() {
    openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | od -An -tx1 | tr -d ' \n'
}

# handle_pub NAME HANDLE: the public key at a persistent handle, DER, as hex.
handle_pub() {
    tpm "$1" tpm2_readpublic -c "$2" -f pem -o /dev/stdout 2>/dev/null |
        openssl pkey -pubin -outform DER 2>/dev/null | od -An -tx1 | tr -d ' \n'
}

# persistent NAME: the persistent handles in device NAME's TPM, one a line.
# Fails when tpm2_getcap fails or the list lacks the IDevID, which every
# device has (an empty list is a failed listing, not a clean TPM).
persistent() {
    local out h
    out=$(tpm "$1" tpm2_getcap handles-persistent 2>&1) ||
        { log "tpm2_getcap handles-persistent failed: $out"; return 1; }
    [[ $out == *"- 0x81020000"* ]] || { log "no IDevID in the persistent handles: $out"; return 1; }
    for h in $(sed -n 's/^- //p' <<<"$out"); do printf '0x%08x\n' "$h"; done
}

# no_strays NAME [EXTRA...]: no transient objects; no persistent ones beyond
# the SRK, the IDevID and EXTRA.
no_strays() {
    local name=$1 h ok=0 out list
    shift
    local allowed=" 0x81000001 0x81020000 $* "
    out=$(tpm "$name" tpm2_getcap handles-transient 2>&1) ||
        { log "tpm2_getcap handles-transient failed: $out"; return 1; }
    [[ -z $out ]] || { log "transient objects left: $(tr '\n' ' ' <<<"$out")"; ok=1; }
    list=$(persistent "$name") || return 1
    for h in $list; do
        [[ $allowed == *" $h "* ]] || { log "stray persistent object $h"; ok=1; }
    done
    return $ok
}

# key_gone NAME PUBHEX: no persistent handle holds that public key (PUBHEX
# must not be empty, and every handle's key must be readable).
key_gone() {
    local h list pub
    [[ -n $2 ]] || { log "key_gone: no key given"; return 1; }
    list=$(persistent "$1") || return 1
    for h in $list; do
        pub=$(handle_pub "$1" "$h")
        [[ -n $pub ]] || { log "cannot read the key at $h"; return 1; }
        [[ $pub != "$2" ]] || { log "old key still at $h"; return 1; }
    done
}

# consistent NAME OUT [HANDLE]: one valid certificate for the key blob (status
# says so), for the key at HANDLE, no staged files, no renewal marker.
consistent() {
    local name=$1 out=$2 handle=${3:-}
    openssl verify -CAfile "$T/pki/opca.pem" "$out/cert.pem" >/dev/null 2>&1 || return 1
    agent "$name" status --out-dir "$out" ${handle:+--persist-handle "$handle"} \
        >"$T/status.out" 2>&1 || { sed 's/^/    /' "$T/status.out" >&2; return 1; }
    if [[ -n $handle ]]; then
        same_text "$(cert_pub "$out/cert.pem")" "$(handle_pub "$name" "$handle")" || return 1
    fi
    [[ -d $out ]] && ! ls "$out" | grep -qE '\.new$|\.tmp\.|^renew\.pending$'
}

issued() { grep -c "result=issued" "$VERIFIER_LOG"; }

# crl_has SERIAL: the verifier's CRL (GET /v1/crl) lists SERIAL, once the
# verifier rebuilt it after the revocation (within its poll interval).
crl_has() {
    crl_lists_soon "$VERIFIER_URL" "$T/pki/tls-ca.pem" "$1"
}

# superseded_by NEW OLD: the ledger's record of NEW names OLD as superseded,
# and OLD is revoked with reason superseded.
superseded_by() {
    [[ -n $1 && -n $2 ]] || { log "superseded_by: a serial is empty"; return 1; }
    "$VERIFIER" show --ledger "sqlite:$T/ledger.db" --serial "$1" >"$T/show-new.out" 2>&1 || return 1
    "$VERIFIER" show --ledger "sqlite:$T/ledger.db" --serial "$2" >"$T/show-old.out" 2>&1 || return 1
    sed -n 's/^supersedes: *//p' "$T/show-new.out" | tr 'A-Z' 'a-z' | sed 's/^0*//' | grep -qx "$2" &&
        grep -q "^status: revoked .*(superseded)" "$T/show-old.out"
}

log "manufacturer CA, verifier PKI, verifier with one-day certificates"
"$FACTORY" ca --dir "$T/acme" --name "Acme Devices" >/dev/null || die "factory ca failed"
"$DEV_PKI" --dir "$T/pki" >/dev/null || die "dev pki failed"
mkdir -p "$T/roots"
cp "$T/acme/root.pem" "$T/roots/acme.pem"
verifier_start main --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --roots "$T/roots" --intermediates "$T/acme/intermediate.pem" \
    --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
    --ledger "sqlite:$T/ledger.db" --validity-days 1 || die "verifier did not start"

# ---------------------------------------------------------------------------
log "usage"
"$AGENT" --help >"$T/help.out" 2>&1
check "devid-agent --help lists renew" grep -q "^  renew " "$T/help.out"
"$AGENT" renew --help >"$T/renew-help.out" 2>&1
check "renew --help documents --force and renew_at" \
    sh -c "grep -q -- '--force' '$T/renew-help.out' && grep -q 'renew_at' '$T/renew-help.out'"
"$AGENT" enroll --force --url https://x --ca-bundle x >/dev/null 2>&1
rc=$?
check "--force is refused for enroll (exit $rc, want 64)" test $rc -eq 64

# ---------------------------------------------------------------------------
log "no certificate yet: renew enrolls"
device_new c "$T/acme" SN-RN-0003 "Gateway X1" || die "device c"
conf "$T/c.conf" c "$T/out-c"
agent c renew --config "$T/c.conf" >"$T/c.out" 2>&1
rc=$?
check "renew without a certificate exits 0 (got $rc)" test $rc -eq 0
check "renew says it enrolls instead" grep -q "no valid certificate in .*: enrolling instead" "$T/c.out"
check "device c is enrolled" consistent c "$T/out-c"

# ---------------------------------------------------------------------------
log "device a: enroll with a persistent key"
device_new a "$T/acme" SN-RN-0001 "Gateway X1" || die "device a"
conf "$T/a.conf" a "$T/out-a" persist
conf "$T/a-due.conf" a "$T/out-a" persist 0.001
agent a enroll --config "$T/a.conf" >"$T/a-enroll.out" 2>&1
rc=$?
check "device a enrolls (exit $rc)" test $rc -eq 0
[[ $rc -eq 0 ]] || { sed 's/^/    /' "$T/a-enroll.out" >&2; die "cannot continue"; }
check "enrolled: consistent" consistent a "$T/out-a" "$H"
s0=$(serial "$T/out-a/cert.pem")
p0=$(cert_pub "$T/out-a/cert.pem")
cp "$T/out-a/cert.pem" "$T/a-cert0.pem"

log "renew right away: not due"
n=$(issued)
agent a renew --config "$T/a.conf" >"$T/a-notdue.out" 2>&1
rc=$?
check "renew exits 0 when not due (got $rc)" test $rc -eq 0
check "renew says when it is due" grep -q "renewal not due until [0-9-]* [0-9:]* UTC" "$T/a-notdue.out"
check "not due: the certificate is unchanged" cmp -s "$T/a-cert0.pem" "$T/out-a/cert.pem"
check "not due: the verifier was not asked" test "$(issued)" -eq "$n"
check "not due: no attempt made" \
    sh -c "grep -q 'renewal not due' '$T/a-notdue.out' && ! grep -q 'attempt' '$T/a-notdue.out'"
check "not due: no marker left" test ! -e "$T/out-a/renew.pending"

log "renew_at 0.001 of a one-day certificate (backdated 5 min): due at once"
agent a renew --config "$T/a-due.conf" >"$T/a-due.out" 2>&1
rc=$?
check "due renewal exits 0 (got $rc)" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/    /' "$T/a-due.out" >&2
check "renew says it renews, and since when" grep -q "renewing certificate 0*$s0: due since" "$T/a-due.out"
s1=$(serial "$T/out-a/cert.pem")
p1=$(cert_pub "$T/out-a/cert.pem")
check "new certificate, new serial ($s0 -> $s1)" differ_text "$s1" "$s0"
check "new certificate, new public key" differ_text "$p1" "$p0"
check "the new public key is the key at $H (tpm2_readpublic)" same_text "$p1" "$(handle_pub a "$H")"
check "the old key is gone from the TPM" key_gone a "$p0"
check "only the documented persistent handles" no_strays a "$H"
check "renewed: consistent" consistent a "$T/out-a" "$H"
check "ledger: $s1 supersedes $s0, which is revoked (superseded)" superseded_by "$s1" "$s0"
[[ $FAILED -eq 0 ]] || sed 's/^/    /' "$T/show-new.out" "$T/show-old.out" >&2
check "GET /v1/crl lists the old serial $s0" crl_has "$s0"
crl_lists "$VERIFIER_URL" "$T/pki/tls-ca.pem" "$s1"
check "... and not the new one $s1" test $? -eq 1

log "renew --force with the default renew_at"
agent a renew --force --config "$T/a.conf" >"$T/a-force.out" 2>&1
rc=$?
check "forced renewal exits 0 (got $rc)" test $rc -eq 0
check "renew says it was forced" grep -q "renewing certificate 0*$s1 now (--force" "$T/a-force.out"
s2=$(serial "$T/out-a/cert.pem")
p2=$(cert_pub "$T/out-a/cert.pem")
check "forced: new serial" differ_text "$s2" "$s1"
check "forced: new key" differ_text "$p2" "$p1"
check "forced: key at $H is the new one" same_text "$p2" "$(handle_pub a "$H")"
check "forced: the old key is gone" key_gone a "$p1"
check "forced: only the documented persistent handles" no_strays a "$H"
check "forced: ledger links $s2 to $s1" superseded_by "$s2" "$s1"
check "forced: the CRL lists $s1" crl_has "$s1"
agent a enroll --config "$T/a.conf" >"$T/a-after.out" 2>&1
rc=$?
check "enroll after a renewal: exit 0 (got $rc)" test $rc -eq 0
check "enroll after a renewal: already enrolled" grep -q "already enrolled" "$T/a-after.out"

# ---------------------------------------------------------------------------
log "device b: key blob only (no persistent handle)"
device_new b "$T/acme" SN-RN-0002 "Gateway X1" || die "device b"
conf "$T/b.conf" b "$T/out-b"
agent b enroll --config "$T/b.conf" >"$T/b.out" 2>&1
check "device b enrolls" consistent b "$T/out-b"
bs0=$(serial "$T/out-b/cert.pem")
cp "$T/out-b/key.tss2.pem" "$T/b-key0.pem"
agent b renew --force --config "$T/b.conf" >"$T/b-renew.out" 2>&1
rc=$?
check "blob-only renewal exits 0 (got $rc)" test $rc -eq 0
bs1=$(serial "$T/out-b/cert.pem")
check "blob-only: new serial" differ_text "$bs1" "$bs0"
check "blob-only: the key blob was replaced" differ_file "$T/b-key0.pem" "$T/out-b/key.tss2.pem"
check "blob-only: consistent" consistent b "$T/out-b"
check "blob-only: no persistent key added" no_strays b
check "blob-only: ledger links $bs1 to $bs0" superseded_by "$bs1" "$bs0"

# ---------------------------------------------------------------------------
log "a renewal that fails before anything is issued keeps the old certificate"
sk=$(serial "$T/out-a/cert.pem")
agent a renew --force --config "$T/a.conf" --url https://127.0.0.1:1 --deadline 2 --timeout 1 \
    >"$T/a-down.out" 2>&1
rc=$?
check "verifier unreachable: exit 3 (got $rc)" test $rc -eq 3
check "verifier unreachable: the certificate stays" same_text "$(serial "$T/out-a/cert.pem")" "$sk"
check "verifier unreachable: no marker left" test ! -e "$T/out-a/renew.pending"
check "verifier unreachable: still consistent" consistent a "$T/out-a" "$H"
main_url=$VERIFIER_URL
main_log=$VERIFIER_LOG
verifier_start deny --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --roots "$T/roots" --intermediates "$T/acme/intermediate.pem" \
    --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
    --ledger "sqlite:$T/ledger.db" --validity-days 1 --deny-model "Gateway X1" ||
    die "deny verifier did not start"
agent a renew --force --config "$T/a.conf" --url "$VERIFIER_URL" >"$T/a-deny.out" 2>&1
rc=$?
check "policy refusal: exit 1 (got $rc)" test $rc -eq 1
check "policy refusal: the agent names the reason (REASON_POLICY_DENIED)" \
    grep -q "REASON_POLICY_DENIED" "$T/a-deny.out"
check "policy refusal: the verifier logged it with its reason" \
    sh -c "grep 'result=refused' '$VERIFIER_LOG' | grep 'device_serial=\"SN-RN-0001\"' | grep -q 'reason=\"denied by policy\"'"
check "policy refusal: the certificate stays" same_text "$(serial "$T/out-a/cert.pem")" "$sk"
check "policy refusal: no marker left" test ! -e "$T/out-a/renew.pending"
stop_pid "$VERIFIER_PID"
VERIFIER_URL=$main_url
VERIFIER_LOG=$main_log
agent a renew --config "$T/a.conf" >"$T/a-after-deny.out" 2>&1
check "after both failures: renew says not due" grep -q "renewal not due" "$T/a-after-deny.out"

# ---------------------------------------------------------------------------
log "crash during a renewal, then run again"
# For each point: renew --force is killed there; the next run (renew without
# --force, whose certificate would not be due, or enroll) must end with one
# valid certificate, its key at $H, the old key out of the TPM, no marker.
# Points before the commit lose the new certificate, which the verifier may
# already have stored (and revoked the old one): the next run renews again.
# Points after it keep the new set and only finish the TPM side.
for point in key-created response write commit renew-evict persist; do
    for next in renew enroll; do
        case $point in
            key-created | response | write) after=redo ;;
            *) after=finish ;;
        esac
        sb=$(serial "$T/out-a/cert.pem")
        pb=$(cert_pub "$T/out-a/cert.pem")
        DEVID_AGENT_CRASH_AT=$point agent a renew --force --config "$T/a.conf" \
            >"$T/crash-$point-$next.out" 2>&1
        rc=$?
        check "crash at $point: agent killed (exit $rc)" test $rc -eq 137
        check "crash at $point: renewal marker left" test -e "$T/out-a/renew.pending"
        n=$(issued)
        agent a "$next" --config "$T/a.conf" >"$T/after-$point-$next.out" 2>&1
        rc=$?
        check "crash at $point, then $next: exit 0 (got $rc)" test $rc -eq 0
        [[ $rc -eq 0 ]] || sed 's/^/    /' "$T/crash-$point-$next.out" "$T/after-$point-$next.out" >&2
        check "crash at $point, then $next: consistent" consistent a "$T/out-a" "$H"
        check "crash at $point, then $next: no stray persistent handles" no_strays a "$H"
        check "crash at $point, then $next: the old key is gone" key_gone a "$pb"
        sa=$(serial "$T/out-a/cert.pem")
        check "crash at $point, then $next: a certificate other than $sb" differ_text "$sa" "$sb"
        if [[ $after == redo ]]; then
            check "crash at $point, then $next: renewed again" \
                grep -q "interrupted before its successor was stored" "$T/after-$point-$next.out"
            check "crash at $point, then $next: the old certificate $sb is revoked" crl_has "$sb"
        else
            check "crash at $point, then $next: finished, not redone" \
                grep -q "a renewal was interrupted after certificate 0*$sa replaced 0*$sb" \
                "$T/after-$point-$next.out"
            check "crash at $point, then $next: no new issuance" test "$(issued)" -eq "$n"
            check "crash at $point, then $next: ledger links $sa to $sb" superseded_by "$sa" "$sb"
        fi
    done
done
check "crash at commit is rolled forward by the file store" \
    grep -q "finishing an interrupted write" "$T/after-commit-renew.out"

finish
