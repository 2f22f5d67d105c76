#include "verifier/pki/trust.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/conf.h"
#include "common/err.h"
#include "common/io/log.h"
#include "common/io/pemfile.h"
#include "common/io/store.h"
#include "common/pem.h"
#include "verifier/core/crl.h"
#include "verifier/core/mfrconf.h"

struct trust {
    struct chain_store *store;
    /* The TPM vendors' roots, for EK certificates (CHAIN_LEAF_EK). */
    struct chain_store *ek_store;
    struct policy *policy;
};

void trust_free(struct trust *trust)
{
    if (trust == NULL)
        return;
    chain_store_free(trust->store);
    chain_store_free(trust->ek_store);
    policy_free(trust->policy);
    OPENSSL_free(trust);
}

const struct chain_store *trust_get0_store(const struct trust *trust)
{
    return trust == NULL ? NULL : trust->store;
}

const struct chain_store *trust_get0_ek_store(const struct trust *trust)
{
    return trust == NULL ? NULL : trust->ek_store;
}

const struct policy *trust_get0_policy(const struct trust *trust)
{
    return trust == NULL ? NULL : trust->policy;
}

/* read_file reads |path| whole (at most |max| bytes), NUL-terminated; a file
 * that cannot be read is DEVID_ERR_IO ("PATH: cannot open: REASON"), one
 * that is too large DEVID_ERR_CONFIG. */
static int read_file(uint8_t **out, size_t *len, const char *path, size_t max, char *why,
                     size_t why_len)
{
    char reason[256];
    size_t n = strlen(path);
    int r = store_read(out, len, path, max, reason, sizeof(reason));
    const char *tail = reason;

    if (r == 0 || r == DEVID_ERR_ALLOC)
        return r;
    if (strncmp(reason, path, n) == 0 && strncmp(reason + n, ": ", 2) == 0)
        tail = reason + n + 2; /* store_read names the path itself */
    if (r == DEVID_ERR_TOO_LARGE) {
        snprintf(why, why_len, "%s: %s", path, tail);
        return DEVID_ERR_CONFIG;
    }
    snprintf(why, why_len, "%s: cannot open: %s", path, tail);
    return DEVID_ERR_IO;
}

/* read_certs reads every certificate of PEM or DER file |path|, at most |max|. */
static int read_certs(STACK_OF(X509) **out, const char *path, size_t max, char *why, size_t why_len)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char reason[256];
    int r;

    if ((r = read_file(&buf, &len, path, PEMFILE_MAX, why, why_len)) != 0)
        return r;
    if ((r = pem_parse_certs(out, buf, len, max, 0, reason, sizeof(reason))) != 0)
        snprintf(why, why_len, "%s: %s", path, reason);
    free(buf);
    return r;
}

/* load_crls adds every CRL of PEM or DER file |path| to manufacturer |name|. */
static int load_crls(struct chain_store *store, const char *name, const char *path, char *why,
                     size_t why_len)
{
    STACK_OF(X509_CRL) *crls = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    char reason[256];
    int i, r;

    if ((r = read_file(&buf, &len, path, PEMFILE_MAX, why, why_len)) != 0)
        return r;
    if ((r = crl_parse(&crls, buf, len, CHAIN_MAX_CRLS, reason, sizeof(reason))) != 0)
        snprintf(why, why_len, "%s: %s", path, reason);
    for (i = 0; r == 0 && i < sk_X509_CRL_num(crls); i++) {
        if ((r = chain_store_add_crl(store, name, sk_X509_CRL_value(crls, i))) != 0)
            snprintf(why, why_len, "%s: cannot add CRL: %s", path, devid_err_str(r));
    }
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    free(buf);
    return r;
}

