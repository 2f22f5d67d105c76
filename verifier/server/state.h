/* The state the server's files share: the server, its workers and the trust
 * snapshots they serve with. Private to verifier/server/. */
#ifndef DEVID_VERIFIER_SERVER_STATE_H
#define DEVID_VERIFIER_SERVER_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "verifier/core/config.h"
#include "verifier/core/metrics.h"
#include "verifier/core/proxy.h"
#include "verifier/core/srclimit.h"
#include "verifier/ledger/ledger.h"
#include "verifier/pki/ca.h"
#include "verifier/server/crlcache.h"
#include "verifier/server/logcache.h"
#include "verifier/server/server.h"

/* Most worker threads. */
#define SERVER_MAX_WORKERS 64

/* A refcounted trust state with its token keys; each worker holds one
 * reference to the one it uses, so a reload never frees state a request is
 * using, and a worker swaps trust and keys together, between requests. */
struct snapshot {
    struct server_trust trust;
    atomic_int refs;
};

struct conn;
struct server;

/* One worker thread: its event loop, HTTP server, listener and ledger
 * handle, and the connections it serves. */
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
    struct metrics metrics;
    LIST_HEAD(, conn) conns;
    int draining;
    int started;
};

struct server {
    const struct verifier_config *cfg;
    const struct server_hooks *hooks;
    struct ca *ca;
    SSL_CTX *ssl_ctx;
    struct sockaddr_storage addr;
    int addr_len;
    int nworkers;
    struct worker workers[SERVER_MAX_WORKERS];
    struct event_base *control;
    struct evhttp *metrics_http;
    atomic_int conns_open;
    atomic_int handshakes;
    /* Handshake slots per source address ([limits]
     * max_handshakes_per_source), under hs_mu. */
    pthread_mutex_t hs_mu;
    struct srclimit hs_src;
    atomic_int requests;
    atomic_int reloads_ok;
    atomic_int reloads_failed;
    /* token_key_id of the keys last loaded ("" for no accept-only key);
     * written and read on the control thread only. */
    char token_key_id[TOKEN_KEY_ID_LEN + 1];
    char token_accept_key_id[TOKEN_KEY_ID_LEN + 1];
    /* The CRL GET /v1/crl serves, kept fresh in the background. */
    struct crlcache *crl;
    /* The issuance log's sequencer and signed head (GET /v1/log/head). */
    struct logcache *log;
    /* Who may send a PROXY protocol header ([server] proxy_from), and the
     * connections refused for sending one anyway. */
    struct proxy_acl proxy_acl;
    atomic_int proxy_refusals;
    /* The signer process exited: stop, and fail. */
    struct event *signer_ev;
    int signer_died;
};

#endif
