/* devid-verifier's HTTPS service: worker threads, each with its own libevent
 * base, evhttp and SO_REUSEPORT listener, TLS through bufferevent_openssl. The
 * handlers decode, call the pure core (enroll.h), encode and reply. */
#ifndef DEVID_VERIFIER_SERVER_SERVER_H
#define DEVID_VERIFIER_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "verifier/core/chain.h"
#include "verifier/core/config.h"
#include "verifier/core/policy.h"
#include "verifier/core/token.h"
#include "verifier/pki/ca.h"

/* What the server loads at start and again on SIGHUP, as one state that
 * every worker takes whole: the trust state (borrowed pointers, and the owner
 * that frees them when no worker uses this state any more) and the token
 * keys (copies, wiped when the state is freed). */
struct server_trust {
    const struct chain_store *store;
    const struct policy *policy;
    /* The TPM vendors EK certificates chain to (may hold none). */
    const struct chain_store *ek_store;
    void *owner;
    void (*free_owner)(void *owner);
    /* The token key, which seals and opens; the accept-only key of a key
     * change, when |has_token_accept_key|. */
    uint8_t token_key[TOKEN_KEY_LEN];
    uint8_t token_accept_key[TOKEN_KEY_LEN];
    bool has_token_accept_key;
};

/* How the server (re)loads its trust state and token keys: at start and on
 * SIGHUP. */
struct server_hooks {
    /* Fills |out| from the configured files, or returns a DEVID_ERR_* code
     * after logging the file, line and reason (and wipes what it read). */
    int (*load_trust)(void *arg, struct server_trust *out);
    void *arg;
    /* Called once the sockets are bound and the TLS key is read, before
     * load_trust first runs, the ledger is opened or any thread starts (to
     * drop privileges: the files SIGHUP rereads are then read by the same
     * user at start, and the ledger's files are made by the user that keeps
     * writing them); may be NULL. Returns 0 or a DEVID_ERR_* code. */
    int (*before_workers)(void *arg);
    /* Readable when the signer process has exited (a pidfd), or -1: the
     * server then stops and server_run fails. */
    int signer_fd;
    /* The signer, which signs the issuance log's tree heads (logcache.h);
     * NULL: the log is kept but no head is signed. */
    struct signer *signer;
};

/*
 * server_run serves until SIGTERM or SIGINT, then lets in-flight requests
 * finish (up to the grace period) and returns 0. It loads the trust state and
 * token keys through |hooks| before it starts, and again on SIGHUP; a failed
 * reload keeps the previous state, keys included. It borrows |cfg| and |ca|.
 * Returns a DEVID_ERR_* code when it cannot start (the reason is logged), and
 * DEVID_ERR_INTERNAL when it stopped because the signer process exited.
 */
int server_run(const struct verifier_config *cfg, const struct server_hooks *hooks, struct ca *ca);

#endif
