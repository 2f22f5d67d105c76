/* The SQLite ledger backend: the one file that talks to libsqlite3 and turns
 * its errors into ours. WAL with synchronous=FULL: a commit returns only
 * after the write-ahead log reached stable storage. One connection per
 * handle; handles are not shared between threads. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/err.h"
#include "common/hex.h"
#include "common/io/log.h"
#include "verifier/ledger/backend.h"

/* How long a statement waits for another connection's write lock. */
#define BUSY_TIMEOUT_MS 10000

struct sqlite_ledger {
    struct ledger base; /* first: the handle callers see */
    sqlite3 *db;
    char path[1024];
};

/*
 * The schema, in order. Migration i (1-based) takes a database from version
 * i - 1 to i; schema_version holds the version reached. Append only: a
 * released migration never changes.
 */
static const char *const migrations[] = {
    /* 1: issuances, their evidence and revocation; the CRL counter. */
    "CREATE TABLE issuance ("
    "  id INTEGER PRIMARY KEY,"
    "  cert_serial TEXT NOT NULL UNIQUE,"
    "  cert_der BLOB NOT NULL,"
    "  manufacturer TEXT NOT NULL,"
    "  model TEXT NOT NULL,"
    "  device_serial TEXT NOT NULL,"
    "  idevid_sha256 TEXT NOT NULL,"
    "  csr_sha256 TEXT NOT NULL,"
    "  nonce TEXT NOT NULL UNIQUE,"
    "  request_sha256 TEXT NOT NULL,"
    "  signer_kind INTEGER NOT NULL,"
    "  issued_at INTEGER NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  replica_id TEXT NOT NULL,"
    "  supersedes TEXT,"
    "  revoked_at INTEGER,"
    "  revocation_reason INTEGER,"
    "  CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL))"
    ");"
    "CREATE INDEX issuance_device ON issuance (device_serial, manufacturer, revoked_at);"
    "CREATE INDEX issuance_issued ON issuance (issued_at);"
    "CREATE INDEX issuance_revoked ON issuance (revoked_at) WHERE revoked_at IS NOT NULL;"
    "CREATE TABLE crl_state ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  last_number INTEGER NOT NULL"
    ");"
    "INSERT INTO crl_state (id, last_number) VALUES (1, 0);",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

#define COLUMNS                                                                              \
    "cert_serial, cert_der, manufacturer, model, device_serial, idevid_sha256, csr_sha256, " \
    "nonce, request_sha256, signer_kind, issued_at, not_after, replica_id, supersedes, "     \
    "revoked_at, revocation_reason"

static struct sqlite_ledger *sq(struct ledger *l)
{
    return (struct sqlite_ledger *)l;
}

/* fail logs what failed with SQLite's message and returns DEVID_ERR_LEDGER. */
static int fail(struct sqlite_ledger *sl, const char *what)
{
    log_err("ledger %s: %s failed: %s (%s)", sl->path, what, sqlite3_errmsg(sl->db),
            sqlite3_errstr(sqlite3_extended_errcode(sl->db)));
    return DEVID_ERR_LEDGER;
}

static int exec(struct sqlite_ledger *sl, const char *sql, const char *what)
{
    if (sqlite3_exec(sl->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return fail(sl, what);
    return 0;
}

static void copy_text(char *out, size_t len, sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);

    snprintf(out, len, "%s", s != NULL ? (const char *)s : "");
}

/* column_hex decodes the 64 hex digits of column |col| into 32 bytes. */
static int column_hex(uint8_t out[32], sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);

    return s != NULL ? hex_decode(out, 32, (const char *)s) : -1;
}

/* One statement parameter: text (NULL binds NULL), an integer, a blob, or
 * bytes bound as lowercase hex. */
struct param {
    enum { P_TEXT, P_INT, P_BLOB, P_HEX } type;
    const void *data;
    size_t len;
    int64_t i;
};

#define TEXT(s) ((struct param){P_TEXT, (s), 0, 0})
#define INT(v) ((struct param){P_INT, NULL, 0, (int64_t)(v)})
#define BLOB(p, n) ((struct param){P_BLOB, (p), (n), 0})
#define HEX(p, n) ((struct param){P_HEX, (p), (n), 0})
/* The two arguments a helper takes for its parameters: array and count. */
#define PARAMS(...)                      \
    (const struct param[]){__VA_ARGS__}, \
        sizeof((const struct param[]){__VA_ARGS__}) / sizeof(struct param)
#define NO_PARAMS NULL, 0

static int bind_one(sqlite3_stmt *st, int i, const struct param *p)
{
    char hex[2 * 64 + 1];

    switch (p->type) {
        case P_TEXT:
            if (p->data == NULL)
                return sqlite3_bind_null(st, i);
            return sqlite3_bind_text(st, i, p->data, -1, SQLITE_TRANSIENT);
        case P_INT:
            return sqlite3_bind_int64(st, i, p->i);
        case P_BLOB:
            return sqlite3_bind_blob(st, i, p->data, (int)p->len, SQLITE_STATIC);
        case P_HEX:
            if (p->len > 64)
                return SQLITE_TOOBIG;
            hex_encode(hex, p->data, p->len);
            return sqlite3_bind_text(st, i, hex, -1, SQLITE_TRANSIENT);
    }
    return SQLITE_MISUSE;
}

/* query prepares |sql| into |*st| and binds |params| to ?1, ?2, ... (those
 * past the statement's last parameter are not bound). */
static int query(struct sqlite_ledger *sl, sqlite3_stmt **st, const char *sql, const char *what,
                 const struct param *params, size_t n)
{
    size_t i;

    *st = NULL;
    if (sqlite3_prepare_v2(sl->db, sql, -1, st, NULL) != SQLITE_OK)
        return fail(sl, what);
    for (i = 0; i < n && (int)i < sqlite3_bind_parameter_count(*st); i++) {
        if (bind_one(*st, (int)i + 1, &params[i]) != SQLITE_OK) {
            sqlite3_finalize(*st);
            *st = NULL;
            return fail(sl, what);
        }
    }
    return 0;
}

/* run executes |sql|, which returns no rows, with |params|. */
static int run(struct sqlite_ledger *sl, const char *sql, const char *what,
               const struct param *params, size_t n)
{
    sqlite3_stmt *st = NULL;
    int r;

    if ((r = query(sl, &st, sql, what, params, n)) == 0 && sqlite3_step(st) != SQLITE_DONE)
        r = fail(sl, what);
    sqlite3_finalize(st);
    return r;
}

/* query_int runs one-row |sql| with |params| and reads column 0 into |*v|. */
static int query_int(struct sqlite_ledger *sl, const char *sql, const char *what,
                     const struct param *params, size_t n, int64_t *v)
{
    sqlite3_stmt *st = NULL;
    int r;

    if ((r = query(sl, &st, sql, what, params, n)) == 0) {
        if (sqlite3_step(st) == SQLITE_ROW)
            *v = sqlite3_column_int64(st, 0);
        else
            r = fail(sl, what);
    }
    sqlite3_finalize(st);
    return r;
}

/* query_text runs |sql| with |params|; when it returns a row, copies its
 * column 0 to |out| and sets |*found|. */
static int query_text(struct sqlite_ledger *sl, const char *sql, const char *what,
                      const struct param *params, size_t n, char *out, size_t len, int *found)
{
    sqlite3_stmt *st = NULL;
    int rc, r;

    *found = 0;
    if ((r = query(sl, &st, sql, what, params, n)) == 0) {
        if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            copy_text(out, len, st, 0);
            *found = 1;
        } else if (rc != SQLITE_DONE) {
            r = fail(sl, what);
        }
    }
    sqlite3_finalize(st);
    return r;
}

