/* The ledger's backend-neutral SQL (sql.h): the schema, its migrations, and
 * the helpers ledger.c's statements go through. */
#include "verifier/ledger/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/hex.h"
#include "common/io/log.h"
#include "verifier/ledger/group.h"

/*
 * The schema, in order. Migration i (1-based) takes a database from version
 * i - 1 to i; schema_version holds the version reached. Append only: a
 * released migration never changes. Both backends run the same migrations;
 * only the types below are spelled per dialect (SQLite keeps the text it
 * always had).
 */
#define MIGRATION_1(ID, INT64, BYTES)                                                      \
    "CREATE TABLE issuance ("                                                              \
    "  id " ID                                                                             \
    ","                                                                                    \
    "  cert_serial TEXT NOT NULL UNIQUE,"                                                  \
    "  cert_der " BYTES                                                                    \
    " NOT NULL,"                                                                           \
    "  manufacturer TEXT NOT NULL,"                                                        \
    "  model TEXT NOT NULL,"                                                               \
    "  device_serial TEXT NOT NULL,"                                                       \
    "  idevid_sha256 TEXT NOT NULL,"                                                       \
    "  csr_sha256 TEXT NOT NULL,"                                                          \
    "  nonce TEXT NOT NULL UNIQUE,"                                                        \
    "  request_sha256 TEXT NOT NULL,"                                                      \
    "  signer_kind INTEGER NOT NULL,"                                                      \
    "  issued_at " INT64                                                                   \
    " NOT NULL,"                                                                           \
    "  not_after " INT64                                                                   \
    " NOT NULL,"                                                                           \
    "  replica_id TEXT NOT NULL,"                                                          \
    "  supersedes TEXT,"                                                                   \
    "  revoked_at " INT64                                                                  \
    ","                                                                                    \
    "  revocation_reason INTEGER,"                                                         \
    "  CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL))"                         \
    ");"                                                                                   \
    "CREATE INDEX issuance_device ON issuance (device_serial, manufacturer, revoked_at);"  \
    "CREATE INDEX issuance_issued ON issuance (issued_at);"                                \
    "CREATE INDEX issuance_revoked ON issuance (revoked_at) WHERE revoked_at IS NOT NULL;" \
    "CREATE TABLE crl_state ("                                                             \
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"                                             \
    "  last_number " INT64                                                                 \
    " NOT NULL"                                                                            \
    ");"                                                                                   \
    "INSERT INTO crl_state (id, last_number) VALUES (1, 0);"

/* 2: one row per device, which an enrollment locks while it decides (so
 * that two enrollments of one device are judged one after the other, on
 * every replica); and the revision every revocation advances, which tells
 * replicas their CRL is stale. */
#define MIGRATION_2                                                \
    "CREATE TABLE device ("                                        \
    "  manufacturer TEXT NOT NULL,"                                \
    "  device_serial TEXT NOT NULL,"                               \
    "  issuances BIGINT NOT NULL,"                                 \
    "  PRIMARY KEY (manufacturer, device_serial)"                  \
    ");"                                                           \
    "INSERT INTO device (manufacturer, device_serial, issuances)"  \
    "  SELECT manufacturer, device_serial, count(*) FROM issuance" \
    "  GROUP BY manufacturer, device_serial;"                      \
    "ALTER TABLE crl_state ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;"

/* 3: the assurance level of each issuance (verifier/core/assurance.h).
 * Rows recorded before it were judged the same way: an IAK signer
 * (SignerKind 2) was a restricted IAK, every other signer the IDevID. */
#define MIGRATION_3                                                          \
    "ALTER TABLE issuance ADD COLUMN assurance TEXT NOT NULL DEFAULT 'none'" \
    "  CHECK (assurance IN ('iak', 'ek', 'none'));"                          \
    "UPDATE issuance SET assurance = 'iak' WHERE signer_kind = 2;"

/* 4: the issuance log (docs/architecture.md, "The issuance log"). Each
 * issuance and revocation adds a log_entry row, its leaf
 * (verifier/core/tlog.h), in its own transaction; log_index stays NULL
 * until a sequencer (ledger_log_sequence) gives the committed rows the next
 * indices under the log_state row's lock, so the order is the database's
 * and no enrollment waits for it. tree_head keeps the heads the signer
 * signed. Rows recorded before this version get their leaves from the first
 * sequencer run (backfilled = 0). */
