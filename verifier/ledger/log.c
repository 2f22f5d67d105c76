/* The issuance log in the ledger (ledger.h, "the issuance log"; log.h):
 * entries added in the transactions that issue and revoke, indexed behind
 * them by ledger_log_sequence, and the signed tree heads. */
#include "verifier/ledger/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/err.h"
#include "common/hex.h"
#include "common/io/log.h"
#include "verifier/core/tlog.h"
#include "verifier/ledger/backend.h"

/* Rows one backfill or revocation statement reads at a time. */
#define BATCH 1000

_Static_assert(TLOG_LEAF_MAX <= LEDGER_LEAF_MAX, "a leaf fits the ledger's limit");
_Static_assert(TLOG_SIGNED_HEAD_MAX <= LEDGER_HEAD_MAX, "a head fits the ledger's limit");

/* One entry to add, read from an issuance row. */
struct pending {
    int kind;
    char serial[LEDGER_SERIAL_LEN];
    uint8_t leaf[TLOG_LEAF_MAX];
    size_t len;
};

struct collect {
    struct ledger *l;
    int kind;
    struct pending *rows;
    size_t n, cap;
    int r;
};

static void copy_cell(char *out, size_t len, const struct ledger_cell *c)
{
    size_t n = c->null || c->data == NULL ? 0 : c->len;

    if (n >= len)
        n = len - 1;
    if (n > 0)
        memcpy(out, c->data, n);
    out[n] = '\0';
}

/* make_leaf encodes the entry of |kind| for the certificate |der| of the
 * given serial, device, time and reason. */