/* transaction runs |body| between |begin| ("BEGIN IMMEDIATE" to write,
 * "BEGIN" to read) and COMMIT, and rolls back when either fails. */
static int transaction(struct sqlite_ledger *sl, const char *begin,
                       int (*body)(struct sqlite_ledger *sl, void *arg), void *arg)
{
    int r;

    if ((r = exec(sl, begin, "starting a transaction")) != 0)
        return r;
    if ((r = body(sl, arg)) == 0 && (r = exec(sl, "COMMIT", "committing")) == 0)
        return 0;
    if (!sqlite3_get_autocommit(sl->db))
        sqlite3_exec(sl->db, "ROLLBACK", NULL, NULL, NULL);
    return r;
}

/* fill reads one COLUMNS row into |rec|; the certificate only when |der|. */
static int fill(struct sqlite_ledger *sl, struct ledger_issuance *rec, sqlite3_stmt *st, int der)
{
    int n;

    memset(rec, 0, sizeof(*rec));
    copy_text(rec->cert_serial, sizeof(rec->cert_serial), st, 0);
    copy_text(rec->manufacturer, sizeof(rec->manufacturer), st, 2);
    copy_text(rec->model, sizeof(rec->model), st, 3);
    copy_text(rec->device_serial, sizeof(rec->device_serial), st, 4);
    if (column_hex(rec->idevid_sha256, st, 5) != 0 || column_hex(rec->csr_sha256, st, 6) != 0 ||
        column_hex(rec->nonce, st, 7) != 0 || column_hex(rec->request_sha256, st, 8) != 0) {
        log_err("ledger %s: the row of certificate %s has a malformed hash column", sl->path,
                rec->cert_serial);
        return DEVID_ERR_LEDGER;
    }
    rec->signer_kind = sqlite3_column_int(st, 9);
    rec->issued_at = sqlite3_column_int64(st, 10);
    rec->not_after = sqlite3_column_int64(st, 11);
    copy_text(rec->replica_id, sizeof(rec->replica_id), st, 12);
    copy_text(rec->supersedes, sizeof(rec->supersedes), st, 13);
    rec->revoked_at = sqlite3_column_int64(st, 14);
    rec->revocation_reason = sqlite3_column_int(st, 15);
    if (!der)
        return 0;
    n = sqlite3_column_bytes(st, 1);
    if (n <= 0 || n > LEDGER_CERT_MAX) {
        log_err("ledger %s: the certificate of %s is %d bytes, outside 1..%d", sl->path,
                rec->cert_serial, n, LEDGER_CERT_MAX);
        return DEVID_ERR_LEDGER;
    }
    if ((rec->cert_der = malloc((size_t)n)) == NULL)
        return DEVID_ERR_ALLOC;
    memcpy(rec->cert_der, sqlite3_column_blob(st, 1), (size_t)n);
    rec->cert_der_len = (size_t)n;
    return 0;
}

