#include "verifier/server/conn.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/util.h>
#include <openssl/err.h>

#include "common/err.h"
#include "common/io/log.h"
#include "verifier/core/chain.h"
#include "verifier/server/filter.h"
#include "verifier/server/proxyio.h"

static int conn_ex_index = -1;

static void arm(struct conn *c, int seconds)
{
    struct timeval tv = {seconds, 0};

    evtimer_add(c->deadline, &tv);
}

static void close_now(struct conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);

    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

/*
 * finish ends a connection gracefully while draining: it sends FIN after the
 * answers already written and lets the client close first, so that no unread
 * byte turns the close into a reset that would discard the answer. The
 * deadline still bounds how long that may take.
 */
static void finish(struct conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);

    if (c->write_shut || fd < 0)
        return;
    c->write_shut = 1;
    shutdown(fd, SHUT_WR);
}

static void set_phase(struct conn *c, enum conn_phase phase)
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
            arm(c, c->hello ? cfg->timeout_handshake : cfg->timeout_hello);
            break;
        case CONN_IDLE:
            /* While draining, answers carry "Connection: close"; only a
             * connection that never sent a request is closed here. */
            if (c->w->draining && was == CONN_HANDSHAKE)
                finish(c);
            else
                arm(c, cfg->timeout_idle);
            break;
        case CONN_BUSY:
            arm(c, cfg->timeout_request);
            break;
    }
}

static void on_deadline(evutil_socket_t fd, short events, void *arg)
{
    struct conn *c = arg;

    atomic_fetch_add_explicit(&c->w->metrics.deadline_closes, 1, memory_order_relaxed);
    log_debug("closing connection: %s deadline passed",
              c->phase == CONN_HANDSHAKE ? (c->hello ? "handshake" : "ClientHello")
              : c->phase == CONN_BUSY    ? "request"
                                         : "idle");
    close_now(c);
}

/* A new request starts when application bytes arrive on an idle connection. */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn *c = arg;

    if (info->n_added > 0 && c->phase == CONN_IDLE)
        set_phase(c, CONN_BUSY);
}

/* While draining, an answer still being written is let out before the close. */
static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn *c = arg;

    if (c->close_when_flushed && info->n_deleted > 0 && evbuffer_get_length(buf) == 0)
        finish(c);
}

/* hs_release gives back the handshake slot |c| took at its ClientHello. */
static void hs_release(struct conn *c)
{
    struct server *s = c->w->s;

    pthread_mutex_lock(&s->hs_mu);
    srclimit_give(&s->hs_src, c->source);
    pthread_mutex_unlock(&s->hs_mu);
    atomic_fetch_sub(&s->handshakes, 1);
}

/* The SSL ex_data free callback: the connection goes with its SSL. */
static void on_ssl_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    struct conn *c = ptr;

    if (c == NULL)
        return;
    if (c->phase == CONN_HANDSHAKE && c->hello)
        hs_release(c);
    if (c->phase == CONN_BUSY)
        atomic_fetch_sub(&c->w->s->requests, 1);
    atomic_fetch_sub(&c->w->s->conns_open, 1);
    LIST_REMOVE(c, link);
    event_free(c->deadline);
    chain_memo_cleanup(c->memo);
    free(c->memo);
    if (c->w->draining && LIST_EMPTY(&c->w->conns))
        event_base_loopexit(c->w->base, NULL);
    free(c);
}

int conn_global_init(void)
{
    if (conn_ex_index < 0 &&
        (conn_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, on_ssl_free)) < 0)
        return DEVID_ERR_INTERNAL;
    return 0;
}

static void on_ssl_info(const SSL *ssl, int where, int ret)
{
    struct conn *c;

    if ((where & SSL_CB_HANDSHAKE_START) != 0) {
        /* Before TLS reads its first byte: a PROXY header may come first. */
        c = SSL_get_ex_data(ssl, conn_ex_index);
        if (c != NULL && !c->proxy_attached) {
            c->proxy_attached = 1;
            if (proxyio_attach((SSL *)ssl, c->w->s, bufferevent_getfd(c->bev), c->peer) != 0)
                close_now(c);
        }
        return;
    }
    if ((where & SSL_CB_HANDSHAKE_DONE) == 0)
        return;
    c = SSL_get_ex_data(ssl, conn_ex_index);
    if (c == NULL || c->phase != CONN_HANDSHAKE)
        return;
    if (c->hello)
        hs_release(c);
    set_phase(c, CONN_IDLE);
}

/*
 * A handshake counts against max_handshakes from its ClientHello: a
 * connection that sends nothing costs a socket until the ClientHello
 * deadline, but no handshake slot, so silent connections cannot lock
 * devices out. The handshake then has its own deadline.
 */
