#include "agent/http.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "agent/tpm.h"
#include "agent/tpmprov.h"
#include "common/err.h"
#include "common/io/log.h"
#include "common/transcript.h"

struct http {
    const struct http_config *cfg;
    CURL *curl;
    struct curl_slist *headers;
    struct tpmprov *prov;
    EVP_PKEY *key;
    char errbuf[CURL_ERROR_SIZE];
    unsigned requests;
    /* per request */
    uint8_t *body;
    size_t body_len;
    bool too_large;
    bool exported;
    unsigned retry_after;
    enum http_fail fail;
    /* from the first request */
    uint8_t exporter[TRANSCRIPT_EXPORTER_LEN];
    bool have_exporter;
    bool exporter_changed;
};

static int curl_ready = 0;

/* tls_sign is the TLS client key's signer: TPM2_Sign on the agent's own
 * ESAPI connection, the one that also runs Sign and Certify over the
 * transcript. */
static int tls_sign(void *arg, TPMT_SIGNATURE *sig, TPMI_ALG_SIG_SCHEME scheme, TPMI_ALG_HASH hash,
                    const uint8_t *digest, size_t digest_len)
{
    return tpm_sign_scheme(arg, sig, scheme, hash, digest, digest_len);
}

static int load_key(struct http *h)
{
    int r;

    if ((r = tpmprov_new(&h->prov)) != 0)
        return r;
    if ((r = tpmprov_pkey_new(&h->key, h->prov, tpm_key_get0_public(h->cfg->key), tls_sign,
                              h->cfg->key)) != 0) {
        log_err("cannot use the TPM key at handle 0x%08x as the TLS client key",
                h->cfg->key_handle);
        return r == DEVID_ERR_BAD_REQUEST ? DEVID_ERR_CONFIG : DEVID_ERR_TPM;
    }
    return 0;
}

static CURLcode ssl_ctx_cb(CURL *curl, void *sslctx, void *arg)
{
    struct http *h = arg;
    SSL_CTX *ctx = sslctx;
    char reason[256];
    int i;

    (void)curl;
    if (SSL_CTX_use_certificate(ctx, h->cfg->cert) != 1) {
        log_err("TLS: cannot use the IDevID certificate: %s",
                devid_openssl_reason(reason, sizeof(reason)));
        return CURLE_SSL_CERTPROBLEM;
    }
    for (i = 0; h->cfg->chain != NULL && i < sk_X509_num(h->cfg->chain); i++) {
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(h->cfg->chain, i)) != 1) {
            log_err("TLS: cannot add intermediate %d to the chain: %s", i,
                    devid_openssl_reason(reason, sizeof(reason)));
            return CURLE_SSL_CERTPROBLEM;
        }
    }
    if (SSL_CTX_use_PrivateKey(ctx, h->key) != 1) {
        log_err("TLS: cannot use the TPM key at handle 0x%08x with the IDevID certificate: %s",
                h->cfg->key_handle, devid_openssl_reason(reason, sizeof(reason)));
        return CURLE_SSL_CERTPROBLEM;
    }
    return CURLE_OK;
}

/* export_binding reads the tls-exporter value of the live connection. It must
 * run during a transfer: afterwards curl may have released the SSL object. */
static void export_binding(struct http *h)
{
    struct curl_tlssessioninfo *info = NULL;
    uint8_t val[TRANSCRIPT_EXPORTER_LEN];
    char reason[256];
    SSL *ssl;

    if (h->exported)
        return;
    /* Through a proxy the first headers are those of the CONNECT answer, before
     * the TLS session exists: try again on the next callback. */
    if (curl_easy_getinfo(h->curl, CURLINFO_TLS_SSL_PTR, &info) != CURLE_OK || info == NULL ||
        info->backend != CURLSSLBACKEND_OPENSSL || (ssl = info->internals) == NULL) {
        log_debug("TLS: no OpenSSL session yet to read the channel binding from");
        return;
    }
    h->exported = true;
    if (SSL_export_keying_material(ssl, val, sizeof(val), TRANSCRIPT_EXPORTER_LABEL,
                                   strlen(TRANSCRIPT_EXPORTER_LABEL), NULL, 0, 0) != 1) {
        log_err("TLS: cannot export the channel binding (%s): %s", TRANSCRIPT_EXPORTER_LABEL,
                devid_openssl_reason(reason, sizeof(reason)));
        return;
    }
    if (!h->have_exporter) {
        memcpy(h->exporter, val, sizeof(val));
        h->have_exporter = true;
    } else if (CRYPTO_memcmp(h->exporter, val, sizeof(val)) != 0) {
        h->exporter_changed = true;
    }
    OPENSSL_cleanse(val, sizeof(val));
}

/* parse_retry_after reads "Retry-After: SECONDS" from one header line. */
static void parse_retry_after(struct http *h, const char *line, size_t len)
{
    static const char name[] = "retry-after:";
    unsigned long v = 0;
    size_t i = sizeof(name) - 1;

    if (len < i || strncasecmp(line, name, i) != 0)
        return;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i >= len || line[i] < '0' || line[i] > '9')
        return;
    for (; i < len && line[i] >= '0' && line[i] <= '9'; i++) {
        v = v * 10 + (unsigned long)(line[i] - '0');
        if (v > 86400)
            v = 86400;
    }
    h->retry_after = (unsigned)v;
}