/* The schema version recorded in the database (0 for a new one). */
static int schema_version(struct sqlite_ledger *sl, int64_t *version)
{
    int r;

    if ((r = exec(sl, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                  "creating schema_version")) != 0 ||
        (r = query_int(sl, "SELECT coalesce(max(version), -1) FROM schema_version",
                       "reading the schema version", NO_PARAMS, version)) != 0)
        return r;
    if (*version != -1)
        return 0;
    *version = 0;
    return exec(sl, "INSERT INTO schema_version (version) VALUES (0)",
                "initializing schema_version");
}

static int migrate_txn(struct sqlite_ledger *sl, void *arg)
{
    char what[64], sql[80];
    int64_t version;
    int r, v;

    if ((r = schema_version(sl, &version)) != 0)
        return r;
    if (version > SCHEMA_VERSION || version < 0) {
        log_err(
            "ledger %s has schema version %lld, but this devid-verifier knows versions up "
            "to %d; upgrade devid-verifier before using this ledger",
            sl->path, (long long)version, SCHEMA_VERSION);
        return DEVID_ERR_CONFIG;
    }
    for (v = (int)version + 1; v <= SCHEMA_VERSION; v++) {
        snprintf(what, sizeof(what), "schema migration %d", v);
        snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %d", v);
        if ((r = exec(sl, migrations[v - 1], what)) != 0 || (r = exec(sl, sql, what)) != 0)
            return r;
        log_info("ledger %s: schema migrated to version %d", sl->path, v);
    }
    return 0;
}

static int configure(struct sqlite_ledger *sl)
{
    char mode[16] = "";
    int found = 0, r;

    sqlite3_extended_result_codes(sl->db, 1);
    if (sqlite3_busy_timeout(sl->db, BUSY_TIMEOUT_MS) != SQLITE_OK)
        return fail(sl, "setting the busy timeout");
    if ((r = query_text(sl, "PRAGMA journal_mode=WAL", "setting WAL journal mode", NO_PARAMS, mode,
                        sizeof(mode), &found)) != 0)
        return r;
    if (strcmp(mode, "wal") != 0) {
        log_err(
            "ledger %s: the database refused WAL journal mode (got \"%s\"); use a file "
            "on a local file system",
            sl->path, mode);
        return DEVID_ERR_LEDGER;
    }
    return exec(sl, "PRAGMA synchronous=FULL", "setting synchronous=FULL");
}

