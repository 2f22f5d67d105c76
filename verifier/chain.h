/* IDevID chain validation against the manufacturer trust store. Pure: the
 * certificates, the store and |now| come in; a verdict goes out. */
#ifndef DEVID_VERIFIER_CHAIN_H
#define DEVID_VERIFIER_CHAIN_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#define CHAIN_MAX_DEPTH 8
#define CHAIN_MAX_INTERMEDIATES 8

struct chain_store;

/*
 * chain_store_new returns an empty trust store (no roots, no intermediates),
 * or NULL on allocation failure. Free with chain_store_free.
 */
struct chain_store *chain_store_new(void);

/* chain_store_free frees |store|; NULL is a no-op. */
void chain_store_free(struct chain_store *store);

/*
 * chain_store_add_root adds trust anchor |root| (a self-signed CA) to |store|.
 * |store| takes its own reference; the caller keeps |root|. Returns 0 or a
 * DEVID_ERR_* code.
 */
int chain_store_add_root(struct chain_store *store, X509 *root);

/*
 * chain_store_add_intermediate adds an untrusted intermediate from config.
 * The caller keeps |cert|. Returns 0 or a DEVID_ERR_* code.
 */
int chain_store_add_intermediate(struct chain_store *store, X509 *cert);

/*
 * chain_store_root_count returns how many roots |store| holds.
 */
size_t chain_store_root_count(const struct chain_store *store);

/* The outcome of a successful chain_verify. */
struct chain_verdict {
    /* The trust anchor the chain ends at; owned by the verdict. */
    X509 *root;
    /* Manufacturer name: the root's subject O, else its CN. */
    char manufacturer[128];
};

/* chain_verdict_cleanup frees what |v| owns and zeroes it. */
void chain_verdict_cleanup(struct chain_verdict *v);

/*
 * chain_verify validates |leaf| with X509_verify_cert: to a root in |store|,
 * with untrusted intermediates from |device_chain| (may be NULL; at most
 * CHAIN_MAX_INTERMEDIATES are used) and from the store, at time |now|, depth at
 * most CHAIN_MAX_DEPTH. The certificates are verified as received, never
 * re-encoded. On success fills |verdict| and returns 0. On failure writes a
 * reason naming the certificate (its subject) and the check to |why| and
 * returns DEVID_ERR_CHAIN_UNTRUSTED, DEVID_ERR_CHAIN_EXPIRED or
 * DEVID_ERR_CHAIN_INVALID.
 */
int chain_verify(const struct chain_store *store, struct chain_verdict *verdict, X509 *leaf,
                 STACK_OF(X509) *device_chain, time_t now, char *why, size_t why_len);

#endif
