/* The agent's one wrapper around libcurl: HTTPS POSTs of protobuf bodies over
 * one mutual-TLS connection whose client key stays in the TPM (signing
 * through the agent's own ESAPI connection, agent/tpmprov.h). */
#ifndef DEVID_AGENT_HTTP_H
#define DEVID_AGENT_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "agent/core/config.h"
#include "common/transcript.h"

struct tpm_key;

/* What kind of failure the last http_post had. */
enum http_fail {
    HTTP_FAIL_NONE = 0,
    HTTP_FAIL_NETWORK,        /* connect, reset, timeout, proxy: may pass when retried */
    HTTP_FAIL_TLS,            /* the handshake failed for another reason: retried too */
    HTTP_FAIL_PEER_UNTRUSTED, /* the verifier's certificate did not verify: not retried */
    HTTP_FAIL_LOCAL,          /* our own side: CA bundle, client key, options */
};

struct http_config {
    const char *url;       /* base URL, e.g. https://verifier.example:8443 */
    const char *ca_bundle; /* PEM file of CAs trusted for the verifier */
    struct tpm_key *key;   /* the TLS client key (borrowed), signing on its TPM connection */
    uint32_t key_handle;   /* its persistent handle, for messages */
    X509 *cert;            /* client certificate (borrowed) */
    STACK_OF(X509) *chain; /* intermediates sent in the handshake (borrowed) */
    enum config_tls tls_version;
    long timeout;      /* seconds, for each request */
    const char *proxy; /* CURLOPT_PROXY; NULL: libcurl reads https_proxy etc. */
    size_t body_max;   /* the largest answer body accepted */
};

struct http;

/*
 * http_new makes the TLS client key from |cfg->key| through the built-in
 * devid-tpm provider (handshake signatures are TPM2_Sign on the key's own
 * ESAPI connection: no second TPM client) and sets |*out| to a new client.
 * |cfg| and the objects it points to must outlive |*out|. Returns 0,
 * DEVID_ERR_TPM when the key cannot be used, or DEVID_ERR_CONFIG.
 */
int http_new(struct http **out, const struct http_config *cfg);

/* http_free closes the connection and unloads the provider. http_free(NULL)
 * does nothing. */
void http_free(struct http *h);

/*
 * http_post POSTs |req| (application/x-protobuf) to |cfg->url| + |path| and
 * sets |*status| to the HTTP status and |*body| (malloc) to the response body,
 * at most |cfg->body_max| bytes. The first request of a session (see
 * http_session_begin) opens a fresh TLS connection; the later ones must reuse
 * it, or fail without being sent when curl already knows it is closed. Returns 0 for any HTTP
 * answer, DEVID_ERR_TLS for a TLS failure (including an untrusted verifier certificate),
 * DEVID_ERR_NETWORK for another transfer failure or a new connection, or DEVID_ERR_TOO_LARGE.
 */
int http_post(struct http *h, long *status, uint8_t **body, size_t *body_len, const char *path,
              const uint8_t *req, size_t req_len);

/*
 * http_session_begin starts a new exchange: the next request opens a fresh
 * TLS connection, whose channel binding http_exporter then returns, and the
 * requests after it must reuse that connection.
 */
void http_session_begin(struct http *h);

/*
 * http_exporter copies the RFC 9266 tls-exporter value of the connection, as
 * read during the first request of the session, to |out|. Returns 0, or DEVID_ERR_TLS when it
 * could not be read.
 */
int http_exporter(const struct http *h, uint8_t out[TRANSCRIPT_EXPORTER_LEN]);

/* http_last_fail returns the kind of failure of the last http_post. */
enum http_fail http_last_fail(const struct http *h);

/* http_retry_after returns the delta-seconds of the Retry-After header of the
 * last answer (at most 86400), or 0 when it had none or an HTTP-date. */
unsigned http_retry_after(const struct http *h);

#endif
