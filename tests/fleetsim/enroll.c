/* The steps of one enrollment (sim.h): a connection, its challenge, the
 * evidence and the enroll request, retries, and what the answers mean. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "devid/v1/enroll.pb-c.h"
#include "evidence.h"
#include "factory.h"
#include "sim.h"

#define PROG "devid-fleetsim"
/* Longest Retry-After honoured, and the backoff when none is given. */
#define RETRY_AFTER_CAP_S 30UL
#define BACKOFF_BASE_MS 200UL
#define BACKOFF_CAP_MS 5000UL

void enrollment_cleanup(struct enrollment *e)
{
    free(e->body);
    free(e->cert);
    memset(e, 0, sizeof(*e));
}

double sim_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(unsigned long ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void set_outcome(struct outcome *o, const char *reason, bool retryable, const char *msg)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->reason, sizeof(o->reason), "%s", reason);
    snprintf(o->message, sizeof(o->message), "%s", msg);
    o->retryable = retryable;
}

static bool transport_retryable(const char *what)
{
    return strcmp(what, "connect") == 0 || strcmp(what, "timeout") == 0 ||
           strcmp(what, "closed") == 0 || strcmp(what, "conn-changed") == 0 ||
           strcmp(what, "tls-handshake") == 0;
}

/* refusal decodes a non-2xx answer into |o|: the Error's reason name, or
 * "http-<status>" when the body is not a devid.v1.Error. */
static void refusal(struct outcome *o, const struct conn_reply *rep)
{
    Devid__V1__Error *err = NULL;
    const ProtobufCEnumValue *v;
    char name[STATS_NAME_MAX];

    memset(o, 0, sizeof(*o));
    if (rep->body_len > 0)
        err = devid__v1__error__unpack(NULL, rep->body_len, rep->body);
    if (err == NULL) {
        snprintf(o->reason, sizeof(o->reason), "http-%ld", rep->status);
        snprintf(o->message, sizeof(o->message), "HTTP %ld without a devid.v1.Error body",
                 rep->status);
        o->retryable = rep->status == 503;
    } else {
        v = protobuf_c_enum_descriptor_get_value(&devid__v1__reason__descriptor, (int)err->reason);
        if (v != NULL)
            snprintf(name, sizeof(name), "%s", v->name);
        else
            snprintf(name, sizeof(name), "REASON_%d", (int)err->reason);
        snprintf(o->reason, sizeof(o->reason), "%s", name);
        snprintf(o->message, sizeof(o->message), "HTTP %ld: %s", rep->status,
                 err->message != NULL ? err->message : "");
        o->retryable = err->retryable || rep->status == 503;
        if (err->retry_after_seconds > 0) {
            o->have_retry_after = true;
            o->retry_after = err->retry_after_seconds;
        }
    }
    if (rep->have_retry_after) {
        o->have_retry_after = true;
        o->retry_after = rep->retry_after;
    }
    devid__v1__error__free_unpacked(err, NULL);
}

/* post sends one request and sorts the answer: 0 for HTTP 200 (|rep| holds
 * the body) or a drop, else a DEVID_ERR_* code with |o| saying why. */
static int post(struct sim *sim, struct conn *c, struct conn_reply *rep, struct outcome *o,
                const char *path, const uint8_t *body, size_t len, bool drop)
{
    int r;

    if ((r = conn_post(c, rep, path, body, len, drop)) != 0) {
        set_outcome(o, rep->what, transport_retryable(rep->what), rep->detail);
        stats_count(sim->stats, STATS_ATTEMPT_ERROR, o->reason);
        return r;
    }
    if (rep->dropped)
        return 0;
    stats_http(sim->stats, rep->status, rep->have_retry_after, rep->retry_after);
    if (rep->status != 200) {
        refusal(o, rep);
        stats_count(sim->stats, STATS_ATTEMPT_ERROR, o->reason);
        return DEVID_ERR_REFUSED;
    }
    return 0;
}

int sim_local_failure(struct sim *sim, struct outcome *o, const char *what, int r)
{
    char msg[160];

    snprintf(msg, sizeof(msg), "%s: %s", what, devid_err_str(r));
    set_outcome(o, "local", false, msg);
    stats_count(sim->stats, STATS_ATTEMPT_ERROR, o->reason);
    return r;
}

static int bad_response(struct sim *sim, struct outcome *o, const char *what)
{
    set_outcome(o, "bad-response", false, what);
    stats_count(sim->stats, STATS_ATTEMPT_ERROR, o->reason);
    return DEVID_ERR_PROTOCOL;
}

/* challenge POSTs a ChallengeRequest on |c| and copies the nonce and token
 * into |e| (when not NULL). */
