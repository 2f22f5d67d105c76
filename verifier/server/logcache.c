#include "verifier/server/logcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/io/log.h"
#include "verifier/core/merkle.h"
#include "verifier/core/signreq.h"
#include "verifier/core/tlog.h"
#include "verifier/ledger/ledger.h"
#include "verifier/server/poller.h"
#include "verifier/pki/signer.h"

struct logcache {
    const struct verifier_config *cfg;
    struct signer *signer;
    struct ledger *ledger; /* the thread's own handle */
    struct poller poller;  /* the thread that runs tick */
    pthread_mutex_t mu;
    /* Under |mu|: the head served. */
    uint8_t head[TLOG_SIGNED_HEAD_MAX];
    size_t head_len;
    struct tlog_head served;
    /* The thread's: every leaf hash read so far, and the last head signed. */
    uint8_t (*leaves)[MERKLE_HASH_LEN];
    size_t n, cap;
    struct merkle_compact compact;
    int have_last;
    struct tlog_head last;
    int failing, broken;
    atomic_ullong size;
    atomic_llong failures;
    atomic_int stopped; /* |broken|, for the metrics */
};

int logcache_signing(const struct logcache *c)
{
    return c->signer != NULL && c->cfg->log_key != NULL;
}

uint64_t logcache_size(struct logcache *c)
{
    return atomic_load(&c->size);
}

int64_t logcache_failures(struct logcache *c)
{
    return atomic_load(&c->failures);
}

int logcache_head_info(struct logcache *c, uint64_t *size, int64_t *timestamp)
{
    int have;

    pthread_mutex_lock(&c->mu);
    have = c->head_len > 0;
    *size = have ? c->served.size : 0;
    *timestamp = have ? c->served.timestamp : 0;
    pthread_mutex_unlock(&c->mu);
    return have;
}

int logcache_stopped(struct logcache *c)
{
    return atomic_load(&c->stopped);
}

int logcache_head(struct logcache *c, uint8_t *out, size_t *len, size_t max)
{
    int r = 0;

    *len = 0;
    pthread_mutex_lock(&c->mu);
    if (c->head_len == 0)
        r = DEVID_ERR_NOT_FOUND;
    else if (c->head_len > max)
        r = DEVID_ERR_TOO_LARGE;
    else {
        memcpy(out, c->head, c->head_len);
        *len = c->head_len;
    }
    pthread_mutex_unlock(&c->mu);
    return r;
}

/* take_leaf appends one entry read in index order; a missing index is a
 * ledger someone changed, and stops the log here. */
static int take_leaf(void *arg, int64_t index, const uint8_t *leaf, size_t len)
{
    struct logcache *c = arg;
    uint8_t(*grown)[MERKLE_HASH_LEN];
    size_t cap;
    int r;

    if (index != (int64_t)c->n) {
        log_err(
            "the issuance log in ledger %s has entry %lld where %zu was expected: an entry is "
            "missing; no tree head is signed until `devid-verifier audit` explains it",
            c->cfg->ledger, (long long)index, c->n);
        c->broken = 1;
        atomic_store(&c->stopped, 1);
        return DEVID_ERR_LEDGER;
    }
    if (c->n == c->cap) {
        cap = c->cap == 0 ? 4096 : c->cap * 2;
        if ((grown = realloc(c->leaves, cap * sizeof(*grown))) == NULL)
            return DEVID_ERR_ALLOC;
        c->leaves = grown;
        c->cap = cap;
    }
    if ((r = merkle_leaf_hash(c->leaves[c->n], leaf, len)) != 0 ||
        (r = merkle_compact_append(&c->compact, c->leaves[c->n])) != 0)
        return r;
    c->n++;
    return 0;
}

/* catch_up indexes what committed and reads the new entries. */
static int catch_up(struct logcache *c)
{
    uint64_t size = 0, added = 0;
    int r;

    do {
        if ((r = ledger_log_sequence(c->ledger, &size, &added)) != 0)
            return r;
    } while (added == LEDGER_LOG_BATCH);
    while (c->n < size) {
        if ((r = ledger_log_read(c->ledger, c->n, LEDGER_LOG_BATCH, take_leaf, c)) != 0)
            return r;
        if (c->n < size && !c->broken) {
            log_err("the issuance log in ledger %s ends at %zu, before its size %llu",
                    c->cfg->ledger, c->n, (unsigned long long)size);
            c->broken = 1;
            atomic_store(&c->stopped, 1);
        }
        if (c->broken)
            return DEVID_ERR_LEDGER;
    }
    atomic_store(&c->size, (unsigned long long)c->n);
    return 0;
}

