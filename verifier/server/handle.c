#include "verifier/server/handle.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "common/err.h"
#include "common/io/log.h"
#include "common/transcript.h"
#include "devid/v1/enroll.pb-c.h"
#include "verifier/core/assurance.h"
#include "verifier/core/challenge.h"
#include "verifier/core/enroll.h"
#include "verifier/core/metrics.h"
#include "verifier/core/profile.h"
#include "verifier/core/tlog.h"
#include "verifier/pki/signer.h"
#include "verifier/server/crlcache.h"
#include "verifier/server/logcache.h"
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

/* The core's configuration: the worker's snapshot, trust and token keys
 * from one load. */
static struct enroll_config core_config(const struct worker *w)
{
    const struct server_trust *t = &w->snap->trust;
    struct enroll_config cfg = {t->store, t->policy, t->token_key,
                                t->has_token_accept_key ? t->token_accept_key : NULL, t->ek_store};

    return cfg;
}

/* Logs the decision on a challenge: answered (debug) or refused (info). */
static void log_challenge(const struct peer *peer, const Devid__V1__ChallengeRequest *creq,
                          const struct challenge_verdict *v, int r, const char *why)
{
    const struct log_field f[] = {
        LOG_WORD("result", r == 0 ? "answered" : "refused"),
        LOG_WORD("peer", conn_peer(peer->conn)),
        LOG_TEXT("device_serial", v->id.serial),
        LOG_TEXT("model", v->id.model),
        LOG_TEXT("manufacturer", v->id.manufacturer),
        LOG_TEXT("client", peer->subject),
        LOG_TEXT("agent_version", creq != NULL ? creq->agent_version : ""),
        LOG_WORD("tls", peer->ssl != NULL ? SSL_get_version(peer->ssl) : "none"),
        LOG_TEXT("tpm_vendor", v->tpm_vendor),
        LOG_TEXT("reason", r == 0 ? "" : devid_err_str(r)),
        LOG_TEXT("why", r == 0 ? "" : why),
    };

    size_t n = sizeof(f) / sizeof(f[0]);

    /* An answered challenge has no reason and no why: the last two fields. */
    log_event(r == 0 ? LOG_DEBUG : LOG_INFO, "challenge", f, r == 0 ? n - 2 : n);
}

void handle_challenge(struct evhttp_request *req, void *arg)
{
    struct worker *w = arg;
    const struct enroll_config cfg = core_config(w);
    Devid__V1__ChallengeRequest *creq = NULL;
    Devid__V1__ChallengeResponse cres = DEVID__V1__CHALLENGE_RESPONSE__INIT;
    struct challenge_verdict v;
    struct challenge_input in;
    struct peer peer;
    uint8_t nonce[TOKEN_NONCE_LEN];
    uint32_t quote_pcrs[QUOTE_PCR_COUNT];
    const uint8_t *body = NULL;
    char why[512] = "";
    unsigned i;
    size_t len = 0;
    int r;

    memset(&v, 0, sizeof(v));
    if ((r = http_accept_request(req, &peer, w->s->cfg->max_body_challenge, &body, &len, why,
                                 sizeof(why))) != 0)
        goto out;
    if ((creq = devid__v1__challenge_request__unpack(NULL, len, body)) == NULL) {
        snprintf(why, sizeof(why), "body is not a devid.v1.ChallengeRequest");
        r = DEVID_ERR_BAD_REQUEST;
        goto out;
    }
    if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
        snprintf(why, sizeof(why), "random generator failed");
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    in = (struct challenge_input){creq, peer.tls, nonce, time(NULL), w->s->cfg->token_ttl_seconds};
    if ((r = challenge_decide(&v, &cfg, &in)) != 0) {
        snprintf(why, sizeof(why), "%s", v.why);
        goto out;
    }
    cres.nonce = (ProtobufCBinaryData){sizeof(nonce), nonce};
    cres.token = (ProtobufCBinaryData){sizeof(v.token), v.token};
    cres.expires_at = v.expires_at;
    for (i = 0; i < QUOTE_PCR_COUNT; i++) {
        if ((v.quote_pcrs & (1u << i)) != 0)
            quote_pcrs[cres.n_quote_pcrs++] = i;
    }
    cres.quote_pcrs = cres.n_quote_pcrs > 0 ? quote_pcrs : NULL;
    if (v.has_credential) {
        cres.credential_blob =
            (ProtobufCBinaryData){v.credential.id_object_len, v.credential.id_object};
        cres.encrypted_secret = (ProtobufCBinaryData){v.credential.secret_len, v.credential.secret};
    }
    if (v.has_ak_credential) {
        cres.ak_credential_blob =
            (ProtobufCBinaryData){v.ak_credential.id_object_len, v.ak_credential.id_object};
        cres.ak_encrypted_secret =
            (ProtobufCBinaryData){v.ak_credential.secret_len, v.ak_credential.secret};
    }
    http_reply_packed(req, peer.conn, &cres.base);
out:
    log_challenge(&peer, creq, &v, r, why);
    if (r != 0)
        http_reply_error(req, peer.conn, r, why);
    metrics_challenge_done(&w->metrics, r);
    http_peer_cleanup(&peer);
    OPENSSL_cleanse(nonce, sizeof(nonce));
    OPENSSL_cleanse(&v, sizeof(v));
    devid__v1__challenge_request__free_unpacked(creq, NULL);
}

