/* The HTTP handlers: decode, call the core, encode, reply; every path ends
 * in a reply. Private to verifier/server/. */
#ifndef DEVID_VERIFIER_SERVER_HANDLE_H
#define DEVID_VERIFIER_SERVER_HANDLE_H

#include <event2/http.h>

/* handle_challenge answers POST /v1/challenge for worker |arg|: the chain
 * is checked, then a nonce and a sealed token are returned. */
void handle_challenge(struct evhttp_request *req, void *arg);

/* handle_enroll answers POST /v1/enroll for worker |arg|: the ledger's
 * answers, one enroll_decide, then what the verdict says (issue, the stored
 * certificate again, or the refusal), logged in one line. */
void handle_enroll(struct evhttp_request *req, void *arg);

/* handle_crl answers GET /v1/crl for worker |arg| with the newest CRL the
 * server built in the background (crlcache.h). */
void handle_crl(struct evhttp_request *req, void *arg);

/* handle_log_head answers GET /v1/log/head for worker |arg| with the
 * newest signed tree head of the issuance log this replica signed in the
 * background (logcache.h): 404 when it has no log key, 503 (retryable)
 * before the first one. */
void handle_log_head(struct evhttp_request *req, void *arg);

/* handle_other answers any other path with DEVID_ERR_NOT_FOUND. */
void handle_other(struct evhttp_request *req, void *arg);

/* handle_healthz answers GET /healthz on the metrics listener. */
void handle_healthz(struct evhttp_request *req, void *arg);

/* handle_metrics answers GET /metrics with the Prometheus text of server
 * |arg|'s counters. */
void handle_metrics(struct evhttp_request *req, void *arg);

#endif