static int on_client_hello(SSL *ssl, int *alert, void *arg)
{
    struct server *s = arg;
    struct conn *c = SSL_get_ex_data(ssl, conn_ex_index);
    int r;

    if (c == NULL || c->hello)
        return SSL_CLIENT_HELLO_SUCCESS;
    if (atomic_fetch_add(&s->handshakes, 1) >= s->cfg->max_handshakes) {
        atomic_fetch_sub(&s->handshakes, 1);
        atomic_fetch_add_explicit(&c->w->metrics.handshake_rejections, 1, memory_order_relaxed);
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    /* The source is known by now: a PROXY header comes before any TLS byte. */
    srclimit_source(c->source, c->peer);
    pthread_mutex_lock(&s->hs_mu);
    r = srclimit_take(&s->hs_src, c->source);
    pthread_mutex_unlock(&s->hs_mu);
    if (r != 0) {
        atomic_fetch_sub(&s->handshakes, 1);
        atomic_fetch_add_explicit(&c->w->metrics.handshake_source_rejections, 1,
                                  memory_order_relaxed);
        log_debug("handshake from %s refused: %d in flight from that source already", c->peer,
                  s->cfg->max_handshakes_per_source);
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    c->hello = 1;
    set_phase(c, CONN_HANDSHAKE);
    return SSL_CLIENT_HELLO_SUCCESS;
}

static int defer_client_chain(X509_STORE_CTX *ctx, void *arg)
{
    /* The chain is judged by the trust core in the handler, so that a refusal
     * reaches the device as an Error naming the reason, not a TLS alert; TLS
     * does not verify it first (with an empty store, to no end: a verify
     * callback that accepts everything still let X509_verify_cert check the
     * signatures it could). The handshake still proves possession of the
     * certificate's key (CertificateVerify). */
    return 1;
}

int conn_ssl_ctx_init(struct server *s)
{
    const struct verifier_config *cfg = s->cfg;
    char reason[256];

    if (pthread_mutex_init(&s->hs_mu, NULL) != 0 ||
        srclimit_init(&s->hs_src, (size_t)cfg->max_handshakes, cfg->max_handshakes_per_source) !=
            0 ||
        (s->ssl_ctx = SSL_CTX_new(TLS_server_method())) == NULL)
        return DEVID_ERR_ALLOC;
    SSL_CTX_set_options(s->ssl_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* An idle connection keeps no TLS read or write buffer. */
    SSL_CTX_set_mode(s->ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    /* No session is resumed: a device enrolls on one connection, and the
     * next time it comes back (a renewal) its chain must be judged again.
     * Without this, TLS 1.3 sends two NewSessionTickets after every
     * handshake, and building each copies the session through DER, which
     * parses the device's certificates again (a tenth of the CPU of an
     * enrollment, measured with perf; BENCHMARKS.md). */
    SSL_CTX_set_session_cache_mode(s->ssl_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(s->ssl_ctx, SSL_OP_NO_TICKET);
    if (SSL_CTX_set_num_tickets(s->ssl_ctx, 0) != 1)
        return DEVID_ERR_INTERNAL;
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
    SSL_CTX_set_verify(s->ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, NULL);
    SSL_CTX_set_cert_verify_callback(s->ssl_ctx, defer_client_chain, NULL);
    SSL_CTX_set_verify_depth(s->ssl_ctx, CHAIN_MAX_DEPTH);
    SSL_CTX_set_info_callback(s->ssl_ctx, on_ssl_info);
    SSL_CTX_set_client_hello_cb(s->ssl_ctx, on_client_hello, s);
    return 0;
}

struct bufferevent *conn_accept(struct event_base *base, void *arg)
{
    struct worker *w = arg;
    struct server *s = w->s;
    struct conn *c = NULL;
    SSL *ssl = NULL;

    if ((c = calloc(1, sizeof(*c))) == NULL || (ssl = SSL_new(s->ssl_ctx)) == NULL ||
        (c->deadline = evtimer_new(base, on_deadline, c)) == NULL)
        goto fail;
    c->w = w;
    snprintf(c->peer, sizeof(c->peer), "unknown");
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
    c->phase = CONN_HANDSHAKE;
    arm(c, s->cfg->timeout_hello);
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    evbuffer_add_cb(bufferevent_get_input(c->bev), on_input, c);
    evbuffer_add_cb(bufferevent_get_output(c->bev), on_output, c);
    /* evhttp reads through the request filter (filter.h). */
    return filter_wrap(c);
fail:
    if (c != NULL && c->deadline != NULL)
        event_free(c->deadline);
    free(c);
    SSL_free(ssl);
    return NULL;
}

SSL *conn_get0_ssl(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    struct bufferevent *tls = bev != NULL ? bufferevent_get_underlying(bev) : NULL;

    return bufferevent_openssl_get_ssl(tls != NULL ? tls : bev);
}

struct conn *conn_get0(struct evhttp_request *req)
{
    SSL *ssl = conn_get0_ssl(req);

    return ssl != NULL ? SSL_get_ex_data(ssl, conn_ex_index) : NULL;
}

struct chain_memo *conn_memo(struct conn *c)
{
    if (c != NULL && c->memo == NULL)
        c->memo = calloc(1, sizeof(*c->memo));
    return c != NULL ? c->memo : NULL;
}

const char *conn_peer(const struct conn *c)
{
    return c != NULL ? c->peer : "unknown";
}

void conn_answered(struct conn *c)
{
    if (c != NULL && c->phase == CONN_BUSY)
        set_phase(c, CONN_IDLE);
}

int conn_drain(struct worker *w)
{
    struct conn *c, *next;

    w->draining = 1;
    for (c = LIST_FIRST(&w->conns); c != NULL; c = next) {
        next = LIST_NEXT(c, link);
        if (c->phase == CONN_BUSY)
            continue;
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0 || filter_output_pending(c))
            c->close_when_flushed = 1;
        else
            finish(c);
    }
    return LIST_EMPTY(&w->conns);
}
