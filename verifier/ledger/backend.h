/* What a ledger backend implements; private to verifier/ledger/. A backend
 * is a driver for one database library: it connects, runs SQL with
 * parameters, hands back rows and turns the library's errors into ours.
 * Every statement, the schema and every decision are backend-neutral and
 * live in ledger.c and sql.c; ledger.c checks arguments before any SQL runs.
 * A backend embeds struct ledger first in its own handle. */
#ifndef DEVID_VERIFIER_LEDGER_BACKEND_H
#define DEVID_VERIFIER_LEDGER_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "verifier/ledger/ledger.h"

/* One statement parameter, $1, $2, ... in the SQL. A NULL text is SQL NULL. */
struct ledger_param {
    enum { LEDGER_TEXT, LEDGER_INT, LEDGER_BLOB } type;
    const void *data;
    size_t len;
    int64_t i;
};

/* One column of a result row as the backend read it: integer columns in
 * |i|, text and blobs in |data| and |len| (not NUL-terminated; borrowed for
 * the row callback). */
struct ledger_cell {
    const uint8_t *data;
    size_t len;
    int64_t i;
    int null;
};

struct ledger_row {
    const struct ledger_cell *cells;
    size_t n;
};

/* A row callback; a nonzero return stops the statement and is returned. */
typedef int (*ledger_row_fn)(void *arg, const struct ledger_row *row);

/* The SQL dialect: the few type names the schema spells differently. */
enum ledger_dialect { LEDGER_DIALECT_SQLITE, LEDGER_DIALECT_POSTGRES };

struct ledger_driver {
    const char *name;
    enum ledger_dialect dialect;
    /* Statements (a script) run first in the schema migration's
     * transaction, which make handles opening at once (other workers, other
     * replicas) migrate one after the other; NULL when begin already
     * excludes other writers. */
    const char *migration_lock;
    /* Set when the database has one writer at a time: the handles of a
     * process then share their commits (group.h). */
    int group_commit;
    void (*free)(struct ledger *l);
    /* begin starts a transaction; |write|: one that will write (SQLite
     * takes the write lock at once). Returns 0 or DEVID_ERR_LEDGER. */
    int (*begin)(struct ledger *l, int write);
    /* commit returns only once the transaction is durable: 0, or
     * DEVID_ERR_LEDGER when it may not have been committed. */
    int (*commit)(struct ledger *l);
    /* rollback ends the open transaction, if any, changing nothing. */
    void (*rollback)(struct ledger *l);
    /* script runs |sql|: statements without parameters or rows (the
     * schema). Returns 0 or DEVID_ERR_LEDGER (logged with |what|). */
    int (*script)(struct ledger *l, const char *sql, const char *what);
    /* exec runs one statement with |params| bound to $1, $2, ...; calls
     * |fn| (may be NULL) for each row; sets |*changes| (may be NULL) to the
     * rows it inserted, updated or deleted. Outside a transaction it may run
     * the statement again after reconnecting, so only reads run there.
     * Returns 0, |fn|'s nonzero return, or DEVID_ERR_LEDGER (logged with
     * |what|). */
    int (*exec)(struct ledger *l, const char *sql, const char *what,
                const struct ledger_param *params, size_t n, ledger_row_fn fn, void *arg,
                int64_t *changes);
};

struct ledger_group;

struct ledger {
    const struct ledger_driver *driver;
    /* The group this handle commits with (group.h), or NULL; set by
     * ledger.c. */
    struct ledger_group *group;
    /* This replica's name, filled by ledger.c after the backend opened. */
    char replica_id[LEDGER_NAME_LEN];
    /* How messages name this ledger: a path, or a server and database
     * (never a password). Filled by the backend. */
    char name[256];
};

/*
 * ledger_sqlite_open (sqlite.c) sets |*out| to a SQLite ledger at file
 * |path| (WAL, synchronous=FULL, busy timeout), creating the file when
 * |create| is set. The schema is ledger.c's business. Returns 0,
 * DEVID_ERR_CONFIG, DEVID_ERR_IO when the file cannot be opened, or
 * DEVID_ERR_LEDGER.
 */
int ledger_sqlite_open(struct ledger **out, const char *path, int create);

/*
 * ledger_postgres_open (postgres.c) sets |*out| to a PostgreSQL ledger on
 * libpq connection string or URI |conninfo|, with durable commits
 * (synchronous_commit on). Returns 0, or DEVID_ERR_IO when the server
 * cannot be reached or refuses the connection (logged without password).
 */
int ledger_postgres_open(struct ledger **out, const char *conninfo);

#endif
