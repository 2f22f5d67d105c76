/* devid-fleetsim: many simulated devices enrolling at once against a
 * devid-verifier. Each device has its own software IDevID issued by a
 * devid-factory CA and builds TPM-format evidence in software, so the
 * verifier cannot tell it from a TPM. See README.md next to this file. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "conn.h"
#include "devid/v1/enroll.pb-c.h"
#include "evidence.h"
#include "factory.h"
#include "stats.h"

#define PROG "devid-fleetsim"
#define EX_USAGE 64
#define MAX_DEVICES 1000000UL
#define MAX_PARALLEL 1024UL
#define MAX_RETRIES 100UL
#define MAX_TIMEOUT 600UL
/* Longest Retry-After honoured, and the backoff when none is given. */
#define RETRY_AFTER_CAP_S 30UL
#define BACKOFF_BASE_MS 200UL
#define BACKOFF_CAP_MS 5000UL
#define TOKEN_MAX 512
#define NONCE_LEN 32
#define SERIAL_HEX_MAX 80

enum mode { MODE_NORMAL, MODE_REPLAY_TOKEN, MODE_REPLAY_BODY, MODE_DROP_RESPONSE };

static const char *const mode_names[] = {"normal", "replay-token", "replay-body", "drop-response"};

struct sim {
    struct conn_config conn;
    const char *prefix;
    const char *model;
    unsigned long devices;
    unsigned long parallel;
    unsigned long retries;
    enum mode mode;
    struct factory *factory;
    struct stats *stats;
    FILE *out;
    const char *out_path;
    pthread_mutex_t out_mu;
    bool out_failed;
    atomic_ulong next;
};

/* Why one request or attempt failed. */
struct outcome {
    char reason[STATS_NAME_MAX]; /* REASON_* name or transport class */
    char message[320];
    bool retryable;
    bool have_retry_after;
    unsigned long retry_after;
};

/* What one enrollment sent and received. */
struct enrollment {
    uint8_t *body; /* the EnrollRequest as sent */
    size_t body_len;
    uint8_t nonce[NONCE_LEN];
    uint8_t token[TOKEN_MAX];
    size_t token_len;
    uint8_t *cert; /* DER, when issued */
    size_t cert_len;
    char serial[SERIAL_HEX_MAX];
    bool dropped;
};

static void enrollment_cleanup(struct enrollment *e)
{
    free(e->body);
    free(e->cert);
    memset(e, 0, sizeof(*e));
}

static double now_ms(void)
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
           strcmp(what, "closed") == 0 || strcmp(what, "conn-changed") == 0;
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

