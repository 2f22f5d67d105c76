#include "verifier/core/chain.h"

#include <limits.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "verifier/core/chain_crl.h"
#include "verifier/core/chain_rules.h"

struct mfr {
    char name[CHAIN_NAME_MAX];
    struct chain_mfr_settings set;
    STACK_OF(X509) *roots;
    STACK_OF(X509_CRL) *crls;
};

struct chain_store {
    uint64_t id;
    enum chain_leaf leaf;
    X509_STORE *store;
    STACK_OF(X509) *intermediates;
    struct mfr *mfrs[CHAIN_MAX_MANUFACTURERS];
    size_t n_mfrs;
    size_t roots;
    size_t crls;
};

void chain_mfr_settings_default(struct chain_mfr_settings *s)
{
    if (s == NULL)
        return;
    memset(s, 0, sizeof(*s));
    s->min_rsa_bits = 2048;
    s->min_ec_bits = 256;
    s->allow_sha1 = 0;
    s->revocation = CHAIN_REVOCATION_NONE;
    s->max_depth = CHAIN_DEFAULT_MAX_DEPTH;
}

struct chain_store *chain_store_new(void)
{
    struct chain_store *s;

    static _Atomic uint64_t last_id;

    if ((s = OPENSSL_zalloc(sizeof(*s))) == NULL)
        return NULL;
    s->id = atomic_fetch_add_explicit(&last_id, 1, memory_order_relaxed) + 1;
    if ((s->store = X509_STORE_new()) == NULL || (s->intermediates = sk_X509_new_null()) == NULL) {
        chain_store_free(s);
        return NULL;
    }
    return s;
}

void chain_store_set_leaf(struct chain_store *store, enum chain_leaf leaf)
{
    if (store != NULL)
        store->leaf = leaf;
}

uint64_t chain_store_id(const struct chain_store *store)
{
    return store != NULL ? store->id : 0;
}

static void mfr_free(struct mfr *m)
{
    if (m == NULL)
        return;
    sk_X509_pop_free(m->roots, X509_free);
    sk_X509_CRL_pop_free(m->crls, X509_CRL_free);
    OPENSSL_free(m);
}

void chain_store_free(struct chain_store *store)
{
    size_t i;

    if (store == NULL)
        return;
    for (i = 0; i < store->n_mfrs; i++)
        mfr_free(store->mfrs[i]);
    X509_STORE_free(store->store);
    sk_X509_pop_free(store->intermediates, X509_free);
    OPENSSL_free(store);
}

static struct mfr *find_mfr(const struct chain_store *store, const char *name)
{
    size_t i;

    for (i = 0; i < store->n_mfrs; i++) {
        if (strcmp(store->mfrs[i]->name, name) == 0)
            return store->mfrs[i];
    }
    return NULL;
}

static int printable_name(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n >= CHAIN_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    }
    return 1;
}