static int challenge(struct sim *sim, struct conn *c, struct outcome *o, struct enrollment *e)
{
    Devid__V1__ChallengeRequest creq = DEVID__V1__CHALLENGE_REQUEST__INIT;
    Devid__V1__ChallengeResponse *cres = NULL;
    ProtobufCBinaryData inter;
    struct conn_reply rep = {0};
    uint8_t buf[4096];
    size_t len;
    int r;

    creq.protocol_version = 1;
    creq.agent_version = (char *)PROG "/" DEVID_VERSION;
    /* As the agent does: the intermediates in both requests. */
    inter.data = (uint8_t *)factory_get0_intermediate_der(sim->factory, &inter.len);
    creq.intermediates = &inter;
    creq.n_intermediates = 1;
    len = devid__v1__challenge_request__get_packed_size(&creq);
    if (len > sizeof(buf))
        return sim_local_failure(sim, o, "ChallengeRequest", DEVID_ERR_TOO_LARGE);
    devid__v1__challenge_request__pack(&creq, buf);
    if ((r = post(sim, c, &rep, o, "/v1/challenge", buf, len, false)) != 0)
        goto out;
    if ((cres = devid__v1__challenge_response__unpack(NULL, rep.body_len, rep.body)) == NULL ||
        cres->nonce.len != SIM_NONCE_LEN || cres->token.len == 0 ||
        cres->token.len > SIM_TOKEN_MAX) {
        r = bad_response(sim, o, "answer to /v1/challenge is not a valid ChallengeResponse");
        goto out;
    }
    if (e != NULL) {
        memcpy(e->nonce, cres->nonce.data, SIM_NONCE_LEN);
        memcpy(e->token, cres->token.data, cres->token.len);
        e->token_len = cres->token.len;
    }
    r = 0;
out:
    devid__v1__challenge_response__free_unpacked(cres, NULL);
    conn_reply_cleanup(&rep);
    return r;
}

/* take_certificate checks an EnrollResponse (its certificate is for |ldevid|
 * when not NULL) and keeps the certificate and serial in |e|. */
static int take_certificate(struct sim *sim, struct outcome *o, struct enrollment *e,
                            const struct conn_reply *rep, EVP_PKEY *ldevid)
{
    Devid__V1__EnrollResponse *eres = NULL;
    const uint8_t *p;
    X509 *x = NULL;
    int r;

    if ((eres = devid__v1__enroll_response__unpack(NULL, rep->body_len, rep->body)) == NULL ||
        eres->certificate.len == 0 || eres->serial == NULL || eres->serial[0] == '\0') {
        r = bad_response(sim, o, "answer to /v1/enroll is not a valid EnrollResponse");
        goto out;
    }
    p = eres->certificate.data;
    if ((x = d2i_X509(NULL, &p, (long)eres->certificate.len)) == NULL ||
        p != eres->certificate.data + eres->certificate.len) {
        r = bad_response(sim, o, "EnrollResponse.certificate is not one DER certificate");
        goto out;
    }
    if (ldevid != NULL && EVP_PKEY_eq(X509_get0_pubkey(x), ldevid) != 1) {
        r = bad_response(sim, o, "the issued certificate is not for the LDevID key in the CSR");
        goto out;
    }
    if ((e->cert = malloc(eres->certificate.len)) == NULL) {
        r = sim_local_failure(sim, o, "certificate", DEVID_ERR_ALLOC);
        goto out;
    }
    memcpy(e->cert, eres->certificate.data, eres->certificate.len);
    e->cert_len = eres->certificate.len;
    snprintf(e->serial, sizeof(e->serial), "%s", eres->serial);
    r = 0;
out:
    X509_free(x);
    devid__v1__enroll_response__free_unpacked(eres, NULL);
    return r;
}

int sim_open(struct sim *sim, const struct conn_config *cc, struct device *dev, struct conn **c,
             struct outcome *o, struct enrollment *e, bool keep_challenge,
             uint8_t exporter[TRANSCRIPT_EXPORTER_LEN])
{
    int r;

    if ((r = conn_new(c, cc, dev->cert, factory_get0_intermediate(sim->factory), dev->key)) != 0)
        return sim_local_failure(sim, o, "libcurl handle", r);
    if ((r = challenge(sim, *c, o, keep_challenge ? e : NULL)) != 0)
        return r;
    if ((r = conn_exporter(*c, exporter)) != 0) {
        set_outcome(o, "tls", false, "no tls-exporter value on the connection");
        stats_count(sim->stats, STATS_ATTEMPT_ERROR, o->reason);
    }
    return r;
}