static const struct ledger_ops sqlite_ops;

int ledger_sqlite_open(struct ledger **out, const char *path, int create)
{
    struct sqlite_ledger *sl = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    int rc, r = DEVID_ERR_INTERNAL;

    if (out == NULL || path == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (strlen(path) >= sizeof(sl->path)) {
        log_err("ledger path is longer than %zu bytes", sizeof(sl->path) - 1);
        return DEVID_ERR_CONFIG;
    }
    if ((sl = calloc(1, sizeof(*sl))) == NULL)
        return DEVID_ERR_ALLOC;
    sl->base.ops = &sqlite_ops;
    snprintf(sl->path, sizeof(sl->path), "%s", path);
    if (create)
        flags |= SQLITE_OPEN_CREATE;
    if ((rc = sqlite3_open_v2(path, &sl->db, flags, NULL)) != SQLITE_OK) {
        log_err("cannot open ledger %s: %s%s", path,
                sl->db != NULL ? sqlite3_errmsg(sl->db) : sqlite3_errstr(rc),
                create ? "" : " (does the ledger exist?)");
        r = rc == SQLITE_CANTOPEN ? DEVID_ERR_IO : DEVID_ERR_LEDGER;
        goto out;
    }
    if ((r = configure(sl)) != 0 ||
        (r = transaction(sl, "BEGIN IMMEDIATE", migrate_txn, NULL)) != 0)
        goto out;
    *out = &sl->base;
    sl = NULL;
    r = 0;
out:
    if (sl != NULL)
        sqlite_ops.free(&sl->base);
    return r;
}

static void sqlite_free(struct ledger *l)
{
    struct sqlite_ledger *sl = sq(l);

    sqlite3_close(sl->db);
    free(sl);
}

struct record_args {
    const struct ledger_issuance *rec;
    int supersede_previous;
};

static int record_txn(struct sqlite_ledger *sl, void *arg)
{
    static const char insert_sql[] =
        "INSERT INTO issuance (" COLUMNS
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, NULL, NULL)";
    const struct record_args *a = arg;
    const struct ledger_issuance *rec = a->rec;
    char prev[LEDGER_SERIAL_LEN] = "", what[256];
    int found = 0, r;

    if ((r = query_text(sl, "SELECT cert_serial FROM issuance WHERE nonce = ?1",
                        "looking up the nonce", PARAMS(HEX(rec->nonce, 32)), prev, sizeof(prev),
                        &found)) != 0)
        return r;
    if (found) {
        log_warn("ledger %s: nonce of certificate %s for device %s already used by certificate %s",
                 sl->path, rec->cert_serial, rec->device_serial, prev);
        return DEVID_ERR_NONCE_REPLAYED;
    }
    if (a->supersede_previous &&
        ((r = query_text(sl,
                         "SELECT cert_serial FROM issuance WHERE device_serial = ?1 AND "
                         "manufacturer = ?2 AND revoked_at IS NULL ORDER BY issued_at DESC, id "
                         "DESC LIMIT 1",
                         "finding the device's previous certificate",
                         PARAMS(TEXT(rec->device_serial), TEXT(rec->manufacturer)), prev,
                         sizeof(prev), &found)) != 0 ||
         (r = run(sl,
                  "UPDATE issuance SET revoked_at = ?3, revocation_reason = ?4 WHERE "
                  "device_serial = ?1 AND manufacturer = ?2 AND revoked_at IS NULL",
                  "revoking the superseded certificates",
                  PARAMS(TEXT(rec->device_serial), TEXT(rec->manufacturer), INT(rec->issued_at),
                         INT(LEDGER_REASON_SUPERSEDED)))) != 0))
        return r;
    snprintf(what, sizeof(what), "recording certificate %s for device %s", rec->cert_serial,
             rec->device_serial);
    return run(
        sl, insert_sql, what,
        PARAMS(TEXT(rec->cert_serial), BLOB(rec->cert_der, rec->cert_der_len),
               TEXT(rec->manufacturer), TEXT(rec->model), TEXT(rec->device_serial),
               HEX(rec->idevid_sha256, 32), HEX(rec->csr_sha256, 32), HEX(rec->nonce, 32),
               HEX(rec->request_sha256, 32), INT(rec->signer_kind), INT(rec->issued_at),
               INT(rec->not_after), TEXT(rec->replica_id), TEXT(prev[0] != '\0' ? prev : NULL)));
}