/* sign asks the signer for a head of the tree as read, with the proof that
 * it extends the last one, stores it in the ledger and serves it. */
static int sign(struct logcache *c, time_t now)
{
    static struct signreq_tree_head req;
    uint8_t body[SIGNREQ_MAX_TREE_HEAD], *head = NULL;
    size_t body_len = 0, head_len = 0;
    struct tlog_head got;
    const uint8_t *sig;
    size_t sig_len;
    char why[SIGNREQ_MAX_WHY + 64];
    int r;

    memset(&req, 0, sizeof(req));
    req.head.size = c->n;
    req.head.timestamp = (int64_t)now;
    merkle_compact_root(&c->compact, req.head.root);
    if (c->have_last && (r = merkle_consistency_proof(req.proof, &req.proof_len,
                                                      (const uint8_t(*)[MERKLE_HASH_LEN])c->leaves,
                                                      c->n, c->last.size)) != 0)
        return r;
    if ((r = signreq_tree_head_encode(body, &body_len, &req)) != 0)
        return r;
    if ((r = signer_call(c->signer, &head, &head_len, SIGNREQ_TREE_HEAD, body, body_len, why,
                         sizeof(why))) != 0) {
        log_err("the tree head of size %zu was not signed: %s", c->n, why);
        return r;
    }
    if (head_len > TLOG_SIGNED_HEAD_MAX ||
        tlog_signed_head_parse(&got, &sig, &sig_len, head, head_len, why, sizeof(why)) != 0 ||
        got.size != req.head.size || memcmp(got.root, req.head.root, MERKLE_HASH_LEN) != 0) {
        log_err("the signer answered a tree head that is not the one asked for");
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    if ((r = ledger_head_store(c->ledger, got.size, got.timestamp, got.root, head, head_len)) != 0)
        goto out;
    pthread_mutex_lock(&c->mu);
    memcpy(c->head, head, head_len);
    c->head_len = head_len;
    c->served = got;
    pthread_mutex_unlock(&c->mu);
    if (!c->have_last || c->last.size != got.size)
        log_info("tree head of size %llu signed", (unsigned long long)got.size);
    c->have_last = 1;
    c->last = got;
    r = 0;
out:
    free(head);
    return r;
}

static void tick(void *arg)
{
    struct logcache *c = arg;
    time_t now = time(NULL);
    int r;

    if (c->broken)
        return;
    if ((r = catch_up(c)) == 0 && logcache_signing(c) &&
        (!c->have_last || c->last.size != c->n ||
         (int64_t)now - c->last.timestamp >= c->cfg->log_sign_seconds))
        r = sign(c, now);
    if (r != 0) {
        atomic_fetch_add(&c->failures, 1);
        if (!c->failing)
            log_err("the issuance log could not be brought up to date (%s); retrying",
                    devid_err_str(r));
    } else if (c->failing) {
        log_info("the issuance log is up to date again");
    }
    c->failing = r != 0;
}

int logcache_start(struct logcache **out, const struct verifier_config *cfg, struct signer *signer)
{
    struct logcache *c = NULL;
    int r;

    *out = NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return DEVID_ERR_ALLOC;
    c->cfg = cfg;
    c->signer = signer;
    merkle_compact_init(&c->compact);
    atomic_init(&c->size, 0);
    atomic_init(&c->failures, 0);
    atomic_init(&c->stopped, 0);
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return DEVID_ERR_INTERNAL;
    }
    if ((r = ledger_open(&c->ledger, cfg->ledger, cfg->replica_id)) != 0) {
        log_err("cannot open the ledger for the issuance log: %s", devid_err_str(r));
        goto fail;
    }
    if (cfg->log_key == NULL)
        log_warn("no [log] key: the issuance log is kept, but no tree head is signed");
    tick(c);
    if ((r = poller_start(&c->poller, "the issuance log thread", c->cfg->log_poll_seconds, tick,
                          c)) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    logcache_stop(c);
    return r;
}

void logcache_stop(struct logcache *c)
{
    if (c == NULL)
        return;
    poller_stop(&c->poller);
    ledger_free(c->ledger);
    free(c->leaves);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
