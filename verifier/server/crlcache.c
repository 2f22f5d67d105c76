#include "verifier/server/crlcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "common/err.h"
#include "common/io/log.h"
#include "verifier/ledger/ledger.h"
#include "verifier/server/poller.h"
#include "verifier/pki/revocation.h"

/* The CRL is signed again at least this often, whatever the revision. */
#define REFRESH_SECONDS 3600

struct crlcache {
    const struct verifier_config *cfg;
    struct ca *ca;
    struct ledger *ledger; /* the thread's own handle */
    struct poller poller;  /* the thread that runs tick */
    pthread_mutex_t mu;
    /* Under |mu|: the CRL served. */
    struct crl_blob *current;
    /* The thread's: what the current CRL reflects, and when it was made. */
    int64_t revision;
    time_t built_at;
    int failing;
    atomic_llong failures;
};

void crl_blob_free(struct crl_blob *b)
{
    if (b != NULL && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

struct crl_blob *crlcache_get1(struct crlcache *c)
{
    struct crl_blob *b;

    pthread_mutex_lock(&c->mu);
    if ((b = c->current) != NULL)
        atomic_fetch_add(&b->refs, 1);
    pthread_mutex_unlock(&c->mu);
    return b;
}

int64_t crlcache_failures(struct crlcache *c)
{
    return atomic_load(&c->failures);
}

/* build signs a CRL of the ledger as it is now and makes it the one served. */
static int build(struct crlcache *c, time_t now)
{
    struct revocation_info info = {0, 0, 0};
    struct crl_blob *b = NULL, *old;
    X509_CRL *crl = NULL;
    unsigned char *p;
    int len, r;

    if ((r = revocation_crl_issue(&crl, &info, c->ledger, c->ca, now,
                                  c->cfg->crl_next_update_seconds)) != 0)
        goto out;
    r = DEVID_ERR_CRYPTO;
    if ((len = i2d_X509_CRL(crl, NULL)) <= 0)
        goto out;
    r = DEVID_ERR_ALLOC;
    if ((b = malloc(sizeof(*b) + (size_t)len)) == NULL)
        goto out;
    atomic_init(&b->refs, 1);
    b->number = info.number;
    b->len = (size_t)len;
    p = b->der;
    r = DEVID_ERR_CRYPTO;
    if (i2d_X509_CRL(crl, &p) != len)
        goto out;
    pthread_mutex_lock(&c->mu);
    old = c->current;
    c->current = b;
    pthread_mutex_unlock(&c->mu);
    crl_blob_free(old);
    b = NULL;
    log_info("CRL number %llu built: %zu revoked certificates, ledger revision %lld",
             (unsigned long long)info.number, info.count, (long long)info.revision);
    c->revision = info.revision;
    c->built_at = now;
    r = 0;
out:
    free(b);
    X509_CRL_free(crl);
    return r;
}

/* tick rebuilds the CRL when the ledger's revision moved or it is old. */
static void tick(void *arg)
{
    struct crlcache *c = arg;
    time_t now = time(NULL);
    int64_t revision = 0;
    int r;

    if ((r = ledger_crl_revision(c->ledger, &revision)) == 0 &&
        (revision != c->revision || now - c->built_at >= REFRESH_SECONDS))
        r = build(c, now);
    if (r != 0) {
        atomic_fetch_add(&c->failures, 1);
        if (!c->failing)
            log_err(
                "the CRL could not be brought up to date (%s); GET /v1/crl keeps serving "
                "number %llu until it can",
                devid_err_str(r), (unsigned long long)c->current->number);
    } else if (c->failing) {
        log_info("the CRL is up to date again");
    }
    c->failing = r != 0;
}

int crlcache_start(struct crlcache **out, const struct verifier_config *cfg, struct ca *ca)
{
    struct crlcache *c = NULL;
    int r;

    *out = NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return DEVID_ERR_ALLOC;
    c->cfg = cfg;
    c->ca = ca;
    atomic_init(&c->failures, 0);
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return DEVID_ERR_INTERNAL;
    }
    if ((r = ledger_open(&c->ledger, cfg->ledger, cfg->replica_id)) != 0 ||
        (r = build(c, time(NULL))) != 0) {
        log_err("cannot build the CRL for GET /v1/crl: %s", devid_err_str(r));
        goto fail;
    }
    if ((r = poller_start(&c->poller, "the CRL thread", c->cfg->crl_poll_seconds, tick, c)) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    crlcache_stop(c);
    return r;
}

void crlcache_stop(struct crlcache *c)
{
    if (c == NULL)
        return;
    poller_stop(&c->poller);
    ledger_free(c->ledger);
    crl_blob_free(c->current);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
