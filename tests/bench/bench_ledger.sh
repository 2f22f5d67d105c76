#!/usr/bin/env bash
# Durable issuances per second from 1, 8 and 64 concurrent writers, on
# SQLite (WAL, synchronous=FULL: one fsync per commit) and on a real
# PostgreSQL server (synchronous_commit on, fsync on), through
# devid-bench-ledger: each writer a thread with its own ledger handle, as
# the server's workers have, calling ledger_record (LEDGER_SUPERSEDE) in a
# loop. Every call returns only after its commit is durable, so the rate is
# the acknowledged rate. On PostgreSQL also with commit_delay, which makes
# a committing backend wait for others to join its WAL flush. And on SQLite
# again with every fsync made 1.5 ms slower (tests/bench/slowsync.c,
# preloaded), the durable-write latency the issue measured, with the
# issuances each fsync carried. Prints
# figures; never fails on them (STYLE.md). Not run by ctest.
#
#   DEVID_BIN=build-rel tests/bench/bench_ledger.sh
#
# Environment:
#   DEVID_BIN           build directory (default: <source>/build)
#   BENCH_SECONDS       length of each run (default 5)
#   BENCH_THREADS       writer counts (default "1 8 64")
#   BENCH_LEDGER_BEFORE another devid-bench-ledger binary (e.g. one built
#                       before a change) measured the same way, in the
#                       same run
#   BENCH_DIR           where the SQLite files go (default: a temporary
#                       directory; put it on the disk the ledger would use)
set -uo pipefail
TEST_NAME=bench_ledger
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"
. "$here/../lib/pg.sh"

BENCH_LEDGER=$DEVID_BIN/tests/bench/devid-bench-ledger
[[ -x $BENCH_LEDGER ]] || die "no $BENCH_LEDGER (build target devid-bench-ledger; set DEVID_BIN)"
SECS=${BENCH_SECONDS:-5}
THREADS=${BENCH_THREADS:-1 8 64}
BINS=("this=$BENCH_LEDGER")
[[ -n ${BENCH_LEDGER_BEFORE:-} ]] && BINS=("before=$BENCH_LEDGER_BEFORE" "after=$BENCH_LEDGER")

devid_tmpdir
T=$DEVID_TMP
DIR=${BENCH_DIR:-$T}
pg_start || die "PostgreSQL did not start"

printf 'devid ledger benchmark: %s, %s cores (%s); %s s per run\n' "$(uname -m)" "$(nproc)" \
    "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" "$SECS"
printf 'SQLite %s (WAL, synchronous=FULL) in %s (%s); PostgreSQL %s (fsync %s, synchronous_commit %s)\n' \
    "$(sqlite3 --version 2>/dev/null | awk '{print $1}' || echo '?')" "$DIR" \
    "$(df -PT "$DIR" | awk 'NR == 2 { print $2 }')" \
    "$("$PG_BIN/postgres" --version | awk '{print $3}')" "$(pg_psql 'SHOW fsync')" \
    "$(pg_psql 'SHOW synchronous_commit')"
echo
cc -shared -fPIC -o "$T/slowsync.so" "$here/slowsync.c" -ldl || die "cannot build slowsync.c"
printf '%-7s %-28s %7s %12s %10s %16s\n' binary backend writers issuances/s x_1_writer \
    issuances/fsync
n=0
# run LABEL BIN BACKEND URI [DELAY_US]: one line per writer count.
run() {
    local label=$1 bin=$2 backend=$3 uri th out rate base="" per
    for th in $THREADS; do
        n=$((n + 1))
        uri=$4
        [[ $uri == sqlite ]] && uri=sqlite:$DIR/bench-$n.db
        out=$T/run-$n.out
        LD_PRELOAD=$T/slowsync.so BENCH_FSYNC_DELAY_US=${5:-0} "$bin" --ledger "$uri" \
            --threads "$th" --seconds "$SECS" --record-only >"$out" 2>&1
        rate=$(sed -n 's/^records_per_s=//p' "$out")
        [[ -z $base ]] && base=${rate:-0}
        # fsyncs the client process made; PostgreSQL's are the server's.
        per=$(awk -F= '/^records=/ { r = $2 } /^fsyncs=/ { f = $2 }
            END { if (f > 0) printf "%.1f", r / f; else print "-" }' "$out")
        [[ $uri == sqlite:* ]] || per="-"
        printf '%-7s %-28s %7s %12s %10s %16s\n' "$label" "$backend" "$th" "${rate:--}" \
            "$(awk -v a="${rate:-0}" -v b="$base" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }')" \
            "$per"
        grep -v '^\(records\|seconds\|records_per_s\|failed_threads=0\|fsyncs\)' "$out" |
            sort | uniq -c | head -n 3 | sed 's/^/        /'
    done
    rm -f "$DIR"/bench-*.db*
}
for spec in "${BINS[@]}"; do
    run "${spec%%=*}" "${spec#*=}" sqlite sqlite
done
for spec in "${BINS[@]}"; do
    run "${spec%%=*}" "${spec#*=}" "sqlite, fsync +1.5 ms" sqlite 1500
done
for spec in "${BINS[@]}"; do
    run "${spec%%=*}" "${spec#*=}" postgresql "$PG_URI"
done
pg_psql "ALTER SYSTEM SET commit_delay = 1000" >/dev/null
pg_psql "SELECT pg_reload_conf()" >/dev/null
for spec in "${BINS[@]}"; do
    run "${spec%%=*}" "${spec#*=}" "postgresql commit_delay=1ms" "$PG_URI"
done
exit 0
