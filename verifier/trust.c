#include "verifier/trust.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "common/err.h"
#include "common/log.h"
#include "common/pemfile.h"

static int has_cert_suffix(const char *name)
{
    size_t n = strlen(name);

    return (n > 4 && (strcmp(name + n - 4, ".pem") == 0 || strcmp(name + n - 4, ".crt") == 0));
}

static void subject_str(char *buf, size_t len, X509 *x)
{
    X509_NAME_oneline(X509_get_subject_name(x), buf, (int)len);
}

static int add_roots_from(struct chain_store *store, const char *path, size_t *count)
{
    STACK_OF(X509) *certs = NULL;
    char subject[256];
    X509 *x;
    int i, r = DEVID_ERR_INTERNAL;

    if ((r = pemfile_read_certs(&certs, path, TRUST_MAX_ROOTS)) != 0)
        return r;
    for (i = 0; i < sk_X509_num(certs); i++) {
        x = sk_X509_value(certs, i);
        subject_str(subject, sizeof(subject), x);
        if (X509_check_ca(x) == 0 || (X509_get_extension_flags(x) & EXFLAG_SS) == 0) {
            log_err(
                "%s: %s is not a self-signed CA certificate; only roots belong in the trust "
                "directory (put intermediates in the intermediates file)",
                path, subject);
            r = DEVID_ERR_CONFIG;
            goto out;
        }
        if (++*count > TRUST_MAX_ROOTS) {
            log_err("more than %d roots in the trust directory", TRUST_MAX_ROOTS);
            r = DEVID_ERR_CONFIG;
            goto out;
        }
        if ((r = chain_store_add_root(store, x)) != 0)
            goto out;
        log_info("trusted root from %s: %s", path, subject);
    }
    r = 0;
out:
    sk_X509_pop_free(certs, X509_free);
    return r;
}

int trust_load(struct chain_store **out, const char *roots_dir, const char *intermediates)
{
    struct chain_store *store = NULL;
    STACK_OF(X509) *certs = NULL;
    struct dirent **names = NULL;
    char path[4096];
    size_t count = 0;
    int i, n = -1, r = DEVID_ERR_INTERNAL;

    if (out == NULL || roots_dir == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((store = chain_store_new()) == NULL)
        return DEVID_ERR_ALLOC;
    if ((n = scandir(roots_dir, &names, NULL, alphasort)) < 0) {
        log_err("cannot read trust directory %s: %s", roots_dir, strerror(errno));
        r = DEVID_ERR_IO;
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (names[i]->d_name[0] == '.' || !has_cert_suffix(names[i]->d_name))
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", roots_dir, names[i]->d_name) >=
            (int)sizeof(path)) {
            r = DEVID_ERR_CONFIG;
            goto out;
        }
        if ((r = add_roots_from(store, path, &count)) != 0)
            goto out;
    }
    if (count == 0) {
        log_err("no root certificates (*.pem, *.crt) in trust directory %s", roots_dir);
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    if (intermediates != NULL) {
        if ((r = pemfile_read_certs(&certs, intermediates, CHAIN_MAX_INTERMEDIATES * 8)) != 0)
            goto out;
        for (i = 0; i < sk_X509_num(certs); i++) {
            if ((r = chain_store_add_intermediate(store, sk_X509_value(certs, i))) != 0)
                goto out;
        }
    }
    *out = store;
    store = NULL;
    r = 0;
out:
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    sk_X509_pop_free(certs, X509_free);
    chain_store_free(store);
    return r;
}
