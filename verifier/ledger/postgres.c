/* The PostgreSQL ledger backend: the one file that talks to libpq and turns
 * its errors into ours. One connection per handle (per worker), durable
 * commits (synchronous_commit on, whatever the server's default), binary
 * results read row by row. A connection the server dropped (a restart, a
 * failover) is opened again on the next use, at most once a second; until
 * then every call fails with DEVID_ERR_LEDGER, which the server answers 503
 * (retryable). A statement that fails on a lost connection outside a
 * transaction (only reads run there) or a BEGIN is tried once more on the
 * new connection; inside a transaction nothing is retried: the transaction
 * is gone, and the caller decides. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "common/err.h"
#include "common/io/log.h"
#include "verifier/ledger/backend.h"

/* Type OIDs (pg_type.dat) of the parameters we send and columns we read. */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25

/* Most columns a statement returns, and parameters it takes. */
#define MAX_COLUMNS 32
#define MAX_PARAMS 16
/* The oldest server with GENERATED ... AS IDENTITY (10). */
#define MIN_SERVER_VERSION 100000
/* Reconnection attempts, at most one per this many milliseconds. */
#define RECONNECT_INTERVAL_MS 1000

/* Settings every session gets, after each (re)connection: durable commits
 * whatever the server's default, no NOTICE chatter on stderr, and no
 * statement that blocks a worker for long. */
#define SESSION_SQL                                                    \
    "SET synchronous_commit = on; SET client_min_messages = warning; " \
    "SET statement_timeout = '10s'; SET idle_in_transaction_session_timeout = '60s'"

struct pg_ledger {
    struct ledger base; /* first: the handle callers see */
    PGconn *conn;
    int in_txn;
    struct timespec last_attempt;
    char error[512];
};

static struct pg_ledger *pg(struct ledger *l)
{
    return (struct pg_ledger *)l;
}

/* set_error keeps libpq's message (one line) for the log line of the call. */
static void set_error(struct pg_ledger *pl, const PGresult *res)
{
    const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    size_t n;

    if (msg != NULL)
        snprintf(pl->error, sizeof(pl->error), "%s (SQLSTATE %s)", msg,
                 state != NULL ? state : "?");
    else
        snprintf(pl->error, sizeof(pl->error), "%s", PQerrorMessage(pl->conn));
    n = strlen(pl->error);
    while (n > 0 && (pl->error[n - 1] == '\n' || pl->error[n - 1] == ' '))
        pl->error[--n] = '\0';
}

static int fail(struct pg_ledger *pl, const char *what)
{
    log_err("ledger %s: %s failed: %s", pl->base.name, what, pl->error);
    return DEVID_ERR_LEDGER;
}

static void on_notice(void *arg, const char *message)
{
    struct pg_ledger *pl = arg;
    size_t n = strlen(message);

    while (n > 0 && message[n - 1] == '\n')
        n--;
    log_warn("ledger %s: %.*s", pl->base.name, (int)n, message);
}

/* Sets the handle's name from the connection: user@host:port/database. */
static void name_from(struct pg_ledger *pl, const char *user, const char *host, const char *port,
                      const char *db)
{
    snprintf(pl->base.name, sizeof(pl->base.name), "postgresql://%s%s%s:%s/%s",
             user != NULL ? user : "", user != NULL ? "@" : "",
             host != NULL && host[0] != '\0' ? host : "localhost",
             port != NULL && port[0] != '\0' ? port : "5432", db != NULL ? db : "");
}

/* Names the ledger from |conninfo| before connecting, without its password. */
static void name_from_conninfo(struct pg_ledger *pl, const char *conninfo)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL), *o;
    const char *user = NULL, *host = NULL, *port = NULL, *db = NULL;

    for (o = opts; o != NULL && o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "user") == 0)
            user = o->val;
        else if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
    }
    name_from(pl, user, host, port, db);
    PQconninfoFree(opts);
}

/* session checks the server and applies SESSION_SQL on a new connection. */
static int session(struct pg_ledger *pl)
{
    PGresult *res;
    int r = 0;

    if (PQserverVersion(pl->conn) < MIN_SERVER_VERSION) {
        log_err("ledger %s: PostgreSQL server version %d is too old; devid needs 10 or later",
                pl->base.name, PQserverVersion(pl->conn));
        return DEVID_ERR_CONFIG;
    }
    PQsetNoticeProcessor(pl->conn, on_notice, pl);
    res = PQexec(pl->conn, SESSION_SQL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        set_error(pl, res);
        r = fail(pl, "setting up the session");
    }
    PQclear(res);
    name_from(pl, PQuser(pl->conn), PQhost(pl->conn), PQport(pl->conn), PQdb(pl->conn));
    return r;
}

static long ms_since(const struct timespec *then)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - then->tv_sec) * 1000 + (now.tv_nsec - then->tv_nsec) / 1000000;
}

/* ensure returns 0 with a working connection, reconnecting a lost one (at
 * most once per RECONNECT_INTERVAL_MS, unless |at_once|: the connection
 * was just found lost), or DEVID_ERR_LEDGER. */
