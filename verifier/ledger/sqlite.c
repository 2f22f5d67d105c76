/* The SQLite ledger backend: the one file that talks to libsqlite3 and turns
 * its errors into ours. WAL with synchronous=FULL: a commit returns only
 * after the write-ahead log reached stable storage. One connection per
 * handle; handles are not shared between threads. Write transactions take
 * the database's write lock at once (BEGIN IMMEDIATE), so the decisions
 * ledger.c makes inside them see every committed write. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/err.h"
#include "common/io/log.h"
#include "verifier/ledger/backend.h"

/* How long a statement waits for another connection's write lock. */
#define BUSY_TIMEOUT_MS 10000
/* Between tries of switching a new file to WAL (configure). */
#define WAL_RETRY_MS 10
/* Most columns a statement returns. */
#define MAX_COLUMNS 32
/* Prepared statements a handle keeps for reuse. */
#define STMT_CACHE 32

struct sqlite_ledger {
    struct ledger base; /* first: the handle callers see */
    sqlite3 *db;
    /* Statements prepared once and reused (parsing costs more than running
     * most of the ledger's statements), replaced round robin. */
    sqlite3_stmt *cache[STMT_CACHE];
    size_t cache_next;
};

static struct sqlite_ledger *sq(struct ledger *l)
{
    return (struct sqlite_ledger *)l;
}

/* fail logs what failed with SQLite's message and returns DEVID_ERR_LEDGER. */
static int fail(struct sqlite_ledger *sl, const char *what)
{
    log_err("ledger %s: %s failed: %s (%s)", sl->base.name, what, sqlite3_errmsg(sl->db),
            sqlite3_errstr(sqlite3_extended_errcode(sl->db)));
    return DEVID_ERR_LEDGER;
}