static int sqlite_record(struct ledger *l, const struct ledger_issuance *rec,
                         int supersede_previous)
{
    struct record_args a = {rec, supersede_previous};

    return transaction(sq(l), "BEGIN IMMEDIATE", record_txn, &a);
}

/* find_one fills |out| from the row |sql| selects with text parameter |key|. */
static int find_one(struct sqlite_ledger *sl, struct ledger_issuance *out, const char *sql,
                    const char *key, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc, r;

    if ((r = query(sl, &st, sql, what, PARAMS(TEXT(key)))) != 0)
        return r;
    if ((rc = sqlite3_step(st)) == SQLITE_DONE)
        r = DEVID_ERR_NOT_FOUND;
    else if (rc != SQLITE_ROW)
        r = fail(sl, what);
    else if ((r = fill(sl, out, st, 1)) != 0)
        ledger_issuance_cleanup(out);
    sqlite3_finalize(st);
    return r;
}

static int sqlite_lookup_nonce(struct ledger *l, struct ledger_issuance *out,
                               const uint8_t nonce[32])
{
    char hex[65];

    hex_encode(hex, nonce, 32);
    return find_one(sq(l), out, "SELECT " COLUMNS " FROM issuance WHERE nonce = ?1", hex,
                    "looking up a nonce");
}

static int sqlite_show(struct ledger *l, struct ledger_issuance *out, const char *cert_serial)
{
    return find_one(sq(l), out, "SELECT " COLUMNS " FROM issuance WHERE cert_serial = ?1",
                    cert_serial, "looking up a certificate serial");
}

static int sqlite_device_active(struct ledger *l, int *active, const char *manufacturer,
                                const char *device_serial, int64_t now)
{
    int64_t v = 0;
    int r;

    r = query_int(sq(l),
                  "SELECT EXISTS (SELECT 1 FROM issuance WHERE device_serial = ?1 AND "
                  "manufacturer = ?2 AND revoked_at IS NULL AND not_after > ?3)",
                  "checking the device's certificates",
                  PARAMS(TEXT(device_serial), TEXT(manufacturer), INT(now)), &v);
    *active = r == 0 && v != 0;
    return r;
}

struct revoke_args {
    int *count;
    const char *cert_serial, *manufacturer, *device_serial;
    int reason;
    int64_t now;
};

static int revoke_txn(struct sqlite_ledger *sl, void *arg)
{
    static const char by_serial[] = " WHERE cert_serial = ?1";
    static const char by_device[] =
        " WHERE device_serial = ?2 AND (?3 IS NULL OR manufacturer = ?3)";
    const struct revoke_args *a = arg;
    const struct param params[] = {TEXT(a->cert_serial), TEXT(a->device_serial),
                                   TEXT(a->manufacturer), INT(a->now), INT(a->reason)};
    const char *where = a->cert_serial != NULL ? by_serial : by_device;
    char sql[512];
    int64_t matches = 0;
    int r;

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM issuance%s", where);
    if ((r = query_int(sl, sql, "finding the certificates to revoke", params, 3, &matches)) != 0)
        return r;
    if (matches == 0)
        return DEVID_ERR_NOT_FOUND;
    snprintf(sql, sizeof(sql),
             "UPDATE issuance SET revoked_at = ?4, revocation_reason = ?5%s AND revoked_at IS "
             "NULL",
             where);
    if ((r = run(sl, sql, "revoking", params, 5)) != 0)
        return r;
    *a->count = sqlite3_changes(sl->db);
    return 0;
}

static int sqlite_revoke(struct ledger *l, int *count, const char *cert_serial,
                         const char *manufacturer, const char *device_serial, int reason,
                         int64_t now)
{
    struct revoke_args a = {count, cert_serial, manufacturer, device_serial, reason, now};
    int r = transaction(sq(l), "BEGIN IMMEDIATE", revoke_txn, &a);

    if (r != 0)
        *count = 0;
    return r;
}

