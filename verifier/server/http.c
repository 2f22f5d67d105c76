#include "verifier/server/http.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>

#include "common/err.h"
#include "devid/v1/enroll.pb-c.h"
#include "verifier/core/chain.h"

/* Longest Error.message sent; a longer one is cut. */
#define ERROR_MESSAGE_MAX 900

/* How an answer is framed besides its body. */
struct answer {
    int status;
    unsigned retry_after;
    int close;
    const char *allow;
};

/* Reads what TLS says of the connection into p->tls. */
static void read_tls(struct peer *p)
{
    p->tls.version = SSL_version(p->ssl);
    p->tls.ems = SSL_get_extms_support(p->ssl) == 1;
    p->tls.client_cert = p->cert;
    p->tls.chain = p->chain;
    if (SSL_export_keying_material(p->ssl, p->exporter, sizeof(p->exporter),
                                   TRANSCRIPT_EXPORTER_LABEL, strlen(TRANSCRIPT_EXPORTER_LABEL),
                                   NULL, 0, 0) == 1)
        p->tls.exporter = p->exporter;
}

int http_get_peer(struct evhttp_request *req, struct peer *p, char *why, size_t why_len)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->subject, sizeof(p->subject), "(none)");
    if ((p->ssl = conn_get0_ssl(req)) == NULL) {
        snprintf(why, why_len, "request did not arrive over TLS");
        return DEVID_ERR_INTERNAL;
    }
    p->conn = conn_get0(req);
    p->cert = SSL_get0_peer_certificate(p->ssl);
    p->chain = SSL_get_peer_cert_chain(p->ssl);
    read_tls(p);
    p->tls.memo = conn_memo(p->conn);
    if (p->cert == NULL) {
        snprintf(why, why_len,
                 "no TLS client certificate: the device must present its IDevID certificate");
        return DEVID_ERR_NO_CLIENT_CERT;
    }
    chain_name_str(p->subject, sizeof(p->subject), X509_get_subject_name(p->cert));
    return 0;
}

void http_peer_cleanup(struct peer *p)
{
    OPENSSL_cleanse(p->exporter, sizeof(p->exporter));
    p->tls.exporter = NULL;
}

/* Checks the connection's state: draining or over the connection limit. */
static int check_connection(const struct peer *p, char *why, size_t why_len)
{
    const struct verifier_config *cfg = p->conn->w->s->cfg;

    if (p->conn->write_shut) {
        snprintf(why, why_len, "verifier shutting down; retry against another replica");
        return DEVID_ERR_OVERLOADED;
    }
    if (p->conn->over_limit) {
        atomic_fetch_add_explicit(&p->conn->w->metrics.overload_rejections, 1,
                                  memory_order_relaxed);
        snprintf(why, why_len, "verifier at its connection limit (%d); retry in %d s",
                 cfg->max_connections, cfg->retry_after_seconds);
        return DEVID_ERR_OVERLOADED;
    }
    return 0;
}

int http_accept_request(struct evhttp_request *req, struct peer *p, size_t max_body,
                        const uint8_t **body, size_t *len, char *why, size_t why_len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    char peer_why[256] = "";
    int r;

    http_get_peer(req, p, peer_why, sizeof(peer_why));
    if (p->conn == NULL) {
        snprintf(why, why_len, "%s", peer_why);
        return DEVID_ERR_INTERNAL;
    }
    if ((r = check_connection(p, why, why_len)) != 0)
        return r;
    *len = evbuffer_get_length(in);
    if (*len > max_body) {
        snprintf(why, why_len, "body of %zu bytes exceeds this endpoint's limit of %zu", *len,
                 max_body);
        return DEVID_ERR_TOO_LARGE;
    }
    *body = *len > 0 ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
    if (*body == NULL)
        return DEVID_ERR_ALLOC;
    return enroll_check_tls(&p->tls, why, why_len);
}