int chain_store_add_manufacturer(struct chain_store *store, const char *name,
                                 const struct chain_mfr_settings *settings)
{
    struct mfr *m = NULL;
    int r = DEVID_ERR_INTERNAL;

    if (store == NULL || name == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (!printable_name(name) || find_mfr(store, name) != NULL)
        return DEVID_ERR_CONFIG;
    if (store->n_mfrs >= CHAIN_MAX_MANUFACTURERS)
        return DEVID_ERR_TOO_LARGE;
    if ((m = OPENSSL_zalloc(sizeof(*m))) == NULL || (m->roots = sk_X509_new_null()) == NULL ||
        (m->crls = sk_X509_CRL_new_null()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    memcpy(m->name, name, strlen(name) + 1);
    if (settings != NULL)
        m->set = *settings;
    else
        chain_mfr_settings_default(&m->set);
    store->mfrs[store->n_mfrs++] = m;
    m = NULL;
    r = 0;
out:
    mfr_free(m);
    return r;
}

static const struct mfr *mfr_of_root(const struct chain_store *store, X509 *root)
{
    size_t i;
    int j;

    for (i = 0; i < store->n_mfrs; i++) {
        for (j = 0; j < sk_X509_num(store->mfrs[i]->roots); j++) {
            if (X509_cmp(sk_X509_value(store->mfrs[i]->roots, j), root) == 0)
                return store->mfrs[i];
        }
    }
    return NULL;
}

int chain_store_add_mfr_root(struct chain_store *store, const char *name, X509 *root)
{
    struct mfr *m;

    if (store == NULL || name == NULL || root == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if ((m = find_mfr(store, name)) == NULL)
        return DEVID_ERR_NOT_FOUND;
    if (X509_check_ca(root) == 0 || (X509_get_extension_flags(root) & EXFLAG_SS) == 0 ||
        mfr_of_root(store, root) != NULL)
        return DEVID_ERR_CONFIG;
    if (store->roots >= CHAIN_MAX_ROOTS)
        return DEVID_ERR_TOO_LARGE;
    if (X509_up_ref(root) != 1)
        return DEVID_ERR_INTERNAL;
    if (sk_X509_push(m->roots, root) <= 0) {
        X509_free(root);
        return DEVID_ERR_ALLOC;
    }
    if (X509_STORE_add_cert(store->store, root) != 1) {
        X509_free(sk_X509_pop(m->roots));
        return DEVID_ERR_CONFIG;
    }
    store->roots++;
    return 0;
}

int chain_store_add_crl(struct chain_store *store, const char *name, X509_CRL *crl)
{
    struct mfr *m;

    if (store == NULL || name == NULL || crl == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if ((m = find_mfr(store, name)) == NULL)
        return DEVID_ERR_NOT_FOUND;
    if (store->crls >= CHAIN_MAX_CRLS)
        return DEVID_ERR_TOO_LARGE;
    if (X509_CRL_up_ref(crl) != 1)
        return DEVID_ERR_INTERNAL;
    if (sk_X509_CRL_push(m->crls, crl) <= 0) {
        X509_CRL_free(crl);
        return DEVID_ERR_ALLOC;
    }
    store->crls++;
    return 0;
}

/* Copies the first |nid| entry of |name| into |buf| as ASCII, with bytes
 * outside printable ASCII replaced by '?'. Returns 0 when found. */
static int name_entry(char *buf, size_t len, const X509_NAME *name, int nid)
{
    const X509_NAME_ENTRY *e;
    unsigned char *utf8 = NULL;
    int n, i;
    size_t j = 0;

    if ((i = X509_NAME_get_index_by_NID(name, nid, -1)) < 0)
        return -1;
    if ((e = X509_NAME_get_entry(name, i)) == NULL)
        return -1;
    if ((n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e))) < 0)
        return -1;
    for (i = 0; i < n && j + 1 < len; i++)
        buf[j++] = (utf8[i] >= 0x20 && utf8[i] < 0x7f) ? (char)utf8[i] : '?';
    buf[j] = '\0';
    OPENSSL_free(utf8);
    return j > 0 ? 0 : -1;
}

int chain_store_add_root(struct chain_store *store, X509 *root)
{
    char name[CHAIN_NAME_MAX];
    const X509_NAME *subject;
    int r;

    if (store == NULL || root == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    subject = X509_get_subject_name(root);
    if (name_entry(name, sizeof(name), subject, NID_organizationName) != 0 &&
        name_entry(name, sizeof(name), subject, NID_commonName) != 0)
        return DEVID_ERR_CONFIG;
    if (find_mfr(store, name) == NULL && (r = chain_store_add_manufacturer(store, name, NULL)) != 0)
        return r;
    return chain_store_add_mfr_root(store, name, root);
}

int chain_store_add_intermediate(struct chain_store *store, X509 *cert)
{
    if (store == NULL || cert == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (sk_X509_num(store->intermediates) >= CHAIN_MAX_CONFIG_INTERMEDIATES)
        return DEVID_ERR_TOO_LARGE;
    if (X509_up_ref(cert) != 1)
        return DEVID_ERR_INTERNAL;
    if (sk_X509_push(store->intermediates, cert) <= 0) {
        X509_free(cert);
        return DEVID_ERR_ALLOC;
    }
    return 0;
}

size_t chain_store_root_count(const struct chain_store *store)
{
    return store == NULL ? 0 : store->roots;
}

int chain_store_has_manufacturer(const struct chain_store *store, const char *name)
{
    return store != NULL && name != NULL && find_mfr(store, name) != NULL;
}

const char *chain_revocation_str(enum chain_revocation rev)
{
    switch (rev) {
        case CHAIN_REV_CHECKED:
            return "checked";
        case CHAIN_REV_SOFT_MISSING:
            return "soft-missing";
        case CHAIN_REV_SOFT_STALE:
            return "soft-stale";
        case CHAIN_REV_NOT_CONFIGURED:
        default:
            return "not-configured";
    }
}

void chain_verdict_cleanup(struct chain_verdict *v)
{
    if (v == NULL)
        return;
    X509_free(v->root);
    sk_X509_pop_free(v->path, X509_free);
    memset(v, 0, sizeof(*v));
}

void chain_name_str(char *buf, size_t len, const X509_NAME *name)
{
    BIO *bio = NULL;
    char *data = NULL;
    long n;

    if (len == 0)
        return;
    snprintf(buf, len, "(unknown)");
    if (name == NULL || (bio = BIO_new(BIO_s_mem())) == NULL)
        return;
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0 &&
        (n = BIO_get_mem_data(bio, &data)) >= 0)
        snprintf(buf, len, "%.*s", (int)(n > INT_MAX ? INT_MAX : n), data);
    BIO_free(bio);
}

void chain_subject(char *buf, size_t len, X509 *cert)
{
    char name[257];

    if (cert == NULL) {
        snprintf(buf, len, "(unknown certificate)");
        return;
    }
    chain_name_str(name, sizeof(name), X509_get_subject_name(cert));
    snprintf(buf, len, "\"%s\"", name);
}

void chain_describe(char *buf, size_t len, X509 *x)
{
    char k[96];

    if (x == NULL) {
        snprintf(buf, len, "(none)");
        return;
    }
    chain_rules_key_str(k, sizeof(k), X509_get0_pubkey(x));
    snprintf(buf, len, "key %s, signature %s", k, OBJ_nid2ln(X509_get_signature_nid(x)));
}

static int map_error(int err)
{
    switch (err) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return DEVID_ERR_CHAIN_EXPIRED;
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_CERT_UNTRUSTED:
            return DEVID_ERR_CHAIN_UNTRUSTED;
        case X509_V_ERR_CERT_REVOKED:
            return DEVID_ERR_CHAIN_REVOKED;
        default:
            return DEVID_ERR_CHAIN_INVALID;
    }
}

/* The verify callback: tolerates the profile findings listed in chain.h. */
static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
    STACK_OF(X509) *chain;
    int depth;

    if (ok)
        return ok;
    switch (X509_STORE_CTX_get_error(ctx)) {
        case X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER:
        case X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER:
        case X509_V_ERR_AUTHORITY_KEY_IDENTIFIER_CRITICAL:
        case X509_V_ERR_SUBJECT_KEY_IDENTIFIER_CRITICAL:
        case X509_V_ERR_CA_BCONS_NOT_CRITICAL:
        case X509_V_ERR_CA_CERT_MISSING_KEY_USAGE:
        case X509_V_ERR_SUBJECT_NAME_EMPTY:
            return 1;
        case X509_V_ERR_INVALID_CA:
            chain = X509_STORE_CTX_get0_chain(ctx);
            depth = X509_STORE_CTX_get_error_depth(ctx);
            if (chain != NULL && depth == sk_X509_num(chain) - 1 &&
                (X509_get_extension_flags(X509_STORE_CTX_get_current_cert(ctx)) & EXFLAG_SS))
                return 1;
            return 0;
        default:
            return 0;
    }
}

int chain_refuse(int code, char *why, size_t why_len, X509 *x, int depth, const char *what,
                 const char *detail)
{
    char subject[300];

    chain_subject(subject, sizeof(subject), x);
    snprintf(why, why_len, "certificate %s (chain depth %d): %s%s", subject, depth, what,
             detail == NULL ? "" : detail);
    return code;
}

static int build_untrusted(STACK_OF(X509) **out, const struct chain_store *store,
                           STACK_OF(X509) *device_chain)
{
    STACK_OF(X509) *untrusted;
    int i, n;

    *out = NULL;
    if ((untrusted = sk_X509_new_null()) == NULL)
        return DEVID_ERR_ALLOC;
    n = device_chain == NULL ? 0 : sk_X509_num(device_chain);
    for (i = 0; i < n && i < CHAIN_MAX_DEPTH; i++) {
        if (sk_X509_push(untrusted, sk_X509_value(device_chain, i)) <= 0)
            goto fail;
    }
    for (i = 0; i < sk_X509_num(store->intermediates); i++) {
        if (sk_X509_push(untrusted, sk_X509_value(store->intermediates, i)) <= 0)
            goto fail;
    }
    *out = untrusted;
    return 0;
fail:
    sk_X509_free(untrusted);
    return DEVID_ERR_ALLOC;
}

/* The X509_verify_cert configuration chain.h describes. */
static int verify_ctx(X509_STORE_CTX **out, const struct chain_store *store, X509 *leaf,
                      STACK_OF(X509) *untrusted, time_t now)
{
    X509_STORE_CTX *ctx;
    X509_VERIFY_PARAM *param;

    *out = NULL;
    if ((ctx = X509_STORE_CTX_new()) == NULL ||
        X509_STORE_CTX_init(ctx, store->store, leaf, untrusted) != 1) {
        X509_STORE_CTX_free(ctx);
        return DEVID_ERR_ALLOC;
    }
    param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, now);
    X509_VERIFY_PARAM_set_depth(param, CHAIN_MAX_DEPTH - 2);
    X509_VERIFY_PARAM_set_auth_level(param, 0);
    X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
    if (X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT) != 1 ||
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY) != 1) {
        X509_STORE_CTX_free(ctx);
        return DEVID_ERR_INTERNAL;
    }
    *out = ctx;
    return 0;
}

