#!/usr/bin/env bash
# The ledger's unit tests against a real PostgreSQL server: a fresh cluster
# from Debian's postgresql package on a free loopback port (tests/lib/pg.sh;
# as root it runs as the postgres user), then each test executable given
# here with the server's URI as its argument. Each test empties the
# database's schema first.
#
#   tests/unit/verifier/ledger_postgres.sh UNIT_TEST...
set -uo pipefail
TEST_NAME=ledger_postgres
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../../lib/swtpm.sh"
. "$here/../../lib/pg.sh"

[[ $# -gt 0 ]] || die "usage: $0 UNIT_TEST..."
pg_start || die "PostgreSQL did not start"
log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') at $PG_URI"
rc=0
for t in "$@"; do
    "$t" "$PG_URI" || rc=1
done
exit $rc
