/* The ledger interface: URI dispatch, argument checks, reason names, and
 * every statement and decision, the same on each backend (through sql.h
 * onto the driver of backend.h). */
#include "verifier/ledger/ledger.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "common/hex.h"
#include "common/io/log.h"
#include "verifier/ledger/backend.h"
#include "verifier/ledger/group.h"
#include "verifier/ledger/log.h"
#include "verifier/ledger/sql.h"

static const struct {
    int reason;
    const char *name;
} reasons[] = {
    {LEDGER_REASON_UNSPECIFIED, "unspecified"},
    {LEDGER_REASON_KEY_COMPROMISE, "keyCompromise"},
    {LEDGER_REASON_AFFILIATION_CHANGED, "affiliationChanged"},
    {LEDGER_REASON_SUPERSEDED, "superseded"},
    {LEDGER_REASON_CESSATION_OF_OPERATION, "cessationOfOperation"},
};

const char *ledger_reason_name(int reason)
{
    size_t i;

    for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (reasons[i].reason == reason)
            return reasons[i].name;
    }
    return NULL;
}

int ledger_reason_parse(int *reason, const char *name)
{
    size_t i;

    if (reason == NULL || name == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (strcmp(reasons[i].name, name) == 0) {
            *reason = reasons[i].reason;
            return 0;
        }
    }
    return DEVID_ERR_INVALID_ARGUMENT;
}

