/* The ledger interface: URI dispatch, argument checks, reason names and what
 * a nonce's record means. The database work is in the backends (sqlite.c),
 * reached through struct ledger_ops (backend.h). */
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

static int open_uri(struct ledger **out, const char *uri, const char *replica_id, int create)
{
    struct ledger *l = NULL;
    const char *path = NULL;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || uri == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (replica_id != NULL && (replica_id[0] == '\0' || strlen(replica_id) >= LEDGER_NAME_LEN)) {
        log_err("ledger replica id \"%s\" must be 1 to %d characters", replica_id,
                LEDGER_NAME_LEN - 1);
        return DEVID_ERR_CONFIG;
    }
    if (strncmp(uri, "sqlite://", 9) == 0)
        path = uri + 9;
    else if (strncmp(uri, "sqlite:", 7) == 0)
        path = uri + 7;
    else if (strncmp(uri, "postgres:", 9) == 0 || strncmp(uri, "postgresql:", 11) == 0) {
        log_err("ledger %s: this devid-verifier has no PostgreSQL backend", uri);
        return DEVID_ERR_CONFIG;
    } else if (strchr(uri, ':') == NULL || uri[0] == '/' || uri[0] == '.')
        path = uri;
    if (path == NULL || path[0] == '\0') {
        log_err("ledger URI \"%s\" is neither sqlite:PATH nor a path", uri);
        return DEVID_ERR_CONFIG;
    }
    if ((r = ledger_sqlite_open(&l, path, create)) != 0)
        goto out;
    if (replica_id != NULL)
        snprintf(l->replica_id, sizeof(l->replica_id), "%s", replica_id);
    else if ((r = default_replica_id(l->replica_id, sizeof(l->replica_id))) != 0)
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
    l->ops->free(l);
}

void ledger_issuance_cleanup(struct ledger_issuance *rec)
{
    if (rec == NULL)
        return;
    free(rec->cert_der);
    OPENSSL_cleanse(rec, sizeof(*rec));
}

static int name_ok(const char *s)
{
    size_t n = strnlen(s, LEDGER_NAME_LEN);

    return n > 0 && n < LEDGER_NAME_LEN;
}

int ledger_record(struct ledger *l, const struct ledger_issuance *rec, int supersede_previous)
{
    struct ledger_issuance norm;
    int r;

    if (l == NULL || rec == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (rec->cert_der == NULL || rec->cert_der_len == 0 || rec->cert_der_len > LEDGER_CERT_MAX ||
        !name_ok(rec->manufacturer) || !name_ok(rec->model) || !name_ok(rec->device_serial) ||
        rec->revoked_at != 0 || rec->not_after < rec->issued_at) {
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
    norm.supersedes[0] = '\0';
    snprintf(norm.replica_id, sizeof(norm.replica_id), "%s", l->replica_id);
    norm.revocation_reason = 0;
    return l->ops->record(l, &norm, supersede_previous);
}

int ledger_lookup_nonce(struct ledger *l, struct ledger_issuance *out, const uint8_t nonce[32])
{
    if (l == NULL || out == NULL || nonce == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof(*out));
    return l->ops->lookup_nonce(l, out, nonce);
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
    if (CRYPTO_memcmp(stored->request_sha256, request_sha256, 32) == 0 &&
        CRYPTO_memcmp(stored->idevid_sha256, idevid_sha256, 32) == 0)
        *use = LEDGER_NONCE_SAME_REQUEST;
    else
        *use = LEDGER_NONCE_OTHER_REQUEST;
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
    return l->ops->show(l, out, serial);
}

int ledger_device_active(struct ledger *l, int *active, const char *manufacturer,
                         const char *device_serial, int64_t now)
{
    if (l == NULL || active == NULL || manufacturer == NULL || device_serial == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *active = 0;
    return l->ops->device_active(l, active, manufacturer, device_serial, now);
}

int ledger_revoke(struct ledger *l, int *count, const char *cert_serial, const char *manufacturer,
                  const char *device_serial, int reason, int64_t now)
{
    char serial[LEDGER_SERIAL_LEN];
    int r;

    if (l == NULL || count == NULL || ledger_reason_name(reason) == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *count = 0;
    if (cert_serial != NULL) {
        if ((r = ledger_serial_normalize(serial, cert_serial)) != 0)
            return r;
        return l->ops->revoke(l, count, serial, NULL, NULL, reason, now);
    }
    if (device_serial == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    return l->ops->revoke(l, count, NULL, manufacturer, device_serial, reason, now);
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
    return l->ops->list(l, filter != NULL ? filter : &all, limit, fn, arg);
}

int ledger_list_revoked(struct ledger *l, int64_t now, size_t limit, ledger_list_fn fn, void *arg)
{
    if (l == NULL || fn == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (limit > LEDGER_LIST_MAX)
        limit = LEDGER_LIST_MAX;
    return l->ops->list_revoked(l, now, limit, fn, arg);
}

int ledger_count(struct ledger *l, int64_t *issued)
{
    if (l == NULL || issued == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *issued = 0;
    return l->ops->count(l, issued);
}

int ledger_next_crl_number(struct ledger *l, uint64_t *number)
{
    if (l == NULL || number == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *number = 0;
    return l->ops->next_crl_number(l, number);
}
