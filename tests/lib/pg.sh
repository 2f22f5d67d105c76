# shellcheck shell=bash
# tests/lib/pg.sh: a real PostgreSQL server for integration tests, from
# Debian's postgresql package. Source after swtpm.sh.
#
#   pg_start           initdb a fresh cluster in its own directory and start it
#                      on a free loopback port; exports PG_URI, PG_PORT, PG_DIR
#   pg_stop [MODE]     pg_ctl stop (-m fast by default; immediate = a crash)
#   pg_restart         start the stopped cluster again, on the same port
#   pg_psql SQL...     run SQL in the devid database as the postgres user
#
# initdb refuses to run as root, so as root the cluster belongs to the
# postgres user (runuser) and lives outside DEVID_TMP, which only root can
# enter. The cluster is removed at exit with the rest.

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)

pg_run() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# pg_reach: as root, make sure the postgres user can reach the server's
# programs (root_searchable).
pg_reach() {
    [[ $(id -u) -eq 0 ]] || return 0
    runuser -u postgres -- test -x "$PG_BIN/initdb" && return 0
    root_searchable || return 1
    runuser -u postgres -- test -x "$PG_BIN/initdb" ||
        die "the postgres user cannot run $PG_BIN/initdb"
}

pg_start() {
    local port attempt
    [[ -x $PG_BIN/initdb ]] || die "no PostgreSQL server (deploy/install-deps.sh --tests installs postgresql)"
    pg_reach || die "cannot give the root directory o+x"
    PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/devid-pg-$TEST_NAME.XXXXXX") || die "mktemp failed"
    DEVID_CLEANUP_CMDS+=("pg_stop immediate; rm -rf -- '$PG_DIR'")
    [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$PG_DIR"
    pg_run "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 --no-instructions \
        >"$PG_DIR/initdb.log" 2>&1 || { sed 's/^/    /' "$PG_DIR/initdb.log" >&2; return 1; }
    for ((attempt = 0; attempt < 5; attempt++)); do
        port=$(devid_free_port) || return 1
        PG_PORT=$port
        if pg_restart; then
            pg_run "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
                -c "CREATE DATABASE devid" >/dev/null || return 1
            PG_URI="postgresql://postgres@127.0.0.1:$PG_PORT/devid"
            export PG_URI PG_PORT PG_DIR
            return 0
        fi
    done
    log "PostgreSQL did not start; log: $PG_DIR/server.log"
    return 1
}

pg_restart() {
    pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300" \
        start >/dev/null 2>&1
}

pg_stop() {
    [[ -n ${PG_DIR:-} && -d $PG_DIR/data ]] || return 0
    pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m "${1:-fast}" -w -t 30 stop >/dev/null 2>&1
}

pg_psql() {
    pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres \
        -d devid -c "$*"
}
