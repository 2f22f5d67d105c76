/* The runner: worker threads, each with its own event loop, evhttp and
 * SO_REUSEPORT listener; the control thread with the signals, the reloads
 * and the metrics listener. */
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
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <openssl/crypto.h>

#include "common/err.h"
#include "common/io/log.h"
#include "verifier/server/conn.h"
#include "verifier/server/filter.h"
#include "verifier/server/handle.h"
#include "verifier/server/state.h"
#include "verifier/server/testhook.h"

/* The signals the control thread takes. */
static const int signals[] = {SIGTERM, SIGINT, SIGHUP};
#define N_SIGNALS (sizeof(signals) / sizeof(signals[0]))

static void snapshot_unref(struct snapshot *snap)
{
    if (snap == NULL || atomic_fetch_sub(&snap->refs, 1) != 1)
        return;
    if (snap->trust.free_owner != NULL)
        snap->trust.free_owner(snap->trust.owner);
    OPENSSL_cleanse(snap, sizeof(*snap));
    free(snap);
}

/* Loads a trust snapshot through the hooks, with one reference per worker,
 * and names its token keys in s->token_key_id and s->token_accept_key_id. */
static int snapshot_load(struct server *s, struct snapshot **out)
{
    struct snapshot *snap = calloc(1, sizeof(*snap));
    char id[TOKEN_KEY_ID_LEN + 1], accept_id[TOKEN_KEY_ID_LEN + 1] = "";
    int r;

    *out = NULL;
    if (snap == NULL)
        return DEVID_ERR_ALLOC;
    if ((r = s->hooks->load_trust(s->hooks->arg, &snap->trust)) != 0) {
        OPENSSL_cleanse(snap, sizeof(*snap));
        free(snap);
        return r;
    }
    atomic_init(&snap->refs, 1);
    if ((r = token_key_id(id, snap->trust.token_key)) != 0 ||
        (snap->trust.has_token_accept_key &&
         (r = token_key_id(accept_id, snap->trust.token_accept_key)) != 0)) {
        snapshot_unref(snap);
        return r;
    }
    atomic_store(&snap->refs, s->nworkers);
    memcpy(s->token_key_id, id, sizeof(id));
    memcpy(s->token_accept_key_id, accept_id, sizeof(accept_id));
    *out = snap;
    return 0;
}

/* ---- workers ---------------------------------------------------------------- */

static void on_worker_stop(evutil_socket_t fd, short events, void *arg)
{
    struct worker *w = arg;
    struct timeval grace = {w->s->cfg->shutdown_grace_seconds, 0};

    if (w->listener != NULL)
        evconnlistener_disable(w->listener);
    if (conn_drain(w))
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

/* The worker's HTTP server: limits, deadlines and the handlers. */
static int worker_http(struct worker *w)
{
    const struct verifier_config *cfg = w->s->cfg;
    size_t max_body = cfg->max_body_enroll > cfg->max_body_challenge ? cfg->max_body_enroll
                                                                     : cfg->max_body_challenge;

    if ((w->http = evhttp_new(w->base)) == NULL)
        return DEVID_ERR_ALLOC;
    evhttp_set_bevcb(w->http, conn_accept, w);
    /* The request filter (filter.h) refuses every head evhttp would refuse
     * before evhttp sees it; evhttp's own limits stay above the filter's. */
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_POST | EVHTTP_REQ_GET);
    evhttp_set_max_body_size(w->http, (ev_ssize_t)max_body + 1);
    evhttp_set_max_headers_size(w->http, 2 * (ev_ssize_t)cfg->max_headers_size);
    /* evhttp's own inactivity timeout stays above ours, which rule. */
    evhttp_set_timeout(
        w->http,
        1 + (cfg->timeout_idle > cfg->timeout_request ? cfg->timeout_idle : cfg->timeout_request));
    evhttp_set_cb(w->http, "/v1/challenge", handle_challenge, w);
    evhttp_set_cb(w->http, "/v1/enroll", handle_enroll, w);
    evhttp_set_cb(w->http, "/v1/crl", handle_crl, w);
    evhttp_set_cb(w->http, "/v1/log/head", handle_log_head, w);
    evhttp_set_cb(w->http, FILTER_REFUSED_PATH, filter_handle_refused, w);
    evhttp_set_gencb(w->http, handle_other, w);
    return 0;
}

