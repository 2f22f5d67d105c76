# shellcheck shell=bash
# tests/lib/scale.sh: verifier replicas sharing one PostgreSQL ledger, for
# tests/integration/test_scale*.sh and tests/bench/bench_scale.sh. Sourcing
# it sources swtpm.sh, devid.sh, pg.sh and haproxy.sh too.
#
#   scale_setup POLICY      DEVID_TMP ($T), manufacturer CA "Acme Devices"
#                           ($T/acme), lab PKI ($T/pki), a manufacturers file
#                           and a policy file whose [policy] says
#                           reenroll = POLICY, and PostgreSQL (pg_start)
#   scale_behind_haproxy    replicas a and b (proxy_from 127.0.0.1) behind
#                           HAProxy, and a check that it sees both up
#   replica_start NAME [ARGS...]
#                           a verifier on fixed free ports (kept for
#                           replica_restart) with the shared settings and
#                           ARGS; sets REPLICA_URL_NAME, REPLICA_PORT_NAME,
#                           REPLICA_METRICS_NAME, REPLICA_PID_NAME,
#                           REPLICA_LOG_NAME
#   replica_restart NAME    the same replica again, same ports and arguments
#   replicas_stop NAME...   check each still runs, SIGTERM it, check it exits
#                           0 (no sanitizer report)
#   fleet NAME ARGS...      devid-fleetsim with the test's CA bundle and
#                           factory; report in $T/NAME.report, stderr in
#                           $T/NAME.err, exit code in RC
#   report KEY FILE         a value of a fleetsim report
#   metric URL NAME         a value on a /metrics page (0 when absent)

_scale_lib=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
. "$_scale_lib/swtpm.sh"
. "$_scale_lib/devid.sh"
. "$_scale_lib/pg.sh"
. "$_scale_lib/haproxy.sh"

FLEETSIM=$DEVID_BIN/tests/fleetsim/devid-fleetsim
[[ -x $FLEETSIM ]] || die "no fleet simulator at $FLEETSIM (set DEVID_BIN)"
SCALE_RUN_LIMIT=${SCALE_RUN_LIMIT:-500}

scale_setup() {
    devid_tmpdir
    T=$DEVID_TMP
    "$FACTORY" ca --dir "$T/acme" --name "Acme Devices" >/dev/null || die "factory ca failed"
    "$DEV_PKI" --dir "$T/pki" >/dev/null || die "dev pki failed"
    printf '[manufacturer "Acme Devices"]\nroots = %s\nintermediates = %s\n' \
        "$T/acme/root.pem" "$T/acme/intermediate.pem" >"$T/manufacturers.conf"
    printf '[policy]\nallow_manufacturer = Acme Devices\nreenroll = %s\n' "$1" >"$T/policy.conf"
    pg_start || die "PostgreSQL did not start"
}

_both_up() {
    haproxy_is v1 UP && haproxy_is v2 UP
}

scale_behind_haproxy() {
    replica_start a --proxy-from 127.0.0.1 || die "replica a did not start"
    replica_start b --proxy-from 127.0.0.1 || die "replica b did not start"
    haproxy_start lb "127.0.0.1:$REPLICA_PORT_a:${REPLICA_METRICS_a##*:}" \
        "127.0.0.1:$REPLICA_PORT_b:${REPLICA_METRICS_b##*:}" || die "HAProxy did not start"
    check "HAProxy's health checks (GET /healthz on the metrics port) find both replicas up" \
        wait_for 20 _both_up
}

# The settings every replica shares: the same CA, token key and ledger.
scale_args() {
    printf '%s\n' --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
        --manufacturers "$T/manufacturers.conf" --policy "$T/policy.conf" \
        --ca-cert "$T/pki/opca.pem" --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
        --ledger "$PG_URI" --crl-poll 1 --workers 2
}

declare -A REPLICA_ARGS=()

replica_start() {
    local name=$1 port mport
    shift
    port=$(devid_free_port) || return 1
    mport=$(devid_free_port) || return 1
    declare -g "REPLICA_PORT_$name=$port" "REPLICA_METRICS_$name=http://127.0.0.1:$mport"
    REPLICA_ARGS[$name]=""
    [[ $# -eq 0 ]] || REPLICA_ARGS[$name]=$(printf '%q ' "$@")
    _replica_run "$name"
}

replica_restart() {
    _replica_run "$1"
}

_replica_run() {
    local name=$1 port_var=REPLICA_PORT_$1 metrics_var=REPLICA_METRICS_$1 args=()
    mapfile -t args < <(scale_args)
    eval "args+=(${REPLICA_ARGS[$name]})"
    verifier_start_at "$name" "${!port_var}" "${args[@]}" --replica-id "$name" \
        --metrics-listen "${!metrics_var#http://}" || return 1
    wait_for 10 curl -sf "${!metrics_var}/healthz" -o /dev/null || return 1
    declare -g "REPLICA_URL_$name=$VERIFIER_URL" "REPLICA_PID_$name=$VERIFIER_PID" \
        "REPLICA_LOG_$name=$VERIFIER_LOG"
}

replicas_stop() {
    local r pid_var rc
    for r in "$@"; do
        pid_var=REPLICA_PID_$r
        check "replica $r still running" pid_alive "${!pid_var}"
        kill -TERM "${!pid_var}"
        wait "${!pid_var}"
        rc=$?
        check "replica $r exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
    done
}

fleet() {
    local name=$1 start=$SECONDS
    shift
    timeout "$SCALE_RUN_LIMIT" "$FLEETSIM" --ca-bundle "$T/pki/tls-ca.pem" --factory-ca "$T/acme" \
        --timeout 60 "$@" >"$T/$name.report" 2>"$T/$name.err"
    RC=$?
    log "$name: exit $RC after $((SECONDS - start)) s"
    grep -vE '^(latency|retry_after|tls=|# )' "$T/$name.report" | sed 's/^/    /' >&2
    [[ -s $T/$name.err ]] && head -n 10 "$T/$name.err" | sed 's/^/    stderr: /' >&2
    return 0
}

report() {
    sed -n "s/^$1=//p" "$2" | head -n 1
}

metric() {
    local v
    v=$(curl -sf "$1/metrics" | awk -v n="$2" '$1 == n {print $2}')
    printf '%s\n' "${v:-0}"
}

# issued_on METRICS_URL: the enrollments a replica issued (its /metrics).
issued_on() {
    metric "$1" 'devid_enrollments_total{result="issued",reason=""}'
}

# ledger_rows SQL: one number from the shared ledger.
ledger_rows() {
    pg_psql "$1"
}

# all_in_ledger FILE: every certificate serial in FILE (one per line, as
# devid-fleetsim --out writes them) is recorded in the ledger.
all_in_ledger() {
    local missing
    [[ -s $1 ]] || { log "    no serials in $1"; return 1; }
    pg_psql "SELECT cert_serial FROM issuance" | sort >"$1.ledger"
    tr 'A-F' 'a-f' <"$1" | sed '/^$/d' | sort -u >"$1.sorted"
    missing=$(comm -23 "$1.sorted" "$1.ledger" | wc -l)
    ((missing == 0)) || log "    $missing certificates received but not in the ledger"
    ((missing == 0))
}
