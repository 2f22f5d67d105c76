#!/usr/bin/env bash
# Replicas and their ledger: enrollments per second for one verifier replica
# and for two behind HAProxy, on SQLite and on PostgreSQL; the ledger alone
# (devid-bench-ledger: one enrollment's reads and record, and the record
# alone); and what each part costs in CPU per enrollment, read from
# /proc/PID/stat (utime + stime) before and after each run, since wall-clock
# rates on a machine the client shares mislead (docs/scale.md). Prints
# figures; never fails on them (STYLE.md). Not run by ctest.
#
#   DEVID_BIN=build tests/bench/bench_scale.sh
#
# Environment:
#   DEVID_BIN         build directory (default: <source>/build)
#   BENCH_DEVICES     devices per enrollment run (default 2000)
#   BENCH_PARALLEL    devices at a time (default 64)
#   BENCH_WORKERS     worker threads per replica (default 2)
#   BENCH_SECONDS     length of each ledger-alone run (default 10)
set -uo pipefail
TEST_NAME=bench_scale
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/scale.sh"

BENCH_LEDGER=$DEVID_BIN/tests/bench/devid-bench-ledger
[[ -x $BENCH_LEDGER ]] || die "no $BENCH_LEDGER (build target devid-bench-ledger; set DEVID_BIN)"
DEVICES=${BENCH_DEVICES:-2000}
PAR=${BENCH_PARALLEL:-64}
WORKERS=${BENCH_WORKERS:-2}
SECS=${BENCH_SECONDS:-10}
HZ=$(getconf CLK_TCK)

scale_setup allow

# ticks PID...: CPU time (utime + stime, clock ticks) the processes used.
ticks() {
    local pid sum=0 f
    for pid in "$@"; do
        f=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
        sum=$((sum + $(awk '{print $12 + $13}' <<<"$f")))
    done
    echo "$sum"
}

# pg_ticks: CPU time of the PostgreSQL server: the postmaster, its live
# children, and the children that have exited (the postmaster's cutime).
pg_ticks() {
    local pm kids f
    pm=$(head -n 1 "$PG_DIR/data/postmaster.pid")
    kids=$(awk -v pm="$pm" '{sub(/.*\) /, ""); if ($2 == pm) print FILENAME}' /proc/[0-9]*/stat \
        2>/dev/null | cut -d/ -f3)
    f=$(sed 's/.*) //' "/proc/$pm/stat")
    echo $(($(ticks "$pm" $kids) + $(awk '{print $14 + $15}' <<<"$f")))
}

# per PER_TICKS COUNT: milliseconds of CPU per item.
per() {
    awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN { if (n > 0) printf "%.2f", t * 1000 / hz / n; else print "-" }'
}

printf 'devid replica benchmark: %s, %s cores, %s workers per replica\n' "$(uname -m)" "$(nproc)" \
    "$WORKERS"
printf 'PostgreSQL %s (synchronous_commit on), SQLite %s (WAL, synchronous=FULL)\n' \
    "$("$PG_BIN/postgres" --version | awk '{print $3}')" "$(sqlite3 --version 2>/dev/null |
        awk '{print $1}' || echo '?')"
echo
echo "The ledger alone: devid-bench-ledger, $SECS s per run, one handle per thread"
printf '%-10s %-22s %7s %10s %14s\n' backend work threads records/s db_cpu_ms/rec
for backend in sqlite postgresql; do
    for work in enrollment record-only; do
        for th in 1 8; do
            if [[ $backend == sqlite ]]; then
                uri=sqlite:$T/bench-$work-$th.db
            else
                uri=$PG_URI
            fi
            p0=$(pg_ticks)
            flag=()
            [[ $work == record-only ]] && flag=(--record-only)
            "$BENCH_LEDGER" --ledger "$uri" --threads "$th" --seconds "$SECS" "${flag[@]}" \
                >"$T/ledger.out" 2>&1
            p1=$(pg_ticks)
            n=$(sed -n 's/^records=//p' "$T/ledger.out")
            db="-"
            [[ $backend == postgresql ]] && db=$(per $((p1 - p0)) "${n:-0}")
            printf '%-10s %-22s %7s %10s %14s\n' "$backend" \
                "$([[ $work == enrollment ]] && echo "reads + record" || echo "record")" "$th" \
                "$(sed -n 's/^records_per_s=//p' "$T/ledger.out")" "$db"
        done
    done