int ledger_serial_normalize(char out[LEDGER_SERIAL_LEN], const char *in)
{
    char digits[LEDGER_SERIAL_LEN * 2];
    size_t n = 0, skip = 0;
    const char *p;

    if (out == NULL || in == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    out[0] = '\0';
    if (in[0] == '0' && (in[1] == 'x' || in[1] == 'X'))
        in += 2;
    for (p = in; *p != '\0'; p++) {
        if (*p != ':' && hex_digit(*p) < 0)
            return DEVID_ERR_INVALID_ARGUMENT;
        if (*p != ':')
            n++;
    }
    if (n == 0 || n >= sizeof(digits) - 1)
        return DEVID_ERR_INVALID_ARGUMENT;
    n = 0;
    if (strlen(in) % 2 == 1 && strchr(in, ':') == NULL)
        digits[n++] = '0';
    for (p = in; *p != '\0'; p++) {
        if (*p != ':')
            digits[n++] = "0123456789abcdef"[hex_digit(*p)];
    }
    if (n % 2 == 1)
        return DEVID_ERR_INVALID_ARGUMENT;
    while (n - skip > 2 && digits[skip] == '0' && digits[skip + 1] == '0')
        skip += 2;
    if ((n - skip) / 2 > 20)
        return DEVID_ERR_INVALID_ARGUMENT;
    memcpy(out, digits + skip, n - skip);
    out[n - skip] = '\0';
    return 0;
}

static int default_replica_id(char *out, size_t len)
{
    char host[256];

    if (gethostname(host, sizeof(host)) != 0) {
        log_err("cannot read the host name for the ledger replica id: %s", strerror(errno));
        return DEVID_ERR_CONFIG;
    }
    host[sizeof(host) - 1] = '\0';
    if (strlen(host) >= len) {
        log_err("host name %s is too long for a ledger replica id; configure one", host);
        return DEVID_ERR_CONFIG;
    }
    memcpy(out, host, strlen(host) + 1);
    return 0;
}

/* is_keywords tells a libpq keyword string ("host=db dbname=devid") from a
 * path: it starts with a lowercase keyword and "=". */
static int is_keywords(const char *s)
{
    const char *p = s;

    while ((*p >= 'a' && *p <= 'z') || *p == '_')
        p++;
    return p > s && *p == '=';
}

/* open_backend opens the backend |uri| names. */
static int open_backend(struct ledger **out, const char *uri, int create)
{
    const char *path = NULL;

    if (strncmp(uri, "postgresql://", 13) == 0 || strncmp(uri, "postgres://", 11) == 0 ||
        is_keywords(uri))
        return ledger_postgres_open(out, uri);
    if (strncmp(uri, "pg:", 3) == 0)
        return ledger_postgres_open(out, uri + 3);
    if (strncmp(uri, "sqlite://", 9) == 0)
        path = uri + 9;
    else if (strncmp(uri, "sqlite:", 7) == 0)
        path = uri + 7;
    else if (strchr(uri, ':') == NULL || uri[0] == '/' || uri[0] == '.')
        path = uri;
    if (path == NULL || path[0] == '\0') {
        log_err(
            "ledger URI \"%s\" is neither sqlite:PATH, a path, a postgresql:// URI nor a "
            "libpq keyword string",
            uri);
        return DEVID_ERR_CONFIG;
    }
    return ledger_sqlite_open(out, path, create);
}

struct writer_args {
    const char *uri;
    const char *replica_id;
};

static int open_writer(struct ledger **out, void *arg)
{
    const struct writer_args *a = arg;
    int r;

    if ((r = open_backend(out, a->uri, 0)) == 0)
        snprintf((*out)->replica_id, sizeof((*out)->replica_id), "%s", a->replica_id);
    return r;
}

/* join_group puts |l|, opened on |uri|, in the group of the handles that
 * write to the same database as the same replica. */
static int join_group(struct ledger *l, const char *uri)
{
    char key[sizeof(l->name) + LEDGER_NAME_LEN + 1];
    struct writer_args a = {uri, l->replica_id};

    snprintf(key, sizeof(key), "%s\n%s", l->name, l->replica_id);
    return ledger_group_join(&l->group, key, open_writer, &a);
}

static int open_uri(struct ledger **out, const char *uri, const char *replica_id, int create)
{
    struct ledger *l = NULL;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || uri == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (replica_id != NULL && (replica_id[0] == '\0' || strlen(replica_id) >= LEDGER_NAME_LEN)) {
        log_err("ledger replica id \"%s\" must be 1 to %d characters", replica_id,
                LEDGER_NAME_LEN - 1);
        return DEVID_ERR_CONFIG;
    }
    if ((r = open_backend(&l, uri, create)) != 0)
        goto out;
    if ((r = sql_migrate(l, create)) != 0) {
        if (r == DEVID_ERR_NOT_FOUND)
            r = DEVID_ERR_IO;
        goto out;
    }
    if (replica_id != NULL)
        snprintf(l->replica_id, sizeof(l->replica_id), "%s", replica_id);
    else if ((r = default_replica_id(l->replica_id, sizeof(l->replica_id))) != 0)
        goto out;
    if (l->driver->group_commit && (r = join_group(l, uri)) != 0)
        goto out;
    *out = l;
    l = NULL;
    r = 0;
out:
    ledger_free(l);
    return r;
}

int ledger_open(struct ledger **out, const char *uri, const char *replica_id)
{
    return open_uri(out, uri, replica_id, 1);
}

int ledger_open_existing(struct ledger **out, const char *uri)
{
    return open_uri(out, uri, NULL, 0);
}

void ledger_free(struct ledger *l)
{
    if (l == NULL)
        return;
    ledger_group_leave(l->group);
    l->driver->free(l);
}

void ledger_issuance_cleanup(struct ledger_issuance *rec)
{
    if (rec == NULL)
        return;
    free(rec->cert_der);
    OPENSSL_cleanse(rec, sizeof(*rec));
}

/* assurance_ok tells whether |s| is one of the levels the schema allows. */
static int assurance_ok(const char *s)
{
    return strcmp(s, "iak") == 0 || strcmp(s, "ek") == 0 || strcmp(s, "none") == 0;
}

static int name_ok(const char *s)
{
    size_t n = strnlen(s, LEDGER_NAME_LEN);

    return n > 0 && n < LEDGER_NAME_LEN;
}

/* same_request tells whether |stored| was recorded for the request with
 * body hash |request_sha256| from the IDevID with hash |idevid_sha256|. */
static int same_request(const struct ledger_issuance *stored, const uint8_t request_sha256[32],
                        const uint8_t idevid_sha256[32])
{
    return CRYPTO_memcmp(stored->request_sha256, request_sha256, 32) == 0 &&
           CRYPTO_memcmp(stored->idevid_sha256, idevid_sha256, 32) == 0;
}

struct record_args {
    const struct ledger_issuance *rec;
    unsigned flags;
    enum ledger_recorded *result;
    struct ledger_issuance *found;
};

/* The device's earlier certificates, revoked as superseded by |rec|; |prev|
 * gets the newest of them ("" for none). */
static int supersede(struct ledger *l, char prev[LEDGER_SERIAL_LEN],
                     const struct ledger_issuance *rec)
{
    int64_t revoked = 0;
    int found = 0, r;

    if ((r = sql_text(l, prev, LEDGER_SERIAL_LEN, &found,
                      "SELECT cert_serial FROM issuance WHERE device_serial = $1 AND "
                      "manufacturer = $2 AND revoked_at IS NULL ORDER BY issued_at DESC, id DESC "
                      "LIMIT 1",
                      "finding the device's previous certificate",
                      PARAMS(TEXT(rec->device_serial), TEXT(rec->manufacturer)))) != 0 ||
        (r = log_add_revoked(l, "WHERE device_serial = $1 AND manufacturer = $2",
                             PARAMS(TEXT(rec->device_serial), TEXT(rec->manufacturer)),
                             rec->issued_at, LEDGER_REASON_SUPERSEDED)) != 0 ||
        (r = sql_run(l, &revoked,
                     "UPDATE issuance SET revoked_at = $3, revocation_reason = $4 WHERE "
                     "device_serial = $1 AND manufacturer = $2 AND revoked_at IS NULL",
                     "revoking the superseded certificates",
                     PARAMS(TEXT(rec->device_serial), TEXT(rec->manufacturer), INT(rec->issued_at),
                            INT(LEDGER_REASON_SUPERSEDED)))) != 0)
        return r;
    if (!found)
        prev[0] = '\0';
    if (revoked == 0)
        return 0;
    return sql_run(l, NULL, "UPDATE crl_state SET revision = revision + 1 WHERE id = 1",
                   "advancing the revocation revision", NO_PARAMS);
}

/* The decisions of ledger_record, in its transaction; 1 is an answer other
 * than LEDGER_RECORDED (rolled back). */
static int record_txn(struct ledger *l, void *arg)
{
    const struct record_args *a = arg;
    const struct ledger_issuance *rec = a->rec;
    char prev[LEDGER_SERIAL_LEN] = "", what[256];
    int r;

    if ((r = sql_run(l, NULL,
                     "INSERT INTO device (manufacturer, device_serial, issuances) VALUES ($1, $2, "
                     "1) ON CONFLICT (manufacturer, device_serial) DO UPDATE SET issuances = "
                     "device.issuances + 1",
                     "locking the device",
                     PARAMS(TEXT(rec->manufacturer), TEXT(rec->device_serial)))) != 0)
        return r;
    r = sql_find(l, a->found, "SELECT " SQL_COLUMNS " FROM issuance WHERE nonce = $1",
                 "looking up the nonce", PARAMS(HEX(rec->nonce, 32)));
    if (r == 0) {
        *a->result = same_request(a->found, rec->request_sha256, rec->idevid_sha256)
                         ? LEDGER_SAME_REQUEST
                         : LEDGER_NONCE_TAKEN;
        return 1;
    }
    if (r != DEVID_ERR_NOT_FOUND)
        return r;
    if ((a->flags & LEDGER_DENY_ACTIVE) != 0) {
        r = sql_find(
            l, a->found,
            "SELECT " SQL_COLUMNS
            " FROM issuance WHERE device_serial = $1 AND "
            "manufacturer = $2 AND revoked_at IS NULL AND not_after > $3 ORDER BY "
            "issued_at DESC, id DESC LIMIT 1",
            "checking the device's certificates",
            PARAMS(TEXT(rec->device_serial), TEXT(rec->manufacturer), INT(rec->issued_at)));
        if (r == 0) {
            *a->result = LEDGER_DEVICE_ACTIVE;
            return 1;
        }
        if (r != DEVID_ERR_NOT_FOUND)
            return r;
    }
    if ((a->flags & LEDGER_SUPERSEDE) != 0 && (r = supersede(l, prev, rec)) != 0)
        return r;
    snprintf(what, sizeof(what), "recording certificate %s for device %s", rec->cert_serial,
             rec->device_serial);
    if ((r = sql_run(
             l, NULL,
             "INSERT INTO issuance (" SQL_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
             "$10, $11, $12, $13, $14, NULL, NULL, $15, $16)",
             what,
             PARAMS(TEXT(rec->cert_serial), BLOB(rec->cert_der, rec->cert_der_len),
                    TEXT(rec->manufacturer), TEXT(rec->model), TEXT(rec->device_serial),
                    HEX(rec->idevid_sha256, 32), HEX(rec->csr_sha256, 32), HEX(rec->nonce, 32),
                    HEX(rec->request_sha256, 32), INT(rec->signer_kind), INT(rec->issued_at),
                    INT(rec->not_after), TEXT(l->replica_id), TEXT(prev[0] != '\0' ? prev : NULL),
                    TEXT(rec->assurance), TEXT(rec->pcr_values)))) != 0)
        return r;
    return log_add_issued(l, rec);
}

int ledger_record(struct ledger *l, enum ledger_recorded *result, struct ledger_issuance *found,
                  const struct ledger_issuance *rec, unsigned flags)
{
    struct ledger_issuance norm;
    struct record_args a = {&norm, flags, result, found};
    enum ledger_nonce_use use = LEDGER_NONCE_UNUSED;
    int r;

    if (l == NULL || result == NULL || found == NULL || rec == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *result = LEDGER_RECORDED;
    memset(found, 0, sizeof(*found));
    if (rec->cert_der == NULL || rec->cert_der_len == 0 || rec->cert_der_len > LEDGER_CERT_MAX ||
        !name_ok(rec->manufacturer) || !name_ok(rec->model) || !name_ok(rec->device_serial) ||
        rec->revoked_at != 0 || rec->not_after < rec->issued_at || !assurance_ok(rec->assurance)) {
        log_err("ledger: refusing a malformed issuance record for certificate %.*s",
                LEDGER_SERIAL_LEN - 1, rec->cert_serial);
        return DEVID_ERR_INVALID_ARGUMENT;
    }
    norm = *rec;
    if ((r = ledger_serial_normalize(norm.cert_serial, rec->cert_serial)) != 0) {
        log_err("ledger: certificate serial \"%.*s\" is not hex", LEDGER_SERIAL_LEN - 1,
                rec->cert_serial);
        return r;
    }
    if ((r = sql_transaction_grouped(l, record_txn, &a)) == 0 || r == 1)
        return 0;
    ledger_issuance_cleanup(found);
    *result = LEDGER_RECORDED;
    /* The UNIQUE nonce is the last word: an insert that lost to another
     * request's nonce is reported as that. */
    if (r == DEVID_ERR_LEDGER &&
        ledger_nonce_use(l, &use, found, rec->nonce, rec->request_sha256, rec->idevid_sha256) ==
            0 &&
        use != LEDGER_NONCE_UNUSED) {
        *result = use == LEDGER_NONCE_SAME_REQUEST ? LEDGER_SAME_REQUEST : LEDGER_NONCE_TAKEN;
        return 0;
    }
    ledger_issuance_cleanup(found);
    return r;
}

int ledger_lookup_nonce(struct ledger *l, struct ledger_issuance *out, const uint8_t nonce[32])
{
    if (l == NULL || out == NULL || nonce == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    return sql_find(l, out, "SELECT " SQL_COLUMNS " FROM issuance WHERE nonce = $1",
                    "looking up a nonce", PARAMS(HEX(nonce, 32)));
}

int ledger_nonce_use(struct ledger *l, enum ledger_nonce_use *use, struct ledger_issuance *stored,
                     const uint8_t nonce[32], const uint8_t request_sha256[32],
                     const uint8_t idevid_sha256[32])
{
    int r;

    if (use == NULL || request_sha256 == NULL || idevid_sha256 == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *use = LEDGER_NONCE_UNUSED;
    if ((r = ledger_lookup_nonce(l, stored, nonce)) == DEVID_ERR_NOT_FOUND)
        return 0;
    if (r != 0)
        return r;
    *use = same_request(stored, request_sha256, idevid_sha256) ? LEDGER_NONCE_SAME_REQUEST
                                                               : LEDGER_NONCE_OTHER_REQUEST;
    return 0;
}

int ledger_show(struct ledger *l, struct ledger_issuance *out, const char *cert_serial)
{
    char serial[LEDGER_SERIAL_LEN];
    int r;

    if (l == NULL || out == NULL || cert_serial == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof(*out));
    if ((r = ledger_serial_normalize(serial, cert_serial)) != 0)
        return r;
    return sql_find(l, out, "SELECT " SQL_COLUMNS " FROM issuance WHERE cert_serial = $1",
                    "looking up a certificate serial", PARAMS(TEXT(serial)));
}

int ledger_device_active(struct ledger *l, int *active, const char *manufacturer,
                         const char *device_serial, int64_t now)
{
    int64_t v = 0;
    int r;

    if (l == NULL || active == NULL || manufacturer == NULL || device_serial == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    r = sql_int(l, &v,
                "SELECT count(*) FROM (SELECT 1 FROM issuance WHERE device_serial = $1 AND "
                "manufacturer = $2 AND revoked_at IS NULL AND not_after > $3 LIMIT 1) AS t",
                "checking the device's certificates",
                PARAMS(TEXT(device_serial), TEXT(manufacturer), INT(now)));
    *active = r == 0 && v != 0;
    return r;
}

struct revoke_args {
    int *count;
    const char *cert_serial, *manufacturer, *device_serial;
    int reason;
    int64_t now;
};

static int revoke_txn(struct ledger *l, void *arg)
{
    static const char by_serial[] = " WHERE cert_serial = $1";
    static const char by_device[] =
        " WHERE device_serial = $2 AND ($3 IS NULL OR manufacturer = $3)";
    const struct revoke_args *a = arg;
    const struct sql_param params[] = {TEXT(a->cert_serial), TEXT(a->device_serial),
                                       TEXT(a->manufacturer), INT(a->now), INT(a->reason)};
    const char *where = a->cert_serial != NULL ? by_serial : by_device;
    char sql[512];
    int64_t matches = 0, changed = 0;
    int r;

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM issuance%s", where);
    if ((r = sql_int(l, &matches, sql, "finding the certificates to revoke", params, 3)) != 0)
        return r;
    if (matches == 0)
        return DEVID_ERR_NOT_FOUND;
    snprintf(sql, sizeof(sql),
             "UPDATE issuance SET revoked_at = $4, revocation_reason = $5%s AND revoked_at IS "
             "NULL",
             where);
    if ((r = log_add_revoked(l, where, params, 3, a->now, a->reason)) != 0 ||
        (r = sql_run(l, &changed, sql, "revoking", params, 5)) != 0 ||
        (changed > 0 &&
         (r = sql_run(l, NULL, "UPDATE crl_state SET revision = revision + 1 WHERE id = 1",
                      "advancing the revocation revision", NO_PARAMS)) != 0))
        return r;
    *a->count = (int)changed;
    return 0;
}

int ledger_revoke(struct ledger *l, int *count, const char *cert_serial, const char *manufacturer,
                  const char *device_serial, int reason, int64_t now)
{
    char serial[LEDGER_SERIAL_LEN];
    struct revoke_args a = {count, NULL, manufacturer, device_serial, reason, now};
    int r;

    if (l == NULL || count == NULL || ledger_reason_name(reason) == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *count = 0;
    if (cert_serial != NULL) {
        if ((r = ledger_serial_normalize(serial, cert_serial)) != 0)
            return r;
        a.cert_serial = serial;
        a.manufacturer = a.device_serial = NULL;
    } else if (device_serial == NULL) {
        return DEVID_ERR_INVALID_ARGUMENT;
    }
    if ((r = sql_transaction(l, 1, revoke_txn, &a)) != 0)
        *count = 0;
    return r;
}

int ledger_list(struct ledger *l, const struct ledger_filter *filter, size_t limit,
                ledger_list_fn fn, void *arg)
{
    static const struct ledger_filter all = {NULL, NULL};

    if (l == NULL || fn == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (limit > LEDGER_LIST_MAX)
        limit = LEDGER_LIST_MAX;
    if (limit == 0)
        return 0;
    if (filter == NULL)
        filter = &all;
    return sql_each(l, SQL_ROW_LISTING, limit, fn, arg,
                    "SELECT " SQL_LISTING_COLUMNS
                    " FROM issuance WHERE ($1 IS NULL OR manufacturer = $1) AND ($2 IS NULL OR "
                    "device_serial = $2) ORDER BY issued_at DESC, id DESC LIMIT $3",
                    "listing issuances",
                    PARAMS(TEXT(filter->manufacturer), TEXT(filter->device_serial), INT(limit)));
}

#define REVOKED_WHERE " FROM issuance WHERE revoked_at IS NOT NULL AND not_after > $1"

struct crl_args {
    int64_t now, revision;
    size_t limit;
    uint64_t number;
    ledger_list_fn fn;
    void *arg;
};

/* Takes the next CRL number first: the crl_state row it locks orders the
 * snapshots, and the revocations, one after the other. */
static int crl_txn(struct ledger *l, void *arg)
{
    struct crl_args *a = arg;
    int64_t n = 0, number = 0;
    int r;

    if ((r = sql_run(l, NULL, "UPDATE crl_state SET last_number = last_number + 1 WHERE id = 1",
                     "advancing the CRL number", NO_PARAMS)) != 0 ||
        (r = sql_int(l, &number, "SELECT last_number FROM crl_state WHERE id = 1",
                     "reading the CRL number", NO_PARAMS)) != 0 ||
        (r = sql_int(l, &a->revision, "SELECT revision FROM crl_state WHERE id = 1",
                     "reading the revocation revision", NO_PARAMS)) != 0 ||
        (r = sql_int(l, &n, "SELECT count(*)" REVOKED_WHERE, "counting revoked certificates",
                     PARAMS(INT(a->now)))) != 0)
        return r;
    if ((uint64_t)n > a->limit) {
        log_err(
            "ledger %s: %lld revoked certificates are still valid, more than the limit of "
            "%zu",
            l->name, (long long)n, a->limit);
        return DEVID_ERR_TOO_LARGE;
    }
    a->number = (uint64_t)number;
    return sql_each(l, SQL_ROW_REVOKED, a->limit, a->fn, a->arg,
                    "SELECT cert_serial, not_after, revoked_at, revocation_reason" REVOKED_WHERE
                    " ORDER BY cert_serial",
                    "listing revoked certificates", PARAMS(INT(a->now)));
}

int ledger_crl_snapshot(struct ledger *l, uint64_t *number, int64_t *revision, int64_t now,
                        size_t limit, ledger_list_fn fn, void *arg)
{
    struct crl_args a = {now, 0, limit, 0, fn, arg};
    int r;

    if (l == NULL || number == NULL || revision == NULL || fn == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *number = 0;
    *revision = 0;
    if (a.limit > LEDGER_LIST_MAX)
        a.limit = LEDGER_LIST_MAX;
    if ((r = sql_transaction(l, 1, crl_txn, &a)) != 0)
        return r;
    *number = a.number;
    *revision = a.revision;
    return 0;
}

int ledger_crl_revision(struct ledger *l, int64_t *revision)
{
    if (l == NULL || revision == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *revision = 0;
    return sql_int(l, revision, "SELECT revision FROM crl_state WHERE id = 1",
                   "reading the revocation revision", NO_PARAMS);
}

int ledger_count(struct ledger *l, int64_t *issued)
{
    if (l == NULL || issued == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *issued = 0;
    return sql_int(l, issued, "SELECT count(*) FROM issuance", "counting issuances", NO_PARAMS);
}