static int sqlite_script(struct ledger *l, const char *sql, const char *what)
{
    if (sqlite3_exec(sq(l)->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return fail(sq(l), what);
    return 0;
}

static int sqlite_begin(struct ledger *l, int write)
{
    return sqlite_script(l, write ? "BEGIN IMMEDIATE" : "BEGIN", "starting a transaction");
}

static int sqlite_commit(struct ledger *l)
{
    return sqlite_script(l, "COMMIT", "committing");
}

static void sqlite_rollback(struct ledger *l)
{
    if (!sqlite3_get_autocommit(sq(l)->db))
        sqlite3_exec(sq(l)->db, "ROLLBACK", NULL, NULL, NULL);
}

/* bind binds |p| to the statement's parameter named $|i + 1|, if it has one. */
static int bind(sqlite3_stmt *st, size_t i, const struct ledger_param *p)
{
    char name[24];
    int idx;

    snprintf(name, sizeof(name), "$%zu", i + 1);
    if ((idx = sqlite3_bind_parameter_index(st, name)) == 0)
        return SQLITE_OK;
    switch (p->type) {
        case LEDGER_TEXT:
            if (p->data == NULL)
                return sqlite3_bind_null(st, idx);
            return sqlite3_bind_text(st, idx, p->data, -1, SQLITE_TRANSIENT);
        case LEDGER_INT:
            return sqlite3_bind_int64(st, idx, p->i);
        case LEDGER_BLOB:
            if (p->len > (size_t)INT32_MAX)
                return SQLITE_TOOBIG;
            return sqlite3_bind_blob(st, idx, p->data, (int)p->len, SQLITE_STATIC);
    }
    return SQLITE_MISUSE;
}

/* row reads the current row of |st| into |cells|. */
static void row(sqlite3_stmt *st, struct ledger_cell *cells, size_t n)
{
    size_t i;
    int bytes;

    for (i = 0; i < n; i++) {
        memset(&cells[i], 0, sizeof(cells[i]));
        switch (sqlite3_column_type(st, (int)i)) {
            case SQLITE_NULL:
                cells[i].null = 1;
                break;
            case SQLITE_INTEGER:
                cells[i].i = sqlite3_column_int64(st, (int)i);
                break;
            default:
                cells[i].data = sqlite3_column_blob(st, (int)i);
                bytes = sqlite3_column_bytes(st, (int)i);
                cells[i].len = bytes > 0 ? (size_t)bytes : 0;
                break;
        }
    }
}

/* prepare sets |*st| to a statement for |sql|, from the cache when it holds
 * one (same text) and else newly prepared into it. */
static int prepare(struct sqlite_ledger *sl, sqlite3_stmt **st, const char *sql)
{
    size_t i;

    for (i = 0; i < STMT_CACHE && sl->cache[i] != NULL; i++) {
        if (strcmp(sqlite3_sql(sl->cache[i]), sql) == 0) {
            *st = sl->cache[i];
            return SQLITE_OK;
        }
    }
    if (sqlite3_prepare_v3(sl->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        return SQLITE_ERROR;
    i = sl->cache_next;
    sl->cache_next = (sl->cache_next + 1) % STMT_CACHE;
    sqlite3_finalize(sl->cache[i]);
    sl->cache[i] = *st;
    return SQLITE_OK;
}

static int sqlite_exec(struct ledger *l, const char *sql, const char *what,
                       const struct ledger_param *params, size_t n, ledger_row_fn fn, void *arg,
                       int64_t *changes)
{
    struct sqlite_ledger *sl = sq(l);
    struct ledger_cell cells[MAX_COLUMNS];
    struct ledger_row r_row = {cells, 0};
    sqlite3_stmt *st = NULL;
    size_t i;
    int rc, r = 0;

    if (prepare(sl, &st, sql) != SQLITE_OK)
        return fail(sl, what);
    for (i = 0; i < n; i++) {
        if (bind(st, i, &params[i]) != SQLITE_OK) {
            r = fail(sl, what);
            goto out;
        }
    }
    r_row.n = (size_t)sqlite3_column_count(st);
    if (r_row.n > MAX_COLUMNS) {
        log_err("ledger %s: %s returns %zu columns", l->name, what, r_row.n);
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        row(st, cells, r_row.n);
        if (fn != NULL && (r = fn(arg, &r_row)) != 0)
            goto out;
    }
    if (rc != SQLITE_DONE) {
        r = fail(sl, what);
        goto out;
    }
    if (changes != NULL)
        *changes = sqlite3_changes(sl->db);
out:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

static int configure(struct sqlite_ledger *sl)
{
    char mode[16] = "";
    int rc, tries;
    sqlite3_stmt *st = NULL;

    sqlite3_extended_result_codes(sl->db, 1);
    if (sqlite3_busy_timeout(sl->db, BUSY_TIMEOUT_MS) != SQLITE_OK)
        return fail(sl, "setting the busy timeout");
    /* Switching a new file to WAL takes an exclusive lock, and SQLite
     * answers SQLITE_BUSY at once, without the busy handler, when another
     * connection opening the same file holds a lock: replicas or workers
     * starting together. Retry for as long as the busy timeout. */
    for (tries = 0;; tries++) {
        if (sqlite3_prepare_v2(sl->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK)
            return fail(sl, "setting WAL journal mode");
        if ((rc = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
            snprintf(mode, sizeof(mode), "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        if ((rc & 0xff) != SQLITE_BUSY || tries * WAL_RETRY_MS >= BUSY_TIMEOUT_MS)
            break;
        sqlite3_sleep(WAL_RETRY_MS);
    }
    if (rc != SQLITE_ROW)
        return fail(sl, "setting WAL journal mode");
    if (strcmp(mode, "wal") != 0) {
        log_err(
            "ledger %s: the database refused WAL journal mode (got \"%s\"); use a file "
            "on a local file system",
            sl->base.name, mode);
        return DEVID_ERR_LEDGER;
    }
    return sqlite_script(&sl->base, "PRAGMA synchronous=FULL", "setting synchronous=FULL");
}

static void sqlite_free(struct ledger *l)
{
    struct sqlite_ledger *sl = sq(l);
    size_t i;

    for (i = 0; i < STMT_CACHE; i++)
        sqlite3_finalize(sl->cache[i]);
    sqlite3_close(sl->db);
    free(sl);
}

static const struct ledger_driver sqlite_driver = {
    .name = "sqlite",
    .dialect = LEDGER_DIALECT_SQLITE,
    .migration_lock = NULL, /* BEGIN IMMEDIATE excludes other writers */
    .group_commit = 1,
    .free = sqlite_free,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .script = sqlite_script,
    .exec = sqlite_exec,
};

int ledger_sqlite_open(struct ledger **out, const char *path, int create)
{
    struct sqlite_ledger *sl = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    int rc, r = DEVID_ERR_INTERNAL;

    if (out == NULL || path == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((sl = calloc(1, sizeof(*sl))) == NULL)
        return DEVID_ERR_ALLOC;
    if (strlen(path) >= sizeof(sl->base.name)) {
        log_err("ledger path is longer than %zu bytes", sizeof(sl->base.name) - 1);
        free(sl);
        return DEVID_ERR_CONFIG;
    }
    sl->base.driver = &sqlite_driver;
    snprintf(sl->base.name, sizeof(sl->base.name), "%s", path);
    if (create)
        flags |= SQLITE_OPEN_CREATE;
    if ((rc = sqlite3_open_v2(path, &sl->db, flags, NULL)) != SQLITE_OK) {
        log_err("cannot open ledger %s: %s%s", path,
                sl->db != NULL ? sqlite3_errmsg(sl->db) : sqlite3_errstr(rc),
                create ? "" : " (does the ledger exist?)");
        r = rc == SQLITE_CANTOPEN ? DEVID_ERR_IO : DEVID_ERR_LEDGER;
        goto out;
    }
    if ((r = configure(sl)) != 0)
        goto out;
    *out = &sl->base;
    sl = NULL;
    r = 0;
out:
    if (sl != NULL)
        sqlite_free(&sl->base);
    return r;
}