/* Answers an EnrollResponse carrying |cert| and the CA chain below the
 * root. */
static int reply_issued(struct evhttp_request *req, struct server *s, struct conn *c,
                        const struct issued *cert)
{
    Devid__V1__EnrollResponse eres = DEVID__V1__ENROLL_RESPONSE__INIT;
    ProtobufCBinaryData chain_der[1 + CHAIN_MAX_DEPTH];
    uint8_t *chain_buf[1 + CHAIN_MAX_DEPTH] = {0};
    STACK_OF(X509) *chain = NULL;
    size_t i, n_chain = 0;
    int l, r;

    if ((r = profile_response_chain(&chain, ca_get0_cert(s->ca), ca_get0_chain(s->ca))) != 0)
        goto out;
    for (i = 0; i < (size_t)sk_X509_num(chain) && i < 1 + CHAIN_MAX_DEPTH; i++) {
        if ((l = i2d_X509(sk_X509_value(chain, (int)i), &chain_buf[i])) <= 0) {
            r = DEVID_ERR_CRYPTO;
            goto out;
        }
        chain_der[i].data = chain_buf[i];
        chain_der[i].len = (size_t)l;
        n_chain++;
    }
    eres.certificate.data = cert->der;
    eres.certificate.len = cert->der_len;
    eres.chain = n_chain > 0 ? chain_der : NULL;
    eres.n_chain = n_chain;
    eres.serial = (char *)cert->serial;
    http_reply_packed(req, c, &eres.base);
    r = 0;
out:
    for (i = 0; i < n_chain; i++)
        OPENSSL_free(chain_buf[i]);
    sk_X509_pop_free(chain, X509_free);
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

/* judge asks the ledger what the core needs, then calls the core once with
 * the TLS facts of the connection. */
static int judge(struct enrollment *e)
{
    const struct enroll_config cfg = core_config(e->w);
    struct enroll_ledger_query query;
    struct enroll_ledger_facts facts;
    struct enroll_input in;
    int peeked, r;

    peeked = enroll_peek(&query, &cfg, e->ereq, &e->peer.tls, e->now) == 0;
    if ((r = issue_ask_ledger(e->w, &facts, &e->stored, peeked ? &query : NULL, e->request_sha256,
                              e->now, e->why, sizeof(e->why))) != 0)
        return r;
    in.req = e->ereq;
    in.tls = e->peer.tls;
    in.ledger = &facts;
    in.now = e->now;
    if ((r = enroll_decide(&e->verdict, &cfg, &in)) != 0)
        snprintf(e->why, sizeof(e->why), "%s", e->verdict.why);
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

/* The log's word for Devid__V1__SignerKind |kind|. */
static const char *signer_name(int kind)
{
    switch (kind) {
        case DEVID__V1__SIGNER_KIND__SIGNER_KIND_IAK:
            return "iak";
        case DEVID__V1__SIGNER_KIND__SIGNER_KIND_IDEVID:
            return "idevid";
        default:
            return "unknown";
    }
}

/* Logs the decision, counts it, and answers a refusal. */
static void finish(struct enrollment *e, struct evhttp_request *req, int r)
{
    const struct enroll_verdict *v = &e->verdict;
    int replayed = r == 0 && v->action == ENROLL_RETURN_STORED;
    double seconds = elapsed_s(&e->start);
    char ms[32], pcrs[QUOTE_PCRS_STR_LEN];

    snprintf(ms, sizeof(ms), "%.1f", seconds * 1e3);
    quote_pcrs_str(pcrs, sizeof(pcrs), v->pcrs, v->n_pcrs);
    if (r == 0) {
        const struct log_field f[] = {
            LOG_WORD("result", replayed ? "replayed" : "issued"),
            LOG_WORD("peer", conn_peer(e->peer.conn)),
            LOG_TEXT("device_serial", v->id.serial),
            LOG_TEXT("model", v->id.model),
            LOG_TEXT("manufacturer", v->id.manufacturer),
            LOG_WORD("cert_serial", e->cert.serial),
            LOG_WORD("signer", signer_name(replayed ? e->stored.signer_kind : v->signer_kind)),
            LOG_WORD("assurance", assurance_str(v->assurance)),
            LOG_WORD("tls", SSL_get_version(e->peer.ssl)),
            LOG_WORD("duration_ms", ms),
            LOG_TEXT("pcrs", pcrs),
        };
        size_t n = sizeof(f) / sizeof(f[0]);

        if (replayed)
            atomic_fetch_add_explicit(&e->w->metrics.enroll_replayed_ok, 1, memory_order_relaxed);
        /* The quoted PCR values, the last field, only when a quote was asked for. */
        log_event(LOG_INFO, "enroll", f, pcrs[0] != '\0' ? n : n - 1);
    } else {
        const struct log_field f[] = {
            LOG_WORD("result", "refused"),
            LOG_WORD("peer", conn_peer(e->peer.conn)),
            LOG_TEXT("client", e->peer.subject),
            LOG_TEXT("device_serial", v->id.serial),
            LOG_TEXT("manufacturer", v->id.manufacturer),
            LOG_WORD("assurance", v->assurance_known ? assurance_str(v->assurance) : "unknown"),
            LOG_TEXT("reason", devid_err_str(r)),
            LOG_WORD("duration_ms", ms),
            LOG_TEXT("why", e->why),
        };

        log_event(LOG_INFO, "enroll", f, sizeof(f) / sizeof(f[0]));
        http_reply_error(req, e->peer.conn, r, e->why);
    }
    if (!replayed)
        metrics_enroll_done(&e->w->metrics, r, seconds);
    metrics_token_opened(&e->w->metrics, v->token_key);
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
    http_peer_cleanup(&e->peer);
    issued_cleanup(&e->cert);
    ledger_issuance_cleanup(&e->stored);
    enroll_verdict_cleanup(&e->verdict);
    devid__v1__enroll_request__free_unpacked(e->ereq, NULL);
    free(e);
}

void handle_crl(struct evhttp_request *req, void *arg)
{
    struct worker *w = arg;
    struct conn *c = conn_get0(req);
    struct crl_blob *crl;

    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        http_reply_status(req, c, DEVID_ERR_BAD_REQUEST, 405, "GET",
                          "this resource takes GET only");
        return;
    }
    /* Built in the background (crlcache.c): a request never writes to the
     * ledger or signs. */
    if ((crl = crlcache_get1(w->s->crl)) == NULL) {
        http_reply_error(req, c, DEVID_ERR_LEDGER,
                         "no CRL has been built from the ledger yet; retry");
        return;
    }
    http_reply_body(req, c, 200, crl->der, crl->len, "application/pkix-crl");
    crl_blob_free(crl);
}

void handle_log_head(struct evhttp_request *req, void *arg)
{
    struct worker *w = arg;
    struct conn *c = conn_get0(req);
    uint8_t head[TLOG_SIGNED_HEAD_MAX];
    size_t len = 0;

    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        http_reply_status(req, c, DEVID_ERR_BAD_REQUEST, 405, "GET",
                          "this resource takes GET only");
        return;
    }
    /* Signed in the background (logcache.c). */
    if (logcache_head(w->s->log, head, &len, sizeof(head)) != 0) {
        if (!logcache_signing(w->s->log))
            http_reply_status(req, c, DEVID_ERR_NOT_FOUND, 404, NULL,
                              "this verifier has no [log] key: it signs no tree heads");
        else
            http_reply_error(req, c, DEVID_ERR_LEDGER, "no tree head has been signed yet; retry");
        return;
    }
    http_reply_body(req, c, 200, head, len, "application/octet-stream");
}

void handle_other(struct evhttp_request *req, void *arg)
{
    http_reply_status(req, conn_get0(req), DEVID_ERR_NOT_FOUND, 404, NULL, "no such resource");
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
    g.token_key_id = s->token_key_id;
    g.token_accept_key_id = s->token_accept_key_id;
    if ((crl = crlcache_get1(s->crl)) != NULL)
        g.crl_number = (int64_t)crl->number;
    crl_blob_free(crl);
    g.crl_build_failures = crlcache_failures(s->crl);
    g.log_entries = logcache_size(s->log);
    (void)logcache_head_info(s->log, &g.log_head_size, &g.log_head_timestamp);
    g.log_failures = logcache_failures(s->log);
    g.log_stopped = logcache_stopped(s->log);
    signer_answers(s->hooks->signer, g.signer);
    if (text == NULL ||
        (n = metrics_render(text, METRICS_TEXT_MAX, all, (size_t)s->nworkers, &g)) < 0)
        evhttp_send_error(req, 500, "metrics unavailable");
    else
        http_reply_body(req, NULL, 200, text, (size_t)n, "text/plain; version=0.0.4");
    free(text);
}
