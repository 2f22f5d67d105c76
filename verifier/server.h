/* devid-verifier's HTTPS service: libevent + bufferevent_openssl + evhttp.
 * The handlers decode, call the pure core (enroll.h), encode and reply. */
#ifndef DEVID_VERIFIER_SERVER_H
#define DEVID_VERIFIER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "verifier/ca.h"
#include "verifier/chain.h"
#include "verifier/policy.h"
#include "verifier/token.h"

struct server_config {
    /* host:port or [v6]:port to listen on. */
    const char *listen;
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
    /* Request limits. */
    size_t max_body;
    size_t max_headers_size;
    int timeout_seconds;
};

/*
 * server_run serves until SIGTERM or SIGINT, then returns 0. It borrows
 * |store|, |policy| and |ca|; |token_key| is TOKEN_KEY_LEN bytes. Returns a
 * DEVID_ERR_* code when it cannot start (the reason is logged).
 */
int server_run(const struct server_config *cfg, const struct chain_store *store,
               const struct policy *policy, struct ca *ca, const uint8_t *token_key);

#endif
