#include "verifier/server/server.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include "common/err.h"
#include "common/io/log.h"
#include "common/transcript.h"
#include "devid/v1/enroll.pb-c.h"
#include "verifier/core/enroll.h"
#include "verifier/ledger/ledger.h"
#include "verifier/core/metrics.h"
#include "verifier/core/profile.h"
#include "verifier/pki/revocation.h"

#define CONTENT_TYPE "application/x-protobuf"
#define MAX_WORKERS 64
#define METRICS_TEXT_MAX (64 * 1024)

/* A refcounted trust state; each worker holds one reference to the one it
 * uses, so a reload never frees state a request is using. */
struct snapshot {
    struct server_trust t;
    atomic_int refs;
};

enum conn_phase { CONN_HANDSHAKE, CONN_IDLE, CONN_BUSY };

struct worker;

/* Per-connection state, hung on the SSL object and freed with it. */
struct conn {
    struct worker *w;
    struct bufferevent *bev;
    struct event *deadline;
    enum conn_phase phase;
    int over_limit;
    /* Draining: finish once the answer in the output buffer is written;
     * after that nothing more is sent on this connection. */
    int close_when_flushed;
    int write_shut;
    LIST_ENTRY(conn) link;
};

struct server;

struct worker {
    struct server *s;
    int index;
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    struct evconnlistener *listener;
    struct event *stop_ev;
    struct event *reload_ev;
    struct event *grace_ev;
    struct snapshot *snap;
    _Atomic(struct snapshot *) mailbox;
    struct ledger *ledger;
    /* The last CRL this worker served, and what it listed. */
    uint8_t *crl_der;
    int crl_der_len;
    time_t crl_made;
    struct metrics metrics;
    LIST_HEAD(, conn) conns;
    int draining;
    int started;
};

struct server {
    const struct verifier_config *cfg;
    const struct server_hooks *hooks;
    const uint8_t *token_key;
    struct ca *ca;
    SSL_CTX *ssl_ctx;
    struct sockaddr_storage addr;
    int addr_len;
    int nworkers;
    struct worker workers[MAX_WORKERS];
    struct event_base *control;
    struct evhttp *metrics_http;
    atomic_int conns_open;
    atomic_int handshakes;
    atomic_int requests;
    atomic_int reloads_ok;
    atomic_int reloads_failed;
};

static int conn_ex_index = -1;

/* The connection facts a handler needs; pointers borrowed from OpenSSL. */
struct peer {
    SSL *ssl;
    struct conn *conn;
    X509 *cert;
    STACK_OF(X509) *chain;
    char subject[256];
};

static void snapshot_unref(struct snapshot *snap)
{
    if (snap == NULL || atomic_fetch_sub(&snap->refs, 1) != 1)
        return;
    if (snap->t.free_owner != NULL)
        snap->t.free_owner(snap->t.owner);
    free(snap);
}

static double elapsed_s(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* ---- connection lifecycle ---------------------------------------------- */

static void conn_arm(struct conn *c, int seconds)
{
    struct timeval tv = {seconds, 0};

    evtimer_add(c->deadline, &tv);
}

static void conn_close(struct conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);

    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

/*
 * conn_finish ends a connection gracefully while draining: it sends FIN after
 * the answers already written and lets the client close first, so that no
 * unread byte turns the close into a reset that would discard the answer.
 * The deadline still bounds how long that may take.
 */
static void conn_finish(struct conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);

    if (c->write_shut || fd < 0)
        return;
    c->write_shut = 1;
    shutdown(fd, SHUT_WR);
}

static void conn_set_phase(struct conn *c, enum conn_phase phase)
{
    const struct verifier_config *cfg = c->w->s->cfg;
    enum conn_phase was = c->phase;

    if (c->phase == CONN_BUSY && phase != CONN_BUSY)
        atomic_fetch_sub(&c->w->s->requests, 1);
    else if (c->phase != CONN_BUSY && phase == CONN_BUSY)
        atomic_fetch_add(&c->w->s->requests, 1);
    c->phase = phase;
    switch (phase) {
        case CONN_HANDSHAKE:
            conn_arm(c, cfg->timeout_handshake);
            break;
        case CONN_IDLE:
            /* While draining, answers carry "Connection: close"; only a
             * connection that never sent a request is closed here. */
            if (c->w->draining && was == CONN_HANDSHAKE)
                conn_finish(c);
            else
                conn_arm(c, cfg->timeout_idle);
            break;
        case CONN_BUSY:
            conn_arm(c, cfg->timeout_request);
            break;
    }
}

static void on_deadline(evutil_socket_t fd, short events, void *arg)
{
    struct conn *c = arg;

    atomic_fetch_add_explicit(&c->w->metrics.deadline_closes, 1, memory_order_relaxed);
    log_debug("closing connection: %s deadline passed", c->phase == CONN_HANDSHAKE ? "handshake"
                                                        : c->phase == CONN_BUSY    ? "request"
                                                                                   : "idle");
    conn_close(c);
}

/* A new request starts when application bytes arrive on an idle connection. */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn *c = arg;

    if (info->n_added > 0 && c->phase == CONN_IDLE)
        conn_set_phase(c, CONN_BUSY);
}

/* While draining, an answer still being written is let out before the close. */
static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn *c = arg;

    if (c->close_when_flushed && info->n_deleted > 0 && evbuffer_get_length(buf) == 0)
        conn_finish(c);
}