/* each steps |st| and calls |fn| per row, at most |limit| rows. */
static int each(struct sqlite_ledger *sl, sqlite3_stmt *st, size_t limit, ledger_list_fn fn,
                void *arg, const char *what)
{
    struct ledger_issuance rec;
    size_t n = 0;
    int rc = SQLITE_DONE, r;

    while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((r = fill(sl, &rec, st, 0)) != 0)
            return r;
        r = fn(arg, &rec);
        ledger_issuance_cleanup(&rec);
        if (r != 0)
            return r;
        n++;
    }
    if (n < limit && rc != SQLITE_DONE)
        return fail(sl, what);
    return 0;
}

static int sqlite_list(struct ledger *l, const struct ledger_filter *filter, size_t limit,
                       ledger_list_fn fn, void *arg)
{
    struct sqlite_ledger *sl = sq(l);
    sqlite3_stmt *st = NULL;
    int r;

    if ((r = query(sl, &st,
                   "SELECT " COLUMNS " FROM issuance WHERE (?1 IS NULL OR manufacturer = ?1) AND "
                   "(?2 IS NULL OR device_serial = ?2) ORDER BY issued_at DESC, id DESC "
                   "LIMIT ?3",
                   "listing issuances",
                   PARAMS(TEXT(filter->manufacturer), TEXT(filter->device_serial), INT(limit)))) ==
        0)
        r = each(sl, st, limit, fn, arg, "listing issuances");
    sqlite3_finalize(st);
    return r;
}

#define REVOKED_WHERE " FROM issuance WHERE revoked_at IS NOT NULL AND not_after > ?1"

struct list_revoked_args {
    int64_t now;
    size_t limit;
    ledger_list_fn fn;
    void *arg;
};

static int list_revoked_txn(struct sqlite_ledger *sl, void *arg)
{
    const struct list_revoked_args *a = arg;
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    int r;

    if ((r = query_int(sl, "SELECT count(*)" REVOKED_WHERE, "counting revoked certificates",
                       PARAMS(INT(a->now)), &n)) != 0)
        return r;
    if ((uint64_t)n > a->limit) {
        log_err(
            "ledger %s: %lld revoked certificates are still valid, more than the limit of "
            "%zu",
            sl->path, (long long)n, a->limit);
        return DEVID_ERR_TOO_LARGE;
    }
    if ((r = query(sl, &st, "SELECT " COLUMNS REVOKED_WHERE " ORDER BY cert_serial",
                   "listing revoked certificates", PARAMS(INT(a->now)))) == 0)
        r = each(sl, st, a->limit, a->fn, a->arg, "listing revoked certificates");
    sqlite3_finalize(st);
    return r;
}

static int sqlite_list_revoked(struct ledger *l, int64_t now, size_t limit, ledger_list_fn fn,
                               void *arg)
{
    struct list_revoked_args a = {now, limit, fn, arg};

    return transaction(sq(l), "BEGIN", list_revoked_txn, &a);
}

static int sqlite_count(struct ledger *l, int64_t *issued)
{
    return query_int(sq(l), "SELECT count(*) FROM issuance", "counting issuances", NO_PARAMS,
                     issued);
}

static int next_crl_number_txn(struct sqlite_ledger *sl, void *arg)
{
    int r;

    if ((r = run(sl, "UPDATE crl_state SET last_number = last_number + 1 WHERE id = 1",
                 "advancing the CRL number", NO_PARAMS)) != 0)
        return r;
    return query_int(sl, "SELECT last_number FROM crl_state WHERE id = 1", "reading the CRL number",
                     NO_PARAMS, arg);
}

static int sqlite_next_crl_number(struct ledger *l, uint64_t *number)
{
    int64_t v = 0;
    int r;

    if ((r = transaction(sq(l), "BEGIN IMMEDIATE", next_crl_number_txn, &v)) == 0)
        *number = (uint64_t)v;
    return r;
}

static const struct ledger_ops sqlite_ops = {
    .name = "sqlite",
    .free = sqlite_free,
    .record = sqlite_record,
    .lookup_nonce = sqlite_lookup_nonce,
    .show = sqlite_show,
    .device_active = sqlite_device_active,
    .revoke = sqlite_revoke,
    .list = sqlite_list,
    .list_revoked = sqlite_list_revoked,
    .count = sqlite_count,
    .next_crl_number = sqlite_next_crl_number,
};