static int local_failure(struct sim *sim, struct outcome *o, const char *what, int r)
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
    struct conn_reply rep = {0};
    uint8_t buf[64];
    size_t len;
    int r;

    creq.protocol_version = 1;
    creq.agent_version = (char *)PROG "/" DEVID_VERSION;
    len = devid__v1__challenge_request__get_packed_size(&creq);
    if (len > sizeof(buf))
        return local_failure(sim, o, "ChallengeRequest", DEVID_ERR_TOO_LARGE);
    devid__v1__challenge_request__pack(&creq, buf);
    if ((r = post(sim, c, &rep, o, "/v1/challenge", buf, len, false)) != 0)
        goto out;
    if ((cres = devid__v1__challenge_response__unpack(NULL, rep.body_len, rep.body)) == NULL ||
        cres->nonce.len != NONCE_LEN || cres->token.len == 0 || cres->token.len > TOKEN_MAX) {
        r = bad_response(sim, o, "answer to /v1/challenge is not a valid ChallengeResponse");
        goto out;
    }
    if (e != NULL) {
        memcpy(e->nonce, cres->nonce.data, NONCE_LEN);
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
        r = local_failure(sim, o, "certificate", DEVID_ERR_ALLOC);
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

/*
 * enroll_attempt runs one enrollment of |dev| on a new connection: challenge,
 * evidence, enroll. With |drop| the enroll answer is not read (e->dropped).
 * With |replay| (replay-token), the challenge's answer is ignored and the
 * nonce and token already in |e| are used with fresh evidence.
 */
static int enroll_attempt(struct sim *sim, struct device *dev, struct outcome *o,
                          struct enrollment *e, bool drop, bool replay)
{
    struct conn *c = NULL;
    struct conn_reply rep = {0};
    EVP_PKEY *ldevid = NULL;
    uint8_t exporter[TRANSCRIPT_EXPORTER_LEN];
    int r;

    if ((r = conn_new(&c, &sim->conn, dev->cert, factory_get0_intermediate(sim->factory),
                      dev->key)) != 0)
        return local_failure(sim, o, "libcurl handle", r);
    if ((r = challenge(sim, c, o, replay ? NULL : e)) != 0)
        goto out;
    if ((r = conn_exporter(c, exporter)) != 0) {
        set_outcome(o, "tls", false, "no tls-exporter value on the connection");
        stats_count(sim->stats, STATS_ATTEMPT_ERROR, o->reason);
        goto out;
    }
    free(e->body);
    e->body = NULL;
    if ((r = evidence_enroll_request(&e->body, &e->body_len, &ldevid, dev, sim->factory, e->nonce,
                                     NONCE_LEN, e->token, e->token_len, exporter)) != 0) {
        local_failure(sim, o, "building the evidence", r);
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
    OPENSSL_cleanse(exporter, sizeof(exporter));
    EVP_PKEY_free(ldevid);
    conn_reply_cleanup(&rep);
    conn_free(c);
    return r;
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

/* enroll_device enrolls |dev|, retrying what is retryable up to --retries
 * times, each time from the challenge on a new connection. */
static int enroll_device(struct sim *sim, struct device *dev, struct outcome *o,
                         struct enrollment *e, bool drop)
{
    unsigned long attempt;
    int r = DEVID_ERR_INTERNAL;

    for (attempt = 0;; attempt++) {
        if ((r = enroll_attempt(sim, dev, o, e, drop, false)) == 0)
            return 0;
        if (!o->retryable || attempt >= sim->retries)
            return r;
        stats_retry(sim->stats);
        sleep_ms(backoff_ms(o, attempt));
    }
}

/* send_body POSTs |body| to /v1/enroll as the first request on a new
 * connection of |dev|; |e| receives the certificate when one is issued. */
static int send_body(struct sim *sim, struct device *dev, const uint8_t *body, size_t len,
                     struct outcome *o, struct enrollment *e)
{
    struct conn *c = NULL;
    struct conn_reply rep = {0};
    int r;

    if ((r = conn_new(&c, &sim->conn, dev->cert, factory_get0_intermediate(sim->factory),
                      dev->key)) != 0)
        return local_failure(sim, o, "libcurl handle", r);
    if ((r = post(sim, c, &rep, o, "/v1/enroll", body, len, false)) == 0)
        r = take_certificate(sim, o, e, &rep, NULL);
    conn_reply_cleanup(&rep);
    conn_free(c);
    return r;
}

static void write_serial(struct sim *sim, const char *serial)
{
    if (sim->out == NULL)
        return;
    pthread_mutex_lock(&sim->out_mu);
    if (fprintf(sim->out, "%s\n", serial) < 0)
        sim->out_failed = true;
    pthread_mutex_unlock(&sim->out_mu);
}

static void report_failure(struct sim *sim, const char *serial, const char *what,
                           const struct outcome *o)
{
    if (stats_detail(sim->stats))
        fprintf(stderr, "%s: device %s: %s: %s: %s\n", PROG, serial, what, o->reason, o->message);
}

static void device_serial(char *out, size_t out_len, const struct sim *sim, unsigned long n)
{
    snprintf(out, out_len, "%s-%lu", sim->prefix, n);
}

/* replay runs the replay of |mode| after |dev| enrolled with |e|. */
static void replay(struct sim *sim, unsigned long idx, struct device *dev, struct enrollment *e)
{
    struct enrollment again = {0};
    struct outcome o = {0};
    struct device *other = NULL;
    char serial[FACTORY_SERIAL_MAX + 1];
    int r;

    if (sim->mode == MODE_REPLAY_TOKEN) {
        memcpy(again.nonce, e->nonce, NONCE_LEN);
        memcpy(again.token, e->token, e->token_len);
        again.token_len = e->token_len;
        r = enroll_attempt(sim, dev, &o, &again, false, true);
    } else {
        device_serial(serial, sizeof(serial), sim, sim->devices + idx + 1);
        if ((r = factory_device_new(&other, sim->factory, sim->model, serial)) != 0)
            local_failure(sim, &o, "making the second device", r);
        else
            r = send_body(sim, other, e->body, e->body_len, &o, &again);
    }
    if (r == 0) {
        fprintf(stderr, "%s: device %s: %s was ACCEPTED: certificate %s issued\n", PROG,
                dev->serial, mode_names[sim->mode], again.serial);
        write_serial(sim, again.serial);
    }
    stats_replay(sim->stats, r != 0, o.reason);
    factory_device_free(other);
    enrollment_cleanup(&again);
}

/* drop_resend re-sends |e|'s dropped body twice on new connections of |dev|;
 * the first certificate received counts as the enrollment. */
static void drop_resend(struct sim *sim, struct device *dev, struct enrollment *e, double start)
{
    struct enrollment first = {0}, second = {0};
    struct outcome o1 = {0}, o2 = {0};
    bool same;
    int r1, r2;

    r1 = send_body(sim, dev, e->body, e->body_len, &o1, &first);
    r2 = send_body(sim, dev, e->body, e->body_len, &o2, &second);
    same = r1 == 0 && r2 == 0 && first.cert_len == second.cert_len &&
           memcmp(first.cert, second.cert, first.cert_len) == 0;
    if (r1 == 0) {
        stats_ok(sim->stats, now_ms() - start);
        write_serial(sim, first.serial);
    } else {
        stats_failed(sim->stats, o1.reason);
        report_failure(sim, dev->serial, "re-send after drop", &o1);
    }
    if (r2 == 0 && (r1 != 0 || strcmp(first.serial, second.serial) != 0))
        write_serial(sim, second.serial);
    stats_resend(sim->stats, true, r1 == 0 ? "ok" : o1.reason, r2 == 0 ? "ok" : o2.reason, same);
    enrollment_cleanup(&first);
    enrollment_cleanup(&second);
}

static void run_device(struct sim *sim, unsigned long idx)
{
    struct device *dev = NULL;
    struct enrollment e = {0};
    struct outcome o = {0};
    char serial[FACTORY_SERIAL_MAX + 1];
    double start;
    int r;

    device_serial(serial, sizeof(serial), sim, idx + 1);
    if ((r = factory_device_new(&dev, sim->factory, sim->model, serial)) != 0) {
        local_failure(sim, &o, "making the device's IDevID", r);
        stats_failed(sim->stats, o.reason);
        report_failure(sim, serial, "factory", &o);
        return;
    }
    start = now_ms();
    r = enroll_device(sim, dev, &o, &e, sim->mode == MODE_DROP_RESPONSE);
    if (r != 0) {
        stats_failed(sim->stats, o.reason);
        report_failure(sim, serial, "enrollment", &o);
        if (sim->mode == MODE_DROP_RESPONSE)
            stats_resend(sim->stats, false, "not-sent", "not-sent", false);
    } else if (sim->mode == MODE_DROP_RESPONSE) {
        drop_resend(sim, dev, &e, start);
    } else {
        stats_ok(sim->stats, now_ms() - start);
        write_serial(sim, e.serial);
        if (sim->mode != MODE_NORMAL)
            replay(sim, idx, dev, &e);
    }
    enrollment_cleanup(&e);
    factory_device_free(dev);
}

static void *worker(void *arg)
{
    struct sim *sim = arg;
    unsigned long idx;

    while ((idx = atomic_fetch_add(&sim->next, 1)) < sim->devices)
        run_device(sim, idx);
    OPENSSL_thread_stop();
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG
            " --url URL --ca-bundle FILE --factory-ca DIR --devices N --parallel P\n"
            "                      [--serial-prefix PREFIX] [--model MODEL] [--retries K]\n"
            "                      [--tls-version 1.2|1.3] [--timeout SECONDS] [--out FILE]\n"
            "                      [--mode normal|replay-token|replay-body|drop-response]\n"
            "\n"
            "Simulate N devices enrolling with devid-verifier at URL, P at a time. Each\n"
            "device gets its own software IDevID issued by the devid-factory CA in DIR\n"
            "(DIR/intermediate.pem, DIR/intermediate.key) and builds TPM evidence in\n"
            "software; each enrollment uses a new mutual-TLS connection.\n"
            "\n"
            "  --url URL              verifier base URL, e.g. https://127.0.0.1:8443\n"
            "  --ca-bundle FILE       CAs trusted for the verifier's TLS certificate\n"
            "  --factory-ca DIR       directory made by 'devid-factory ca'\n"
            "  --devices N            devices to enroll (1-%lu)\n"
            "  --parallel P           worker threads (1-%lu)\n"
            "  --serial-prefix PREFIX device serials are PREFIX-1 .. PREFIX-N (default SIM)\n"
            "  --model MODEL          device model, the IDevID's CN (default \"Sim Gateway\")\n"
            "  --retries K            retry 503, retryable errors and connection failures\n"
            "                         up to K times, honouring Retry-After (default 0)\n"
            "  --tls-version V        1.2 or 1.3 only (default: either)\n"
            "  --timeout SECONDS      limit for each request and connect (default 30)\n"
            "  --out FILE             write the issued certificate serials, one per line\n"
            "  --mode MODE            normal (default); replay-token: after enrolling,\n"
            "                         reuse the token with new evidence on a new\n"
            "                         connection; replay-body: send the same enroll body\n"
            "                         from another device's connection; drop-response:\n"
            "                         close before reading the enroll answer, then re-send\n"
            "                         the same body twice on new connections\n"
            "  -h, --help             this help\n"
            "\n"
            "Prints a key=value report on stdout. Exit 0 when every device enrolled (and,\n"
            "in the replay modes, every replay was refused; in drop-response, both\n"
            "re-sends returned the same certificate), 1 otherwise, 64 on usage errors.\n",
            MAX_DEVICES, MAX_PARALLEL);
}

static int parse_ulong(unsigned long *out, const char *opt, const char *s, unsigned long min,
                       unsigned long max)
{
    unsigned long long v;
    char *end = NULL;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (s[0] == '\0' || s[0] == '-' || errno != 0 || end == NULL || *end != '\0' || v < min ||
        v > max) {
        fprintf(stderr, "%s: %s wants a number from %lu to %lu, not \"%s\"\n", PROG, opt, min, max,
                s);
        return DEVID_ERR_INVALID_ARGUMENT;
    }
    *out = (unsigned long)v;
    return 0;
}

enum {
    O_URL = 256,
    O_CA,
    O_FACTORY,
    O_DEVICES,
    O_PARALLEL,
    O_PREFIX,
    O_MODEL,
    O_RETRIES,
    O_TLS,
    O_TIMEOUT,
    O_OUT,
    O_MODE
};

static int parse_args(struct sim *sim, const char **factory_dir, int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, O_URL},
        {"ca-bundle", required_argument, NULL, O_CA},
        {"factory-ca", required_argument, NULL, O_FACTORY},
        {"devices", required_argument, NULL, O_DEVICES},
        {"parallel", required_argument, NULL, O_PARALLEL},
        {"serial-prefix", required_argument, NULL, O_PREFIX},
        {"model", required_argument, NULL, O_MODEL},
        {"retries", required_argument, NULL, O_RETRIES},
        {"tls-version", required_argument, NULL, O_TLS},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"out", required_argument, NULL, O_OUT},
        {"mode", required_argument, NULL, O_MODE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char serial[FACTORY_SERIAL_MAX + 32];
    unsigned long timeout = 30;
    size_t i;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
            case O_URL:
                sim->conn.url = optarg;
                break;
            case O_CA:
                sim->conn.ca_bundle = optarg;
                break;
            case O_FACTORY:
                *factory_dir = optarg;
                break;
            case O_DEVICES:
                if (parse_ulong(&sim->devices, "--devices", optarg, 1, MAX_DEVICES) != 0)
                    return EX_USAGE;
                break;
            case O_PARALLEL:
                if (parse_ulong(&sim->parallel, "--parallel", optarg, 1, MAX_PARALLEL) != 0)
                    return EX_USAGE;
                break;
            case O_PREFIX:
                sim->prefix = optarg;
                break;
            case O_MODEL:
                sim->model = optarg;
                break;
            case O_RETRIES:
                if (parse_ulong(&sim->retries, "--retries", optarg, 0, MAX_RETRIES) != 0)
                    return EX_USAGE;
                break;
            case O_TLS:
                if (strcmp(optarg, "1.2") == 0) {
                    sim->conn.tls_version = 12;
                } else if (strcmp(optarg, "1.3") == 0) {
                    sim->conn.tls_version = 13;
                } else {
                    fprintf(stderr, "%s: --tls-version wants 1.2 or 1.3, not \"%s\"\n", PROG,
                            optarg);
                    return EX_USAGE;
                }
                break;
            case O_TIMEOUT:
                if (parse_ulong(&timeout, "--timeout", optarg, 1, MAX_TIMEOUT) != 0)
                    return EX_USAGE;
                break;
            case O_OUT:
                sim->out_path = optarg;
                break;
            case O_MODE:
                for (i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
                    if (strcmp(optarg, mode_names[i]) == 0)
                        break;
                }
                if (i == sizeof(mode_names) / sizeof(mode_names[0])) {
                    fprintf(stderr,
                            "%s: --mode wants normal, replay-token, replay-body or "
                            "drop-response, not \"%s\"\n",
                            PROG, optarg);
                    return EX_USAGE;
                }
                sim->mode = (enum mode)i;
                break;
            case 'h':
                usage(stdout);
                exit(0);
            default:
                fprintf(stderr, "try '%s --help'\n", PROG);
                return EX_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument \"%s\"; try '%s --help'\n", PROG, argv[optind],
                PROG);
        return EX_USAGE;
    }
    if (sim->conn.url == NULL || sim->conn.ca_bundle == NULL || *factory_dir == NULL ||
        sim->devices == 0 || sim->parallel == 0) {
        fprintf(stderr,
                "%s: --url, --ca-bundle, --factory-ca, --devices and --parallel are required; "
                "try '%s --help'\n",
                PROG, PROG);
        return EX_USAGE;
    }
    /* The longest serial made: PREFIX-(2N) in replay-body. */
    snprintf(serial, sizeof(serial), "%s-%lu", sim->prefix, 2 * sim->devices);
    if (factory_check_serial(serial) != 0) {
        fprintf(stderr,
                "%s: --serial-prefix \"%s\" makes serials like \"%s\": want at most 64 "
                "characters from [A-Za-z0-9.:()?-]\n",
                PROG, sim->prefix, serial);
        return EX_USAGE;
    }
    if (factory_check_model(sim->model) != 0) {
        fprintf(stderr,
                "%s: --model \"%s\": want 1-64 characters from [A-Za-z0-9 ._:()&'?-], no "
                "leading or trailing space\n",
                PROG, sim->model);
        return EX_USAGE;
    }
    sim->conn.timeout = (long)timeout;
    return 0;
}