static size_t header_cb(char *buf, size_t size, size_t n, void *arg)
{
    struct http *h = arg;

    export_binding(h);
    parse_retry_after(h, buf, size * n);
    return size * n;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *arg)
{
    struct http *h = arg;
    size_t len = size * n;
    uint8_t *nb;

    export_binding(h);
    if (len > h->cfg->body_max || h->body_len + len > h->cfg->body_max) {
        h->too_large = true;
        return 0;
    }
    if ((nb = realloc(h->body, h->body_len + len + 1)) == NULL)
        return 0;
    h->body = nb;
    memcpy(h->body + h->body_len, buf, len);
    h->body_len += len;
    return len;
}

static int curl_fail(struct http *h, const char *what, CURLcode rc)
{
    log_err("%s: %s", what, h->errbuf[0] != '\0' ? h->errbuf : curl_easy_strerror(rc));
    return DEVID_ERR_CONFIG;
}

static int configure(struct http *h)
{
    static const char *const headers[] = {
        "Content-Type: application/x-protobuf",
        "Accept: application/x-protobuf",
        "Expect:",
    };
    const struct http_config *cfg = h->cfg;
    struct curl_slist *list;
    size_t i;
    long ver;
    CURLcode rc;

    switch (cfg->tls_version) {
        case CONFIG_TLS_1_2:
            ver = CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2;
            break;
        case CONFIG_TLS_1_3:
            ver = CURL_SSLVERSION_TLSv1_3 | CURL_SSLVERSION_MAX_TLSv1_3;
            break;
        default:
            ver = CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_3;
            break;
    }
    for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        if ((list = curl_slist_append(h->headers, headers[i])) == NULL)
            return DEVID_ERR_ALLOC;
        h->headers = list;
    }
#define SETOPT(opt, val)                                            \
    do {                                                            \
        if ((rc = curl_easy_setopt(h->curl, opt, val)) != CURLE_OK) \
            return curl_fail(h, "libcurl option " #opt, rc);        \
    } while (0)
    SETOPT(CURLOPT_ERRORBUFFER, h->errbuf);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "https");
    SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SETOPT(CURLOPT_USERAGENT, "devid-agent/" DEVID_VERSION);
    SETOPT(CURLOPT_HTTPHEADER, h->headers);
    SETOPT(CURLOPT_CAINFO, cfg->ca_bundle);
    SETOPT(CURLOPT_CAPATH, NULL);
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    SETOPT(CURLOPT_SSLVERSION, ver);
    SETOPT(CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
    SETOPT(CURLOPT_SSL_CTX_DATA, h);
    SETOPT(CURLOPT_SSL_SESSIONID_CACHE, 0L);
    SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
    SETOPT(CURLOPT_WRITEDATA, h);
    SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
    SETOPT(CURLOPT_HEADERDATA, h);
    SETOPT(CURLOPT_TIMEOUT, cfg->timeout);
    SETOPT(CURLOPT_CONNECTTIMEOUT, cfg->timeout);
    SETOPT(CURLOPT_MAXCONNECTS, 1L);
    if (cfg->proxy != NULL) {
        SETOPT(CURLOPT_PROXY, cfg->proxy);
        SETOPT(CURLOPT_HTTPPROXYTUNNEL, 1L);
    }
#undef SETOPT
    return 0;
}