#define MIGRATION_4(ID, BYTES)                                                  \
    "CREATE TABLE log_entry ("                                                  \
    "  id " ID                                                                  \
    ","                                                                         \
    "  log_index BIGINT UNIQUE,"                                                \
    "  kind INTEGER NOT NULL CHECK (kind IN (1, 2)),"                           \
    "  cert_serial TEXT NOT NULL,"                                              \
    "  leaf " BYTES                                                             \
    " NOT NULL"                                                                 \
    ");"                                                                        \
    "CREATE INDEX log_entry_pending ON log_entry (id) WHERE log_index IS NULL;" \
    "CREATE INDEX log_entry_serial ON log_entry (cert_serial, kind);"           \
    "CREATE TABLE log_state ("                                                  \
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"                                  \
    "  size BIGINT NOT NULL,"                                                   \
    "  backfilled INTEGER NOT NULL"                                             \
    ");"                                                                        \
    "INSERT INTO log_state (id, size, backfilled) VALUES (1, 0, 0);"            \
    "CREATE TABLE tree_head ("                                                  \
    "  id " ID                                                                  \
    ","                                                                         \
    "  tree_size BIGINT NOT NULL,"                                              \
    "  signed_at BIGINT NOT NULL,"                                              \
    "  root_hash TEXT NOT NULL,"                                                \
    "  replica_id TEXT NOT NULL,"                                               \
    "  head " BYTES                                                             \
    " NOT NULL"                                                                 \
    ");"                                                                        \
    "CREATE INDEX tree_head_size ON tree_head (tree_size, signed_at);"

/* 5: the boot-state gate's PCR values (verifier/core/quote.h), as the
 * verified quote showed them: "7=sha256:HEX,11=sha256:HEX", ascending; ''
 * for an issuance whose policy asked for no quote, and for rows recorded
 * before this version. */
#define MIGRATION_5 "ALTER TABLE issuance ADD COLUMN pcr_values TEXT NOT NULL DEFAULT '';"

static const char *const sqlite_migrations[] = {
    MIGRATION_1("INTEGER PRIMARY KEY", "INTEGER", "BLOB"),
    MIGRATION_2,
    MIGRATION_3,
    MIGRATION_4("INTEGER PRIMARY KEY", "BLOB"),
    MIGRATION_5,
};

static const char *const postgres_migrations[] = {
    MIGRATION_1("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BIGINT", "BYTEA"),
    MIGRATION_2,
    MIGRATION_3,
    MIGRATION_4("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BYTEA"),
    MIGRATION_5,
};

#define SCHEMA_VERSION ((int)(sizeof(sqlite_migrations) / sizeof(sqlite_migrations[0])))

_Static_assert(sizeof(sqlite_migrations) == sizeof(postgres_migrations),
               "every backend runs every migration");

int sql_schema_version(void)
{
    return SCHEMA_VERSION;
}

/* exec binds |params| (hex as text) and runs |sql| through the driver. */
static int exec(struct ledger *l, const char *sql, const char *what, const struct sql_param *params,
                size_t n, ledger_row_fn fn, void *arg, int64_t *changes)
{
    struct ledger_param bound[SQL_MAX_PARAMS];
    char hex[SQL_MAX_PARAMS][2 * 64 + 1];
    size_t i;

    if (n > SQL_MAX_PARAMS) {
        log_err("ledger %s: %s: %zu parameters, more than %d", l->name, what, n, SQL_MAX_PARAMS);
        return DEVID_ERR_INTERNAL;
    }
    for (i = 0; i < n; i++) {
        bound[i] = (struct ledger_param){LEDGER_TEXT, params[i].data, params[i].len, params[i].i};
        if (params[i].type == SQL_INT) {
            bound[i].type = LEDGER_INT;
        } else if (params[i].type == SQL_BLOB) {
            bound[i].type = LEDGER_BLOB;
        } else if (params[i].type == SQL_HEX) {
            if (params[i].len > 64)
                return DEVID_ERR_INTERNAL;
            hex_encode(hex[i], params[i].data, params[i].len);
            bound[i].data = hex[i];
        }
    }
    return l->driver->exec(l, sql, what, n > 0 ? bound : NULL, n, fn, arg, changes);
}

int sql_rows(struct ledger *l, const char *sql, const char *what, const struct sql_param *params,
             size_t n, ledger_row_fn fn, void *arg)
{
    return exec(l, sql, what, params, n, fn, arg, NULL);
}

int sql_run(struct ledger *l, int64_t *changes, const char *sql, const char *what,
            const struct sql_param *params, size_t n)
{
    return exec(l, sql, what, params, n, NULL, NULL, changes);
}

struct first_int {
    int64_t v;
    int found;
};

static int take_int(void *arg, const struct ledger_row *row)
{
    struct first_int *f = arg;

    if (row->n < 1)
        return DEVID_ERR_LEDGER;
    f->v = row->cells[0].i;
    f->found = 1;
    return 1;
}

