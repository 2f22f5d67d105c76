/* The CRL every worker serves at GET /v1/crl, built in the background by one
 * thread with its own ledger handle: at start, whenever the ledger's
 * revocation revision moved (asked every [crl] poll_seconds), and at least
 * once an hour so that it never nears its nextUpdate. The CRL number comes
 * from the ledger, so it rises across every replica sharing it. A request
 * only takes a reference to the newest CRL: it never writes to the ledger
 * or signs. Private to verifier/server/. */
#ifndef DEVID_VERIFIER_SERVER_CRLCACHE_H
#define DEVID_VERIFIER_SERVER_CRLCACHE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "verifier/core/config.h"
#include "verifier/pki/ca.h"

/* One signed CRL, DER; shared by the requests serving it. */
struct crl_blob {
    atomic_int refs;
    uint64_t number;
    size_t len;
    uint8_t der[];
};

struct crlcache;

/*
 * crlcache_start sets |*out| to a new cache on the ledger |cfg| names (its
 * own handle, replica |cfg|->replica_id), builds the first CRL with |ca|
 * (borrowed; it must outlive the cache), and starts the thread that keeps
 * it fresh. Returns 0, or the DEVID_ERR_* code of what failed (logged).
 */
int crlcache_start(struct crlcache **out, const struct verifier_config *cfg, struct ca *ca);

/* crlcache_stop stops the thread and frees |c|; NULL is a no-op. Blobs
 * handed out stay valid until their last crl_blob_free. */
void crlcache_stop(struct crlcache *c);

/* crlcache_get1 returns a new reference to the newest CRL (never NULL
 * after crlcache_start succeeded); free it with crl_blob_free. */
struct crl_blob *crlcache_get1(struct crlcache *c);

/* crl_blob_free drops one reference to |b|; NULL is a no-op. */
void crl_blob_free(struct crl_blob *b);

/* crlcache_failures returns how many background builds failed. */
int64_t crlcache_failures(struct crlcache *c);

#endif