static int ensure(struct pg_ledger *pl, int at_once)
{
    if (PQstatus(pl->conn) == CONNECTION_OK)
        return 0;
    if (pl->in_txn) {
        snprintf(pl->error, sizeof(pl->error), "the connection was lost in a transaction");
        return DEVID_ERR_LEDGER;
    }
    if (!at_once && ms_since(&pl->last_attempt) < RECONNECT_INTERVAL_MS) {
        snprintf(pl->error, sizeof(pl->error), "not connected (next attempt within a second)");
        return DEVID_ERR_LEDGER;
    }
    clock_gettime(CLOCK_MONOTONIC, &pl->last_attempt);
    PQreset(pl->conn);
    if (PQstatus(pl->conn) != CONNECTION_OK) {
        set_error(pl, NULL);
        log_err("ledger %s: reconnecting failed: %s", pl->base.name, pl->error);
        return DEVID_ERR_LEDGER;
    }
    if (session(pl) != 0)
        return DEVID_ERR_LEDGER;
    log_info("ledger %s: reconnected", pl->base.name);
    return 0;
}

static int64_t be_int(const uint8_t *p, size_t len)
{
    uint64_t v = 0;
    size_t i;

    for (i = 0; i < len; i++)
        v = v << 8 | p[i];
    if (len == 2)
        return (int16_t)(uint16_t)v;
    if (len == 4)
        return (int32_t)(uint32_t)v;
    return (int64_t)v;
}

/* cells reads row 0 of single-row result |res| (binary format). */
static void cells(const PGresult *res, struct ledger_cell *c, size_t n)
{
    size_t i;
    Oid type;
    int len;

    for (i = 0; i < n; i++) {
        memset(&c[i], 0, sizeof(c[i]));
        if (PQgetisnull(res, 0, (int)i)) {
            c[i].null = 1;
            continue;
        }
        type = PQftype(res, (int)i);
        len = PQgetlength(res, 0, (int)i);
        c[i].data = (const uint8_t *)PQgetvalue(res, 0, (int)i);
        c[i].len = len > 0 ? (size_t)len : 0;
        if ((type == OID_INT8 && len == 8) || (type == OID_INT4 && len == 4) ||
            (type == OID_INT2 && len == 2) || (type == OID_BOOL && len == 1))
            c[i].i = be_int(c[i].data, c[i].len);
    }
}

/* count_changes reads the row count of a finished command. */
static void count_changes(const PGresult *res, int64_t *changes)
{
    const char *s = PQcmdTuples((PGresult *)res);
    char *end = NULL;
    long long v;

    if (changes == NULL || s == NULL || s[0] == '\0')
        return;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0)
        return;
    *changes = v;
}

/* run_one sends one statement with its parameters and reads its rows one at
 * a time; |*lost| tells a failure that lost the connection. */
static int run_one(struct pg_ledger *pl, const char *sql, const struct ledger_param *params,
                   size_t n, ledger_row_fn fn, void *arg, int64_t *changes, int *lost)
{
    Oid types[MAX_PARAMS];
    const char *values[MAX_PARAMS];
    int lengths[MAX_PARAMS], formats[MAX_PARAMS];
    char ints[MAX_PARAMS][24];
    struct ledger_cell c[MAX_COLUMNS];
    struct ledger_row row = {c, 0};
    PGresult *res;
    size_t i;
    int r = 0;

    *lost = 0;
    for (i = 0; i < n && i < MAX_PARAMS; i++) {
        types[i] = params[i].type == LEDGER_INT    ? OID_INT8
                   : params[i].type == LEDGER_BLOB ? OID_BYTEA
                                                   : OID_TEXT;
        values[i] = params[i].data;
        lengths[i] = params[i].type == LEDGER_BLOB ? (int)params[i].len : 0;
        formats[i] = params[i].type == LEDGER_BLOB ? 1 : 0;
        if (params[i].type == LEDGER_INT) {
            snprintf(ints[i], sizeof(ints[i]), "%lld", (long long)params[i].i);
            values[i] = ints[i];
        }
    }
    if (n > MAX_PARAMS ||
        !PQsendQueryParams(pl->conn, sql, (int)n, types, values, lengths, formats, 1)) {
        set_error(pl, NULL);
        *lost = PQstatus(pl->conn) != CONNECTION_OK;
        return DEVID_ERR_LEDGER;
    }
    PQsetSingleRowMode(pl->conn);
    while ((res = PQgetResult(pl->conn)) != NULL) {
        switch (PQresultStatus(res)) {
            case PGRES_SINGLE_TUPLE:
                row.n = (size_t)PQnfields(res);
                if (r == 0 && row.n > MAX_COLUMNS)
                    r = DEVID_ERR_INTERNAL;
                if (r == 0 && fn != NULL) {
                    cells(res, c, row.n);
                    r = fn(arg, &row);
                }
                break;
            case PGRES_TUPLES_OK:
            case PGRES_COMMAND_OK:
                if (r == 0)
                    count_changes(res, changes);
                break;
            default:
                if (r == 0) {
                    set_error(pl, res);
                    r = DEVID_ERR_LEDGER;
                }
                break;
        }
        PQclear(res);
    }
    if (r == DEVID_ERR_LEDGER)
        *lost = PQstatus(pl->conn) != CONNECTION_OK;
    return r;
}