int sql_int(struct ledger *l, int64_t *v, const char *sql, const char *what,
            const struct sql_param *params, size_t n)
{
    struct first_int f = {0, 0};
    int r = exec(l, sql, what, params, n, take_int, &f, NULL);

    if (r < 0)
        return r;
    if (!f.found) {
        log_err("ledger %s: %s returned no row", l->name, what);
        return DEVID_ERR_LEDGER;
    }
    *v = f.v;
    return 0;
}

/* copy_text copies cell |c| to |out| as a NUL-terminated string. */
static void copy_text(char *out, size_t len, const struct ledger_cell *c)
{
    size_t n = c->null || c->data == NULL ? 0 : c->len;

    if (n >= len)
        n = len - 1;
    if (n > 0)
        memcpy(out, c->data, n);
    out[n] = '\0';
}

struct first_text {
    char *out;
    size_t len;
    int found;
};

static int take_text(void *arg, const struct ledger_row *row)
{
    struct first_text *f = arg;

    if (row->n < 1)
        return DEVID_ERR_LEDGER;
    copy_text(f->out, f->len, &row->cells[0]);
    f->found = 1;
    return 1;
}

int sql_text(struct ledger *l, char *out, size_t len, int *found, const char *sql, const char *what,
             const struct sql_param *params, size_t n)
{
    struct first_text f = {out, len, 0};
    int r = exec(l, sql, what, params, n, take_text, &f, NULL);

    *found = f.found;
    return r < 0 ? r : 0;
}

/* cell_hex decodes a 64-digit hex cell into 32 bytes. */
static int cell_hex(uint8_t out[32], const struct ledger_cell *c)
{
    char s[65];

    if (c->null || c->len != 64)
        return -1;
    copy_text(s, sizeof(s), c);
    return hex_decode(out, 32, s);
}

/* fill reads one SQL_COLUMNS row into |rec|; the certificate only when |der|. */
static int fill(struct ledger *l, struct ledger_issuance *rec, const struct ledger_row *row,
                int der)
{
    const struct ledger_cell *c = row->cells;

    memset(rec, 0, sizeof(*rec));
    if (row->n != 18)
        return DEVID_ERR_LEDGER;
    copy_text(rec->cert_serial, sizeof(rec->cert_serial), &c[0]);
    copy_text(rec->manufacturer, sizeof(rec->manufacturer), &c[2]);
    copy_text(rec->model, sizeof(rec->model), &c[3]);
    copy_text(rec->device_serial, sizeof(rec->device_serial), &c[4]);
    if (cell_hex(rec->idevid_sha256, &c[5]) != 0 || cell_hex(rec->csr_sha256, &c[6]) != 0 ||
        cell_hex(rec->nonce, &c[7]) != 0 || cell_hex(rec->request_sha256, &c[8]) != 0) {
        log_err("ledger %s: the row of certificate %s has a malformed hash column", l->name,
                rec->cert_serial);
        return DEVID_ERR_LEDGER;
    }
    rec->signer_kind = (int)c[9].i;
    rec->issued_at = c[10].i;
    rec->not_after = c[11].i;
    copy_text(rec->replica_id, sizeof(rec->replica_id), &c[12]);
    copy_text(rec->supersedes, sizeof(rec->supersedes), &c[13]);
    rec->revoked_at = c[14].null ? 0 : c[14].i;
    rec->revocation_reason = c[15].null ? 0 : (int)c[15].i;
    copy_text(rec->assurance, sizeof(rec->assurance), &c[16]);
    copy_text(rec->pcr_values, sizeof(rec->pcr_values), &c[17]);
    if (!der)
        return 0;
    if (c[1].null || c[1].len == 0 || c[1].len > LEDGER_CERT_MAX) {
        log_err("ledger %s: the certificate of %s is %zu bytes, outside 1..%d", l->name,
                rec->cert_serial, c[1].len, LEDGER_CERT_MAX);
        return DEVID_ERR_LEDGER;
    }
    if ((rec->cert_der = malloc(c[1].len)) == NULL)
        return DEVID_ERR_ALLOC;
    memcpy(rec->cert_der, c[1].data, c[1].len);
    rec->cert_der_len = c[1].len;
    return 0;
}

struct found {
    struct ledger *l;
    struct ledger_issuance *out;
    int r;
};

static int take_issuance(void *arg, const struct ledger_row *row)
{
    struct found *f = arg;

    if ((f->r = fill(f->l, f->out, row, 1)) != 0)
        ledger_issuance_cleanup(f->out);
    return 1;
}

