#include "verifier/ca.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/store.h>

#include "common/err.h"
#include "common/log.h"
#include "common/pemfile.h"

struct ca {
    X509 *cert;
    STACK_OF(X509) *chain;
    EVP_PKEY *key;
};

static int load_certs(struct ca *ca, const char *path)
{
    int r;

    if ((r = pemfile_read_certs(&ca->chain, path, 8)) != 0)
        return r;
    ca->cert = sk_X509_shift(ca->chain);
    return 0;
}

static int check_key_file_mode(const char *uri)
{
    const char *path = uri;
    struct stat st;

    if (strncmp(uri, "file:", 5) == 0)
        path = uri + 5;
    else if (strchr(uri, ':') != NULL)
        return 0; /* a provider URI: no file to check */
    if (stat(path, &st) != 0) {
        log_err("cannot stat CA key %s: %s", path, strerror(errno));
        return DEVID_ERR_IO;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        log_err("CA key %s is accessible by group or others (mode %04o); chmod 600 it", path,
                (unsigned)(st.st_mode & 07777));
        return DEVID_ERR_CONFIG;
    }
    return 0;
}

static int load_key(struct ca *ca, const char *uri)
{
    char reason[256];
    OSSL_STORE_CTX *store = NULL;
    OSSL_STORE_INFO *info = NULL;
    int r = DEVID_ERR_INTERNAL;

    if ((r = check_key_file_mode(uri)) != 0)
        return r;
    if ((store = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL)) == NULL) {
        log_err("cannot open CA key %s: %s", uri, log_openssl_reason(reason, sizeof(reason)));
        return DEVID_ERR_CONFIG;
    }
    while (ca->key == NULL && !OSSL_STORE_eof(store)) {
        if ((info = OSSL_STORE_load(store)) == NULL)
            continue;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            ca->key = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    if (ca->key == NULL) {
        log_err("no private key at %s: %s", uri, log_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    r = 0;
out:
    OSSL_STORE_close(store);
    return r;
}

int ca_load(struct ca **out, const char *cert_file, const char *key_uri)
{
    struct ca *ca = NULL;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || cert_file == NULL || key_uri == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((ca = calloc(1, sizeof(*ca))) == NULL)
        return DEVID_ERR_ALLOC;
    if ((r = load_certs(ca, cert_file)) != 0 || (r = load_key(ca, key_uri)) != 0)
        goto out;
    if (X509_check_private_key(ca->cert, ca->key) != 1) {
        log_err("CA key %s does not match CA certificate %s", key_uri, cert_file);
        ERR_clear_error();
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    *out = ca;
    ca = NULL;
    r = 0;
out:
    ca_free(ca);
    return r;
}

void ca_free(struct ca *ca)
{
    if (ca == NULL)
        return;
    X509_free(ca->cert);
    sk_X509_pop_free(ca->chain, X509_free);
    EVP_PKEY_free(ca->key);
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

int ca_sign(struct ca *ca, X509 *cert)
{
    const EVP_MD *md = EVP_sha256();
    char reason[256];

    if (EVP_PKEY_get_base_id(ca->key) == EVP_PKEY_ED25519 ||
        EVP_PKEY_get_base_id(ca->key) == EVP_PKEY_ED448)
        md = NULL;
    if (X509_sign(cert, ca->key, md) <= 0) {
        log_err("signing the operational certificate failed: %s",
                log_openssl_reason(reason, sizeof(reason)));
        return DEVID_ERR_CRYPTO;
    }
    return 0;
}