/* Joins |path| to the directory of |conf| unless |path| is absolute. */
static int resolve(char *out, size_t len, const char *conf, const char *path)
{
    const char *slash = strrchr(conf, '/');
    int n;

    if (path[0] == '/' || slash == NULL)
        n = snprintf(out, len, "%s", path);
    else
        n = snprintf(out, len, "%.*s/%s", (int)(slash - conf), conf, path);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int add_roots(struct chain_store *store, const char *name, const char *path, char *why,
                     size_t why_len)
{
    STACK_OF(X509) *certs = NULL;
    char subject[300];
    X509 *x;
    int i, r;

    if ((r = read_certs(&certs, path, TRUST_MAX_ROOTS, why, why_len)) != 0)
        return r;
    for (i = 0; i < sk_X509_num(certs); i++) {
        x = sk_X509_value(certs, i);
        chain_subject(subject, sizeof(subject), x);
        r = name != NULL ? chain_store_add_mfr_root(store, name, x)
                         : chain_store_add_root(store, x);
        if (r != 0) {
            snprintf(why, why_len,
                     "%s: root %s refused (%s): a root must be a self-signed CA with a subject O "
                     "or CN, listed once (put intermediates in the intermediates file)",
                     path, subject, devid_err_str(r));
            r = DEVID_ERR_CONFIG;
            goto out;
        }
        log_info("trusted root from %s: %s", path, subject);
    }
    r = 0;
out:
    sk_X509_pop_free(certs, X509_free);
    return r;
}

static int add_intermediates(struct chain_store *store, const char *path, char *why, size_t why_len)
{
    STACK_OF(X509) *certs = NULL;
    int i, r;

    if ((r = read_certs(&certs, path, CHAIN_MAX_CONFIG_INTERMEDIATES, why, why_len)) != 0)
        return r;
    for (i = 0; i < sk_X509_num(certs); i++) {
        if ((r = chain_store_add_intermediate(store, sk_X509_value(certs, i))) != 0) {
            snprintf(why, why_len, "%s: cannot add intermediate: %s", path, devid_err_str(r));
            r = DEVID_ERR_CONFIG;
            goto out;
        }
    }
    r = 0;
out:
    sk_X509_pop_free(certs, X509_free);
    return r;
}

/* build_store fills |store| with the entries of |mc| of kind |kind|. */
static int build_store(struct chain_store *store, const struct mfrconf *mc, enum mfrconf_kind kind,
                       const char *conf, char *why, size_t why_len)
{
    const char *what = kind == MFRCONF_TPM_VENDOR ? "TPM vendor" : "manufacturer";
    const struct mfrconf_entry *e;
    char path[4096];
    size_t i, j;
    int r;

    for (i = 0; i < mc->n; i++) {
        e = mc->entries[i];
        if (e->kind != kind)
            continue;
        if ((r = chain_store_add_manufacturer(store, e->name, &e->settings)) != 0) {
            snprintf(why, why_len, "%s: %s \"%s\": %s", conf, what, e->name, devid_err_str(r));
            return r;
        }
    }
    for (i = 0; i < mc->n; i++) {
        e = mc->entries[i];
        if (e->kind != kind)
            continue;
#define EACH(arr, cnt, call)                                                             \
    for (j = 0; j < (cnt); j++) {                                                        \
        if (resolve(path, sizeof(path), conf, (arr)[j]) != 0) {                          \
            snprintf(why, why_len, "%s: %s \"%s\": path too long", conf, what, e->name); \
            return DEVID_ERR_CONFIG;                                                     \
        }                                                                                \
        if ((r = (call)) != 0)                                                           \
            return r;                                                                    \
    }
        EACH(e->roots, e->n_roots, add_roots(store, e->name, path, why, why_len))
        EACH(e->intermediates, e->n_intermediates, add_intermediates(store, path, why, why_len))
        EACH(e->crls, e->n_crls, load_crls(store, e->name, path, why, why_len))
#undef EACH
    }
    return 0;
}

/* An empty trust state that takes |policy| (may be NULL), also on failure;
 * NULL when out of memory. */
static struct trust *new_trust(struct policy *policy)
{
    struct trust *trust = OPENSSL_zalloc(sizeof(*trust));

    if (trust == NULL) {
        policy_free(policy);
        return NULL;
    }
    trust->policy = policy;
    if ((trust->store = chain_store_new()) == NULL ||
        (trust->ek_store = chain_store_new()) == NULL) {
        trust_free(trust);
        return NULL;
    }
    chain_store_set_leaf(trust->ek_store, CHAIN_LEAF_EK);
    return trust;
}

int trust_new_from_files(struct trust **out, const char *manufacturers_conf,
                         const char *policy_conf, char *why, size_t why_len)
{
    struct trust *trust = NULL;
    struct mfrconf *mc = NULL;
    uint8_t *buf = NULL;
    const char *name;
    size_t len = 0, i;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || manufacturers_conf == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    why[0] = '\0';
    if ((trust = new_trust(NULL)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if ((r = read_file(&buf, &len, manufacturers_conf, CONF_MAX_SIZE, why, why_len)) != 0 ||
        (r = mfrconf_parse(&mc, (const char *)buf, len, manufacturers_conf, why, why_len)) != 0 ||
        (r = build_store(trust->store, mc, MFRCONF_MANUFACTURER, manufacturers_conf, why,
                         why_len)) != 0 ||
        (r = build_store(trust->ek_store, mc, MFRCONF_TPM_VENDOR, manufacturers_conf, why,
                         why_len)) != 0)
        goto out;
    free(buf);
    buf = NULL;
    if (policy_conf == NULL) {
        if ((trust->policy = policy_new()) == NULL) {
            r = DEVID_ERR_ALLOC;
            goto out;
        }
    } else if ((r = read_file(&buf, &len, policy_conf, CONF_MAX_SIZE, why, why_len)) != 0 ||
               (r = policy_parse(&trust->policy, (const char *)buf, len, policy_conf, why,
                                 why_len)) != 0) {
        goto out;
    }
    for (i = 0; (name = policy_get0_manufacturer(trust->policy, i)) != NULL; i++) {
        if (!chain_store_has_manufacturer(trust->store, name)) {
            snprintf(why, why_len, "%s: manufacturer \"%s\" is not configured in %s", policy_conf,
                     name, manufacturers_conf);
            r = DEVID_ERR_CONFIG;
            goto out;
        }
    }
    *out = trust;
    trust = NULL;
    r = 0;
out:
    free(buf);
    mfrconf_free(mc);
    trust_free(trust);
    return r;
}

static int has_cert_suffix(const char *name)
{
    size_t n = strlen(name);

    return (n > 4 && (strcmp(name + n - 4, ".pem") == 0 || strcmp(name + n - 4, ".crt") == 0));
}

static int load_roots_dir(struct chain_store *store, const char *roots_dir,
                          const char *intermediates, char *why, size_t why_len)
{
    struct dirent **names = NULL;
    char path[4096];
    int i, n = -1, r = DEVID_ERR_INTERNAL;

    if ((n = scandir(roots_dir, &names, NULL, alphasort)) < 0) {
        snprintf(why, why_len, "cannot read trust directory %s: %s", roots_dir, strerror(errno));
        r = DEVID_ERR_IO;
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (names[i]->d_name[0] == '.' || !has_cert_suffix(names[i]->d_name))
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", roots_dir, names[i]->d_name) >=
            (int)sizeof(path)) {
            snprintf(why, why_len, "%s: path too long", roots_dir);
            r = DEVID_ERR_CONFIG;
            goto out;
        }
        if ((r = add_roots(store, NULL, path, why, why_len)) != 0)
            goto out;
        if (chain_store_root_count(store) > TRUST_MAX_ROOTS) {
            snprintf(why, why_len, "more than %d roots in the trust directory", TRUST_MAX_ROOTS);
            r = DEVID_ERR_CONFIG;
            goto out;
        }
    }
    if (chain_store_root_count(store) == 0) {
        snprintf(why, why_len, "no root certificates (*.pem, *.crt) in trust directory %s",
                 roots_dir);
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    if (intermediates != NULL && (r = add_intermediates(store, intermediates, why, why_len)) != 0)
        goto out;
    r = 0;
out:
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return r;
}

int trust_new_from_roots(struct trust **out, const char *roots_dir, const char *intermediates,
                         struct policy *policy, char *why, size_t why_len)
{
    struct trust *trust = NULL;
    int r;

    if (out == NULL || roots_dir == NULL || why == NULL || why_len == 0) {
        policy_free(policy);
        return DEVID_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    why[0] = '\0';
    if (policy == NULL && (policy = policy_new()) == NULL)
        return DEVID_ERR_ALLOC;
    if ((trust = new_trust(policy)) == NULL)
        return DEVID_ERR_ALLOC;
    if ((r = load_roots_dir(trust->store, roots_dir, intermediates, why, why_len)) != 0) {
        trust_free(trust);
        return r;
    }
    *out = trust;
    return 0;
}