int sql_find(struct ledger *l, struct ledger_issuance *out, const char *sql, const char *what,
             const struct sql_param *params, size_t n)
{
    struct found f = {l, out, DEVID_ERR_NOT_FOUND};
    int r;

    memset(out, 0, sizeof(*out));
    if ((r = exec(l, sql, what, params, n, take_issuance, &f, NULL)) < 0) {
        ledger_issuance_cleanup(out);
        return r;
    }
    return f.r;
}

struct each {
    struct ledger *l;
    enum sql_row_kind kind;
    size_t limit, n;
    ledger_list_fn fn;
    void *arg;
};

static int each_row(void *arg, const struct ledger_row *row)
{
    struct each *e = arg;
    struct ledger_issuance rec;
    int r;

    if (e->n >= e->limit)
        return 0;
    if (e->kind == SQL_ROW_LISTING || e->kind == SQL_ROW_FULL) {
        if ((r = fill(e->l, &rec, row, e->kind == SQL_ROW_FULL)) != 0) {
            ledger_issuance_cleanup(&rec);
            return r;
        }
    } else {
        memset(&rec, 0, sizeof(rec));
        if (row->n != 4)
            return DEVID_ERR_LEDGER;
        copy_text(rec.cert_serial, sizeof(rec.cert_serial), &row->cells[0]);
        rec.not_after = row->cells[1].i;
        rec.revoked_at = row->cells[2].i;
        rec.revocation_reason = (int)row->cells[3].i;
    }
    r = e->fn(e->arg, &rec);
    ledger_issuance_cleanup(&rec);
    e->n++;
    return r;
}

int sql_each(struct ledger *l, enum sql_row_kind kind, size_t limit, ledger_list_fn fn, void *arg,
             const char *sql, const char *what, const struct sql_param *params, size_t n)
{
    struct each e = {l, kind, limit, 0, fn, arg};

    return exec(l, sql, what, params, n, each_row, &e, NULL);
}

int sql_transaction(struct ledger *l, int write, int (*body)(struct ledger *l, void *arg),
                    void *arg)
{
    int r;

    if ((r = l->driver->begin(l, write)) != 0)
        return r;
    if ((r = body(l, arg)) == 0 && (r = l->driver->commit(l)) == 0)
        return 0;
    l->driver->rollback(l);
    return r;
}

int sql_transaction_grouped(struct ledger *l, int (*body)(struct ledger *l, void *arg), void *arg)
{
    if (l->group != NULL)
        return ledger_group_transaction(l->group, body, arg);
    return sql_transaction(l, 1, body, arg);
}

/* The schema version recorded in the database (0 for a new one). */
static int schema_version(struct ledger *l, int64_t *version)
{
    int r;

    if ((r = l->driver->script(
             l, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
             "creating schema_version")) != 0 ||
        (r = sql_int(l, version, "SELECT coalesce(max(version), -1) FROM schema_version",
                     "reading the schema version", NO_PARAMS)) != 0)
        return r;
    if (*version != -1)
        return 0;
    *version = 0;
    return sql_run(l, NULL, "INSERT INTO schema_version (version) VALUES (0)",
                   "initializing schema_version", NO_PARAMS);
}

static int migrate_txn(struct ledger *l, void *arg)
{
    const char *const *migrations =
        l->driver->dialect == LEDGER_DIALECT_POSTGRES ? postgres_migrations : sqlite_migrations;
    int create = *(const int *)arg;
    char what[64];
    int64_t version;
    int r, v;

    if (l->driver->migration_lock != NULL &&
        (r = l->driver->script(l, l->driver->migration_lock, "locking the schema for migration")) !=
            0)
        return r;
    if ((r = schema_version(l, &version)) != 0)
        return r;
    if (version > SCHEMA_VERSION || version < 0) {
        log_err(
            "ledger %s has schema version %lld, but this devid-verifier knows versions up "
            "to %d; upgrade devid-verifier before using this ledger",
            l->name, (long long)version, SCHEMA_VERSION);
        return DEVID_ERR_CONFIG;
    }
    if (version == 0 && !create) {
        log_err("ledger %s holds no devid ledger yet (is it the right database?)", l->name);
        return DEVID_ERR_NOT_FOUND;
    }
    for (v = (int)version + 1; v <= SCHEMA_VERSION; v++) {
        snprintf(what, sizeof(what), "schema migration %d", v);
        if ((r = l->driver->script(l, migrations[v - 1], what)) != 0 ||
            (r = sql_run(l, NULL, "UPDATE schema_version SET version = $1", what,
                         PARAMS(INT(v)))) != 0)
            return r;
        log_info("ledger %s: schema migrated to version %d", l->name, v);
    }
    return 0;
}

int sql_migrate(struct ledger *l, int create)
{
    return sql_transaction(l, 1, migrate_txn, &create);
}
