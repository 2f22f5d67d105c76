/* devid-verifier's HTTPS service: worker threads, each with its own libevent
 * base, evhttp and SO_REUSEPORT listener, TLS through bufferevent_openssl. The
 * handlers decode, call the pure core (enroll.h), encode and reply. */
#ifndef DEVID_VERIFIER_SERVER_SERVER_H
#define DEVID_VERIFIER_SERVER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "verifier/pki/ca.h"
#include "verifier/core/chain.h"
#include "verifier/core/policy.h"
#include "verifier/core/token.h"

struct server_config {
    /* host:port or [v6]:port to listen on. */
    const char *listen;
    /* Plain-HTTP /healthz and /metrics listener; NULL or "" disables it. */
    const char *metrics_listen;
    /* PEM server certificate (with chain) and key for TLS. */
    const char *tls_cert;
    const char *tls_key;
    /* TLS1_2_VERSION or TLS1_3_VERSION. */
    int tls_min;
    int tls_max;
    /* Operational certificate validity. */
    long validity_seconds;
    /* Challenge token lifetime. */
    long token_ttl_seconds;
    /* Worker threads; 0 means one per online core. */
    int workers;
    /* Connections open at once; past it requests get 503 and Retry-After. */
    int max_connections;
    /* TLS handshakes in progress at once; past it new handshakes are refused. */
    int max_handshakes;
    /* Retry-After advice, in seconds, on 503. */
    int retry_after_seconds;
    /* Request limits. */
    size_t max_body_challenge;
    size_t max_body_enroll;
    size_t max_headers_size;
    int max_header_count;
    /* Deadlines, in seconds: the TLS handshake; one request from its first
     * byte to its answer (headers and body included); an idle keep-alive
     * connection between requests. */
    int timeout_handshake;
    int timeout_request;
    int timeout_idle;
    /* On SIGTERM, how long in-flight requests may take to finish. */
    int shutdown_grace_seconds;
    /* The issuance ledger (each worker opens its own handle) and this
     * replica's name in it (NULL: the host name). */
    const char *ledger_uri;
    const char *replica_id;
    /* Lifetime of the CRL served at GET /v1/crl. */
    long crl_next_update_seconds;
};

/* The trust state the server uses: borrowed pointers, and the owner that
 * frees them when no worker uses this state any more. */
struct server_trust {
    const struct chain_store *store;
    const struct policy *policy;
    void *owner;
    void (*free_owner)(void *owner);
};

/* How the server (re)loads its trust state: at start and on SIGHUP. */
struct server_hooks {
    /* Fills |out| from the configured files, or returns a DEVID_ERR_* code
     * after logging the file, line and reason. */
    int (*load_trust)(void *arg, struct server_trust *out);
    void *arg;
};

/* server_config_defaults fills |cfg| with the documented defaults. */
void server_config_defaults(struct server_config *cfg);

/*
 * server_run serves until SIGTERM or SIGINT, then lets in-flight requests
 * finish (up to the grace period) and returns 0. SIGHUP reloads the trust
 * state through |hooks|; a failed reload keeps the previous state. It borrows
 * |ca|; |token_key| is TOKEN_KEY_LEN bytes. Returns a DEVID_ERR_* code when it
 * cannot start (the reason is logged).
 */
int server_run(const struct server_config *cfg, const struct server_hooks *hooks, struct ca *ca,
               const uint8_t *token_key);

#endif
