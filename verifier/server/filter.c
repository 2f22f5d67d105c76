#include "verifier/server/filter.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "common/err.h"
#include "common/io/log.h"
#include "verifier/core/httphead.h"
#include "verifier/server/http.h"
#include "verifier/server/state.h"

/* What evhttp reads in place of a refused request. */
static const char refused_request[] = "POST " FILTER_REFUSED_PATH
                                      " HTTP/1.1\r\n"
                                      "Host: devid\r\n"
                                      "Connection: close\r\n"
                                      "Content-Length: 0\r\n"
                                      "\r\n";

enum filter_state { FILTER_HEAD, FILTER_BODY, FILTER_REFUSED };

/* One connection's filter; hung on its SSL object and freed with it. */
struct filter {
    struct bufferevent *tls; /* the connection's TLS bufferevent */
    struct bufferevent *bev; /* the filter evhttp uses; NULL once freed */
    struct event *kick;      /* moves answers on and acknowledges them (on_kick) */
    bool unacked;            /* an answer moved to TLS is not yet written */
    struct httphead_limits lim;
    enum filter_state state;
    uint64_t body_left;
    /* The refused head (FILTER_REFUSED), and the error code to answer. */
    struct httphead refusal;
    int refusal_r;
};

static int filter_ex_index = -1;

/* The SSL ex_data free callback: the filter goes with its SSL. */
static void on_filter_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                           void *argp)
{
    struct filter *f = ptr;

    if (f == NULL)
        return;
    event_free(f->kick);
    free(f);
}

int filter_global_init(void)
{
    if (filter_ex_index < 0 &&
        (filter_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, on_filter_free)) < 0)
        return DEVID_ERR_INTERNAL;
    return 0;
}

/* Passes on at most |limit| bytes of the body that follows an accepted head. */
static bool pass_body(struct filter *f, struct evbuffer *src, struct evbuffer *dst,
                      ev_ssize_t limit)
{
    size_t n = evbuffer_get_length(src);

    if (n > f->body_left)
        n = (size_t)f->body_left;
    if (limit >= 0 && n > (size_t)limit)
        n = (size_t)limit;
    if (n == 0 || evbuffer_remove_buffer(src, dst, n) != (int)n)
        return false;
    f->body_left -= n;
    if (f->body_left == 0)
        f->state = FILTER_HEAD;
    return true;
}

/* Refuses what is in |src| from here on: evhttp reads the synthetic request
 * instead, and nothing after it. */
static void refuse(struct filter *f, struct evbuffer *src, struct evbuffer *dst)
{
    evbuffer_drain(src, evbuffer_get_length(src));
    f->state = FILTER_REFUSED;
    if (evbuffer_add(dst, refused_request, sizeof(refused_request) - 1) != 0)
        log_warn("out of memory refusing a request");
}

/* Judges the head at the start of |src|: passes it on, refuses it, or waits
 * for more of it (returns false). */
static bool read_head(struct filter *f, struct evbuffer *src, struct evbuffer *dst)
{
    size_t len = evbuffer_get_length(src);
    size_t scan = len < f->lim.max_head ? len : f->lim.max_head;
    const char *p = (const char *)evbuffer_pullup(src, (ev_ssize_t)scan);
    int r;

    if (p == NULL) {
        memset(&f->refusal, 0, sizeof(f->refusal));
        f->refusal.status = 500;
        snprintf(f->refusal.why, sizeof(f->refusal.why), "out of memory reading the request");
        f->refusal_r = DEVID_ERR_ALLOC;
        refuse(f, src, dst);
        return true;
    }
    r = httphead_parse(&f->refusal, p, scan, &f->lim);
    if (r == 0 && !f->refusal.complete)
        return false;
    if (r != 0) {
        f->refusal_r = r;
        refuse(f, src, dst);
        return true;
    }
    if (evbuffer_remove_buffer(src, dst, f->refusal.head_len) != (int)f->refusal.head_len)
        return false;
    f->body_left = f->refusal.content_length;
    f->state = f->body_left > 0 ? FILTER_BODY : FILTER_HEAD;
    return true;
}

/* The input filter: TLS plaintext in |src|, what evhttp may read to |dst|. */
static enum bufferevent_filter_result on_input(struct evbuffer *src, struct evbuffer *dst,
                                               ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                               void *ctx)
{
    struct filter *f = ctx;
    bool passed = false, more = true;

    while (more && evbuffer_get_length(src) > 0) {
        switch (f->state) {
            case FILTER_REFUSED:
                evbuffer_drain(src, evbuffer_get_length(src));
                more = false;
                break;
            case FILTER_BODY:
                more = pass_body(f, src, dst, limit);
                break;
            case FILTER_HEAD:
                more = read_head(f, src, dst);
                break;
        }
        passed |= more;
    }
    return passed ? BEV_OK : BEV_NEED_MORE;
}

/*
 * The output side. evhttp counts an answer sent, and may shut the socket's
 * write side (Connection: close), when its bufferevent's output is empty;
 * a filter's is empty as soon as the answer is handed to TLS, long before
 * TLS has written it. So the filter passes nothing on by itself: every
 * addition schedules |kick|, which moves the answer to the TLS output, and
 * only once TLS has written all of it does the kick tell evhttp (its write
 * callback). Deferring both keeps evhttp's callbacks out of its own calls.
 */
