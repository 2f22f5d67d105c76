/* The device listener reads every request head itself before evhttp does
 * (verifier/core/httphead.h): a bufferevent filter between TLS and evhttp
 * passes acceptable heads and their Content-Length bodies through, and puts
 * a refused request's place a synthetic one, FILTER_REFUSED_PATH, whose
 * handler answers the verdict as the verifier's own Error. evhttp 2.1 has no
 * error callback, so no refusal ever reaches its HTML pages. Private to
 * verifier/server/. */
#ifndef DEVID_VERIFIER_SERVER_FILTER_H
#define DEVID_VERIFIER_SERVER_FILTER_H

#include <stdbool.h>

#include <event2/bufferevent.h>
#include <event2/http.h>

#include "verifier/server/conn.h"

/* The path of the synthetic request that stands for a refused one; the
 * filter refuses it (404) when a client sends it. */
#define FILTER_REFUSED_PATH "/.devid/refused"

/* filter_global_init registers the SSL ex_data slot the filters hang on.
 * Call once before any connection. Returns 0 or DEVID_ERR_INTERNAL. */
int filter_global_init(void);

/*
 * filter_wrap puts the request filter on connection |c|'s TLS bufferevent
 * (c->bev) and returns the bufferevent evhttp is to use; freeing it frees
 * c->bev, and with it the SSL and |c|. evhttp learns that an answer is sent
 * only once TLS has written all of it, so a close after the answer loses
 * nothing. Returns NULL on failure, after freeing c->bev (and |c|).
 */
struct bufferevent *filter_wrap(struct conn *c);

/* filter_output_pending returns whether an answer evhttp wrote on |c| has
 * not reached the TLS bufferevent's output yet. */
bool filter_output_pending(struct conn *c);

/* filter_handle_refused is the evhttp handler of FILTER_REFUSED_PATH: it
 * answers the refusal the filter stored for the connection (status, Allow,
 * why) as an Error with REASON_BAD_REQUEST and Connection: close, and logs
 * it. */
void filter_handle_refused(struct evhttp_request *req, void *arg);

#endif