int sim_enroll(struct sim *sim, struct conn *c, struct device *dev, struct outcome *o,
               struct enrollment *e, bool drop, const uint8_t exporter[TRANSCRIPT_EXPORTER_LEN])
{
    struct conn_reply rep = {0};
    EVP_PKEY *ldevid = NULL;
    int r;

    free(e->body);
    e->body = NULL;
    if ((r = evidence_enroll_request(&e->body, &e->body_len, &ldevid, dev, sim->factory, e->nonce,
                                     SIM_NONCE_LEN, e->token, e->token_len, exporter)) != 0) {
        sim_local_failure(sim, o, "building the evidence", r);
        goto out;
    }
    if ((r = post(sim, c, &rep, o, "/v1/enroll", e->body, e->body_len, drop)) != 0)
        goto out;
    if (rep.dropped) {
        e->dropped = true;
        goto out;
    }
    r = take_certificate(sim, o, e, &rep, ldevid);
out:
    EVP_PKEY_free(ldevid);
    conn_reply_cleanup(&rep);
    return r;
}

/*
 * enroll_attempt runs one enrollment of |dev| on a new connection to |cc|:
 * challenge, evidence, enroll. With |drop| the enroll answer is not read
 * (e->dropped). With |replay| (replay-token), the challenge's answer is
 * ignored and the nonce and token already in |e| are used with fresh
 * evidence.
 */
static int enroll_attempt(struct sim *sim, const struct conn_config *cc, struct device *dev,
                          struct outcome *o, struct enrollment *e, bool drop, bool replay)
{
    struct conn *c = NULL;
    uint8_t exporter[TRANSCRIPT_EXPORTER_LEN];
    int r;

    if ((r = sim_open(sim, cc, dev, &c, o, e, !replay, exporter)) == 0)
        r = sim_enroll(sim, c, dev, o, e, drop, exporter);
    OPENSSL_cleanse(exporter, sizeof(exporter));
    conn_free(c);
    return r;
}

int sim_replay_token(struct sim *sim, struct device *dev, struct outcome *o, struct enrollment *e)
{
    return enroll_attempt(sim, &sim->conn2, dev, o, e, false, true);
}

static unsigned long backoff_ms(const struct outcome *o, unsigned long attempt)
{
    unsigned long ms = BACKOFF_BASE_MS, jitter = 0;
    uint8_t rnd[2] = {0, 0};

    if (o->have_retry_after && o->retry_after > 0)
        return (o->retry_after < RETRY_AFTER_CAP_S ? o->retry_after : RETRY_AFTER_CAP_S) * 1000UL;
    while (attempt-- > 0 && ms < BACKOFF_CAP_MS)
        ms *= 2;
    if (ms > BACKOFF_CAP_MS)
        ms = BACKOFF_CAP_MS;
    if (RAND_bytes(rnd, sizeof(rnd)) == 1)
        jitter = ((unsigned long)rnd[0] << 8 | rnd[1]) % (ms / 2 + 1);
    return ms + jitter;
}

int sim_enroll_device(struct sim *sim, const struct conn_config *cc, struct device *dev,
                      struct outcome *o, struct enrollment *e, bool drop)
{
    unsigned long attempt;
    int r = DEVID_ERR_INTERNAL;

    for (attempt = 0;; attempt++) {
        if ((r = enroll_attempt(sim, cc, dev, o, e, drop, false)) == 0)
            return 0;
        if (!o->retryable || attempt >= sim->retries)
            return r;
        stats_retry(sim->stats);
        sleep_ms(backoff_ms(o, attempt));
    }
}

int sim_send_body(struct sim *sim, const struct conn_config *cc, struct device *dev,
                  const uint8_t *body, size_t len, struct outcome *o, struct enrollment *e)
{
    struct conn *c = NULL;
    struct conn_reply rep = {0};
    int r;

    if ((r = conn_new(&c, cc, dev->cert, factory_get0_intermediate(sim->factory), dev->key)) != 0)
        return sim_local_failure(sim, o, "libcurl handle", r);
    if ((r = post(sim, c, &rep, o, "/v1/enroll", body, len, false)) == 0)
        r = take_certificate(sim, o, e, &rep, NULL);
    conn_reply_cleanup(&rep);
    conn_free(c);
    return r;
}

void sim_write_serial(struct sim *sim, const char *serial)
{
    if (sim->out == NULL)
        return;
    pthread_mutex_lock(&sim->out_mu);
    if (fprintf(sim->out, "%s\n", serial) < 0)
        sim->out_failed = true;
    pthread_mutex_unlock(&sim->out_mu);
}

void sim_report_failure(struct sim *sim, const char *serial, const char *what,
                        const struct outcome *o)
{
    if (stats_detail(sim->stats))
        fprintf(stderr, "%s: device %s: %s: %s: %s\n", PROG, serial, what, o->reason, o->message);
}
