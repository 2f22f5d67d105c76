#include "verifier/pki/ca.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>

#include "common/err.h"
#include "common/io/log.h"
#include "common/io/pemfile.h"
#include "verifier/core/chain.h"
#include "verifier/core/crl.h"
#include "verifier/pki/signer.h"

struct ca {
    X509 *cert;
    STACK_OF(X509) *chain;
    /* The key, or (in the serving process) the signer that holds it. */
    EVP_PKEY *key;
    struct signer *remote;
    /* A key behind a provider other than OpenSSL's default (a TPM, an HSM)
     * is used by one thread at a time. */
    int serialize;
    pthread_mutex_t lock;
    /* Property query that sends the signature to the key's provider. */
    char propq[80];
};

static int load_certs(struct ca *ca, const char *path)
{
    char why[PATH_MAX + 256];
    int r;

    if ((r = pemfile_read_certs(&ca->chain, path, 1 + CHAIN_MAX_DEPTH, why, sizeof(why))) != 0) {
        log_err("CA certificate: %s", why);
        return r;
    }
    ca->cert = sk_X509_shift(ca->chain);
    return 0;
}

static int check_key_file_mode(const char *uri, const char *what)
{
    const char *path = uri;
    struct stat st;
    int fd;

    if (strncmp(uri, "file:", 5) == 0)
        path = uri + 5;
    else if (strchr(uri, ':') != NULL)
        return 0; /* a provider URI: no file to check */
    if (stat(path, &st) != 0) {
        log_err("cannot stat %s %s: %s", what, path, strerror(errno));
        return DEVID_ERR_IO;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        log_err("%s %s is accessible by group or others (mode %04o); chmod 600 it", what, path,
                (unsigned)(st.st_mode & 07777));
        return DEVID_ERR_CONFIG;
    }
    /* Say why now: OpenSSL's store would only say "system lib". */
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
        log_err("cannot read %s %s (owner uid %u, read as uid %u): %s%s", what, path,
                (unsigned)st.st_uid, (unsigned)geteuid(), strerror(errno),
                errno == EACCES ? "; the key must be owned by the user the verifier starts as "
                                  "(root under the shipped unit, which has no CAP_DAC_OVERRIDE)"
                                : "");
        return DEVID_ERR_CONFIG;
    }
    close(fd);
    return 0;
}

