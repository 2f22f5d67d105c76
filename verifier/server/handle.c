#include "verifier/server/handle.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "common/err.h"
#include "common/io/log.h"
#include "common/transcript.h"
#include "devid/v1/enroll.pb-c.h"
#include "verifier/core/enroll.h"
#include "verifier/core/metrics.h"
#include "verifier/server/crlcache.h"
#include "verifier/server/http.h"
#include "verifier/server/issue.h"
#include "verifier/server/state.h"

#define METRICS_TEXT_MAX (64 * 1024)

static double elapsed_s(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static struct enroll_config core_config(const struct worker *w)
{
    struct enroll_config cfg = {w->snap->trust.store, w->snap->trust.policy, w->s->token_key};

    return cfg;
}

/* Answers a challenge: a fresh nonce sealed in a token bound to |cert|. */
static int reply_challenge(struct evhttp_request *req, struct worker *w, const struct peer *peer,
                           time_t now, char *why, size_t why_len)
{
    Devid__V1__ChallengeResponse cres = DEVID__V1__CHALLENGE_RESPONSE__INIT;
    uint8_t nonce[TOKEN_NONCE_LEN], token[TOKEN_LEN], cert_hash[32];
    int64_t expires_at = (int64_t)now + w->s->cfg->token_ttl_seconds;
    int r;

    if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
        snprintf(why, why_len, "random generator failed");
        return DEVID_ERR_CRYPTO;
    }
    if ((r = enroll_cert_hash(cert_hash, peer->cert)) != 0 ||
        (r = token_seal(token, w->s->token_key, nonce, expires_at, cert_hash)) != 0) {
        snprintf(why, why_len, "sealing the token failed");
        return r;
    }
    cres.nonce.data = nonce;
    cres.nonce.len = sizeof(nonce);
    cres.token.data = token;
    cres.token.len = sizeof(token);
    cres.expires_at = expires_at;
    http_reply_packed(req, peer->conn, &cres.base);
    return 0;
}

