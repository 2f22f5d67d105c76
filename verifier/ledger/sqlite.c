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
#include "common/io/log.h"
#include "verifier/ledger/ledger.h"

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

static int prepare(struct sqlite_ledger *sl, sqlite3_stmt **st, const char *sql, const char *what)
{
    *st = NULL;
    if (sqlite3_prepare_v2(sl->db, sql, -1, st, NULL) != SQLITE_OK)
        return fail(sl, what);
    return 0;
}

static int begin(struct sqlite_ledger *sl)
{
    return exec(sl, "BEGIN IMMEDIATE", "starting a transaction");
}

static int commit(struct sqlite_ledger *sl)
{
    return exec(sl, "COMMIT", "committing");
}

static void rollback(struct sqlite_ledger *sl)
{
    if (!sqlite3_get_autocommit(sl->db))
        sqlite3_exec(sl->db, "ROLLBACK", NULL, NULL, NULL);
}

static void to_hex(char *out, const uint8_t *in, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = "0123456789abcdef"[in[i] >> 4];
        out[2 * i + 1] = "0123456789abcdef"[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static int nibble(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int from_hex(uint8_t *out, size_t len, const unsigned char *in)
{
    size_t i;
    int hi, lo;

    if (in == NULL || strlen((const char *)in) != 2 * len)
        return -1;
    for (i = 0; i < len; i++) {
        if ((hi = nibble(in[2 * i])) < 0 || (lo = nibble(in[2 * i + 1])) < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s == NULL)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

static int bind_hex(sqlite3_stmt *st, int i, const uint8_t *in, size_t len)
{
    char hex[2 * 64 + 1];

    to_hex(hex, in, len);
    return sqlite3_bind_text(st, i, hex, -1, SQLITE_TRANSIENT);
}

static void copy_text(char *out, size_t len, sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);

    snprintf(out, len, "%s", s != NULL ? (const char *)s : "");
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
    if (from_hex(rec->idevid_sha256, 32, sqlite3_column_text(st, 5)) != 0 ||
        from_hex(rec->csr_sha256, 32, sqlite3_column_text(st, 6)) != 0 ||
        from_hex(rec->nonce, 32, sqlite3_column_text(st, 7)) != 0 ||
        from_hex(rec->request_sha256, 32, sqlite3_column_text(st, 8)) != 0) {
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

/* get_int runs one-row query |st| and reads column 0. */
static int get_int(struct sqlite_ledger *sl, sqlite3_stmt *st, int64_t *v, const char *what)
{
    if (sqlite3_step(st) != SQLITE_ROW)
        return fail(sl, what);
    *v = sqlite3_column_int64(st, 0);
    return 0;
}

static int migrate(struct sqlite_ledger *sl)
{
    sqlite3_stmt *st = NULL;
    int64_t version = 0;
    int r = DEVID_ERR_INTERNAL, v;

    if ((r = begin(sl)) != 0 ||
        (r = exec(sl, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                  "creating schema_version")) != 0 ||
        (r = prepare(sl, &st, "SELECT max(version) FROM schema_version",
                     "reading the schema version")) != 0)
        goto out;
    if (sqlite3_step(st) != SQLITE_ROW) {
        r = fail(sl, "reading the schema version");
        goto out;
    }
    if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
        if ((r = exec(sl, "INSERT INTO schema_version (version) VALUES (0)",
                      "initializing schema_version")) != 0)
            goto out;
    } else {
        version = sqlite3_column_int64(st, 0);
    }
    if (version > SCHEMA_VERSION || version < 0) {
        log_err(
            "ledger %s has schema version %lld, but this devid-verifier knows versions up "
            "to %d; upgrade devid-verifier before using this ledger",
            sl->path, (long long)version, SCHEMA_VERSION);
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    for (v = (int)version + 1; v <= SCHEMA_VERSION; v++) {
        char what[64], sql[80];

        snprintf(what, sizeof(what), "schema migration %d", v);
        snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %d", v);
        if ((r = exec(sl, migrations[v - 1], what)) != 0 || (r = exec(sl, sql, what)) != 0)
            goto out;
        log_info("ledger %s: schema migrated to version %d", sl->path, v);
    }
    sqlite3_finalize(st);
    st = NULL;
    r = commit(sl);
out:
    sqlite3_finalize(st);
    if (r != 0)
        rollback(sl);
    return r;
}

static int configure(struct sqlite_ledger *sl)
{
    sqlite3_stmt *st = NULL;
    const unsigned char *mode;
    int r = DEVID_ERR_INTERNAL;

    sqlite3_extended_result_codes(sl->db, 1);
    if (sqlite3_busy_timeout(sl->db, BUSY_TIMEOUT_MS) != SQLITE_OK)
        return fail(sl, "setting the busy timeout");
    if ((r = prepare(sl, &st, "PRAGMA journal_mode=WAL", "setting WAL journal mode")) != 0)
        goto out;
    if (sqlite3_step(st) != SQLITE_ROW) {
        r = fail(sl, "setting WAL journal mode");
        goto out;
    }
    mode = sqlite3_column_text(st, 0);
    if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
        log_err(
            "ledger %s: the database refused WAL journal mode (got \"%s\"); use a file "
            "on a local file system",
            sl->path, mode != NULL ? (const char *)mode : "");
        r = DEVID_ERR_LEDGER;
        goto out;
    }
    if ((r = exec(sl, "PRAGMA synchronous=FULL", "setting synchronous=FULL")) != 0)
        goto out;
    r = 0;
out:
    sqlite3_finalize(st);
    return r;
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
    if ((r = configure(sl)) != 0 || (r = migrate(sl)) != 0)
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

static int sqlite_record(struct ledger *l, const struct ledger_issuance *rec,
                         int supersede_previous)
{
    static const char insert_sql[] =
        "INSERT INTO issuance (" COLUMNS
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, NULL, NULL)";
    struct sqlite_ledger *sl = sq(l);
    sqlite3_stmt *st = NULL;
    char prev[LEDGER_SERIAL_LEN] = "";
    int r = DEVID_ERR_INTERNAL;

    if ((r = begin(sl)) != 0 ||
        (r = prepare(sl, &st, "SELECT cert_serial FROM issuance WHERE nonce = ?1",
                     "looking up the nonce")) != 0)
        goto out;
    bind_hex(st, 1, rec->nonce, sizeof(rec->nonce));
    if ((r = sqlite3_step(st)) == SQLITE_ROW) {
        copy_text(prev, sizeof(prev), st, 0);
        log_warn("ledger %s: nonce of certificate %s for device %s already used by certificate %s",
                 sl->path, rec->cert_serial, rec->device_serial, prev);
        r = DEVID_ERR_NONCE_REPLAYED;
        goto out;
    } else if (r != SQLITE_DONE) {
        r = fail(sl, "looking up the nonce");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (supersede_previous) {
        if ((r = prepare(sl, &st,
                         "SELECT cert_serial FROM issuance WHERE device_serial = ?1 AND "
                         "manufacturer = ?2 AND revoked_at IS NULL ORDER BY issued_at DESC, id "
                         "DESC LIMIT 1",
                         "finding the device's previous certificate")) != 0)
            goto out;
        bind_text(st, 1, rec->device_serial);
        bind_text(st, 2, rec->manufacturer);
        if ((r = sqlite3_step(st)) == SQLITE_ROW) {
            copy_text(prev, sizeof(prev), st, 0);
        } else if (r != SQLITE_DONE) {
            r = fail(sl, "finding the device's previous certificate");
            goto out;
        }
        sqlite3_finalize(st);
        st = NULL;
        if ((r = prepare(sl, &st,
                         "UPDATE issuance SET revoked_at = ?3, revocation_reason = ?4 WHERE "
                         "device_serial = ?1 AND manufacturer = ?2 AND revoked_at IS NULL",
                         "revoking the superseded certificates")) != 0)
            goto out;
        bind_text(st, 1, rec->device_serial);
        bind_text(st, 2, rec->manufacturer);
        sqlite3_bind_int64(st, 3, rec->issued_at);
        sqlite3_bind_int(st, 4, LEDGER_REASON_SUPERSEDED);
        if (sqlite3_step(st) != SQLITE_DONE) {
            r = fail(sl, "revoking the superseded certificates");
            goto out;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if ((r = prepare(sl, &st, insert_sql, "recording the issuance")) != 0)
        goto out;
    bind_text(st, 1, rec->cert_serial);
    sqlite3_bind_blob(st, 2, rec->cert_der, (int)rec->cert_der_len, SQLITE_STATIC);
    bind_text(st, 3, rec->manufacturer);
    bind_text(st, 4, rec->model);
    bind_text(st, 5, rec->device_serial);
    bind_hex(st, 6, rec->idevid_sha256, 32);
    bind_hex(st, 7, rec->csr_sha256, 32);
    bind_hex(st, 8, rec->nonce, 32);
    bind_hex(st, 9, rec->request_sha256, 32);
    sqlite3_bind_int(st, 10, rec->signer_kind);
    sqlite3_bind_int64(st, 11, rec->issued_at);
    sqlite3_bind_int64(st, 12, rec->not_after);
    bind_text(st, 13, rec->replica_id);
    bind_text(st, 14, prev[0] != '\0' ? prev : NULL);
    if (sqlite3_step(st) != SQLITE_DONE) {
        char what[256];

        snprintf(what, sizeof(what), "recording certificate %s for device %s", rec->cert_serial,
                 rec->device_serial);
        r = fail(sl, what);
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    r = commit(sl);
out:
    sqlite3_finalize(st);
    if (r != 0)
        rollback(sl);
    return r;
}

/* find_one fills |out| from the row |sql| selects with text parameter |key|. */
static int find_one(struct sqlite_ledger *sl, struct ledger_issuance *out, const char *sql,
                    const char *key, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc, r = DEVID_ERR_INTERNAL;

    if ((r = prepare(sl, &st, sql, what)) != 0)
        goto out;
    bind_text(st, 1, key);
    if ((rc = sqlite3_step(st)) == SQLITE_DONE) {
        r = DEVID_ERR_NOT_FOUND;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        r = fail(sl, what);
        goto out;
    }
    if ((r = fill(sl, out, st, 1)) != 0) {
        ledger_issuance_cleanup(out);
        goto out;
    }
    r = 0;
out:
    sqlite3_finalize(st);
    return r;
}

static int sqlite_lookup_nonce(struct ledger *l, struct ledger_issuance *out,
                               const uint8_t nonce[32])
{
    char hex[65];

    to_hex(hex, nonce, 32);
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
    struct sqlite_ledger *sl = sq(l);
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    int r = DEVID_ERR_INTERNAL;

    if ((r = prepare(sl, &st,
                     "SELECT EXISTS (SELECT 1 FROM issuance WHERE device_serial = ?1 AND "
                     "manufacturer = ?2 AND revoked_at IS NULL AND not_after > ?3)",
                     "checking the device's certificates")) != 0)
        goto out;
    bind_text(st, 1, device_serial);
    bind_text(st, 2, manufacturer);
    sqlite3_bind_int64(st, 3, now);
    if ((r = get_int(sl, st, &v, "checking the device's certificates")) != 0)
        goto out;
    *active = v != 0;
    r = 0;
out:
    sqlite3_finalize(st);
    return r;
}

static int sqlite_revoke(struct ledger *l, int *count, const char *cert_serial,
                         const char *manufacturer, const char *device_serial, int reason,
                         int64_t now)
{
    static const char by_serial[] = " WHERE cert_serial = ?1";
    static const char by_device[] =
        " WHERE device_serial = ?2 AND (?3 IS NULL OR manufacturer = ?3)";
    struct sqlite_ledger *sl = sq(l);
    const char *where = cert_serial != NULL ? by_serial : by_device;
    sqlite3_stmt *st = NULL;
    char sql[512];
    int64_t matches = 0;
    int r = DEVID_ERR_INTERNAL;

    if ((r = begin(sl)) != 0)
        goto out;
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM issuance%s", where);
    if ((r = prepare(sl, &st, sql, "finding the certificates to revoke")) != 0)
        goto out;
    bind_text(st, 1, cert_serial);
    bind_text(st, 2, device_serial);
    bind_text(st, 3, manufacturer);
    if ((r = get_int(sl, st, &matches, "finding the certificates to revoke")) != 0)
        goto out;
    sqlite3_finalize(st);
    st = NULL;
    if (matches == 0) {
        r = DEVID_ERR_NOT_FOUND;
        goto out;
    }
    snprintf(sql, sizeof(sql),
             "UPDATE issuance SET revoked_at = ?4, revocation_reason = ?5%s AND revoked_at IS "
             "NULL",
             where);
    if ((r = prepare(sl, &st, sql, "revoking")) != 0)
        goto out;
    bind_text(st, 1, cert_serial);
    bind_text(st, 2, device_serial);
    bind_text(st, 3, manufacturer);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int(st, 5, reason);
    if (sqlite3_step(st) != SQLITE_DONE) {
        r = fail(sl, "revoking");
        goto out;
    }
    *count = sqlite3_changes(sl->db);
    sqlite3_finalize(st);
    st = NULL;
    r = commit(sl);
out:
    sqlite3_finalize(st);
    if (r != 0) {
        rollback(sl);
        *count = 0;
    }
    return r;
}

/* each steps |st| and calls |fn| per row, at most |limit| rows. */
static int each(struct sqlite_ledger *sl, sqlite3_stmt *st, size_t limit, int der,
                ledger_list_fn fn, void *arg, const char *what)
{
    struct ledger_issuance rec;
    size_t n = 0;
    int rc = SQLITE_DONE, r;

    while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((r = fill(sl, &rec, st, der)) != 0)
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
    int r = DEVID_ERR_INTERNAL;

    if ((r = prepare(sl, &st,
                     "SELECT " COLUMNS " FROM issuance WHERE (?1 IS NULL OR manufacturer = ?1) AND "
                     "(?2 IS NULL OR device_serial = ?2) ORDER BY issued_at DESC, id DESC "
                     "LIMIT ?3",
                     "listing issuances")) != 0)
        goto out;
    bind_text(st, 1, filter->manufacturer);
    bind_text(st, 2, filter->device_serial);
    sqlite3_bind_int64(st, 3, (int64_t)limit);
    r = each(sl, st, limit, 0, fn, arg, "listing issuances");
out:
    sqlite3_finalize(st);
    return r;
}

#define REVOKED_WHERE " FROM issuance WHERE revoked_at IS NOT NULL AND not_after > ?1"

static int sqlite_list_revoked(struct ledger *l, int64_t now, size_t limit, ledger_list_fn fn,
                               void *arg)
{
    struct sqlite_ledger *sl = sq(l);
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    int r = DEVID_ERR_INTERNAL;

    if ((r = exec(sl, "BEGIN", "starting a read transaction")) != 0 ||
        (r = prepare(sl, &st, "SELECT count(*)" REVOKED_WHERE, "counting revoked certificates")) !=
            0)
        goto out;
    sqlite3_bind_int64(st, 1, now);
    if ((r = get_int(sl, st, &n, "counting revoked certificates")) != 0)
        goto out;
    sqlite3_finalize(st);
    st = NULL;
    if ((uint64_t)n > limit) {
        log_err(
            "ledger %s: %lld revoked certificates are still valid, more than the limit of "
            "%zu",
            sl->path, (long long)n, limit);
        r = DEVID_ERR_TOO_LARGE;
        goto out;
    }
    if ((r = prepare(sl, &st, "SELECT " COLUMNS REVOKED_WHERE " ORDER BY cert_serial",
                     "listing revoked certificates")) != 0)
        goto out;
    sqlite3_bind_int64(st, 1, now);
    if ((r = each(sl, st, limit, 0, fn, arg, "listing revoked certificates")) != 0)
        goto out;
    sqlite3_finalize(st);
    st = NULL;
    r = commit(sl);
out:
    sqlite3_finalize(st);
    if (r != 0)
        rollback(sl);
    return r;
}

static int sqlite_count(struct ledger *l, int64_t *issued)
{
    struct sqlite_ledger *sl = sq(l);
    sqlite3_stmt *st = NULL;
    int r;

    if ((r = prepare(sl, &st, "SELECT count(*) FROM issuance", "counting issuances")) == 0)
        r = get_int(sl, st, issued, "counting issuances");
    sqlite3_finalize(st);
    return r;
}

static int sqlite_next_crl_number(struct ledger *l, uint64_t *number)
{
    struct sqlite_ledger *sl = sq(l);
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    int r = DEVID_ERR_INTERNAL;

    if ((r = begin(sl)) != 0 ||
        (r = exec(sl, "UPDATE crl_state SET last_number = last_number + 1 WHERE id = 1",
                  "advancing the CRL number")) != 0 ||
        (r = prepare(sl, &st, "SELECT last_number FROM crl_state WHERE id = 1",
                     "reading the CRL number")) != 0 ||
        (r = get_int(sl, st, &v, "reading the CRL number")) != 0)
        goto out;
    sqlite3_finalize(st);
    st = NULL;
    if ((r = commit(sl)) != 0)
        goto out;
    *number = (uint64_t)v;
out:
    sqlite3_finalize(st);
    if (r != 0)
        rollback(sl);
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