static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    struct conn *c = ptr;

    if (c == NULL)
        return;
    if (c->phase == CONN_HANDSHAKE)
        atomic_fetch_sub(&c->w->s->handshakes, 1);
    if (c->phase == CONN_BUSY)
        atomic_fetch_sub(&c->w->s->requests, 1);
    atomic_fetch_sub(&c->w->s->conns_open, 1);
    LIST_REMOVE(c, link);
    event_free(c->deadline);
    if (c->w->draining && LIST_EMPTY(&c->w->conns))
        event_base_loopexit(c->w->base, NULL);
    free(c);
}

static void on_ssl_info(const SSL *ssl, int where, int ret)
{
    struct conn *c;

    if ((where & SSL_CB_HANDSHAKE_DONE) == 0)
        return;
    c = SSL_get_ex_data(ssl, conn_ex_index);
    if (c == NULL || c->phase != CONN_HANDSHAKE)
        return;
    atomic_fetch_sub(&c->w->s->handshakes, 1);
    conn_set_phase(c, CONN_IDLE);
}

static int on_client_hello(SSL *ssl, int *alert, void *arg)
{
    struct server *s = arg;
    struct conn *c = SSL_get_ex_data(ssl, conn_ex_index);

    if (atomic_load(&s->handshakes) > s->cfg->max_handshakes) {
        if (c != NULL)
            atomic_fetch_add_explicit(&c->w->metrics.handshake_rejections, 1, memory_order_relaxed);
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
    struct worker *w = arg;
    struct server *s = w->s;
    struct conn *c = NULL;
    SSL *ssl = NULL;

    if ((c = calloc(1, sizeof(*c))) == NULL || (ssl = SSL_new(s->ssl_ctx)) == NULL ||
        (c->deadline = evtimer_new(base, on_deadline, c)) == NULL)
        goto fail;
    c->w = w;
    c->bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL)
        goto fail;
    /* From here on the SSL (and with it |c|) is freed with the bufferevent. */
    SSL_set_ex_data(ssl, conn_ex_index, c);
    LIST_INSERT_HEAD(&w->conns, c, link);
    atomic_fetch_add_explicit(&w->metrics.connections_total, 1, memory_order_relaxed);
    if (atomic_fetch_add(&s->conns_open, 1) >= s->cfg->max_connections)
        c->over_limit = 1;
    atomic_fetch_add(&s->handshakes, 1);
    c->phase = CONN_HANDSHAKE;
    conn_arm(c, s->cfg->timeout_handshake);
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    evbuffer_add_cb(bufferevent_get_input(c->bev), on_input, c);
    evbuffer_add_cb(bufferevent_get_output(c->bev), on_output, c);
    return c->bev;
fail:
    if (c != NULL && c->deadline != NULL)
        event_free(c->deadline);
    free(c);
    SSL_free(ssl);
    return NULL;
}

/* ---- replies ------------------------------------------------------------ */

static void reply_done(struct evhttp_request *req, struct conn *c)
{
    if (c != NULL && c->phase == CONN_BUSY)
        conn_set_phase(c, CONN_IDLE);
}

static void reply_bytes(struct evhttp_request *req, struct conn *c, int status, const uint8_t *buf,
                        size_t len, unsigned retry_after, int close)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    struct evbuffer *out = evbuffer_new();
    char value[16];

    if (out == NULL) {
        reply_done(req, c);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evhttp_add_header(headers, "Content-Type", CONTENT_TYPE);
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
    reply_done(req, c);
    if (len > 0 && evbuffer_add(out, buf, len) != 0) {
        evbuffer_free(out);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Refused", out);
    evbuffer_free(out);
}

static void reply_error(struct evhttp_request *req, struct conn *c, int r, const char *message)
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
        reply_done(req, c);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    devid__v1__error__pack(&err, buf);
    reply_bytes(req, c, devid_err_http_status(r), buf, len, err.retry_after_seconds,
                r == DEVID_ERR_OVERLOADED);
    free(buf);
}

static void reply_packed(struct evhttp_request *req, struct conn *c, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len > 0 ? len : 1);

    if (buf == NULL) {
        reply_error(req, c, DEVID_ERR_ALLOC, "out of memory encoding the answer");
        return;
    }
    protobuf_c_message_pack(msg, buf);
    reply_bytes(req, c, 200, buf, len, 0, 0);
    free(buf);
}

/* ---- request plumbing ---------------------------------------------------- */

static SSL *ssl_of(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;

    return bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
}

static struct conn *conn_of(struct evhttp_request *req)
{
    SSL *ssl = ssl_of(req);

    return ssl != NULL ? SSL_get_ex_data(ssl, conn_ex_index) : NULL;
}

static int get_peer(struct evhttp_request *req, struct peer *p, char *why, size_t why_len)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->subject, sizeof(p->subject), "(none)");
    if ((p->ssl = ssl_of(req)) == NULL) {
        snprintf(why, why_len, "request did not arrive over TLS");
        return DEVID_ERR_INTERNAL;
    }
    p->conn = SSL_get_ex_data(p->ssl, conn_ex_index);
    if ((p->cert = SSL_get0_peer_certificate(p->ssl)) == NULL) {
        snprintf(why, why_len,
                 "no TLS client certificate: the device must present its IDevID certificate");
        return DEVID_ERR_NO_CLIENT_CERT;
    }
    p->chain = SSL_get_peer_cert_chain(p->ssl);
    X509_NAME_oneline(X509_get_subject_name(p->cert), p->subject, sizeof(p->subject));
    return 0;
}

/*
 * request_body checks the connection limit, method, content type, header
 * count and the endpoint's body limit, and returns the body in one run.
 */