void handle_challenge(struct evhttp_request *req, void *arg)
{
    struct worker *w = arg;
    Devid__V1__ChallengeRequest *creq = NULL;
    struct chain_verdict verdict = {0};
    struct peer peer;
    const uint8_t *body = NULL;
    char why[512] = "";
    size_t len = 0;
    time_t now = time(NULL);
    int r;

    if ((r = http_accept_request(req, &peer, w->s->cfg->max_body_challenge, &body, &len, why,
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
    if ((r = chain_verify(w->snap->trust.store, &verdict, peer.cert, peer.chain, now, why,
                          sizeof(why))) != 0 ||
        (r = reply_challenge(req, w, &peer, now, why, sizeof(why))) != 0)
        goto out;
    log_debug("challenge issued to %s (%s) at %s", peer.subject, verdict.manufacturer,
              conn_peer(peer.conn));
out:
    if (r != 0) {
        log_info("challenge result=refused peer=%s client=\"%s\" reason=\"%s\" why: %s",
                 conn_peer(peer.conn), peer.subject, devid_err_str(r), why);
        http_reply_error(req, peer.conn, r, why);
    }
    metrics_challenge_done(&w->metrics, r);
    chain_verdict_cleanup(&verdict);
    devid__v1__challenge_request__free_unpacked(creq, NULL);
}

/* Answers an EnrollResponse carrying |cert| and the CA chain. */
static int reply_issued(struct evhttp_request *req, struct server *s, struct conn *c,
                        const struct issued *cert)
{
    Devid__V1__EnrollResponse eres = DEVID__V1__ENROLL_RESPONSE__INIT;
    STACK_OF(X509) *ca_chain = ca_get0_chain(s->ca);
    ProtobufCBinaryData chain_der[1 + CHAIN_MAX_DEPTH];
    uint8_t *chain_buf[1 + CHAIN_MAX_DEPTH] = {0};
    size_t i, n_chain = 0;
    int l, r = DEVID_ERR_INTERNAL;

    for (i = 0; i < (size_t)sk_X509_num(ca_chain) + 1 && i < 1 + CHAIN_MAX_DEPTH; i++) {
        X509 *x = i == 0 ? ca_get0_cert(s->ca) : sk_X509_value(ca_chain, (int)i - 1);

        if ((l = i2d_X509(x, &chain_buf[i])) <= 0) {
            r = DEVID_ERR_CRYPTO;
            goto out;
        }
        chain_der[i].data = chain_buf[i];
        chain_der[i].len = (size_t)l;
        n_chain++;
    }
    eres.certificate.data = cert->der;
    eres.certificate.len = cert->der_len;
    eres.chain = chain_der;
    eres.n_chain = n_chain;
    eres.serial = (char *)cert->serial;
    http_reply_packed(req, c, &eres.base);
    r = 0;
out:
    for (i = 0; i < n_chain; i++)
        OPENSSL_free(chain_buf[i]);
    return r;
}

/* One enrollment request on its way through handle_enroll. */
struct enrollment {
    struct worker *w;
    struct peer peer;
    Devid__V1__EnrollRequest *ereq;
    uint8_t request_sha256[32];
    /* The one clock read of this request: the checks, the certificate's
     * validity and the ledger record all use it. */
    time_t now;
    struct timespec start;
    /* What the ledger recorded with the nonce, if anything. */
    struct ledger_issuance stored;
    struct enroll_verdict verdict;
    struct issued cert;
    char why[512];
};

static int decode(struct enrollment *e, struct evhttp_request *req)
{
    const uint8_t *body = NULL;
    size_t len = 0;
    int r;

    if ((r = http_accept_request(req, &e->peer, e->w->s->cfg->max_body_enroll, &body, &len, e->why,
                                 sizeof(e->why))) != 0)
        return r;
    if ((e->ereq = devid__v1__enroll_request__unpack(NULL, len, body)) == NULL) {
        snprintf(e->why, sizeof(e->why), "body is not a devid.v1.EnrollRequest");
        return DEVID_ERR_BAD_REQUEST;
    }
    SHA256(body, len, e->request_sha256);
    return 0;
}

/* judge asks the ledger and TLS what the core needs, then calls the core
 * once. */
static int judge(struct enrollment *e)
{
    const struct enroll_config cfg = core_config(e->w);
    struct enroll_ledger_query query;
    struct enroll_ledger_facts facts;
    struct enroll_input in;
    uint8_t exporter[TRANSCRIPT_EXPORTER_LEN];
    int peeked, exported, r;

    peeked = enroll_peek(&query, &cfg, e->ereq, e->peer.cert, e->peer.chain, e->now) == 0;
    if ((r = issue_ask_ledger(e->w, &facts, &e->stored, peeked ? &query : NULL, e->request_sha256,
                              e->now, e->why, sizeof(e->why))) != 0)
        return r;
    exported = SSL_export_keying_material(e->peer.ssl, exporter, sizeof(exporter),
                                          TRANSCRIPT_EXPORTER_LABEL,
                                          strlen(TRANSCRIPT_EXPORTER_LABEL), NULL, 0, 0) == 1;
    in.req = e->ereq;
    in.client_cert = e->peer.cert;
    in.tls_chain = e->peer.chain;
    in.exporter = exported ? exporter : NULL;
    in.ledger = &facts;
    in.now = e->now;
    if ((r = enroll_decide(&e->verdict, &cfg, &in)) != 0)
        snprintf(e->why, sizeof(e->why), "%s", e->verdict.why);
    OPENSSL_cleanse(exporter, sizeof(exporter));
    return r;
}

/* act does what the verdict says: issue, or take the stored certificate. */
static int act(struct enrollment *e)
{
    switch (e->verdict.action) {
        case ENROLL_ISSUE:
            return issue_certificate(&e->cert, e->w, &e->verdict, e->peer.cert, e->request_sha256,
                                     e->now, e->why, sizeof(e->why));
        case ENROLL_RETURN_STORED:
            issue_take_stored(&e->cert, &e->stored);
            return 0;
        case ENROLL_REFUSE:
            break;
    }
    snprintf(e->why, sizeof(e->why), "no verdict");
    return DEVID_ERR_INTERNAL;
}

/* Logs the decision, counts it, and answers a refusal. */
static void finish(struct enrollment *e, struct evhttp_request *req, int r)
{
    const struct enroll_verdict *v = &e->verdict;
    int replayed = r == 0 && v->action == ENROLL_RETURN_STORED;
    double seconds = elapsed_s(&e->start);

    if (r == 0) {
        if (replayed)
            atomic_fetch_add_explicit(&e->w->metrics.enroll_replayed_ok, 1, memory_order_relaxed);
        log_info(
            "enroll result=%s peer=%s device_serial=\"%s\" model=\"%s\" manufacturer=\"%s\" "
            "cert_serial=%s signer=%s tls=%s duration_ms=%.1f",
            replayed ? "replayed" : "issued", conn_peer(e->peer.conn), v->id.serial, v->id.model,
            v->id.manufacturer, e->cert.serial,
            v->signer_kind == DEVID__V1__SIGNER_KIND__SIGNER_KIND_IAK ? "iak" : "idevid",
            SSL_get_version(e->peer.ssl), seconds * 1e3);
    } else {
        log_info(
            "enroll result=refused peer=%s client=\"%s\" device_serial=\"%s\" "
            "manufacturer=\"%s\" reason=\"%s\" duration_ms=%.1f why: %s",
            conn_peer(e->peer.conn), e->peer.subject, v->id.serial, v->id.manufacturer,
            devid_err_str(r), seconds * 1e3, e->why);
        http_reply_error(req, e->peer.conn, r, e->why);
    }
    if (!replayed)
        metrics_enroll_done(&e->w->metrics, r, seconds);
}

void handle_enroll(struct evhttp_request *req, void *arg)
{
    struct enrollment *e = calloc(1, sizeof(*e));
    int r;

    if (e == NULL) {
        http_reply_error(req, conn_get0(req), DEVID_ERR_ALLOC, "out of memory");
        return;
    }
    e->w = arg;
    clock_gettime(CLOCK_MONOTONIC, &e->start);
    e->now = time(NULL);
    snprintf(e->peer.subject, sizeof(e->peer.subject), "(none)");
    if ((r = decode(e, req)) == 0 && (r = judge(e)) == 0 && (r = act(e)) == 0)
        r = reply_issued(req, e->w->s, e->peer.conn, &e->cert);
    finish(e, req, r);
    issued_cleanup(&e->cert);
    ledger_issuance_cleanup(&e->stored);
    enroll_verdict_cleanup(&e->verdict);
    devid__v1__enroll_request__free_unpacked(e->ereq, NULL);
    free(e);
}

void handle_crl(struct evhttp_request *req, void *arg)
{
    struct worker *w = arg;
    struct crl_blob *crl;

    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        conn_answered(conn_get0(req));
        evhttp_send_error(req, 405, "GET only");
        return;
    }
    /* Built in the background (crlcache.c): a request never writes to the
     * ledger or signs. */
    if ((crl = crlcache_get1(w->s->crl)) == NULL) {
        conn_answered(conn_get0(req));
        evhttp_send_error(req, 503, "CRL unavailable");
        return;
    }
    http_reply_body(req, conn_get0(req), 200, crl->der, crl->len, "application/pkix-crl");
    crl_blob_free(crl);
}

void handle_other(struct evhttp_request *req, void *arg)
{
    struct peer peer;
    char why[256];

    http_get_peer(req, &peer, why, sizeof(why));
    snprintf(why, sizeof(why), "no such endpoint: %s", evhttp_request_get_uri(req));
    http_reply_error(req, peer.conn, DEVID_ERR_NOT_FOUND, why);
}

void handle_healthz(struct evhttp_request *req, void *arg)
{
    http_reply_body(req, NULL, 200, "ok\n", 3, "text/plain");
}

void handle_metrics(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    struct crl_blob *crl;
    struct metrics *all[SERVER_MAX_WORKERS];
    struct metrics_gauges g = {0};
    char *text = malloc(METRICS_TEXT_MAX);
    long n = -1;
    int i;

    for (i = 0; i < s->nworkers; i++)
        all[i] = &s->workers[i].metrics;
    g.connections_open = atomic_load(&s->conns_open);
    g.handshakes_in_flight = atomic_load(&s->handshakes);
    g.requests_in_flight = atomic_load(&s->requests);
    g.workers = s->nworkers;
    g.reloads_ok = atomic_load(&s->reloads_ok);
    g.reloads_failed = atomic_load(&s->reloads_failed);
    g.proxy_refusals = atomic_load(&s->proxy_refusals);
    if ((crl = crlcache_get1(s->crl)) != NULL)
        g.crl_number = (int64_t)crl->number;
    crl_blob_free(crl);
    g.crl_build_failures = crlcache_failures(s->crl);
    if (text == NULL ||
        (n = metrics_render(text, METRICS_TEXT_MAX, all, (size_t)s->nworkers, &g)) < 0)
        evhttp_send_error(req, 500, "metrics unavailable");
    else
        http_reply_body(req, NULL, 200, text, (size_t)n, "text/plain; version=0.0.4");
    free(text);
}
