#include "common/pemfile.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include "common/err.h"
#include "common/log.h"

int pemfile_read_certs(STACK_OF(X509) **out, const char *path, size_t max)
{
    STACK_OF(X509) *certs = NULL;
    char reason[256];
    BIO *bio = NULL;
    X509 *x = NULL;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || path == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((bio = BIO_new_file(path, "r")) == NULL) {
        log_err("cannot read %s: %s", path, log_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_IO;
        goto out;
    }
    if ((certs = sk_X509_new_null()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if ((size_t)sk_X509_num(certs) >= max) {
            X509_free(x);
            log_err("%s holds more than %zu certificates", path, max);
            r = DEVID_ERR_CONFIG;
            goto out;
        }
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            r = DEVID_ERR_ALLOC;
            goto out;
        }
    }
    if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
        log_err("bad certificate in %s: %s", path, log_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    ERR_clear_error();
    if (sk_X509_num(certs) == 0) {
        log_err("no PEM certificate in %s", path);
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    *out = certs;
    certs = NULL;
    r = 0;
out:
    sk_X509_pop_free(certs, X509_free);
    BIO_free(bio);
    return r;
}

int pemfile_write_certs(BIO *bio, STACK_OF(X509) *certs)
{
    int i;

    for (i = 0; i < sk_X509_num(certs); i++) {
        if (PEM_write_bio_X509(bio, sk_X509_value(certs, i)) != 1)
            return DEVID_ERR_CRYPTO;
    }
    return 0;
}
