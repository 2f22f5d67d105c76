/* The ledger tests' database: a fresh SQLite file in a temporary directory,
 * or, when the test is given a PostgreSQL URI (tests/unit/verifier/
 * ledger_postgres.sh starts a real server), a fresh schema in that
 * database. The same tests run against both; raw SQL through the backend's
 * own library checks what the ledger wrote. No mock. */
#ifndef DEVID_TESTS_UNIT_VERIFIER_LEDGERDB_H
#define DEVID_TESTS_UNIT_VERIFIER_LEDGERDB_H

#include <stddef.h>
#include <stdint.h>

#include "verifier/ledger/ledger.h"

struct fx {
    char dir[64];
    char path[128];
    char uri[512];
    int pg;
    struct ledger *l;
};

/* ledgerdb_init picks the backend: argv[1] is a PostgreSQL URI, else
 * SQLite. Returns the backend's name. */
const char *ledgerdb_init(int argc, char **argv);

/* ledgerdb_pg returns 1 when the tests run on PostgreSQL. */
int ledgerdb_pg(void);

/* cmocka setup and teardown: an empty database and f->l open on it as
 * "replica-a". */
int ledgerdb_setup(void **state);
int ledgerdb_teardown(void **state);

/* ledgerdb_reset empties the database: no table, no schema version (f->l
 * must be closed). */
void ledgerdb_reset(struct fx *f);

/* ledgerdb_int runs |sql| on the database directly and returns column 0. */
int64_t ledgerdb_int(const struct fx *f, const char *sql);

/* ledgerdb_exec runs |sql| (several statements allowed) on the database
 * directly. */
void ledgerdb_exec(const struct fx *f, const char *sql);

/* ledgerdb_try_exec runs |sql| like ledgerdb_exec; returns 0, or -1 when
 * the database refused it. */
int ledgerdb_try_exec(const struct fx *f, const char *sql);

/* ledgerdb_exec_and_die runs |sql| on a new direct connection and kills the
 * process with SIGKILL before it commits or closes (in a child). */
void ledgerdb_exec_and_die(const struct fx *f, const char *sql);

/* ledgerdb_issuance fills |rec| for certificate |serial| of device |dev|
 * with nonce byte |n|, issued at |t|, valid for a day. */
void ledgerdb_issuance(struct ledger_issuance *rec, const char *serial, const char *dev, uint8_t n,
                       int64_t t);

/* ledgerdb_record records |rec| with |flags| and returns 0 for
 * LEDGER_RECORDED, DEVID_ERR_NONCE_REPLAYED for a nonce used before (same
 * or other request), DEVID_ERR_POLICY_DENIED for an active device, or the
 * error. */
int ledgerdb_record(struct ledger *l, const struct ledger_issuance *rec, unsigned flags);

/* ledgerdb_count returns the ledger's issuance count. */
int64_t ledgerdb_count(struct ledger *l);

/* ledgerdb_at_once runs |fn| in |n| threads (at most 16), thread i on
 * |items| + i * |size|, and waits for them; each calls ledgerdb_start_line
 * where it should be let go together with the others. */
void ledgerdb_at_once(void *(*fn)(void *), void *items, size_t size, int n);

/* ledgerdb_start_line waits until every thread of ledgerdb_at_once got
 * here. */
void ledgerdb_start_line(void);

/* ledgerdb_capture_stderr sends stderr to a file in f->dir until
 * ledgerdb_release_stderr, which returns what was written (static). */
void ledgerdb_capture_stderr(const struct fx *f);
const char *ledgerdb_release_stderr(const struct fx *f);

#endif