int main(int argc, char **argv)
{
    struct sim sim;
    struct stats_run run;
    const char *factory_dir = NULL;
    pthread_t *threads = NULL;
    unsigned long i, n_threads = 0;
    double start;
    bool pass = false, curl_ready = false;
    int rc, exit_code = 1;

    memset(&sim, 0, sizeof(sim));
    sim.prefix = "SIM";
    sim.model = "Sim Gateway";
    atomic_init(&sim.next, 0);
    if ((rc = parse_args(&sim, &factory_dir, argc, argv)) != 0)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    if (pthread_mutex_init(&sim.out_mu, NULL) != 0)
        return 1;
    if (factory_load(&sim.factory, factory_dir) != 0)
        goto out;
    if (stats_new(&sim.stats, sim.devices) != 0) {
        fprintf(stderr, "%s: out of memory for %lu devices\n", PROG, sim.devices);
        goto out;
    }
    if (sim.out_path != NULL && (sim.out = fopen(sim.out_path, "w")) == NULL) {
        fprintf(stderr, "%s: cannot write %s: %s\n", PROG, sim.out_path, strerror(errno));
        goto out;
    }
    if (conn_global_init() != 0) {
        fprintf(stderr, "%s: cannot initialise libcurl\n", PROG);
        goto out;
    }
    curl_ready = true;
    n_threads = sim.parallel < sim.devices ? sim.parallel : sim.devices;
    if ((threads = calloc(n_threads, sizeof(*threads))) == NULL)
        goto out;
    start = now_ms();
    for (i = 0; i < n_threads; i++) {
        if ((rc = pthread_create(&threads[i], NULL, worker, &sim)) != 0) {
            fprintf(stderr, "%s: cannot start worker thread %lu: %s\n", PROG, i + 1, strerror(rc));
            /* Let the running workers finish the whole fleet. */
            n_threads = i;
            break;
        }
    }
    for (i = 0; i < n_threads; i++)
        pthread_join(threads[i], NULL);
    if (n_threads == 0)
        goto out;
    memset(&run, 0, sizeof(run));
    run.mode = mode_names[sim.mode];
    run.url = sim.conn.url;
    run.devices = sim.devices;
    run.parallel = (unsigned)sim.parallel;
    run.tls = sim.conn.tls_version == 12 ? "1.2" : sim.conn.tls_version == 13 ? "1.3" : "any";
    run.retries = (unsigned)sim.retries;
    run.elapsed_s = (now_ms() - start) / 1e3;
    pass = stats_report(sim.stats, stdout, &run);
    if (sim.out != NULL) {
        if (fclose(sim.out) != 0 || sim.out_failed) {
            fprintf(stderr, "%s: writing %s failed\n", PROG, sim.out_path);
            pass = false;
        }
        sim.out = NULL;
    }
    exit_code = pass ? 0 : 1;
out:
    if (sim.out != NULL)
        fclose(sim.out);
    free(threads);
    if (curl_ready)
        conn_global_cleanup();
    stats_free(sim.stats);
    factory_free(sim.factory);
    pthread_mutex_destroy(&sim.out_mu);
    return exit_code;
}