/* sooner returns the earlier of |until| and |t|, if |t| is after |now|. */
static time_t sooner(time_t until, const ASN1_TIME *t, time_t now)
{
    ASN1_TIME *at;
    int days = 0, secs = 0, ok;
    time_t when;

    if (t == NULL || (at = ASN1_TIME_set(NULL, now)) == NULL)
        return now; /* not known: the verdict holds for no time */
    ok = ASN1_TIME_diff(&days, &secs, at, t);
    ASN1_TIME_free(at);
    if (ok != 1)
        return now;
    if (days < 0 || secs < 0 || (days == 0 && secs == 0))
        return until;
    when = now + (time_t)days * 86400 + secs;
    return when < until ? when : until;
}

/* holds_until is when a verdict reached at |now| for |path| of |m| may
 * change: the first notAfter on the path, or, with revocation checked, the
 * first lastUpdate or nextUpdate ahead among |m|'s CRLs. */
static time_t holds_until(const struct mfr *m, STACK_OF(X509) *path, time_t now)
{
    time_t until = now + (time_t)366 * 86400;
    X509_CRL *crl;
    int i;

    for (i = 0; i < sk_X509_num(path); i++)
        until = sooner(until, X509_get0_notAfter(sk_X509_value(path, i)), now);
    if (m->set.revocation == CHAIN_REVOCATION_NONE)
        return until;
    for (i = 0; i < sk_X509_CRL_num(m->crls); i++) {
        crl = sk_X509_CRL_value(m->crls, i);
        until = sooner(until, X509_CRL_get0_lastUpdate(crl), now);
        until = sooner(until, X509_CRL_get0_nextUpdate(crl), now);
    }
    return until;
}