static int request_body(struct evhttp_request *req, const struct peer *p, size_t max_body,
                        const uint8_t **body, size_t *len, char *why, size_t why_len)
{
    const struct verifier_config *cfg = p->conn->w->s->cfg;
    struct evkeyvalq *in_headers = evhttp_request_get_input_headers(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
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
    if (ct == NULL || strcmp(ct, CONTENT_TYPE) != 0) {
        snprintf(why, why_len, "Content-Type must be %s, got %s", CONTENT_TYPE,
                 ct != NULL ? ct : "none");
        return DEVID_ERR_BAD_REQUEST;
    }
    *len = evbuffer_get_length(in);
    if (*len > max_body) {
        snprintf(why, why_len, "body of %zu bytes exceeds this endpoint's limit of %zu", *len,
                 max_body);
        return DEVID_ERR_TOO_LARGE;
    }
    *body = *len > 0 ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
    if (*body == NULL)
        return DEVID_ERR_ALLOC;
    return 0;
}

/*
 * accept_request finds the peer and checks, in order: the connection limit,
 * the request's shape and size, and that a client certificate was presented.
 */
static int accept_request(struct evhttp_request *req, struct peer *p, size_t max_body,
                          const uint8_t **body, size_t *len, char *why, size_t why_len)
{
    char peer_why[256] = "";
    int peer_r, r;

    peer_r = get_peer(req, p, peer_why, sizeof(peer_why));
    if (p->conn == NULL) {
        snprintf(why, why_len, "%s", peer_why);
        return DEVID_ERR_INTERNAL;
    }
    if ((r = request_body(req, p, max_body, body, len, why, why_len)) != 0)
        return r;
    if (peer_r != 0)
        snprintf(why, why_len, "%s", peer_why);
    return peer_r;
}

/* ---- handlers ------------------------------------------------------------ */

static void handle_challenge(struct evhttp_request *req, void *arg)
{
    struct worker *w = arg;
    struct server *s = w->s;
    Devid__V1__ChallengeRequest *creq = NULL;
    Devid__V1__ChallengeResponse cres = DEVID__V1__CHALLENGE_RESPONSE__INIT;
    struct chain_verdict verdict = {0};
    struct peer peer;
    uint8_t nonce[TOKEN_NONCE_LEN], token[TOKEN_LEN], cert_hash[32];
    const uint8_t *body = NULL;
    char why[512] = "";
    size_t len = 0;
    time_t now = time(NULL);
    int r = DEVID_ERR_INTERNAL;

    if ((r = accept_request(req, &peer, s->cfg->max_body_challenge, &body, &len, why,
                            sizeof(why))) != 0)
        goto out;
    if ((creq = devid__v1__challenge_request__unpack(NULL, len, body)) == NULL) {
        snprintf(why, sizeof(why), "body is not a devid.v1.ChallengeRequest");
        r = DEVID_ERR_BAD_REQUEST;
        goto out;
    }
    if (creq->protocol_version != 1) {
        snprintf(why, sizeof(why), "protocol_version %u is not supported (this verifier speaks 1)",
                 creq->protocol_version);
        r = DEVID_ERR_BAD_REQUEST;
        goto out;
    }
    /* Refuse an untrusted device here already, so it learns why at once. */
    if ((r = chain_verify(w->snap->t.store, &verdict, peer.cert, peer.chain, now, why,
                          sizeof(why))) != 0)
        goto out;
    if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
        snprintf(why, sizeof(why), "random generator failed");
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    if ((r = enroll_cert_hash(cert_hash, peer.cert)) != 0 ||
        (r = token_seal(token, s->token_key, nonce, (int64_t)now + s->cfg->token_ttl_seconds,
                        cert_hash)) != 0) {
        snprintf(why, sizeof(why), "sealing the token failed");
        goto out;
    }
    cres.nonce.data = nonce;
    cres.nonce.len = sizeof(nonce);
    cres.token.data = token;
    cres.token.len = sizeof(token);
    cres.expires_at = (int64_t)now + s->cfg->token_ttl_seconds;
    reply_packed(req, peer.conn, &cres.base);
    log_debug("challenge issued to %s (%s)", peer.subject, verdict.manufacturer);
    r = 0;
out:
    if (r != 0) {
        log_info("challenge result=refused client=\"%s\" reason=\"%s\" why: %s", peer.subject,
                 devid_err_str(r), why);
        reply_error(req, peer.conn, r, why);
    }
    metrics_challenge_done(&w->metrics, r);
    chain_verdict_cleanup(&verdict);
    devid__v1__challenge_request__free_unpacked(creq, NULL);
}

static void serial_hex(char *out, size_t out_len, X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    size_t i;

    snprintf(out, out_len, "%s", hex != NULL ? hex : "?");
    for (i = 0; out[i] != '\0'; i++)
        out[i] = (char)(out[i] >= 'A' && out[i] <= 'F' ? out[i] + ('a' - 'A') : out[i]);
    OPENSSL_free(hex);
    BN_free(bn);
}

/* issue builds, signs and DER-encodes the operational certificate. */
static int issue(struct server *s, const struct enroll_outcome *o, X509 *idevid, uint8_t **der,
                 int *der_len, char *serial, size_t serial_len, char *why, size_t why_len)
{
    struct profile_input in = {0};
    uint8_t serial_bytes[PROFILE_SERIAL_LEN];
    X509 *cert = NULL;
    int r = DEVID_ERR_INTERNAL;

    *der = NULL;
    if (RAND_bytes(serial_bytes, sizeof(serial_bytes)) != 1) {
        snprintf(why, why_len, "random generator failed");
        return DEVID_ERR_CRYPTO;
    }
    in.ca_cert = ca_get0_cert(s->ca);
    in.subject_key = o->ldevid_key;
    in.id = &o->id;
    in.idevid = idevid;
    in.serial = serial_bytes;
    in.serial_len = sizeof(serial_bytes);
    in.now = time(NULL);
    in.validity_seconds = s->cfg->validity_seconds;
    if ((r = profile_build(&cert, &in)) != 0) {
        snprintf(why, why_len, "building the operational certificate failed");
        goto out;
    }
    if ((r = ca_sign(s->ca, cert)) != 0) {
        snprintf(why, why_len, "the issuing CA could not sign");
        goto out;
    }
    if ((*der_len = i2d_X509(cert, der)) <= 0) {
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    serial_hex(serial, serial_len, cert);
    r = 0;
out:
    X509_free(cert);
    return r;
}

/* reply_issued answers an EnrollResponse carrying |der| and the CA chain. */
static int reply_issued(struct evhttp_request *req, struct server *s, struct conn *c,
                        const uint8_t *der, size_t der_len, const char *serial)
{
    Devid__V1__EnrollResponse eres = DEVID__V1__ENROLL_RESPONSE__INIT;
    STACK_OF(X509) *ca_chain = ca_get0_chain(s->ca);
    ProtobufCBinaryData chain_der[9];
    uint8_t *chain_buf[9] = {0};
    size_t i, n_chain = 0;
    int l, r = DEVID_ERR_INTERNAL;

    for (i = 0; i < (size_t)sk_X509_num(ca_chain) + 1 && i < 9; i++) {
        X509 *x = i == 0 ? ca_get0_cert(s->ca) : sk_X509_value(ca_chain, (int)i - 1);

        if ((l = i2d_X509(x, &chain_buf[i])) <= 0) {
            r = DEVID_ERR_CRYPTO;
            goto out;
        }
        chain_der[i].data = chain_buf[i];
        chain_der[i].len = (size_t)l;
        n_chain++;
    }
    eres.certificate.data = (uint8_t *)der;
    eres.certificate.len = der_len;
    eres.chain = chain_der;
    eres.n_chain = n_chain;
    eres.serial = (char *)serial;
    reply_packed(req, c, &eres.base);
    r = 0;
out:
    for (i = 0; i < n_chain; i++)
        OPENSSL_free(chain_buf[i]);
    return r;
}

/*
 * find_nonce looks the request's nonce up in the ledger. The same device
 * sending the byte-identical request again (its answer was lost) gets the
 * certificate issued then: returns 0 with |stored| filled. Returns
 * DEVID_ERR_NOT_FOUND for a fresh nonce, DEVID_ERR_NONCE_REPLAYED for any
 * other use of a spent nonce, DEVID_ERR_LEDGER when the ledger fails.
 */
static int find_nonce(struct worker *w, const struct enroll_outcome *o,
                      const uint8_t req_sha256[32], struct ledger_issuance *stored, char *why,
                      size_t why_len)
{
    int r = ledger_lookup_nonce(w->ledger, stored, o->nonce);

    if (r == DEVID_ERR_NOT_FOUND)
        return r;
    if (r != 0) {
        atomic_fetch_add_explicit(&w->metrics.ledger_errors, 1, memory_order_relaxed);
        snprintf(why, why_len, "the ledger could not be read; retry");
        return DEVID_ERR_LEDGER;
    }
    if (CRYPTO_memcmp(stored->request_sha256, req_sha256, 32) == 0 &&
        CRYPTO_memcmp(stored->idevid_sha256, o->idevid_sha256, 32) == 0)
        return 0;
    snprintf(why, why_len,
             "the challenge nonce was already used for certificate %s; ask for a new challenge",
             stored->cert_serial);
    ledger_issuance_cleanup(stored);
    return DEVID_ERR_NONCE_REPLAYED;
}

static void fill_record(struct ledger_issuance *rec, const struct enroll_outcome *o,
                        const uint8_t *der, size_t der_len, const char *serial,
                        const uint8_t req_sha256[32], time_t now, long validity)
{
    memset(rec, 0, sizeof(*rec));
    snprintf(rec->cert_serial, sizeof(rec->cert_serial), "%s", serial);
    rec->cert_der = (uint8_t *)der;
    rec->cert_der_len = der_len;
    snprintf(rec->manufacturer, sizeof(rec->manufacturer), "%s", o->id.manufacturer);
    snprintf(rec->model, sizeof(rec->model), "%s", o->id.model);
    snprintf(rec->device_serial, sizeof(rec->device_serial), "%s", o->id.serial);
    memcpy(rec->idevid_sha256, o->idevid_sha256, 32);
    memcpy(rec->csr_sha256, o->csr_sha256, 32);
    memcpy(rec->nonce, o->nonce, 32);
    memcpy(rec->request_sha256, req_sha256, 32);
    rec->signer_kind = o->signer_kind;
    rec->issued_at = (int64_t)now;
    rec->not_after = (int64_t)now + validity;
}

static void handle_enroll(struct evhttp_request *req, void *arg)
{
    struct worker *w = arg;
    struct server *s = w->s;
    Devid__V1__EnrollRequest *ereq = NULL;
    struct ledger_issuance stored, rec;
    struct enroll_config ecfg;
    struct enroll_outcome o;
    struct timespec start;
    struct peer peer;
    uint8_t exporter[TRANSCRIPT_EXPORTER_LEN], req_sha256[32];
    const uint8_t *body = NULL;
    uint8_t *der = NULL;
    char why[512] = "", serial[80] = "";
    const char *result = "issued";
    size_t len = 0;
    time_t now = time(NULL);
    int der_len = 0, active = 0, lr, r = DEVID_ERR_INTERNAL;

    clock_gettime(CLOCK_MONOTONIC, &start);
    memset(&o, 0, sizeof(o));
    memset(&stored, 0, sizeof(stored));
    if ((r = accept_request(req, &peer, s->cfg->max_body_enroll, &body, &len, why, sizeof(why))) !=
        0)
        goto out;
    if ((ereq = devid__v1__enroll_request__unpack(NULL, len, body)) == NULL) {
        snprintf(why, sizeof(why), "body is not a devid.v1.EnrollRequest");
        r = DEVID_ERR_BAD_REQUEST;
        goto out;
    }
    SHA256(body, len, req_sha256);
    ecfg.store = w->snap->t.store;
    ecfg.policy = w->snap->t.policy;
    ecfg.token_key = s->token_key;
    if ((r = enroll_check_client(&o, &ecfg, ereq, peer.cert, peer.chain, now)) != 0) {
        snprintf(why, sizeof(why), "%s", o.why);
        goto out;
    }
    /* A nonce the ledger holds is either this device retrying the very same
     * request after a lost answer, or a replay. */
    if ((lr = find_nonce(w, &o, req_sha256, &stored, why, sizeof(why))) == 0)
        goto replayed;
    if (lr != DEVID_ERR_NOT_FOUND) {
        r = lr;
        goto out;
    }
    if (ledger_device_active(w->ledger, &active, o.id.manufacturer, o.id.serial, now) != 0) {
        atomic_fetch_add_explicit(&w->metrics.ledger_errors, 1, memory_order_relaxed);
        snprintf(why, sizeof(why), "the ledger could not be read; retry");
        r = DEVID_ERR_LEDGER;
        goto out;
    }
    o.already_enrolled = active != 0;
    if (SSL_export_keying_material(peer.ssl, exporter, sizeof(exporter), TRANSCRIPT_EXPORTER_LABEL,
                                   strlen(TRANSCRIPT_EXPORTER_LABEL), NULL, 0, 0) != 1) {
        snprintf(why, sizeof(why), "TLS exporter unavailable on this connection");
        r = DEVID_ERR_TLS;
        goto out;
    }
    if ((r = enroll_check_evidence(&o, &ecfg, ereq, peer.cert, peer.chain, exporter, now)) != 0) {
        snprintf(why, sizeof(why), "%s", o.why);
        goto out;
    }
    if ((r = issue(s, &o, peer.cert, &der, &der_len, serial, sizeof(serial), why, sizeof(why))) !=
        0)
        goto out;
    /* Durable before acknowledged: the answer goes out only after the commit. */
    fill_record(&rec, &o, der, (size_t)der_len, serial, req_sha256, now, s->cfg->validity_seconds);
    if ((r = ledger_record(w->ledger, &rec, 1)) == DEVID_ERR_NONCE_REPLAYED) {
        /* Another worker or replica recorded this nonce first. */
        if ((lr = find_nonce(w, &o, req_sha256, &stored, why, sizeof(why))) == 0)
            goto replayed;
        if (lr == DEVID_ERR_NOT_FOUND)
            snprintf(why, sizeof(why), "the challenge nonce was already used");
        r = lr == DEVID_ERR_NOT_FOUND ? DEVID_ERR_NONCE_REPLAYED : lr;
        goto out;
    } else if (r != 0) {
        atomic_fetch_add_explicit(&w->metrics.ledger_errors, 1, memory_order_relaxed);
        snprintf(why, sizeof(why), "the issuance could not be recorded; retry");
        r = DEVID_ERR_LEDGER;
        goto out;
    }
    r = reply_issued(req, s, peer.conn, der, (size_t)der_len, serial);
    goto out;
replayed:
    result = "replayed";
    snprintf(serial, sizeof(serial), "%s", stored.cert_serial);
    r = reply_issued(req, s, peer.conn, stored.cert_der, stored.cert_der_len, serial);
out:
    if (r == 0) {
        if (strcmp(result, "replayed") == 0)
            atomic_fetch_add_explicit(&w->metrics.enroll_replayed_ok, 1, memory_order_relaxed);
        log_info(
            "enroll result=%s device_serial=\"%s\" model=\"%s\" manufacturer=\"%s\" "
            "cert_serial=%s signer=%s tls=%s duration_ms=%.1f",
            result, o.id.serial, o.id.model, o.id.manufacturer, serial,
            o.signer_kind == DEVID__V1__SIGNER_KIND__SIGNER_KIND_IAK ? "iak" : "idevid",
            SSL_get_version(peer.ssl), elapsed_s(&start) * 1e3);
    } else {
        log_info(
            "enroll result=refused client=\"%s\" device_serial=\"%s\" manufacturer=\"%s\" "
            "reason=\"%s\" duration_ms=%.1f why: %s",
            peer.subject, o.id.serial, o.id.manufacturer, devid_err_str(r), elapsed_s(&start) * 1e3,
            why);
        reply_error(req, peer.conn, r, why);
    }
    if (strcmp(result, "replayed") != 0 || r != 0)
        metrics_enroll_done(&w->metrics, r, elapsed_s(&start));
    ledger_issuance_cleanup(&stored);
    OPENSSL_free(der);
    enroll_outcome_cleanup(&o);
    devid__v1__enroll_request__free_unpacked(ereq, NULL);
}

static void handle_crl(struct evhttp_request *req, void *arg)
{
    struct worker *w = arg;
    struct server *s = w->s;
    struct evbuffer *out = NULL;
    X509_CRL *crl = NULL;
    uint8_t *der = NULL;
    time_t now = time(NULL);
    int len;

    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        evhttp_send_error(req, 405, "GET only");
        return;
    }
    /* A CRL is rebuilt at most once a second per worker. */
    if (w->crl_der == NULL || now != w->crl_made) {
        if (revocation_crl_issue(&crl, w->ledger, s->ca, now, s->cfg->crl_next_update_seconds, NULL,
                                 NULL) != 0 ||
            (len = i2d_X509_CRL(crl, &der)) <= 0) {
            X509_CRL_free(crl);
            atomic_fetch_add_explicit(&w->metrics.ledger_errors, 1, memory_order_relaxed);
            evhttp_send_error(req, 503, "CRL unavailable");
            return;
        }
        X509_CRL_free(crl);
        OPENSSL_free(w->crl_der);
        w->crl_der = der;
        w->crl_der_len = len;
        w->crl_made = now;
    }
    if ((out = evbuffer_new()) == NULL ||
        evbuffer_add(out, w->crl_der, (size_t)w->crl_der_len) != 0) {
        if (out != NULL)
            evbuffer_free(out);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/pkix-crl");
    reply_done(req, conn_of(req));
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void handle_other(struct evhttp_request *req, void *arg)
{
    struct worker *w = arg;
    struct peer peer;
    char why[256];

    get_peer(req, &peer, why, sizeof(why));
    snprintf(why, sizeof(why), "no such endpoint: %s", evhttp_request_get_uri(req));
    reply_error(req, peer.conn, DEVID_ERR_NOT_FOUND, why);
    (void)w;
}

/* ---- TLS ------------------------------------------------------------------ */

static int accept_any_client_cert(int preverify_ok, X509_STORE_CTX *ctx)
{
    /* The chain is judged by the trust core in the handler, so that a refusal
     * reaches the device as an Error naming the reason, not a TLS alert. The
     * handshake still proves possession of the certificate's key. */
    return 1;
}

static int make_ssl_ctx(struct server *s)
{
    const struct verifier_config *cfg = s->cfg;
    char reason[256];

    if ((s->ssl_ctx = SSL_CTX_new(TLS_server_method())) == NULL)
        return DEVID_ERR_ALLOC;
    SSL_CTX_set_options(s->ssl_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_min_proto_version(s->ssl_ctx, cfg->tls_min) != 1 ||
        SSL_CTX_set_max_proto_version(s->ssl_ctx, cfg->tls_max) != 1) {
        log_err("unsupported TLS version range");
        return DEVID_ERR_CONFIG;
    }
    if (SSL_CTX_use_certificate_chain_file(s->ssl_ctx, cfg->tls_cert) != 1) {
        log_err("cannot load TLS certificate %s: %s", cfg->tls_cert,
                devid_openssl_reason(reason, sizeof(reason)));
        return DEVID_ERR_CONFIG;
    }
    if (SSL_CTX_use_PrivateKey_file(s->ssl_ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s->ssl_ctx) != 1) {
        log_err("cannot load TLS key %s (or it does not match %s): %s", cfg->tls_key, cfg->tls_cert,
                devid_openssl_reason(reason, sizeof(reason)));
        return DEVID_ERR_CONFIG;
    }
    SSL_CTX_set_verify(s->ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE,
                       accept_any_client_cert);
    SSL_CTX_set_verify_depth(s->ssl_ctx, CHAIN_MAX_DEPTH);
    SSL_CTX_set_info_callback(s->ssl_ctx, on_ssl_info);
    SSL_CTX_set_client_hello_cb(s->ssl_ctx, on_client_hello, s);
    return 0;
}

/* ---- workers ---------------------------------------------------------------- */

static void on_worker_stop(evutil_socket_t fd, short events, void *arg)
{
    struct worker *w = arg;
    struct timeval grace = {w->s->cfg->shutdown_grace_seconds, 0};
    struct conn *c, *next;

    w->draining = 1;
    if (w->listener != NULL)
        evconnlistener_disable(w->listener);
    for (c = LIST_FIRST(&w->conns); c != NULL; c = next) {
        next = LIST_NEXT(c, link);
        if (c->phase == CONN_BUSY)
            continue;
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
            c->close_when_flushed = 1;
        else
            conn_finish(c);
    }
    if (LIST_EMPTY(&w->conns))
        event_base_loopexit(w->base, NULL);
    else
        evtimer_add(w->grace_ev, &grace);
}

static void on_worker_grace(evutil_socket_t fd, short events, void *arg)
{
    struct worker *w = arg;

    log_warn("worker %d: shutdown grace period over; closing remaining connections", w->index);
    event_base_loopexit(w->base, NULL);
}

static void on_worker_reload(evutil_socket_t fd, short events, void *arg)
{
    struct worker *w = arg;
    struct snapshot *snap = atomic_exchange(&w->mailbox, NULL);

    if (snap == NULL)
        return;
    snapshot_unref(w->snap);
    w->snap = snap;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    event_base_dispatch(w->base);
    return NULL;
}

static int worker_init(struct server *s, struct worker *w, int index)
{
    const struct verifier_config *cfg = s->cfg;
    size_t max_body = cfg->max_body_enroll > cfg->max_body_challenge ? cfg->max_body_enroll
                                                                     : cfg->max_body_challenge;
    int one = 1;

    w->s = s;
    w->index = index;
    LIST_INIT(&w->conns);
    if ((w->base = event_base_new()) == NULL || (w->http = evhttp_new(w->base)) == NULL ||
        (w->stop_ev = event_new(w->base, -1, 0, on_worker_stop, w)) == NULL ||
        (w->reload_ev = event_new(w->base, -1, 0, on_worker_reload, w)) == NULL ||
        (w->grace_ev = evtimer_new(w->base, on_worker_grace, w)) == NULL)
        return DEVID_ERR_ALLOC;
    evhttp_set_bevcb(w->http, make_bev, w);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_POST | EVHTTP_REQ_GET);
    evhttp_set_max_body_size(w->http, (ev_ssize_t)max_body);
    evhttp_set_max_headers_size(w->http, (ev_ssize_t)cfg->max_headers_size);
    /* evhttp's own inactivity timeout stays above ours, which rule. */
    evhttp_set_timeout(
        w->http,
        1 + (cfg->timeout_idle > cfg->timeout_request ? cfg->timeout_idle : cfg->timeout_request));
    evhttp_set_cb(w->http, "/v1/challenge", handle_challenge, w);
    evhttp_set_cb(w->http, "/v1/enroll", handle_enroll, w);
    evhttp_set_cb(w->http, "/v1/crl", handle_crl, w);
    evhttp_set_gencb(w->http, handle_other, w);
    w->listener = evconnlistener_new_bind(
        w->base, NULL, NULL,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC,
        1024, (struct sockaddr *)&s->addr, s->addr_len);
    if (w->listener == NULL) {
        log_err("cannot listen on %s: %s", cfg->listen, strerror(errno));
        return DEVID_ERR_IO;
    }
    /* Accepted sockets inherit TCP_NODELAY: answers are small and must not
     * wait for the client's delayed ACK. */
    if (setsockopt(evconnlistener_get_fd(w->listener), IPPROTO_TCP, TCP_NODELAY, &one,
                   sizeof(one)) != 0)
        log_warn("TCP_NODELAY on the listener: %s", strerror(errno));
    if (evhttp_bind_listener(w->http, w->listener) == NULL)
        return DEVID_ERR_ALLOC;
    return ledger_open(&w->ledger, cfg->ledger, cfg->replica_id);
}

static void worker_cleanup(struct worker *w)
{
    struct snapshot *pending = atomic_exchange(&w->mailbox, NULL);

    snapshot_unref(pending);
    if (w->http != NULL)
        evhttp_free(w->http); /* frees the bound listener and the connections */
    if (w->stop_ev != NULL)
        event_free(w->stop_ev);
    if (w->reload_ev != NULL)
        event_free(w->reload_ev);
    if (w->grace_ev != NULL)
        event_free(w->grace_ev);
    if (w->base != NULL)
        event_base_free(w->base);
    snapshot_unref(w->snap);
    w->snap = NULL;
    ledger_free(w->ledger);
    w->ledger = NULL;
    OPENSSL_free(w->crl_der);
    w->crl_der = NULL;
}

/* ---- trust state ---------------------------------------------------------- */

static int load_snapshot(struct server *s, struct snapshot **out)
{
    struct snapshot *snap = calloc(1, sizeof(*snap));
    int r;

    *out = NULL;
    if (snap == NULL)
        return DEVID_ERR_ALLOC;
    if ((r = s->hooks->load_trust(s->hooks->arg, &snap->t)) != 0) {
        free(snap);
        return r;
    }
    atomic_init(&snap->refs, s->nworkers);
    *out = snap;
    return 0;
}

static void reload(struct server *s)
{
    struct snapshot *snap = NULL, *old;
    int i;

    log_info("SIGHUP: reloading roots, intermediates, CRLs and policy");
    if (load_snapshot(s, &snap) != 0) {
        atomic_fetch_add(&s->reloads_failed, 1);
        log_err("reload failed; still serving with the previous trust state");
        return;
    }
    for (i = 0; i < s->nworkers; i++) {
        old = atomic_exchange(&s->workers[i].mailbox, snap);
        snapshot_unref(old);
        event_active(s->workers[i].reload_ev, 0, 0);
    }
    atomic_fetch_add(&s->reloads_ok, 1);
    log_info("reload done");
}

/* ---- control thread: signals and the metrics listener ---------------------- */

static void on_signal(evutil_socket_t sig, short events, void *arg)
{
    struct server *s = arg;
    int i;

    if (sig == SIGHUP) {
        reload(s);
        return;
    }
    log_info("signal %d: no longer accepting; finishing requests in flight (up to %d s)", (int)sig,
             s->cfg->shutdown_grace_seconds);
    for (i = 0; i < s->nworkers; i++)
        event_active(s->workers[i].stop_ev, 0, 0);
    event_base_loopexit(s->control, NULL);
}

static void handle_healthz(struct evhttp_request *req, void *arg)
{
    struct evbuffer *out = evbuffer_new();

    if (out == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evbuffer_add_printf(out, "ok\n");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void handle_metrics(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    struct metrics *all[MAX_WORKERS];
    struct metrics_gauges g = {0};
    struct evbuffer *out = NULL;
    char *text = malloc(METRICS_TEXT_MAX);
    long n;
    int i;

    for (i = 0; i < s->nworkers; i++)
        all[i] = &s->workers[i].metrics;
    g.connections_open = atomic_load(&s->conns_open);
    g.handshakes_in_flight = atomic_load(&s->handshakes);
    g.requests_in_flight = atomic_load(&s->requests);
    g.workers = s->nworkers;
    g.reloads_ok = atomic_load(&s->reloads_ok);
    g.reloads_failed = atomic_load(&s->reloads_failed);
    if (text == NULL ||
        (n = metrics_render(text, METRICS_TEXT_MAX, all, (size_t)s->nworkers, &g)) < 0 ||
        (out = evbuffer_new()) == NULL || evbuffer_add(out, text, (size_t)n) != 0) {
        evhttp_send_error(req, 500, "metrics unavailable");
        goto out;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", out);
out:
    if (out != NULL)
        evbuffer_free(out);
    free(text);
}

static int split_host_port(const char *listen, char *host, size_t host_len, uint16_t *port)
{
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    unsigned long p;
    char *end = NULL;
    size_t hl;

    if (colon == NULL)
        return DEVID_ERR_CONFIG;
    hl = (size_t)(colon - listen);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= host_len)
        return DEVID_ERR_CONFIG;
    memcpy(host, h, hl);
    host[hl] = '\0';
    errno = 0;
    p = strtoul(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || p == 0 || p > 65535)
        return DEVID_ERR_CONFIG;
    *port = (uint16_t)p;
    return 0;
}

static int start_metrics(struct server *s)
{
    char host[256];
    uint16_t port = 0;

    if (s->cfg->metrics_listen == NULL || s->cfg->metrics_listen[0] == '\0')
        return 0;
    if (split_host_port(s->cfg->metrics_listen, host, sizeof(host), &port) != 0) {
        log_err("bad metrics listen address \"%s\": want host:port", s->cfg->metrics_listen);
        return DEVID_ERR_CONFIG;
    }
    if ((s->metrics_http = evhttp_new(s->control)) == NULL)
        return DEVID_ERR_ALLOC;
    evhttp_set_allowed_methods(s->metrics_http, EVHTTP_REQ_GET);
    evhttp_set_timeout(s->metrics_http, 10);
    evhttp_set_cb(s->metrics_http, "/healthz", handle_healthz, s);
    evhttp_set_cb(s->metrics_http, "/metrics", handle_metrics, s);
    if (evhttp_bind_socket(s->metrics_http, host, port) != 0) {
        log_err("cannot listen for metrics on %s: %s", s->cfg->metrics_listen, strerror(errno));
        return DEVID_ERR_IO;
    }
    log_info("metrics and health on http://%s/metrics", s->cfg->metrics_listen);
    return 0;
}

static int resolve_listen(struct server *s)
{
    s->addr_len = (int)sizeof(s->addr);
    if (evutil_parse_sockaddr_port(s->cfg->listen, (struct sockaddr *)&s->addr, &s->addr_len) !=
        0) {
        log_err("bad listen address \"%s\": want IPv4:port or [IPv6]:port", s->cfg->listen);
        return DEVID_ERR_CONFIG;
    }
    return 0;
}

int server_run(const struct verifier_config *cfg, const struct server_hooks *hooks, struct ca *ca,
               const uint8_t *token_key)
{
    struct server *s = NULL;
    struct event *sig_ev[3] = {NULL, NULL, NULL};
    static const int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
    struct snapshot *snap = NULL;
    sigset_t block, old;
    long ncpu;
    int i, started = 0, r = DEVID_ERR_INTERNAL;

    if ((s = calloc(1, sizeof(*s))) == NULL)
        return DEVID_ERR_ALLOC;
    s->cfg = cfg;
    s->hooks = hooks;
    s->ca = ca;
    s->token_key = token_key;
    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    s->nworkers = cfg->workers > 0 ? cfg->workers : (ncpu > 0 ? (int)ncpu : 1);
    if (s->nworkers > MAX_WORKERS)
        s->nworkers = MAX_WORKERS;
    if (conn_ex_index < 0 &&
        (conn_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free)) < 0)
        goto out;
    if (evthread_use_pthreads() != 0) {
        log_err("libevent without thread support");
        goto out;
    }
    if ((r = resolve_listen(s)) != 0 || (r = make_ssl_ctx(s)) != 0 ||
        (r = load_snapshot(s, &snap)) != 0)
        goto out;
    if ((s->control = event_base_new()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    for (i = 0; i < s->nworkers; i++) {
        if ((r = worker_init(s, &s->workers[i], i)) != 0)
            goto out;
    }
    for (i = 0; i < s->nworkers; i++)
        s->workers[i].snap = snap;
    snap = NULL;
    for (i = 0; i < 3; i++) {
        if ((sig_ev[i] = evsignal_new(s->control, sigs[i], on_signal, s)) == NULL ||
            evsignal_add(sig_ev[i], NULL) != 0) {
            r = DEVID_ERR_INTERNAL;
            goto out;
        }
    }
    if ((r = start_metrics(s)) != 0)
        goto out;
    signal(SIGPIPE, SIG_IGN);
    /* Workers never take signals: the control thread owns them. */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (i = 0; i < s->nworkers; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
            log_err("cannot start worker thread %d", i);
            break;
        }
        s->workers[i].started = 1;
        started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started != s->nworkers) {
        for (i = 0; i < started; i++)
            event_active(s->workers[i].stop_ev, 0, 0);
        r = DEVID_ERR_INTERNAL;
    } else {
        log_info("listening on %s with %d workers (TLS %s to %s)", cfg->listen, s->nworkers,
                 cfg->tls_min == TLS1_3_VERSION ? "1.3" : "1.2",
                 cfg->tls_max == TLS1_2_VERSION ? "1.2" : "1.3");
        event_base_dispatch(s->control);
        r = 0;
    }
    for (i = 0; i < s->nworkers; i++) {
        if (s->workers[i].started)
            pthread_join(s->workers[i].thread, NULL);
    }
    if (r == 0)
        log_info("stopped");
out:
    for (i = 0; i < 3; i++) {
        if (sig_ev[i] != NULL)
            event_free(sig_ev[i]);
    }
    if (s->metrics_http != NULL)
        evhttp_free(s->metrics_http);
    for (i = 0; i < s->nworkers; i++)
        worker_cleanup(&s->workers[i]);
    if (snap != NULL) {
        atomic_store(&snap->refs, 1);
        snapshot_unref(snap);
    }
    if (s->control != NULL)
        event_base_free(s->control);
    SSL_CTX_free(s->ssl_ctx);
    free(s);
    return r;
}
