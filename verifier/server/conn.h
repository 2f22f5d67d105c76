/* The life of one TLS connection: accept, the handshake, deadlines for each
 * phase, the connection and handshake limits, and draining on shutdown.
 * Private to verifier/server/. */
#ifndef DEVID_VERIFIER_SERVER_CONN_H
#define DEVID_VERIFIER_SERVER_CONN_H

#include <sys/queue.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "verifier/core/chain_memo.h"
#include "verifier/core/proxy.h"
#include "verifier/core/srclimit.h"
#include "verifier/server/state.h"

/* Where a connection is; each phase has its own deadline. */
enum conn_phase { CONN_HANDSHAKE, CONN_IDLE, CONN_BUSY };

/* Per-connection state, hung on the SSL object and freed with it. */
struct conn {
    struct worker *w;
    struct bufferevent *bev;
    struct event *deadline;
    enum conn_phase phase;
    /* Accepted past max_connections: its requests get 503. */
    int over_limit;
    /* Draining: finish once the answer in the output buffer is written;
     * after that nothing more is sent on this connection. */
    int close_when_flushed;
    int write_shut;
    /* The device's address as logs show it: the socket's peer, or the one
     * a load balancer forwarded in a PROXY protocol header (proxyio.h). */
    char peer[PROXY_ADDR_LEN];
    int proxy_attached;
    /* Its ClientHello arrived: it holds a handshake slot (max_handshakes)
     * until the handshake ends, under the handshake deadline; before, the
     * ClientHello deadline. */
    int hello;
    /* The source address its handshake slot counts against (srclimit.h). */
    char source[SRCLIMIT_ADDR_MAX];
    /* The chain verdict kept for this connection's requests (chain_memo.h),
     * made at its first request: an idle connection does not pay for it. */
    struct chain_memo *memo;
    LIST_ENTRY(conn) link;
};

/* conn_global_init registers the SSL ex_data slot connections hang on.
 * Call once before any connection. Returns 0 or DEVID_ERR_INTERNAL. */
int conn_global_init(void);

/*
 * conn_ssl_ctx_init sets s->ssl_ctx to a new TLS server context: the
 * configured versions, certificate and key, any client certificate accepted
 * (the core judges it), and the callbacks that track handshakes and refuse
 * them past max_handshakes. Returns 0, or DEVID_ERR_CONFIG / DEVID_ERR_ALLOC
 * with the reason logged.
 */
int conn_ssl_ctx_init(struct server *s);

/* conn_accept is evhttp's bufferevent callback for worker |arg|: a new TLS
 * connection with its handshake deadline, or NULL. */
struct bufferevent *conn_accept(struct event_base *base, void *arg);

/* conn_get0_ssl returns the TLS connection |req| arrived on, or NULL. */
SSL *conn_get0_ssl(struct evhttp_request *req);

/* conn_get0 returns the connection |req| arrived on, or NULL. */
struct conn *conn_get0(struct evhttp_request *req);

/* conn_memo returns |c|'s kept chain verdict, made on first use; NULL for a
 * NULL |c| or when it cannot be allocated (then nothing is kept). */
struct chain_memo *conn_memo(struct conn *c);

/* conn_peer returns |c|'s device address (borrowed), or "unknown" for NULL. */
const char *conn_peer(const struct conn *c);

/* conn_answered marks the request on |c| (may be NULL) answered: the
 * connection goes back to its idle deadline. */
void conn_answered(struct conn *c);

/*
 * conn_drain starts draining worker |w| on shutdown: connections without a
 * request in flight are finished (FIN after what was written), busy ones
 * finish after their answer (see conn_answered). Returns 1 when |w| has no
 * connection left.
 */
int conn_drain(struct worker *w);

#endif