static enum bufferevent_filter_result on_output(struct evbuffer *src, struct evbuffer *dst,
                                                ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                void *ctx)
{
    struct filter *f = ctx;

    event_active(f->kick, EV_TIMEOUT, 0);
    return BEV_NEED_MORE;
}

static void on_output_added(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct filter *f = arg;

    if (info->n_added > 0)
        event_active(f->kick, EV_TIMEOUT, 0);
}

static void on_tls_written(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct filter *f = arg;

    if (info->n_deleted > 0 && evbuffer_get_length(buf) == 0 && f->unacked)
        event_active(f->kick, EV_TIMEOUT, 0);
}

/* The filter bufferevent is still evhttp's: not freed (bufferevent_free
 * clears the callbacks at once; the memory goes later). */
static bool alive(const struct filter *f)
{
    bufferevent_event_cb eventcb = NULL;

    if (f->bev == NULL)
        return false;
    bufferevent_getcb(f->bev, NULL, NULL, &eventcb, NULL);
    return eventcb != NULL;
}

static void on_kick(evutil_socket_t fd, short events, void *arg)
{
    struct filter *f = arg;
    struct evbuffer *out, *tls_out;

    if (!alive(f))
        return;
    out = bufferevent_get_output(f->bev);
    tls_out = bufferevent_get_output(f->tls);
    if (evbuffer_get_length(out) > 0) {
        if (evbuffer_add_buffer(tls_out, out) == 0)
            f->unacked = true;
        return;
    }
    if (f->unacked && evbuffer_get_length(tls_out) == 0) {
        f->unacked = false;
        bufferevent_trigger(f->bev, EV_WRITE, 0);
    }
}

/* The filter's free_context: evhttp let go of the connection; the TLS
 * bufferevent goes with the filter (BEV_OPT_CLOSE_ON_FREE). */
static void on_filter_gone(void *ctx)
{
    struct filter *f = ctx;

    f->bev = NULL;
    event_del(f->kick);
}

bool filter_output_pending(struct conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    struct filter *f = ssl != NULL ? SSL_get_ex_data(ssl, filter_ex_index) : NULL;

    return f != NULL && f->bev != NULL && evbuffer_get_length(bufferevent_get_output(f->bev)) > 0;
}

struct bufferevent *filter_wrap(struct conn *c)
{
    const struct verifier_config *cfg = c->w->s->cfg;
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    struct filter *f = calloc(1, sizeof(*f));
    struct bufferevent *bev = NULL;

    if (f == NULL || ssl == NULL ||
        (f->kick = event_new(bufferevent_get_base(c->bev), -1, 0, on_kick, f)) == NULL ||
        SSL_set_ex_data(ssl, filter_ex_index, f) != 1) {
        if (f != NULL && f->kick != NULL)
            event_free(f->kick);
        free(f);
        bufferevent_free(c->bev);
        return NULL;
    }
    /* From here on |f| is freed with the SSL. */
    f->tls = c->bev;
    f->lim.max_head = (size_t)cfg->max_headers_size;
    f->lim.max_fields = (unsigned)cfg->max_header_count;
    f->lim.max_body_challenge = (size_t)cfg->max_body_challenge;
    f->lim.max_body_enroll = (size_t)cfg->max_body_enroll;
    if (evbuffer_add_cb(bufferevent_get_output(c->bev), on_tls_written, f) == NULL ||
        (bev = bufferevent_filter_new(c->bev, on_input, on_output, BEV_OPT_CLOSE_ON_FREE,
                                      on_filter_gone, f)) == NULL) {
        bufferevent_free(c->bev);
        return NULL;
    }
    /* From here on c->bev is freed with |bev|. */
    f->bev = bev;
    if (evbuffer_add_cb(bufferevent_get_output(bev), on_output_added, f) == NULL) {
        bufferevent_free(bev);
        return NULL;
    }
    return bev;
}

/* Logs the refusal of a request head as a "request" event. */
static void log_refusal(const struct filter *f, const struct peer *peer)
{
    const struct httphead *h = &f->refusal;
    char status[8];
    const struct log_field fields[] = {
        LOG_WORD("result", "refused"),     LOG_WORD("status", status),
        LOG_TEXT("method", h->method),     LOG_TEXT("path", h->target),
        LOG_TEXT("client", peer->subject), LOG_TEXT("reason", devid_err_str(f->refusal_r)),
        LOG_TEXT("why", h->why),
    };

    snprintf(status, sizeof(status), "%d", h->status);
    log_event(LOG_INFO, "request", fields, sizeof(fields) / sizeof(fields[0]));
}

void filter_handle_refused(struct evhttp_request *req, void *arg)
{
    struct worker *w = arg;
    SSL *ssl = conn_get0_ssl(req);
    struct filter *f = ssl != NULL ? SSL_get_ex_data(ssl, filter_ex_index) : NULL;
    struct peer peer;
    char why[256];

    http_get_peer(req, &peer, why, sizeof(why));
    if (f == NULL || f->state != FILTER_REFUSED) {
        http_reply_status(req, peer.conn, DEVID_ERR_INTERNAL, 500, NULL,
                          "no refusal stored for this request");
    } else {
        log_refusal(f, &peer);
        atomic_fetch_add_explicit(&w->metrics.bad_requests, 1, memory_order_relaxed);
        http_reply_status(req, peer.conn, f->refusal_r, f->refusal.status, f->refusal.allow,
                          f->refusal.why);
    }
    http_peer_cleanup(&peer);
}
