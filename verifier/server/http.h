/* HTTP plumbing the handlers share: the peer a request came from and what
 * TLS says of it, the checks every endpoint makes once the request filter
 * (filter.h) has accepted the head, and the replies (protobuf answers and
 * devid.v1.Error refusals). Private to verifier/server/. */
#ifndef DEVID_VERIFIER_SERVER_HTTP_H
#define DEVID_VERIFIER_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <event2/http.h>
#include <openssl/ssl.h>
#include <protobuf-c/protobuf-c.h>

#include "common/transcript.h"
#include "verifier/core/enroll.h"
#include "verifier/server/conn.h"

/* The content type of every request and answer body. */
#define HTTP_CONTENT_TYPE "application/x-protobuf"

/* The connection facts a handler needs; pointers borrowed from OpenSSL. */
struct peer {
    SSL *ssl;
    struct conn *conn;
    X509 *cert;
    STACK_OF(X509) *chain;
    /* The client certificate's subject, RFC 2253: client-controlled, log
     * it with log_event's LOG_TEXT. */
    char subject[257];
    /* What the core judges of the connection; tls.exporter points to
     * |exporter| when TLS gave one. */
    struct enroll_tls tls;
    uint8_t exporter[TRANSCRIPT_EXPORTER_LEN];
};

/*
 * http_get_peer fills |p| with the connection of |req|, its client
 * certificate and TLS facts (version, Extended Master Secret, the
 * tls-exporter value). Returns 0, DEVID_ERR_NO_CLIENT_CERT (p->conn is set),
 * or DEVID_ERR_INTERNAL when the request did not arrive over TLS; |why| says
 * which. The caller wipes |p| with http_peer_cleanup.
 */
int http_get_peer(struct evhttp_request *req, struct peer *p, char *why, size_t why_len);

/* http_peer_cleanup wipes the exporter value |p| holds. */
void http_peer_cleanup(struct peer *p);

/*
 * http_accept_request finds the peer and checks, in order: that the
 * connection is not shutting down and is within the connection limit
 * (DEVID_ERR_OVERLOADED), the body size (at most |max_body|,
 * DEVID_ERR_TOO_LARGE; the filter refuses it first), then the TLS facts
 * (enroll_check_tls: a client certificate, TLS 1.3 or 1.2 with EMS). Sets
 * |*body| (borrowed from the request) and |*len|. Returns 0, or the
 * DEVID_ERR_* code to refuse with and |why|.
 */
int http_accept_request(struct evhttp_request *req, struct peer *p, size_t max_body,
                        const uint8_t **body, size_t *len, char *why, size_t why_len);

/* http_reply_packed answers |req| on |c| (may be NULL) with 200 and |msg|. */
void http_reply_packed(struct evhttp_request *req, struct conn *c, const ProtobufCMessage *msg);

/* http_reply_error answers |req| on |c| (may be NULL) with the HTTP status
 * and devid.v1.Error of DEVID_ERR_* code |r| and |message|, with
 * Retry-After for the retryable overload and ledger refusals, and
 * Connection: close for overload. */
void http_reply_error(struct evhttp_request *req, struct conn *c, int r, const char *message);

/* http_reply_status answers |req| on |c| (may be NULL) with HTTP |status|,
 * the devid.v1.Error of |r| and |message|, an Allow header when |allow| is
 * set, and Connection: close: a refusal after which the connection's framing
 * is not trusted. */
void http_reply_status(struct evhttp_request *req, struct conn *c, int r, int status,
                       const char *allow, const char *message);

/* http_reply_body answers |req| on |c| (may be NULL) with |status|, the
 * |len| bytes at |body| of type |content_type|; an Error 500 when it
 * cannot. */
void http_reply_body(struct evhttp_request *req, struct conn *c, int status, const void *body,
                     size_t len, const char *content_type);

#endif