int http_new(struct http **out, const struct http_config *cfg)
{
    struct http *h = NULL;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || cfg == NULL || cfg->url == NULL || cfg->ca_bundle == NULL ||
        cfg->key == NULL || cfg->cert == NULL || cfg->body_max == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            log_err("cannot initialise libcurl");
            return DEVID_ERR_INTERNAL;
        }
        curl_ready = 1;
    }
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return DEVID_ERR_ALLOC;
    h->cfg = cfg;
    if ((r = load_key(h)) != 0)
        goto out;
    if ((h->curl = curl_easy_init()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if ((r = configure(h)) != 0)
        goto out;
    *out = h;
    h = NULL;
    r = 0;
out:
    http_free(h);
    return r;
}

void http_free(struct http *h)
{
    if (h == NULL)
        return;
    if (h->curl != NULL)
        curl_easy_cleanup(h->curl);
    curl_slist_free_all(h->headers);
    free(h->body);
    EVP_PKEY_free(h->key);
    tpmprov_free(h->prov);
    OPENSSL_cleanse(h->exporter, sizeof(h->exporter));
    free(h);
}

static enum http_fail classify(CURLcode rc)
{
    switch (rc) {
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
            return HTTP_FAIL_PEER_UNTRUSTED;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CLIENTCERT:
            return HTTP_FAIL_TLS;
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
        case CURLE_BAD_FUNCTION_ARGUMENT:
        case CURLE_OUT_OF_MEMORY:
            return HTTP_FAIL_LOCAL;
        default:
            return HTTP_FAIL_NETWORK;
    }
}

enum http_fail http_last_fail(const struct http *h)
{
    return h != NULL ? h->fail : HTTP_FAIL_NONE;
}

unsigned http_retry_after(const struct http *h)
{
    return h != NULL ? h->retry_after : 0;
}

/* prepare checks that a later request of the session still has its
 * connection and sets up the transfer of |req| to |url|. */
static int prepare(struct http *h, const char *url, const uint8_t *req, size_t req_len)
{
    curl_socket_t sock = CURL_SOCKET_BAD;

    if (h->requests > 0 && (curl_easy_getinfo(h->curl, CURLINFO_ACTIVESOCKET, &sock) != CURLE_OK ||
                            sock == CURL_SOCKET_BAD)) {
        log_err("the verifier closed the TLS connection between challenge and enroll");
        h->fail = HTTP_FAIL_NETWORK;
        return DEVID_ERR_NETWORK;
    }
    free(h->body);
    h->body = NULL;
    h->body_len = 0;
    h->too_large = false;
    h->exported = false;
    h->errbuf[0] = '\0';
    if (curl_easy_setopt(h->curl, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(h->curl, CURLOPT_FRESH_CONNECT, h->requests == 0 ? 1L : 0L) != CURLE_OK ||
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req_len) != CURLE_OK ||
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, req != NULL ? (const char *)req : "") !=
            CURLE_OK) {
        log_err("cannot set up the request to %s", url);
        return DEVID_ERR_INTERNAL;
    }
    return 0;
}

/* transfer_failed names the failure |rc| of the transfer to |url|. */
static int transfer_failed(struct http *h, const char *url, CURLcode rc)
{
    if (h->too_large) {
        log_err("POST %s: the answer is larger than %zu bytes", url, h->cfg->body_max);
        h->fail = HTTP_FAIL_NETWORK;
        return DEVID_ERR_TOO_LARGE;
    }
    h->fail = classify(rc);
    log_err("POST %s failed: %s%s", url, h->errbuf[0] != '\0' ? h->errbuf : curl_easy_strerror(rc),
            h->fail == HTTP_FAIL_PEER_UNTRUSTED
                ? " (the verifier's certificate does not verify against the CA bundle "
                  "given; check ca_bundle and the url's host name)"
                : "");
    return h->fail == HTTP_FAIL_NETWORK ? DEVID_ERR_NETWORK : DEVID_ERR_TLS;
}

int http_post(struct http *h, long *status, uint8_t **body, size_t *body_len, const char *path,
              const uint8_t *req, size_t req_len)
{
    char url[2048];
    curl_off_t connects = -1;
    CURLcode rc;
    int n, r;

    if (h == NULL || status == NULL || body == NULL || body_len == NULL || path == NULL ||
        (req == NULL && req_len > 0))
        return DEVID_ERR_INVALID_ARGUMENT;
    *status = 0;
    *body = NULL;
    *body_len = 0;
    h->fail = HTTP_FAIL_NONE;
    h->retry_after = 0;
    n = snprintf(url, sizeof(url), "%s%s", h->cfg->url, path);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        log_err("verifier URL %s is too long", h->cfg->url);
        return DEVID_ERR_CONFIG;
    }
    if ((r = prepare(h, url, req, req_len)) != 0)
        return r;
    log_debug("POST %s (%zu bytes)", url, req_len);
    rc = curl_easy_perform(h->curl);
    h->requests++;
    if (rc != CURLE_OK)
        return transfer_failed(h, url, rc);
    if (h->requests > 1 &&
        (curl_easy_getinfo(h->curl, CURLINFO_NUM_CONNECTS, &connects) != CURLE_OK ||
         connects != 0 || h->exporter_changed)) {
        log_err("the verifier closed the TLS connection between challenge and enroll");
        h->fail = HTTP_FAIL_NETWORK;
        return DEVID_ERR_NETWORK;
    }
    if (curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, status) != CURLE_OK)
        return DEVID_ERR_NETWORK;
    log_debug("POST %s: HTTP %ld, %zu bytes", url, *status, h->body_len);
    if (h->body == NULL && (h->body = malloc(1)) == NULL)
        return DEVID_ERR_ALLOC;
    *body = h->body;
    *body_len = h->body_len;
    h->body = NULL;
    h->body_len = 0;
    return 0;
}

void http_session_begin(struct http *h)
{
    if (h == NULL)
        return;
    h->requests = 0;
    h->have_exporter = false;
    h->exporter_changed = false;
    OPENSSL_cleanse(h->exporter, sizeof(h->exporter));
}

int http_exporter(const struct http *h, uint8_t out[TRANSCRIPT_EXPORTER_LEN])
{
    if (h == NULL || out == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (!h->have_exporter) {
        log_err("TLS: the channel binding (tls-exporter) of the connection is unknown");
        return DEVID_ERR_TLS;
    }
    memcpy(out, h->exporter, TRANSCRIPT_EXPORTER_LEN);
    return 0;
}