static int make_leaf(struct pending *p, int kind, const char *serial, const uint8_t *der,
                     size_t der_len, const char *manufacturer, const char *device_serial,
                     int64_t at, int reason)
{
    struct tlog_entry e;
    unsigned int n = 0;

    memset(&e, 0, sizeof(e));
    e.type = kind;
    e.time = at;
    e.reason = kind == TLOG_ISSUED ? 0 : reason;
    if (strlen(serial) >= sizeof(e.cert_serial) || strlen(manufacturer) > TLOG_NAME_MAX ||
        strlen(device_serial) > TLOG_NAME_MAX ||
        EVP_Digest(der, der_len, e.cert_sha256, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return DEVID_ERR_INVALID_ARGUMENT;
    memcpy(e.cert_serial, serial, strlen(serial) + 1);
    memcpy(e.manufacturer, manufacturer, strlen(manufacturer) + 1);
    memcpy(e.device_serial, device_serial, strlen(device_serial) + 1);
    p->kind = kind;
    snprintf(p->serial, sizeof(p->serial), "%s", serial);
    return tlog_leaf_encode(p->leaf, &p->len, &e);
}

/* take_row: cert_serial, cert_der, manufacturer, device_serial, time,
 * reason. */
static int take_row(void *arg, const struct ledger_row *row)
{
    struct collect *c = arg;
    char serial[LEDGER_SERIAL_LEN], manufacturer[LEDGER_NAME_LEN], device[LEDGER_NAME_LEN];
    struct pending *grown;

    if (row->n != 6 || row->cells[1].null) {
        c->r = DEVID_ERR_LEDGER;
        return 1;
    }
    if (c->n == c->cap) {
        if ((grown = realloc(c->rows, (c->cap + 16) * sizeof(*grown))) == NULL) {
            c->r = DEVID_ERR_ALLOC;
            return 1;
        }
        c->rows = grown;
        c->cap += 16;
    }
    copy_cell(serial, sizeof(serial), &row->cells[0]);
    copy_cell(manufacturer, sizeof(manufacturer), &row->cells[2]);
    copy_cell(device, sizeof(device), &row->cells[3]);
    if (make_leaf(&c->rows[c->n], c->kind, serial, row->cells[1].data, row->cells[1].len,
                  manufacturer, device, row->cells[4].i, (int)row->cells[5].i) != 0) {
        log_err("ledger %s: certificate %s cannot be written as a log entry", c->l->name, serial);
        c->r = DEVID_ERR_LEDGER;
        return 1;
    }
    c->n++;
    return 0;
}

/* insert_all adds the collected entries. */
static int insert_all(struct ledger *l, const struct collect *c)
{
    size_t i;
    int r;

    for (i = 0; i < c->n; i++) {
        if ((r = sql_run(l, NULL,
                         "INSERT INTO log_entry (kind, cert_serial, leaf) VALUES ($1, $2, $3)",
                         "adding a log entry",
                         PARAMS(INT(c->rows[i].kind), TEXT(c->rows[i].serial),
                                BLOB(c->rows[i].leaf, c->rows[i].len)))) != 0)
            return r;
    }
    return 0;
}

/* collect_run reads the rows of |sql| as entries of |kind| and adds them;
 * |*n| gets how many. */
static int collect_run(struct ledger *l, size_t *n, int kind, const char *sql, const char *what,
                       const struct sql_param *params, size_t np)
{
    struct collect c = {l, kind, NULL, 0, 0, 0};
    int r;

    *n = 0;
    if ((r = sql_rows(l, sql, what, params, np, take_row, &c)) < 0 || (r = c.r) != 0 ||
        (r = insert_all(l, &c)) != 0)
        goto out;
    *n = c.n;
out:
    free(c.rows);
    return r;
}

int log_add_issued(struct ledger *l, const struct ledger_issuance *rec)
{
    struct pending p;

    if (make_leaf(&p, TLOG_ISSUED, rec->cert_serial, rec->cert_der, rec->cert_der_len,
                  rec->manufacturer, rec->device_serial, rec->issued_at, 0) != 0) {
        log_err("ledger %s: certificate %s cannot be written as a log entry", l->name,
                rec->cert_serial);
        return DEVID_ERR_INVALID_ARGUMENT;
    }
    return sql_run(l, NULL, "INSERT INTO log_entry (kind, cert_serial, leaf) VALUES (1, $1, $2)",
                   "adding the issuance to the log",
                   PARAMS(TEXT(rec->cert_serial), BLOB(p.leaf, p.len)));
}

int log_add_revoked(struct ledger *l, const char *where, const struct sql_param *params, size_t n,
                    int64_t at, int reason)
{
    struct sql_param all[SQL_MAX_PARAMS];
    char sql[768];
    size_t added = 0;

    if (n + 2 > SQL_MAX_PARAMS)
        return DEVID_ERR_INTERNAL;
    memcpy(all, params, n * sizeof(*params));
    all[n] = INT(at);
    all[n + 1] = INT(reason);
    snprintf(sql, sizeof(sql),
             "SELECT cert_serial, cert_der, manufacturer, device_serial, CAST($%zu AS BIGINT), "
             "CAST($%zu AS BIGINT) FROM issuance %s AND revoked_at IS NULL ORDER BY id",
             n + 1, n + 2, where);
    return collect_run(l, &added, TLOG_REVOKED, sql, "adding revocations to the log", all, n + 2);
}

/* backfill adds the entries of the issuances and revocations recorded
 * before the log existed, a batch at a time, issuances first. */
static int backfill(struct ledger *l)
{
    size_t n, total = 0;
    int r;

    do {
        if ((r = collect_run(l, &n, TLOG_ISSUED,
                             "SELECT cert_serial, cert_der, manufacturer, device_serial, "
                             "issued_at, 0 FROM issuance i WHERE NOT EXISTS (SELECT 1 FROM "
                             "log_entry e WHERE e.cert_serial = i.cert_serial AND e.kind = 1) "
                             "ORDER BY issued_at, id LIMIT $1",
                             "logging earlier issuances", PARAMS(INT(BATCH)))) != 0)
            return r;
        total += n;
    } while (n == BATCH);
    do {
        if ((r = collect_run(l, &n, TLOG_REVOKED,
                             "SELECT cert_serial, cert_der, manufacturer, device_serial, "
                             "revoked_at, revocation_reason FROM issuance i WHERE revoked_at IS "
                             "NOT NULL AND NOT EXISTS (SELECT 1 FROM log_entry e WHERE "
                             "e.cert_serial = i.cert_serial AND e.kind = 2) ORDER BY revoked_at, "
                             "id LIMIT $1",
                             "logging earlier revocations", PARAMS(INT(BATCH)))) != 0)
            return r;
        total += n;
    } while (n == BATCH);
    if (total > 0)
        log_info("ledger %s: %zu issuances and revocations from before the log added to it",
                 l->name, total);
    return sql_run(l, NULL, "UPDATE log_state SET backfilled = 1 WHERE id = 1",
                   "marking the log backfilled", NO_PARAMS);
}

struct sequence_args {
    uint64_t size, added;
};

static int sequence_txn(struct ledger *l, void *arg)
{
    struct sequence_args *a = arg;
    int64_t backfilled = 0, size = 0, changed = 0;
    int r;

    /* The lock: sequencers on every replica take turns here. */
    if ((r = sql_run(l, NULL, "UPDATE log_state SET size = size WHERE id = 1", "locking the log",
                     NO_PARAMS)) != 0 ||
        (r = sql_int(l, &backfilled, "SELECT backfilled FROM log_state WHERE id = 1",
                     "reading the log state", NO_PARAMS)) != 0 ||
        (backfilled == 0 && (r = backfill(l)) != 0) ||
        (r = sql_int(l, &size, "SELECT size FROM log_state WHERE id = 1", "reading the log size",
                     NO_PARAMS)) != 0 ||
        (r = sql_run(l, &changed,
                     "UPDATE log_entry SET log_index = s.ix FROM (SELECT id, $1 + row_number() "
                     "OVER (ORDER BY id) - 1 AS ix FROM log_entry WHERE log_index IS NULL ORDER "
                     "BY id LIMIT $2) AS s WHERE log_entry.id = s.id",
                     "indexing log entries", PARAMS(INT(size), INT(LEDGER_LOG_BATCH)))) != 0 ||
        (changed > 0 && (r = sql_run(l, NULL, "UPDATE log_state SET size = size + $1 WHERE id = 1",
                                     "advancing the log size", PARAMS(INT(changed)))) != 0))
        return r;
    a->size = (uint64_t)(size + changed);
    a->added = (uint64_t)changed;
    return 0;
}

int ledger_log_sequence(struct ledger *l, uint64_t *size, uint64_t *added)
{
    struct sequence_args a = {0, 0};
    int r;

    if (l == NULL || size == NULL || added == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *size = *added = 0;
    if ((r = sql_transaction(l, 1, sequence_txn, &a)) != 0)
        return r;
    *size = a.size;
    *added = a.added;
    return 0;
}

int ledger_log_size(struct ledger *l, uint64_t *size)
{
    int64_t v = 0;
    int r;

    if (l == NULL || size == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *size = 0;
    if ((r = sql_int(l, &v, "SELECT size FROM log_state WHERE id = 1", "reading the log size",
                     NO_PARAMS)) != 0)
        return r;
    *size = (uint64_t)v;
    return 0;
}

struct read_args {
    struct ledger *l;
    ledger_log_fn fn;
    void *arg;
    int indexed;
};

static int read_row(void *arg, const struct ledger_row *row)
{
    struct read_args *a = arg;

    if (row->n != 2 || row->cells[1].null || row->cells[1].len > LEDGER_LEAF_MAX ||
        (a->indexed && row->cells[0].null)) {
        log_err("ledger %s: a log entry is malformed (NULL or over %d bytes)", a->l->name,
                LEDGER_LEAF_MAX);
        return DEVID_ERR_LEDGER;
    }
    return a->fn(a->arg, a->indexed ? row->cells[0].i : -1, row->cells[1].data, row->cells[1].len);
}

int ledger_log_read(struct ledger *l, uint64_t from, uint64_t limit, ledger_log_fn fn, void *arg)
{
    struct read_args a = {l, fn, arg, 1};

    if (l == NULL || fn == NULL || from > INT64_MAX || limit > INT64_MAX)
        return DEVID_ERR_INVALID_ARGUMENT;
    return sql_rows(l,
                    "SELECT log_index, leaf FROM log_entry WHERE log_index >= $1 ORDER BY "
                    "log_index LIMIT $2",
                    "reading the log", PARAMS(INT(from), INT(limit)), read_row, &a);
}

int ledger_log_pending(struct ledger *l, ledger_log_fn fn, void *arg)
{
    struct read_args a = {l, fn, arg, 0};

    if (l == NULL || fn == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    return sql_rows(l, "SELECT log_index, leaf FROM log_entry WHERE log_index IS NULL ORDER BY id",
                    "reading the log's pending entries", NO_PARAMS, read_row, &a);
}

struct find_args {
    int found;
    int64_t index;
};

static int find_row(void *arg, const struct ledger_row *row)
{
    struct find_args *a = arg;

    if (row->n != 1)
        return DEVID_ERR_LEDGER;
    a->found = 1;
    a->index = row->cells[0].null ? -1 : row->cells[0].i;
    return 1;
}

int ledger_log_find(struct ledger *l, int64_t *index, const char *cert_serial, int kind)
{
    struct find_args a = {0, -1};
    int r;

    if (l == NULL || index == NULL || cert_serial == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *index = -1;
    if ((r = sql_rows(l,
                      "SELECT log_index FROM log_entry WHERE cert_serial = $1 AND kind = $2 "
                      "ORDER BY id LIMIT 1",
                      "finding a log entry", PARAMS(TEXT(cert_serial), INT(kind)), find_row, &a)) <
        0)
        return r;
    if (!a.found)
        return DEVID_ERR_NOT_FOUND;
    *index = a.index;
    return 0;
}

int ledger_head_store(struct ledger *l, uint64_t size, int64_t signed_at, const uint8_t root[32],
                      const uint8_t *head, size_t len)
{
    if (l == NULL || root == NULL || head == NULL || len == 0 || len > LEDGER_HEAD_MAX ||
        size > INT64_MAX)
        return DEVID_ERR_INVALID_ARGUMENT;
    return sql_run(
        l, NULL,
        "INSERT INTO tree_head (tree_size, signed_at, root_hash, replica_id, head) "
        "VALUES ($1, $2, $3, $4, $5)",
        "storing a signed tree head",
        PARAMS(INT(size), INT(signed_at), HEX(root, 32), TEXT(l->replica_id), BLOB(head, len)));
}

struct head_args {
    struct ledger *l;
    ledger_head_fn fn;
    void *arg;
    uint8_t *out;
    size_t max, len;
    int found;
};

static int head_row(void *arg, const struct ledger_row *row)
{
    struct head_args *a = arg;

    if (row->n != 1 || row->cells[0].null || row->cells[0].len > LEDGER_HEAD_MAX) {
        log_err("ledger %s: a stored tree head is malformed", a->l->name);
        return DEVID_ERR_LEDGER;
    }
    if (a->fn != NULL)
        return a->fn(a->arg, row->cells[0].data, row->cells[0].len);
    if (row->cells[0].len > a->max)
        return DEVID_ERR_TOO_LARGE;
    memcpy(a->out, row->cells[0].data, row->cells[0].len);
    a->len = row->cells[0].len;
    a->found = 1;
    return 1;
}

int ledger_head_latest(struct ledger *l, uint8_t *out, size_t *len, size_t max)
{
    struct head_args a = {l, NULL, NULL, out, max, 0, 0};
    int r;

    if (l == NULL || out == NULL || len == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *len = 0;
    if ((r = sql_rows(l,
                      "SELECT head FROM tree_head ORDER BY tree_size DESC, signed_at DESC, id "
                      "DESC LIMIT 1",
                      "reading the latest tree head", NO_PARAMS, head_row, &a)) < 0)
        return r;
    if (!a.found)
        return DEVID_ERR_NOT_FOUND;
    *len = a.len;
    return 0;
}

int ledger_heads(struct ledger *l, ledger_head_fn fn, void *arg)
{
    struct head_args a = {l, fn, arg, NULL, 0, 0, 0};

    if (l == NULL || fn == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    return sql_rows(l, "SELECT head FROM tree_head ORDER BY tree_size, signed_at, id",
                    "reading the tree heads", NO_PARAMS, head_row, &a);
}

int ledger_scan(struct ledger *l, ledger_list_fn fn, void *arg)
{
    if (l == NULL || fn == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    return sql_each(l, SQL_ROW_FULL, SIZE_MAX, fn, arg,
                    "SELECT " SQL_COLUMNS " FROM issuance ORDER BY id", "reading every issuance",
                    NO_PARAMS);
}
