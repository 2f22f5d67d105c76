#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "common/err.h"

struct conn {
    const struct conn_config *cfg;
    X509 *cert;
    X509 *chain;
    EVP_PKEY *key;
    CURL *curl;
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
    unsigned requests;
    /* per request */
    struct conn_reply *rep;
    bool drop;
    bool exported;
    bool too_large;
    /* from the first request */
    uint8_t exporter[TRANSCRIPT_EXPORTER_LEN];
    bool have_exporter;
    bool exporter_changed;
};

int conn_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : DEVID_ERR_INTERNAL;
}

void conn_global_cleanup(void)
{
    curl_global_cleanup();
}

static CURLcode ssl_ctx_cb(CURL *curl, void *sslctx, void *arg)
{
    struct conn *c = arg;
    SSL_CTX *ctx = sslctx;

    (void)curl;
    if (SSL_CTX_use_certificate(ctx, c->cert) != 1 ||
        (c->chain != NULL && SSL_CTX_add1_chain_cert(ctx, c->chain) != 1) ||
        SSL_CTX_use_PrivateKey(ctx, c->key) != 1)
        return CURLE_SSL_CERTPROBLEM;
    return CURLE_OK;
}

/* export_binding reads tls-exporter during a transfer: afterwards curl may
 * have released the SSL object. */
static void export_binding(struct conn *c)
{
    struct curl_tlssessioninfo *info = NULL;
    uint8_t val[TRANSCRIPT_EXPORTER_LEN];
    SSL *ssl;

    if (c->exported)
        return;
    c->exported = true;
    if (curl_easy_getinfo(c->curl, CURLINFO_TLS_SSL_PTR, &info) != CURLE_OK || info == NULL ||
        info->backend != CURLSSLBACKEND_OPENSSL || (ssl = info->internals) == NULL)
        return;
    if (SSL_export_keying_material(ssl, val, sizeof(val), TRANSCRIPT_EXPORTER_LABEL,
                                   strlen(TRANSCRIPT_EXPORTER_LABEL), NULL, 0, 0) != 1)
        return;
    if (!c->have_exporter) {
        memcpy(c->exporter, val, sizeof(val));
        c->have_exporter = true;
    } else if (CRYPTO_memcmp(c->exporter, val, sizeof(val)) != 0) {
        c->exporter_changed = true;
    }
    OPENSSL_cleanse(val, sizeof(val));
}

static void parse_retry_after(struct conn_reply *rep, const char *buf, size_t len)
{
    static const char name[] = "Retry-After:";
    char value[32];
    size_t n = sizeof(name) - 1, i = 0;
    unsigned long v;
    char *end = NULL;

    if (len <= n || strncasecmp(buf, name, n) != 0)
        return;
    buf += n;
    len -= n;
    while (len > 0 && (*buf == ' ' || *buf == '\t')) {
        buf++;
        len--;
    }
    while (i < len && i + 1 < sizeof(value) && buf[i] >= '0' && buf[i] <= '9') {
        value[i] = buf[i];
        i++;
    }
    value[i] = '\0';
    if (i == 0)
        return;
    errno = 0;
    v = strtoul(value, &end, 10);
    if (errno != 0 || *end != '\0')
        return;
    rep->have_retry_after = true;
    rep->retry_after = v;
}

static size_t header_cb(char *buf, size_t size, size_t n, void *arg)
{
    struct conn *c = arg;

    export_binding(c);
    if (c->drop) {
        c->rep->dropped = true;
        return 0;
    }
    parse_retry_after(c->rep, buf, size * n);
    return size * n;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *arg)
{
    struct conn *c = arg;
    struct conn_reply *rep = c->rep;
    size_t len = size * n;
    uint8_t *nb;

    export_binding(c);
    if (c->drop) {
        rep->dropped = true;
        return 0;
    }
    if (len > CONN_BODY_MAX || rep->body_len + len > CONN_BODY_MAX) {
        c->too_large = true;
        return 0;
    }
    if ((nb = realloc(rep->body, rep->body_len + len)) == NULL)
        return 0;
    rep->body = nb;
    memcpy(rep->body + rep->body_len, buf, len);
    rep->body_len += len;
    return len;
}

static int configure(struct conn *c)
{
    static const char *const headers[] = {
        "Content-Type: application/x-protobuf",
        "Accept: application/x-protobuf",
        "Expect:",
    };
    const struct conn_config *cfg = c->cfg;
    struct curl_slist *list;
    size_t i;
    long ver;

    switch (cfg->tls_version) {
        case 12:
            ver = CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2;
            break;
        case 13:
            ver = CURL_SSLVERSION_TLSv1_3 | CURL_SSLVERSION_MAX_TLSv1_3;
            break;
        default:
            ver = CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_3;
            break;
    }
    for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        if ((list = curl_slist_append(c->headers, headers[i])) == NULL)
            return DEVID_ERR_ALLOC;
        c->headers = list;
    }