int ca_load_key(EVP_PKEY **out, const char *uri, const char *what)
{
    char reason[256];
    OSSL_STORE_CTX *store = NULL;
    OSSL_STORE_INFO *info = NULL;
    EVP_PKEY *key = NULL;
    int r = DEVID_ERR_INTERNAL;

    *out = NULL;
    if ((r = check_key_file_mode(uri, what)) != 0)
        return r;
    if ((store = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL)) == NULL) {
        log_err("cannot open %s %s: %s", what, uri, devid_openssl_reason(reason, sizeof(reason)));
        return DEVID_ERR_CONFIG;
    }
    while (key == NULL && !OSSL_STORE_eof(store)) {
        if ((info = OSSL_STORE_load(store)) == NULL)
            continue;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            key = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    if (key == NULL) {
        log_err("no private key at %s (%s): %s", uri, what,
                devid_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    *out = key;
    r = 0;
out:
    OSSL_STORE_close(store);
    return r;
}

static int load_key(struct ca *ca, const char *uri)
{
    return ca_load_key(&ca->key, uri, "CA key");
}

int ca_new(struct ca **out, const char *cert_file, const char *key_uri)
{
    const OSSL_PROVIDER *provider;
    struct ca *ca = NULL;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || cert_file == NULL || key_uri == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((ca = calloc(1, sizeof(*ca))) == NULL)
        return DEVID_ERR_ALLOC;
    pthread_mutex_init(&ca->lock, NULL);
    if ((r = load_certs(ca, cert_file)) != 0 || (r = load_key(ca, key_uri)) != 0)
        goto out;
    if (X509_check_private_key(ca->cert, ca->key) != 1) {
        log_err("CA key %s does not match CA certificate %s", key_uri, cert_file);
        ERR_clear_error();
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    provider = EVP_PKEY_get0_provider(ca->key);
    ca->serialize = provider == NULL || strcmp(OSSL_PROVIDER_get0_name(provider), "default") != 0;
    if (ca->serialize && provider != NULL)
        snprintf(ca->propq, sizeof(ca->propq), "?provider=%s", OSSL_PROVIDER_get0_name(provider));
    log_info("issuing CA %s, key %s%s%s", cert_file, key_uri, ca->serialize ? " via provider " : "",
             ca->serialize && provider != NULL ? OSSL_PROVIDER_get0_name(provider) : "");
    *out = ca;
    ca = NULL;
    r = 0;
out:
    ca_free(ca);
    return r;
}

int ca_new_remote(struct ca **out, const char *cert_file, struct signer *signer)
{
    struct ca *ca = NULL;
    int r;

    if (out == NULL || cert_file == NULL || signer == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((ca = calloc(1, sizeof(*ca))) == NULL)
        return DEVID_ERR_ALLOC;
    pthread_mutex_init(&ca->lock, NULL);
    if ((r = load_certs(ca, cert_file)) != 0) {
        ca_free(ca);
        return r;
    }
    ca->remote = signer;
    log_info("issuing CA %s; its key is held by the signer process (pid %d)", cert_file,
             signer_pid(signer));
    *out = ca;
    return 0;
}

void ca_free(struct ca *ca)
{
    if (ca == NULL)
        return;
    X509_free(ca->cert);
    sk_X509_pop_free(ca->chain, X509_free);
    EVP_PKEY_free(ca->key);
    pthread_mutex_destroy(&ca->lock);
    free(ca);
}

X509 *ca_get0_cert(const struct ca *ca)
{
    return ca->cert;
}

STACK_OF(X509) *ca_get0_chain(const struct ca *ca)
{
    return ca->chain;
}

/*
 * sign_ctx returns a digest-sign context for the CA key: SHA-256 (none for
 * EdDSA), and for a key behind another provider a property query that makes
 * OpenSSL sign there rather than fail in the default provider.
 */
static EVP_MD_CTX *sign_ctx(const struct ca *ca)
{
    int id = EVP_PKEY_get_base_id(ca->key);
    const char *md = id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448 ? NULL : "SHA256";
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();

    if (mctx == NULL)
        return NULL;
    if (EVP_DigestSignInit_ex(mctx, NULL, md, NULL, ca->propq[0] != '\0' ? ca->propq : NULL,
                              ca->key, NULL) != 1) {
        EVP_MD_CTX_free(mctx);
        return NULL;
    }
    return mctx;
}

/* The providers ca_use_provider loaded, for ca_release_providers. */
static OSSL_PROVIDER *loaded[2];

int ca_use_provider(const char *name, const char *tcti)
{
    char reason[256];

    if (tcti != NULL && setenv("TPM2OPENSSL_TCTI", tcti, 1) != 0)
        return DEVID_ERR_INTERNAL;
    /* default first: the provider only holds the key, OpenSSL's own code
     * does the hashing. */
    if (loaded[0] != NULL || (loaded[0] = OSSL_PROVIDER_load(NULL, "default")) == NULL ||
        (loaded[1] = OSSL_PROVIDER_load(NULL, name)) == NULL) {
        log_err("cannot load OpenSSL provider \"%s\" for the CA key: %s", name,
                devid_openssl_reason(reason, sizeof(reason)));
        return DEVID_ERR_CONFIG;
    }
    return 0;
}

void ca_release_providers(void)
{
    size_t i;

    for (i = sizeof(loaded) / sizeof(loaded[0]); i-- > 0;) {
        if (loaded[i] != NULL)
            OSSL_PROVIDER_unload(loaded[i]);
        loaded[i] = NULL;
    }
}

static int sign_cert(void *obj, EVP_MD_CTX *mctx)
{
    return X509_sign_ctx(obj, mctx) > 0;
}

static int sign_view(void *obj, EVP_MD_CTX *mctx)
{
    return certview_sign(obj, mctx) == 0;
}

static int sign_crl(void *obj, EVP_MD_CTX *mctx)
{
    return X509_CRL_sign_ctx(obj, mctx) > 0;
}

/* Signs |obj| with the CA key through |sign|, one thread at a time for a
 * key behind another provider; |what| names it in the logged error. */
static int sign_with(struct ca *ca, int (*sign)(void *obj, EVP_MD_CTX *mctx), void *obj,
                     const char *what)
{
    EVP_MD_CTX *mctx;
    char reason[256];
    int ok;

    if (ca->serialize)
        pthread_mutex_lock(&ca->lock);
    ok = (mctx = sign_ctx(ca)) != NULL && sign(obj, mctx);
    if (ca->serialize)
        pthread_mutex_unlock(&ca->lock);
    EVP_MD_CTX_free(mctx);
    if (!ok) {
        log_err("signing %s failed: %s", what, devid_openssl_reason(reason, sizeof(reason)));
        return DEVID_ERR_CRYPTO;
    }
    return 0;
}

/* Gives |x| a placeholder signature algorithm, so that it encodes: the
 * signer replaces it with its key's. OpenSSL has no setter for an unsigned
 * certificate's algorithm fields; both are members of |x|, so the const its
 * getters return is cast away here, and only here. */
static int set_placeholder_alg(X509 *x)
{
    const X509_ALGOR *tbs_alg = X509_get0_tbs_sigalg(x), *alg = NULL;
    const ASN1_BIT_STRING *sig = NULL;

    X509_get0_signature(&sig, &alg, x);
    if (X509_ALGOR_set0((X509_ALGOR *)tbs_alg, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF,
                        NULL) != 1 ||
        X509_ALGOR_set0((X509_ALGOR *)alg, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF,
                        NULL) != 1)
        return DEVID_ERR_ALLOC;
    return 0;
}

/* Asks the signer to sign |cert|; |*der| gets its answer, checked to be the
 * certificate asked for. */
static int sign_remote(struct ca *ca, X509 *cert, uint8_t **der, size_t *der_len)
{
    uint8_t *req = NULL;
    char why[SIGNREQ_MAX_WHY + 64];
    int len, r = DEVID_ERR_INTERNAL;

    if ((r = set_placeholder_alg(cert)) != 0)
        return r;
    if ((len = i2d_X509(cert, &req)) <= 0)
        return DEVID_ERR_CRYPTO;
    if ((r = signer_call(ca->remote, der, der_len, SIGNREQ_CERT, req, (size_t)len, why,
                         sizeof(why))) != 0) {
        log_err("signing the operational certificate: %s", why);
        goto out;
    }
    if (signreq_cert_answer_check(req, (size_t)len, *der, *der_len, why, sizeof(why)) != 0) {
        log_err("the signer answered with another certificate than the one asked for: %s", why);
        free(*der);
        *der = NULL;
        *der_len = 0;
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    r = 0;
out:
    OPENSSL_free(req);
    return r;
}

int ca_sign(struct ca *ca, X509 *cert, uint8_t **der, size_t *der_len)
{
    unsigned char *p;
    int len, r;

    *der = NULL;
    *der_len = 0;
    if (ca->remote != NULL)
        return sign_remote(ca, cert, der, der_len);
    if ((r = sign_with(ca, sign_cert, cert, "the operational certificate")) != 0)
        return r;
    if ((len = i2d_X509(cert, NULL)) <= 0 || (*der = malloc((size_t)len)) == NULL)
        return DEVID_ERR_CRYPTO;
    p = *der;
    if (i2d_X509(cert, &p) != len) {
        free(*der);
        *der = NULL;
        return DEVID_ERR_CRYPTO;
    }
    *der_len = (size_t)len;
    return 0;
}

int ca_sign_view(struct ca *ca, CERT_VIEW *cert, uint8_t **der, size_t *der_len)
{
    int r;

    *der = NULL;
    *der_len = 0;
    if (ca->remote != NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if ((r = sign_with(ca, sign_view, cert, "the operational certificate")) != 0)
        return r;
    return certview_encode(cert, der, der_len);
}

/* Asks the signer to build and sign the CRL of |contents|. */
static int sign_crl_remote(struct ca *ca, X509_CRL **out, const struct signreq_crl *contents)
{
    uint8_t *req = NULL, *der = NULL;
    const unsigned char *p;
    size_t req_len = 0, der_len = 0;
    char why[SIGNREQ_MAX_WHY + 64];
    int r;

    if ((r = signreq_crl_encode(&req, &req_len, contents)) != 0)
        return r;
    if ((r = signer_call(ca->remote, &der, &der_len, SIGNREQ_CRL, req, req_len, why,
                         sizeof(why))) != 0) {
        log_err("signing the CRL: %s", why);
        goto out;
    }
    p = der;
    if ((*out = d2i_X509_CRL(NULL, &p, (long)der_len)) == NULL || p != der + der_len) {
        X509_CRL_free(*out);
        *out = NULL;
        log_err("the signer answered with something other than a CRL");
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    r = 0;
out:
    free(req);
    free(der);
    return r;
}

int ca_sign_crl(struct ca *ca, X509_CRL **out, const struct signreq_crl *contents)
{
    X509_CRL *crl = NULL;
    int r;

    *out = NULL;
    if (ca->remote != NULL)
        return sign_crl_remote(ca, out, contents);
    if (contents->this_update < 0 || contents->next_update_seconds > LONG_MAX)
        return DEVID_ERR_INVALID_ARGUMENT;
    if ((r = crl_build(&crl, ca->cert, contents->entries, contents->n,
                       (time_t)contents->this_update, (long)contents->next_update_seconds,
                       contents->number)) != 0 ||
        (r = sign_with(ca, sign_crl, crl, "the CRL")) != 0) {
        X509_CRL_free(crl);
        return r;
    }
    *out = crl;
    return 0;
}