/* The worker's own SO_REUSEPORT listener, bound to its HTTP server. */
static int worker_listen(struct worker *w)
{
    struct server *s = w->s;
    int one = 1, r;

    w->listener = evconnlistener_new_bind(
        w->base, NULL, NULL,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC,
        1024, (struct sockaddr *)&s->addr, s->addr_len);
    if (w->listener == NULL) {
        log_err("cannot listen on %s: %s", s->cfg->listen, strerror(errno));
        return DEVID_ERR_IO;
    }
    /* Accepted sockets inherit TCP_NODELAY: answers are small and must not
     * wait for the client's delayed ACK. */
    r = setsockopt(evconnlistener_get_fd(w->listener), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (r != 0)
        log_warn("TCP_NODELAY on the listener: %s", strerror(errno));
    if (evhttp_bind_listener(w->http, w->listener) == NULL)
        return DEVID_ERR_ALLOC;
    return 0;
}

static int worker_init(struct server *s, struct worker *w, int index)
{
    int r;

    w->s = s;
    w->index = index;
    LIST_INIT(&w->conns);
    if ((w->base = event_base_new()) == NULL ||
        (w->stop_ev = event_new(w->base, -1, 0, on_worker_stop, w)) == NULL ||
        (w->reload_ev = event_new(w->base, -1, 0, on_worker_reload, w)) == NULL ||
        (w->grace_ev = evtimer_new(w->base, on_worker_grace, w)) == NULL)
        return DEVID_ERR_ALLOC;
    return (r = worker_http(w)) != 0 ? r : worker_listen(w);
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
}

/* ---- control thread: reloads, signals and the metrics listener ------------ */

static void reload(struct server *s)
{
    struct snapshot *snap = NULL, *old;
    int i;

    log_info("SIGHUP: reloading roots, intermediates, CRLs, policy and token keys");
    if (snapshot_load(s, &snap) != 0) {
        atomic_fetch_add(&s->reloads_failed, 1);
        log_err("reload failed; still serving with the previous trust state and token keys");
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

/* The signer is gone: nothing more can be issued. Requests in flight get
 * REASON_INTERNAL (retryable); serve exits non-zero and systemd restarts
 * it with a new signer. */
static void on_signer_exit(evutil_socket_t fd, short events, void *arg)
{
    struct server *s = arg;
    int i;

    log_err("the signer process exited; stopping (requests in flight get REASON_INTERNAL)");
    s->signer_died = 1;
    for (i = 0; i < s->nworkers; i++)
        event_active(s->workers[i].stop_ev, 0, 0);
    event_base_loopexit(s->control, NULL);
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
    const char *listen = s->cfg->metrics_listen;
    char host[256];
    uint16_t port = 0;

    if (listen == NULL || listen[0] == '\0')
        return 0;
    if (split_host_port(listen, host, sizeof(host), &port) != 0) {
        log_err("bad metrics listen address \"%s\": want host:port", listen);
        return DEVID_ERR_CONFIG;
    }
    if ((s->metrics_http = evhttp_new(s->control)) == NULL)
        return DEVID_ERR_ALLOC;
    evhttp_set_allowed_methods(s->metrics_http, EVHTTP_REQ_GET);
    evhttp_set_timeout(s->metrics_http, 10);
    evhttp_set_cb(s->metrics_http, "/healthz", handle_healthz, s);
    evhttp_set_cb(s->metrics_http, "/metrics", handle_metrics, s);
#ifdef DEVID_TEST_HOOKS
    evhttp_set_allowed_methods(s->metrics_http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_cb(s->metrics_http, "/test/sign", testhook_sign, s);
#endif
    if (evhttp_bind_socket(s->metrics_http, host, port) != 0) {
        log_err("cannot listen for metrics on %s: %s", listen, strerror(errno));
        return DEVID_ERR_IO;
    }
    log_info("metrics and health on http://%s/metrics", listen);
    return 0;
}

/* ---- start and stop --------------------------------------------------------- */

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

/* proxy_from reads the load balancers allowed to send a PROXY header. */
static int proxy_from(struct server *s)
{
    char why[256];

    if (s->cfg->proxy_from == NULL || s->cfg->proxy_from[0] == '\0')
        return 0;
    if (proxy_acl_parse(&s->proxy_acl, s->cfg->proxy_from, why, sizeof(why)) != 0) {
        log_err("proxy_from: %s", why);
        return DEVID_ERR_CONFIG;
    }
    log_info("accepting PROXY protocol v2 headers from %s", s->cfg->proxy_from);
    return 0;
}

/* Everything before the threads: TLS and the workers' sockets and the
 * metrics listener; then, once root is dropped, the trust state and token
 * keys, the ledgers, the CRL and log pollers and the signal events. */
static int prepare(struct server *s, struct event **sig_ev)
{
    struct snapshot *snap = NULL;
    size_t k;
    int i, r;

    if ((r = conn_global_init()) != 0 || (r = filter_global_init()) != 0)
        return r;
    if (evthread_use_pthreads() != 0) {
        log_err("libevent without thread support");
        return DEVID_ERR_INTERNAL;
    }
    if ((r = resolve_listen(s)) != 0 || (r = proxy_from(s)) != 0 || (r = conn_ssl_ctx_init(s)) != 0)
        return r;
    if ((s->control = event_base_new()) == NULL)
        return DEVID_ERR_ALLOC;
    for (i = 0; i < s->nworkers; i++) {
        if ((r = worker_init(s, &s->workers[i], i)) != 0)
            return r;
    }
    if ((r = start_metrics(s)) != 0)
        return r;
    /* The sockets are bound and the TLS key is read: root is no longer
     * needed. The trust files and token keys are read after this, as the
     * user that rereads them on SIGHUP; the ledger is opened as the user
     * that will write to it; and every thread starts after it. */
    if (s->hooks->before_workers != NULL && (r = s->hooks->before_workers(s->hooks->arg)) != 0)
        return r;
    if ((r = snapshot_load(s, &snap)) != 0)
        return r;
    for (i = 0; i < s->nworkers; i++)
        s->workers[i].snap = snap; /* one reference each */
    for (i = 0; i < s->nworkers; i++) {
        if ((r = ledger_open(&s->workers[i].ledger, s->cfg->ledger, s->cfg->replica_id)) != 0)
            return r;
    }
    if ((r = crlcache_start(&s->crl, s->cfg, s->ca)) != 0 ||
        (r = logcache_start(&s->log, s->cfg, s->hooks->signer)) != 0)
        return r;
    for (k = 0; k < N_SIGNALS; k++) {
        if ((sig_ev[k] = evsignal_new(s->control, signals[k], on_signal, s)) == NULL ||
            evsignal_add(sig_ev[k], NULL) != 0)
            return DEVID_ERR_INTERNAL;
    }
    if (s->hooks->signer_fd >= 0 &&
        ((s->signer_ev = event_new(s->control, s->hooks->signer_fd, EV_READ, on_signer_exit, s)) ==
             NULL ||
         event_add(s->signer_ev, NULL) != 0))
        return DEVID_ERR_INTERNAL;
    return 0;
}

/* Starts the workers with the signals blocked (the control thread owns
 * them), serves until a stop signal and joins them. Returns 0, or
 * DEVID_ERR_INTERNAL when a thread did not start. */
static int serve(struct server *s)
{
    sigset_t block, old;
    size_t k;
    int i, started = 0, r = 0;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&block);
    for (k = 0; k < N_SIGNALS; k++)
        sigaddset(&block, signals[k]);
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
        log_info("listening on %s with %d workers (TLS %s to %s)", s->cfg->listen, s->nworkers,
                 s->cfg->tls_min == TLS1_3_VERSION ? "1.3" : "1.2",
                 s->cfg->tls_max == TLS1_2_VERSION ? "1.2" : "1.3");
        event_base_dispatch(s->control);
    }
    for (i = 0; i < s->nworkers; i++) {
        if (s->workers[i].started)
            pthread_join(s->workers[i].thread, NULL);
    }
    if (r == 0 && !s->signer_died)
        log_info("stopped");
    return r;
}

int server_run(const struct verifier_config *cfg, const struct server_hooks *hooks, struct ca *ca)
{
    struct event *sig_ev[N_SIGNALS] = {NULL};
    struct server *s = NULL;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    size_t k;
    int i, r;

    if ((s = calloc(1, sizeof(*s))) == NULL)
        return DEVID_ERR_ALLOC;
    s->cfg = cfg;
    s->hooks = hooks;
    s->ca = ca;
    s->nworkers = cfg->workers > 0 ? cfg->workers : (ncpu > 0 ? (int)ncpu : 1);
    if (s->nworkers > SERVER_MAX_WORKERS)
        s->nworkers = SERVER_MAX_WORKERS;
    if ((r = prepare(s, sig_ev)) == 0)
        r = serve(s);
    if (r == 0 && s->signer_died)
        r = DEVID_ERR_INTERNAL;
    if (s->signer_ev != NULL)
        event_free(s->signer_ev);
    for (k = 0; k < N_SIGNALS; k++) {
        if (sig_ev[k] != NULL)
            event_free(sig_ev[k]);
    }
    if (s->metrics_http != NULL)
        evhttp_free(s->metrics_http);
    for (i = 0; i < s->nworkers; i++)
        worker_cleanup(&s->workers[i]);
    crlcache_stop(s->crl);
    logcache_stop(s->log);
    if (s->control != NULL)
        event_base_free(s->control);
    SSL_CTX_free(s->ssl_ctx);
    if (s->hs_src.e != NULL) {
        srclimit_cleanup(&s->hs_src);
        pthread_mutex_destroy(&s->hs_mu);
    }
    free(s);
    return r;
}
