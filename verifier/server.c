#include "verifier/server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "common/err.h"
#include "common/log.h"
#include "common/transcript.h"
#include "devid/v1/enroll.pb-c.h"
#include "verifier/enroll.h"
#include "verifier/profile.h"

#define CONTENT_TYPE "application/x-protobuf"

struct server {
    const struct server_config *cfg;
    struct enroll_config ecfg;
    const struct chain_store *store;
    struct ca *ca;
    SSL_CTX *ssl_ctx;
    struct event_base *base;
    struct evhttp *http;
};

/* The connection facts a handler needs; all pointers borrowed from OpenSSL. */
struct peer {
    SSL *ssl;
    X509 *cert;
    STACK_OF(X509) *chain;
    char subject[256];
};

static double elapsed_ms(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 +
           (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

static void reply_bytes(struct evhttp_request *req, int status, const uint8_t *buf, size_t len,
                        unsigned retry_after)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    struct evbuffer *out = evbuffer_new();
    char value[16];

    if (out == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evhttp_add_header(headers, "Content-Type", CONTENT_TYPE);
    evhttp_add_header(headers, "Cache-Control", "no-store");
    if (retry_after > 0) {
        snprintf(value, sizeof(value), "%u", retry_after);
        evhttp_add_header(headers, "Retry-After", value);
    }
    if (len > 0 && evbuffer_add(out, buf, len) != 0) {
        evbuffer_free(out);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Refused", out);
    evbuffer_free(out);
}

static void reply_error(struct evhttp_request *req, int r, const char *message)
{
    Devid__V1__Error err = DEVID__V1__ERROR__INIT;
    uint8_t *buf = NULL;
    size_t len;

    err.reason = (Devid__V1__Reason)devid_err_reason(r);
    err.message = (char *)message;
    err.retryable = devid_err_retryable(r);
    err.retry_after_seconds = r == DEVID_ERR_OVERLOADED ? 1 : 0;
    len = devid__v1__error__get_packed_size(&err);
    if ((buf = malloc(len > 0 ? len : 1)) == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    devid__v1__error__pack(&err, buf);
    reply_bytes(req, devid_err_http_status(r), buf, len, err.retry_after_seconds);
    free(buf);
}

static void reply_packed(struct evhttp_request *req, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len > 0 ? len : 1);

    if (buf == NULL) {
        reply_error(req, DEVID_ERR_ALLOC, "out of memory encoding the answer");
        return;
    }
    protobuf_c_message_pack(msg, buf);
    reply_bytes(req, 200, buf, len, 0);
    free(buf);
}

/*
 * request_body checks method and content type and returns the body, pulled up
 * into one contiguous run. evhttp already enforces the size limit.
 */
static int request_body(struct evhttp_request *req, const uint8_t **body, size_t *len, char *why,
                        size_t why_len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    const char *ct;

    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        snprintf(why, why_len, "method must be POST");
        return DEVID_ERR_BAD_REQUEST;
    }
    ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    if (ct == NULL || strcmp(ct, CONTENT_TYPE) != 0) {
        snprintf(why, why_len, "Content-Type must be %s, got %s", CONTENT_TYPE,
                 ct != NULL ? ct : "none");
        return DEVID_ERR_BAD_REQUEST;
    }
    *len = evbuffer_get_length(in);
    *body = *len > 0 ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
    if (*body == NULL)
        return DEVID_ERR_ALLOC;
    return 0;
}

static int get_peer(struct evhttp_request *req, struct peer *p, char *why, size_t why_len)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;

    memset(p, 0, sizeof(*p));
    snprintf(p->subject, sizeof(p->subject), "(none)");
    if (bev == NULL || (p->ssl = bufferevent_openssl_get_ssl(bev)) == NULL) {
        snprintf(why, why_len, "request did not arrive over TLS");
        return DEVID_ERR_INTERNAL;
    }
    if ((p->cert = SSL_get0_peer_certificate(p->ssl)) == NULL) {
        snprintf(why, why_len,
                 "no TLS client certificate: the device must present its IDevID certificate");
        return DEVID_ERR_NO_CLIENT_CERT;
    }
    p->chain = SSL_get_peer_cert_chain(p->ssl);
    X509_NAME_oneline(X509_get_subject_name(p->cert), p->subject, sizeof(p->subject));
    return 0;
}

static void handle_challenge(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    Devid__V1__ChallengeRequest *creq = NULL;
    Devid__V1__ChallengeResponse cres = DEVID__V1__CHALLENGE_RESPONSE__INIT;
    struct chain_verdict verdict = {0};
    struct peer peer;
    uint8_t nonce[TOKEN_NONCE_LEN], token[TOKEN_LEN], cert_hash[32];
    const uint8_t *body = NULL;
    char why[512] = "";
    size_t len = 0;
    time_t now = time(NULL);
    int r = DEVID_ERR_INTERNAL;

    if ((r = request_body(req, &body, &len, why, sizeof(why))) != 0 ||
        (r = get_peer(req, &peer, why, sizeof(why))) != 0)
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
    if ((r = chain_verify(s->store, &verdict, peer.cert, peer.chain, now, why, sizeof(why))) != 0)
        goto out;
    if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
        snprintf(why, sizeof(why), "random generator failed");
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    if ((r = enroll_cert_hash(cert_hash, peer.cert)) != 0 ||
        (r = token_seal(token, s->ecfg.token_key, nonce, (int64_t)now + s->cfg->token_ttl_seconds,
                        cert_hash)) != 0) {
        snprintf(why, sizeof(why), "sealing the token failed");
        goto out;
    }
    cres.nonce.data = nonce;
    cres.nonce.len = sizeof(nonce);
    cres.token.data = token;
    cres.token.len = sizeof(token);
    cres.expires_at = (int64_t)now + s->cfg->token_ttl_seconds;
    reply_packed(req, &cres.base);
    log_debug("challenge issued to %s (%s)", peer.subject, verdict.manufacturer);
    r = 0;
out:
    if (r != 0) {
        log_info("challenge result=refused client=\"%s\" reason=\"%s\" why: %s", peer.subject,
                 devid_err_str(r), why);
        reply_error(req, r, why);
    }
    chain_verdict_cleanup(&verdict);
    devid__v1__challenge_request__free_unpacked(creq, NULL);
}

static void serial_hex(char *out, size_t out_len, X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    size_t i;

    snprintf(out, out_len, "%s", hex != NULL ? hex : "?");
    for (i = 0; out[i] != '\0'; i++)
        out[i] = (char)(out[i] >= 'A' && out[i] <= 'F' ? out[i] + ('a' - 'A') : out[i]);
    OPENSSL_free(hex);
    BN_free(bn);
}

/* issue builds, signs and DER-encodes the operational certificate. */
static int issue(struct server *s, const struct enroll_outcome *o, X509 *idevid, uint8_t **der,
                 int *der_len, char *serial, size_t serial_len, char *why, size_t why_len)
{
    struct profile_input in = {0};
    uint8_t serial_bytes[PROFILE_SERIAL_LEN];
    X509 *cert = NULL;
    int r = DEVID_ERR_INTERNAL;

    *der = NULL;
    if (RAND_bytes(serial_bytes, sizeof(serial_bytes)) != 1) {
        snprintf(why, why_len, "random generator failed");
        return DEVID_ERR_CRYPTO;
    }
    in.ca_cert = ca_get0_cert(s->ca);
    in.subject_key = o->ldevid_key;
    in.id = &o->id;
    in.idevid = idevid;
    in.serial = serial_bytes;
    in.serial_len = sizeof(serial_bytes);
    in.now = time(NULL);
    in.validity_seconds = s->cfg->validity_seconds;
    if ((r = profile_build(&cert, &in)) != 0) {
        snprintf(why, why_len, "building the operational certificate failed");
        goto out;
    }
    if ((r = ca_sign(s->ca, cert)) != 0) {
        snprintf(why, why_len, "the issuing CA could not sign");
        goto out;
    }
    if ((*der_len = i2d_X509(cert, der)) <= 0) {
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    serial_hex(serial, serial_len, cert);
    r = 0;
out:
    X509_free(cert);
    return r;
}

static void handle_enroll(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    Devid__V1__EnrollRequest *ereq = NULL;
    Devid__V1__EnrollResponse eres = DEVID__V1__ENROLL_RESPONSE__INIT;
    STACK_OF(X509) *ca_chain = ca_get0_chain(s->ca);
    struct enroll_outcome o;
    struct timespec start;
    struct peer peer;
    uint8_t exporter[TRANSCRIPT_EXPORTER_LEN];
    ProtobufCBinaryData chain_der[9];
    uint8_t *chain_buf[9] = {0};
    const uint8_t *body = NULL;
    uint8_t *der = NULL;
    char why[512] = "", serial[80] = "";
    size_t len = 0, i, n_chain = 0;
    int der_len = 0, l, r = DEVID_ERR_INTERNAL;

    clock_gettime(CLOCK_MONOTONIC, &start);
    memset(&o, 0, sizeof(o));
    if ((r = request_body(req, &body, &len, why, sizeof(why))) != 0 ||
        (r = get_peer(req, &peer, why, sizeof(why))) != 0)
        goto out;
    if ((ereq = devid__v1__enroll_request__unpack(NULL, len, body)) == NULL) {
        snprintf(why, sizeof(why), "body is not a devid.v1.EnrollRequest");
        r = DEVID_ERR_BAD_REQUEST;
        goto out;
    }
    if (SSL_export_keying_material(peer.ssl, exporter, sizeof(exporter), TRANSCRIPT_EXPORTER_LABEL,
                                   strlen(TRANSCRIPT_EXPORTER_LABEL), NULL, 0, 0) != 1) {
        snprintf(why, sizeof(why), "TLS exporter unavailable on this connection");
        r = DEVID_ERR_TLS;
        goto out;
    }
    if ((r = enroll_check(&o, &s->ecfg, ereq, peer.cert, peer.chain, exporter, time(NULL))) != 0) {
        snprintf(why, sizeof(why), "%s", o.why);
        goto out;
    }
    if ((r = issue(s, &o, peer.cert, &der, &der_len, serial, sizeof(serial), why, sizeof(why))) !=
        0)
        goto out;
    for (i = 0; i < (size_t)sk_X509_num(ca_chain) + 1 && i < 9; i++) {
        X509 *c = i == 0 ? ca_get0_cert(s->ca) : sk_X509_value(ca_chain, (int)i - 1);

        if ((l = i2d_X509(c, &chain_buf[i])) <= 0) {
            r = DEVID_ERR_CRYPTO;
            goto out;
        }
        chain_der[i].data = chain_buf[i];
        chain_der[i].len = (size_t)l;
        n_chain++;
    }
    eres.certificate.data = der;
    eres.certificate.len = (size_t)der_len;
    eres.chain = chain_der;
    eres.n_chain = n_chain;
    eres.serial = serial;
    reply_packed(req, &eres.base);
    log_info(
        "enroll result=issued device_serial=\"%s\" model=\"%s\" manufacturer=\"%s\" "
        "cert_serial=%s signer=%s tls=%s duration_ms=%.1f",
        o.id.serial, o.id.model, o.id.manufacturer, serial,
        o.signer_kind == DEVID__V1__SIGNER_KIND__SIGNER_KIND_IAK ? "iak" : "idevid",
        SSL_get_version(peer.ssl), elapsed_ms(&start));
    r = 0;
out:
    if (r != 0) {
        log_info(
            "enroll result=refused client=\"%s\" device_serial=\"%s\" manufacturer=\"%s\" "
            "reason=\"%s\" duration_ms=%.1f why: %s",
            peer.subject, o.id.serial, o.id.manufacturer, devid_err_str(r), elapsed_ms(&start),
            why);
        reply_error(req, r, why);
    }
    for (i = 0; i < n_chain; i++)
        OPENSSL_free(chain_buf[i]);
    OPENSSL_free(der);
    enroll_outcome_cleanup(&o);
    devid__v1__enroll_request__free_unpacked(ereq, NULL);
}

static void handle_other(struct evhttp_request *req, void *arg)
{
    char why[256];

    snprintf(why, sizeof(why), "no such endpoint: %s", evhttp_request_get_uri(req));
    reply_error(req, DEVID_ERR_NOT_FOUND, why);
}

static int accept_any_client_cert(int preverify_ok, X509_STORE_CTX *ctx)
{
    /* The chain is judged by the trust core in the handler, so that a refusal
     * reaches the device as an Error naming the reason, not a TLS alert. The
     * handshake still proves possession of the certificate's key. */
    return 1;
}

static int make_ssl_ctx(struct server *s)
{
    const struct server_config *cfg = s->cfg;
    char reason[256];

    if ((s->ssl_ctx = SSL_CTX_new(TLS_server_method())) == NULL)
        return DEVID_ERR_ALLOC;
    SSL_CTX_set_options(s->ssl_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_min_proto_version(s->ssl_ctx, cfg->tls_min) != 1 ||
        SSL_CTX_set_max_proto_version(s->ssl_ctx, cfg->tls_max) != 1) {
        log_err("unsupported TLS version range");
        return DEVID_ERR_CONFIG;
    }
    if (SSL_CTX_use_certificate_chain_file(s->ssl_ctx, cfg->tls_cert) != 1) {
        log_err("cannot load TLS certificate %s: %s", cfg->tls_cert,
                log_openssl_reason(reason, sizeof(reason)));
        return DEVID_ERR_CONFIG;
    }
    if (SSL_CTX_use_PrivateKey_file(s->ssl_ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s->ssl_ctx) != 1) {
        log_err("cannot load TLS key %s (or it does not match %s): %s", cfg->tls_key, cfg->tls_cert,
                log_openssl_reason(reason, sizeof(reason)));
        return DEVID_ERR_CONFIG;
    }
    SSL_CTX_set_verify(s->ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE,
                       accept_any_client_cert);
    SSL_CTX_set_verify_depth(s->ssl_ctx, CHAIN_MAX_DEPTH);
    return 0;
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
    struct server *s = arg;
    struct bufferevent *bev;
    SSL *ssl = SSL_new(s->ssl_ctx);

    if (ssl == NULL)
        return NULL;
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static void on_signal(evutil_socket_t sig, short events, void *arg)
{
    struct server *s = arg;

    log_info("signal %d: stopping", (int)sig);
    event_base_loopexit(s->base, NULL);
}

static int split_listen(const char *listen, char *host, size_t host_len, uint16_t *port)
{
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    size_t hl;
    unsigned long p;
    char *end = NULL;

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

int server_run(const struct server_config *cfg, const struct chain_store *store,
               const struct policy *policy, struct ca *ca, const uint8_t *token_key)
{
    struct server s;
    struct event *sigterm = NULL, *sigint = NULL;
    char host[256];
    uint16_t port = 0;
    int r = DEVID_ERR_INTERNAL;

    memset(&s, 0, sizeof(s));
    s.cfg = cfg;
    s.store = store;
    s.ca = ca;
    s.ecfg.store = store;
    s.ecfg.policy = policy;
    s.ecfg.token_key = token_key;
    if (split_listen(cfg->listen, host, sizeof(host), &port) != 0) {
        log_err("bad listen address \"%s\": want host:port or [v6addr]:port", cfg->listen);
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    if ((r = make_ssl_ctx(&s)) != 0)
        goto out;
    if ((s.base = event_base_new()) == NULL || (s.http = evhttp_new(s.base)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    evhttp_set_bevcb(s.http, make_bev, &s);
    evhttp_set_allowed_methods(s.http, EVHTTP_REQ_POST | EVHTTP_REQ_GET);
    evhttp_set_max_body_size(s.http, (ev_ssize_t)cfg->max_body);
    evhttp_set_max_headers_size(s.http, (ev_ssize_t)cfg->max_headers_size);
    evhttp_set_timeout(s.http, cfg->timeout_seconds);
    evhttp_set_cb(s.http, "/v1/challenge", handle_challenge, &s);
    evhttp_set_cb(s.http, "/v1/enroll", handle_enroll, &s);
    evhttp_set_gencb(s.http, handle_other, &s);
    if (evhttp_bind_socket_with_handle(s.http, host, port) == NULL) {
        log_err("cannot listen on %s: %s", cfg->listen, strerror(errno));
        r = DEVID_ERR_IO;
        goto out;
    }
    if ((sigterm = evsignal_new(s.base, SIGTERM, on_signal, &s)) == NULL ||
        (sigint = evsignal_new(s.base, SIGINT, on_signal, &s)) == NULL ||
        evsignal_add(sigterm, NULL) != 0 || evsignal_add(sigint, NULL) != 0) {
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    log_info("listening on %s (TLS %s to %s)", cfg->listen,
             cfg->tls_min == TLS1_3_VERSION ? "1.3" : "1.2",
             cfg->tls_max == TLS1_2_VERSION ? "1.2" : "1.3");
    if (event_base_dispatch(s.base) < 0) {
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    log_info("stopped");
    r = 0;
out:
    if (sigterm != NULL)
        event_free(sigterm);
    if (sigint != NULL)
        event_free(sigint);
    if (s.http != NULL)
        evhttp_free(s.http);
    if (s.base != NULL)
        event_base_free(s.base);
    SSL_CTX_free(s.ssl_ctx);
    return r;
}
