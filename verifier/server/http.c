#include "verifier/server/http.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "common/err.h"
#include "devid/v1/enroll.pb-c.h"

int http_get_peer(struct evhttp_request *req, struct peer *p, char *why, size_t why_len)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->subject, sizeof(p->subject), "(none)");
    if ((p->ssl = conn_get0_ssl(req)) == NULL) {
        snprintf(why, why_len, "request did not arrive over TLS");
        return DEVID_ERR_INTERNAL;
    }
    p->conn = conn_get0(req);
    if ((p->cert = SSL_get0_peer_certificate(p->ssl)) == NULL) {
        snprintf(why, why_len,
                 "no TLS client certificate: the device must present its IDevID certificate");
        return DEVID_ERR_NO_CLIENT_CERT;
    }
    p->chain = SSL_get_peer_cert_chain(p->ssl);
    X509_NAME_oneline(X509_get_subject_name(p->cert), p->subject, sizeof(p->subject));
    return 0;
}

/* Checks the connection's state and the request's headers. */
static int check_headers(struct evhttp_request *req, const struct peer *p, char *why,
                         size_t why_len)
{
    const struct verifier_config *cfg = p->conn->w->s->cfg;
    struct evkeyvalq *in_headers = evhttp_request_get_input_headers(req);
    struct evkeyval *kv;
    const char *ct;
    int count = 0;

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
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        snprintf(why, why_len, "method must be POST");
        return DEVID_ERR_BAD_REQUEST;
    }
    TAILQ_FOREACH(kv, in_headers, next)
    {
        if (++count > cfg->max_header_count) {
            snprintf(why, why_len, "more than %d request headers", cfg->max_header_count);
            return DEVID_ERR_TOO_LARGE;
        }
    }
    ct = evhttp_find_header(in_headers, "Content-Type");
    if (ct == NULL || strcmp(ct, HTTP_CONTENT_TYPE) != 0) {
        snprintf(why, why_len, "Content-Type must be %s, got %s", HTTP_CONTENT_TYPE,
                 ct != NULL ? ct : "none");
        return DEVID_ERR_BAD_REQUEST;
    }
    return 0;
}

int http_accept_request(struct evhttp_request *req, struct peer *p, size_t max_body,
                        const uint8_t **body, size_t *len, char *why, size_t why_len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    char peer_why[256] = "";
    int peer_r, r;

    peer_r = http_get_peer(req, p, peer_why, sizeof(peer_why));
    if (p->conn == NULL) {
        snprintf(why, why_len, "%s", peer_why);
        return DEVID_ERR_INTERNAL;
    }
    if ((r = check_headers(req, p, why, why_len)) != 0)
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
    if (peer_r != 0)
        snprintf(why, why_len, "%s", peer_why);
    return peer_r;
}

static void reply_bytes(struct evhttp_request *req, struct conn *c, int status, const uint8_t *buf,
                        size_t len, unsigned retry_after, int close)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    struct evbuffer *out = evbuffer_new();
    char value[16];

    if (out == NULL) {
        conn_answered(c);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evhttp_add_header(headers, "Content-Type", HTTP_CONTENT_TYPE);
    evhttp_add_header(headers, "Cache-Control", "no-store");
    if (retry_after > 0) {
        snprintf(value, sizeof(value), "%u", retry_after);
        evhttp_add_header(headers, "Retry-After", value);
    }
    if (close)
        evhttp_add_header(headers, "Connection", "close");
    else if (c != NULL && c->w->draining)
        c->close_when_flushed = 1;
    /* evhttp may free the connection (and |c|) inside evhttp_send_reply. */
    conn_answered(c);
    if (len > 0 && evbuffer_add(out, buf, len) != 0) {
        evbuffer_free(out);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Refused", out);
    evbuffer_free(out);
}

void http_reply_error(struct evhttp_request *req, struct conn *c, int r, const char *message)
{
    const struct verifier_config *cfg = c != NULL ? c->w->s->cfg : NULL;
    Devid__V1__Error err = DEVID__V1__ERROR__INIT;
    uint8_t *buf = NULL;
    size_t len;

    err.reason = (Devid__V1__Reason)devid_err_reason(r);
    err.message = (char *)message;
    err.retryable = devid_err_retryable(r);
    if (r == DEVID_ERR_OVERLOADED || r == DEVID_ERR_LEDGER)
        err.retry_after_seconds = cfg != NULL ? (uint32_t)cfg->retry_after_seconds : 1;
    len = devid__v1__error__get_packed_size(&err);
    if ((buf = malloc(len > 0 ? len : 1)) == NULL) {
        conn_answered(c);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    devid__v1__error__pack(&err, buf);
    reply_bytes(req, c, devid_err_http_status(r), buf, len, err.retry_after_seconds,
                r == DEVID_ERR_OVERLOADED);
    free(buf);
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
    reply_bytes(req, c, 200, buf, len, 0, 0);
    free(buf);
}

void http_reply_body(struct evhttp_request *req, struct conn *c, int status, const void *body,
                     size_t len, const char *content_type)
{
    struct evbuffer *out = evbuffer_new();

    conn_answered(c);
    if (out == NULL || evbuffer_add(out, body, len) != 0) {
        if (out != NULL)
            evbuffer_free(out);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", content_type);
    evhttp_send_reply(req, status, "OK", out);
    evbuffer_free(out);
}