int chain_verify(const struct chain_store *store, struct chain_verdict *verdict, X509 *leaf,
                 STACK_OF(X509) *device_chain, time_t now, char *why, size_t why_len)
{
    X509_STORE_CTX *ctx = NULL;
    STACK_OF(X509) *untrusted = NULL, *path = NULL;
    const struct mfr *m;
    X509 *root = NULL;
    char subject[300];
    int n, err;
    int r = DEVID_ERR_INTERNAL;

    if (store == NULL || verdict == NULL || leaf == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(verdict, 0, sizeof(*verdict));
    why[0] = '\0';
    if ((r = build_untrusted(&untrusted, store, device_chain)) != 0)
        goto out;
    if ((r = verify_ctx(&ctx, store, leaf, untrusted, now)) != 0)
        goto out;
    if (X509_verify_cert(ctx) != 1) {
        err = X509_STORE_CTX_get_error(ctx);
        chain_subject(subject, sizeof(subject), X509_STORE_CTX_get_current_cert(ctx));
        snprintf(why, why_len, "certificate %s (chain depth %d): %s", subject,
                 X509_STORE_CTX_get_error_depth(ctx), X509_verify_cert_error_string(err));
        r = map_error(err);
        goto out;
    }
    if ((path = X509_STORE_CTX_get1_chain(ctx)) == NULL || (n = sk_X509_num(path)) < 1) {
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    root = sk_X509_value(path, n - 1);
    if ((m = mfr_of_root(store, root)) == NULL) {
        chain_subject(subject, sizeof(subject), root);
        snprintf(why, why_len, "trust anchor %s belongs to no manufacturer", subject);
        r = DEVID_ERR_CHAIN_UNTRUSTED;
        goto out;
    }
    if ((unsigned)n > m->set.max_depth || n > CHAIN_MAX_DEPTH) {
        snprintf(subject, sizeof(subject), "%d certificates from the leaf to trust anchor ", n);
        chain_refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, leaf, 0, "chain too long: ", subject);
        snprintf(why + strlen(why), why_len - strlen(why),
                 "(both counted), more than max_depth %u of manufacturer \"%s\"", m->set.max_depth,
                 m->name);
        r = DEVID_ERR_CHAIN_INVALID;
        goto out;
    }
    if ((r = chain_rules_check_path(&m->set, m->name, store->leaf, path, why, why_len)) != 0 ||
        (r = chain_crl_check(verdict, m->name, m->set.revocation, m->crls, path, now, why,
                             why_len)) != 0)
        goto out;
    if (X509_up_ref(root) != 1) {
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    memcpy(verdict->manufacturer, m->name, strlen(m->name) + 1);
    verdict->valid_until = holds_until(m, path, now);
    verdict->root = root;
    verdict->path = path;
    path = NULL;
    r = 0;
out:
    if (r != 0)
        chain_verdict_cleanup(verdict);
    sk_X509_pop_free(path, X509_free);
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    ERR_clear_error();
    return r;
}

X509 *chain_der_cert(const uint8_t *der, size_t len, size_t max)
{
    const unsigned char *p = der;
    X509 *x = NULL;

    if (der == NULL || len == 0 || len > max || len > LONG_MAX ||
        (x = d2i_X509(NULL, &p, (long)len)) == NULL || p != der + len) {
        X509_free(x);
        ERR_clear_error();
        return NULL;
    }
    return x;
}