static int pg_exec(struct ledger *l, const char *sql, const char *what,
                   const struct ledger_param *params, size_t n, ledger_row_fn fn, void *arg,
                   int64_t *changes)
{
    struct pg_ledger *pl = pg(l);
    int lost = 0, r;

    if ((r = ensure(pl, 0)) != 0)
        return fail(pl, what);
    r = run_one(pl, sql, params, n, fn, arg, changes, &lost);
    if (r == DEVID_ERR_LEDGER && lost && !pl->in_txn) {
        log_warn("ledger %s: the connection was lost (%s); reconnecting", l->name, pl->error);
        if (ensure(pl, 1) == 0)
            r = run_one(pl, sql, params, n, fn, arg, changes, &lost);
    }
    if (r == DEVID_ERR_LEDGER)
        return fail(pl, what);
    return r;
}

/* simple runs |sql| (one or more statements, no parameters) and checks
 * that it completed as |tag| when one is given. */
static int simple(struct pg_ledger *pl, const char *sql, const char *what, const char *tag)
{
    PGresult *res;
    int r = 0;

    if ((r = ensure(pl, 0)) != 0)
        return fail(pl, what);
    res = PQexec(pl->conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK &&
        (PQresultStatus(res) != PGRES_TUPLES_OK || tag != NULL)) {
        set_error(pl, res);
        r = fail(pl, what);
    } else if (tag != NULL && strcmp(PQcmdStatus(res), tag) != 0) {
        snprintf(pl->error, sizeof(pl->error), "the server answered %s", PQcmdStatus(res));
        r = fail(pl, what);
    }
    PQclear(res);
    return r;
}

static int pg_script(struct ledger *l, const char *sql, const char *what)
{
    return simple(pg(l), sql, what, NULL);
}

static int pg_begin(struct ledger *l, int write)
{
    struct pg_ledger *pl = pg(l);
    int lost = 0, r;

    if ((r = ensure(pl, 0)) != 0)
        return fail(pl, "starting a transaction");
    r = run_one(pl, "BEGIN", NULL, 0, NULL, NULL, NULL, &lost);
    if (r == DEVID_ERR_LEDGER && lost) {
        if (ensure(pl, 1) == 0)
            r = run_one(pl, "BEGIN", NULL, 0, NULL, NULL, NULL, &lost);
    }
    if (r != 0)
        return fail(pl, "starting a transaction");
    pl->in_txn = 1;
    return 0;
}

static int pg_commit(struct ledger *l)
{
    struct pg_ledger *pl = pg(l);
    int r = simple(pl, "COMMIT", "committing", "COMMIT");

    pl->in_txn = 0;
    return r;
}

static void pg_rollback(struct ledger *l)
{
    struct pg_ledger *pl = pg(l);

    if (pl->in_txn && PQstatus(pl->conn) == CONNECTION_OK)
        PQclear(PQexec(pl->conn, "ROLLBACK"));
    pl->in_txn = 0;
}

static void pg_free(struct ledger *l)
{
    struct pg_ledger *pl = pg(l);

    PQfinish(pl->conn);
    free(pl);
}

static const struct ledger_driver postgres_driver = {
    .name = "postgresql",
    .dialect = LEDGER_DIALECT_POSTGRES,
    /* Replicas starting at once migrate one after the other (the key is
     * "devid" in ASCII); a migration of a large ledger may take longer
     * than a request's statement_timeout. */
    .migration_lock = "SET LOCAL statement_timeout = 0; SELECT pg_advisory_xact_lock(1684370788)",
    .free = pg_free,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .script = pg_script,
    .exec = pg_exec,
};

int ledger_postgres_open(struct ledger **out, const char *conninfo)
{
    /* Our defaults first: the keywords of |conninfo| (expanded from
     * dbname) override them. */
    static const char *const keywords[] = {"connect_timeout",
                                           "application_name",
                                           "keepalives_idle",
                                           "keepalives_interval",
                                           "keepalives_count",
                                           "dbname",
                                           NULL};
    const char *values[] = {"5", "devid-verifier", "30", "10", "3", conninfo, NULL};
    struct pg_ledger *pl = NULL;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || conninfo == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((pl = calloc(1, sizeof(*pl))) == NULL)
        return DEVID_ERR_ALLOC;
    pl->base.driver = &postgres_driver;
    name_from_conninfo(pl, conninfo);
    clock_gettime(CLOCK_MONOTONIC, &pl->last_attempt);
    if ((pl->conn = PQconnectdbParams(keywords, values, 1)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if (PQstatus(pl->conn) != CONNECTION_OK) {
        set_error(pl, NULL);
        log_err("cannot connect to ledger %s: %s", pl->base.name, pl->error);
        r = DEVID_ERR_IO;
        goto out;
    }
    if ((r = session(pl)) != 0)
        goto out;
    *out = &pl->base;
    pl = NULL;
    r = 0;
out:
    if (pl != NULL)
        pg_free(&pl->base);
    return r;
}