#define SETOPT(opt, val)                                     \
    do {                                                     \
        if (curl_easy_setopt(c->curl, opt, val) != CURLE_OK) \
            return DEVID_ERR_CONFIG;                         \
    } while (0)
    SETOPT(CURLOPT_ERRORBUFFER, c->errbuf);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "https");
    SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SETOPT(CURLOPT_USERAGENT, "devid-fleetsim/" DEVID_VERSION);
    SETOPT(CURLOPT_HTTPHEADER, c->headers);
    SETOPT(CURLOPT_CAINFO, cfg->ca_bundle);
    SETOPT(CURLOPT_CAPATH, NULL);
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    SETOPT(CURLOPT_SSLVERSION, ver);
    SETOPT(CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
    SETOPT(CURLOPT_SSL_CTX_DATA, c);
    SETOPT(CURLOPT_SSL_SESSIONID_CACHE, 0L);
    SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
    SETOPT(CURLOPT_WRITEDATA, c);
    SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
    SETOPT(CURLOPT_HEADERDATA, c);
    SETOPT(CURLOPT_TIMEOUT, cfg->timeout);
    SETOPT(CURLOPT_CONNECTTIMEOUT, cfg->timeout);
    SETOPT(CURLOPT_MAXCONNECTS, 1L);
    if (cfg->source != NULL)
        SETOPT(CURLOPT_INTERFACE, cfg->source);
#undef SETOPT
    return 0;
}

int conn_new(struct conn **out, const struct conn_config *cfg, X509 *cert, X509 *chain,
             EVP_PKEY *key)
{
    struct conn *c = NULL;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || cfg == NULL || cfg->url == NULL || cfg->ca_bundle == NULL || cert == NULL ||
        key == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return DEVID_ERR_ALLOC;
    c->cfg = cfg;
    c->cert = cert;
    c->chain = chain;
    c->key = key;
    if ((c->curl = curl_easy_init()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if ((r = configure(c)) != 0)
        goto out;
    *out = c;
    c = NULL;
    r = 0;
out:
    conn_free(c);
    return r;
}

void conn_free(struct conn *c)
{
    if (c == NULL)
        return;
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    OPENSSL_cleanse(c->exporter, sizeof(c->exporter));
    free(c);
}

void conn_reply_cleanup(struct conn_reply *rep)
{
    if (rep == NULL)
        return;
    free(rep->body);
    memset(rep, 0, sizeof(*rep));
}

static const char *classify(CURLcode rc)
{
    switch (rc) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
            return "connect";
        case CURLE_OPERATION_TIMEDOUT:
            return "timeout";
        case CURLE_SSL_CONNECT_ERROR:
            return "tls-handshake";
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_CLIENTCERT:
            return "tls";
        case CURLE_GOT_NOTHING:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
            return "closed";
        default:
            return NULL;
    }
}

int conn_post(struct conn *c, struct conn_reply *rep, const char *path, const uint8_t *req,
              size_t req_len, bool drop)
{
    char url[2048];
    long connects = -1;
    const char *what;
    CURLcode rc;
    int n;

    if (c == NULL || rep == NULL || path == NULL || (req == NULL && req_len > 0))
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(rep, 0, sizeof(*rep));
    n = snprintf(url, sizeof(url), "%s%s", c->cfg->url, path);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        snprintf(rep->what, sizeof(rep->what), "url");
        return DEVID_ERR_CONFIG;
    }
    c->rep = rep;
    c->drop = drop;
    c->exported = false;
    c->too_large = false;
    c->errbuf[0] = '\0';
    if (curl_easy_setopt(c->curl, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, c->requests == 0 ? 1L : 0L) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req_len) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, req != NULL ? (const char *)req : "") !=
            CURLE_OK) {
        snprintf(rep->what, sizeof(rep->what), "curl-setup");
        return DEVID_ERR_INTERNAL;
    }
    rc = curl_easy_perform(c->curl);
    c->requests++;
    c->rep = NULL;
    if (rep->dropped)
        return 0;
    if (rc != CURLE_OK) {
        what = c->too_large ? "too-large" : classify(rc);
        if (what != NULL)
            snprintf(rep->what, sizeof(rep->what), "%s", what);
        else
            snprintf(rep->what, sizeof(rep->what), "curl-%d", (int)rc);
        snprintf(rep->detail, sizeof(rep->detail), "%s",
                 c->errbuf[0] != '\0' ? c->errbuf : curl_easy_strerror(rc));
        return strcmp(rep->what, "tls") == 0 ? DEVID_ERR_TLS : DEVID_ERR_NETWORK;
    }
    if (c->requests > 1 &&
        (curl_easy_getinfo(c->curl, CURLINFO_NUM_CONNECTS, &connects) != CURLE_OK ||
         connects != 0 || c->exporter_changed)) {
        snprintf(rep->what, sizeof(rep->what), "conn-changed");
        snprintf(rep->detail, sizeof(rep->detail),
                 "the verifier closed the TLS connection between challenge and enroll");
        return DEVID_ERR_NETWORK;
    }
    if (curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &rep->status) != CURLE_OK) {
        snprintf(rep->what, sizeof(rep->what), "closed");
        return DEVID_ERR_NETWORK;
    }
    return 0;
}

int conn_exporter(const struct conn *c, uint8_t out[TRANSCRIPT_EXPORTER_LEN])
{
    if (c == NULL || out == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (!c->have_exporter)
        return DEVID_ERR_TLS;
    memcpy(out, c->exporter, TRANSCRIPT_EXPORTER_LEN);
    return 0;
}