done

echo
echo "Enrollments: devid-fleetsim, $DEVICES devices, $PAR at a time, each on its own TLS connection"
printf '%-10s %8s %9s %12s %10s %10s %11s %8s %8s\n' ledger replicas enroll/s verifier_ms db_ms \
    client_ms haproxy_ms p50_ms p99_ms
n_case=0
wal=""
for ledger in sqlite postgresql; do
    for replicas in 1 2; do
        n_case=$((n_case + 1))
        uri=$PG_URI
        [[ $ledger == sqlite ]] && uri=sqlite:$T/case-$n_case.db
        pids=()
        specs=()
        for r in $(seq 1 "$replicas"); do
            name=c${n_case}r$r
            replica_start "$name" --ledger "$uri" --workers "$WORKERS" --proxy-from 127.0.0.1 \
                --max-connections 100000 || die "replica $name did not start"
            pid_var=REPLICA_PID_$name
            port_var=REPLICA_PORT_$name
            metrics_var=REPLICA_METRICS_$name
            pids+=("${!pid_var}")
            specs+=("127.0.0.1:${!port_var}:${!metrics_var##*:}")
        done
        url=$VERIFIER_URL
        hpid=()
        if ((replicas > 1)); then
            haproxy_start "case$n_case" "${specs[@]}" || die "HAProxy did not start"
            url=$HAPROXY_URL
            hpid=("$HAPROXY_PID")
            wait_for 20 haproxy_is v2 UP || die "HAProxy does not see the replicas"
        fi
        v0=$(ticks "${pids[@]}")
        p0=$(pg_ticks)
        w0=$(pg_psql "SELECT pg_current_wal_lsn()")
        h0=$(ticks "${hpid[@]}")
        TIMEFORMAT='%U %S'
        { time "$FLEETSIM" --url "$url" --ca-bundle "$T/pki/tls-ca.pem" --factory-ca "$T/acme" \
            --devices "$DEVICES" --parallel "$PAR" --serial-prefix "C$n_case" --retries 5 \
            >"$T/case$n_case.report" 2>"$T/case$n_case.err"; } 2>"$T/case$n_case.time"
        v1=$(ticks "${pids[@]}")
        p1=$(pg_ticks)
        w1=$(pg_psql "SELECT pg_current_wal_lsn()")
        h1=$(ticks "${hpid[@]}")
        ok=$(report ok "$T/case$n_case.report")
        client=$(awk -v n="${ok:-0}" '{ if (n > 0) printf "%.2f", ($1 + $2) * 1000 / n; else print "-" }' \
            "$T/case$n_case.time")
        db="-"
        if [[ $ledger == postgresql ]]; then
            db=$(per $((p1 - p0)) "${ok:-0}")
            wal+=" $(pg_psql "SELECT round(pg_wal_lsn_diff('$w1', '$w0') / ${ok:-1})")"
        fi
        hms="-"
        ((replicas > 1)) && hms=$(per $((h1 - h0)) "${ok:-0}")
        printf '%-10s %8s %9s %12s %10s %10s %11s %8s %8s\n' "$ledger" "$replicas" \
            "$(report enrollments_per_s "$T/case$n_case.report")" "$(per $((v1 - v0)) "${ok:-0}")" \
            "$db" "$client" "$hms" "$(report latency_ms.p50 "$T/case$n_case.report")" \
            "$(report latency_ms.p99 "$T/case$n_case.report")"
        if [[ ${ok:-0} != "$DEVICES" ]]; then
            grep -E '^(error|attempt_error)\.' "$T/case$n_case.report" | sed 's/^/           /'
        fi
        for pid in "${pids[@]}" "${hpid[@]}"; do
            stop_pid "$pid"
        done
    done
done
echo
echo "verifier_ms, db_ms, client_ms, haproxy_ms: CPU milliseconds per enrollment of the replicas"
echo "(together), the PostgreSQL server, devid-fleetsim and HAProxy; all share the $(nproc) cores."
echo "PostgreSQL per enrollment: WAL bytes written (each run):$wal; ledger size (tables and"
echo "indexes) $(pg_psql "SELECT round((pg_total_relation_size('issuance') + pg_total_relation_size('device')) /
    greatest(count(*), 1)) FROM issuance") bytes per issuance ($(pg_psql "SELECT count(*) FROM issuance") issuances)."
exit 0