/* Sends the answer: the headers of |a| and the |len| bytes at |buf|. */
static void reply_bytes(struct evhttp_request *req, struct conn *c, const struct answer *a,
                        const uint8_t *buf, size_t len, const char *content_type)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    int status = a->status;
    char value[16];

    evhttp_add_header(headers, "Content-Type", content_type);
    if (strcmp(content_type, HTTP_CONTENT_TYPE) == 0)
        evhttp_add_header(headers, "Cache-Control", "no-store");
    if (a->retry_after > 0) {
        snprintf(value, sizeof(value), "%u", a->retry_after);
        evhttp_add_header(headers, "Retry-After", value);
    }
    if (a->allow != NULL)
        evhttp_add_header(headers, "Allow", a->allow);
    if (a->close)
        evhttp_add_header(headers, "Connection", "close");
    else if (c != NULL && c->w->draining)
        c->close_when_flushed = 1;
    /* Out of memory for the body: an empty 500 is all that can be said. */
    if (len > 0 && evbuffer_add(out, buf, len) != 0)
        status = 500;
    /* evhttp may free the connection (and |c|) inside evhttp_send_reply. */
    conn_answered(c);
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Refused", NULL);
}

/* Answers the Error of |r| and |message| framed as |a| says. */
static void reply_error(struct evhttp_request *req, struct conn *c, int r, struct answer *a,
                        const char *message)
{
    const struct verifier_config *cfg = c != NULL ? c->w->s->cfg : NULL;
    Devid__V1__Error err = DEVID__V1__ERROR__INIT;
    char text[ERROR_MESSAGE_MAX + 1];
    uint8_t buf[ERROR_MESSAGE_MAX + 64];
    size_t len;

    snprintf(text, sizeof(text), "%s", message != NULL ? message : devid_err_str(r));
    err.reason = (Devid__V1__Reason)devid_err_reason(r);
    err.message = text;
    err.retryable = devid_err_retryable(r);
    if (r == DEVID_ERR_OVERLOADED || r == DEVID_ERR_LEDGER || r == DEVID_ERR_REVOCATION_UNKNOWN)
        err.retry_after_seconds = cfg != NULL ? (uint32_t)cfg->retry_after_seconds : 1;
    a->retry_after = err.retry_after_seconds;
    len = devid__v1__error__get_packed_size(&err);
    if (len > sizeof(buf))
        len = 0;
    else
        devid__v1__error__pack(&err, buf);
    reply_bytes(req, c, a, buf, len, HTTP_CONTENT_TYPE);
}

void http_reply_error(struct evhttp_request *req, struct conn *c, int r, const char *message)
{
    struct answer a = {devid_err_http_status(r), 0, r == DEVID_ERR_OVERLOADED, NULL};

    reply_error(req, c, r, &a, message);
}

void http_reply_status(struct evhttp_request *req, struct conn *c, int r, int status,
                       const char *allow, const char *message)
{
    struct answer a = {status, 0, 1, allow};

    reply_error(req, c, r, &a, message);
}

void http_reply_packed(struct evhttp_request *req, struct conn *c, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len > 0 ? len : 1);

    if (buf == NULL) {
        http_reply_error(req, c, DEVID_ERR_ALLOC, "out of memory encoding the answer");
        return;
    }
    protobuf_c_message_pack(msg, buf);
    http_reply_body(req, c, 200, buf, len, HTTP_CONTENT_TYPE);
    free(buf);
}

void http_reply_body(struct evhttp_request *req, struct conn *c, int status, const void *body,
                     size_t len, const char *content_type)
{
    struct answer a = {status, 0, 0, NULL};

    if (len > 0 && evbuffer_add(evhttp_request_get_output_buffer(req), body, len) != 0) {
        http_reply_error(req, c, DEVID_ERR_ALLOC, "out of memory writing the answer");
        return;
    }
    reply_bytes(req, c, &a, NULL, 0, content_type);
}
