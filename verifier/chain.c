#include "verifier/chain.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/objects.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "common/err.h"

struct chain_store {
    X509_STORE *store;
    STACK_OF(X509) *intermediates;
    size_t roots;
};

struct chain_store *chain_store_new(void)
{
    struct chain_store *s;

    if ((s = OPENSSL_zalloc(sizeof(*s))) == NULL)
        return NULL;
    if ((s->store = X509_STORE_new()) == NULL || (s->intermediates = sk_X509_new_null()) == NULL) {
        chain_store_free(s);
        return NULL;
    }
    return s;
}

void chain_store_free(struct chain_store *store)
{
    if (store == NULL)
        return;
    X509_STORE_free(store->store);
    sk_X509_pop_free(store->intermediates, X509_free);
    OPENSSL_free(store);
}

int chain_store_add_root(struct chain_store *store, X509 *root)
{
    if (store == NULL || root == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (X509_STORE_add_cert(store->store, root) != 1)
        return DEVID_ERR_CONFIG;
    store->roots++;
    return 0;
}

int chain_store_add_intermediate(struct chain_store *store, X509 *cert)
{
    if (store == NULL || cert == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (sk_X509_num(store->intermediates) >= CHAIN_MAX_INTERMEDIATES)
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

void chain_verdict_cleanup(struct chain_verdict *v)
{
    if (v == NULL)
        return;
    X509_free(v->root);
    memset(v, 0, sizeof(*v));
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

static void subject_str(char *buf, size_t len, X509 *cert)
{
    BIO *bio = NULL;
    char *data = NULL;
    long n;

    snprintf(buf, len, "(unknown certificate)");
    if (cert == NULL || (bio = BIO_new(BIO_s_mem())) == NULL)
        return;
    if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0 &&
        (n = BIO_get_mem_data(bio, &data)) >= 0)
        snprintf(buf, len, "\"%.*s\"", (int)(n > 256 ? 256 : n), data);
    BIO_free(bio);
}

static int map_error(int err)
{
    switch (err) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_CERT_NOT_YET_VALID:
        case X509_V_ERR_CRL_HAS_EXPIRED:
        case X509_V_ERR_CRL_NOT_YET_VALID:
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

int chain_verify(const struct chain_store *store, struct chain_verdict *verdict, X509 *leaf,
                 STACK_OF(X509) *device_chain, time_t now, char *why, size_t why_len)
{
    X509_STORE_CTX *ctx = NULL;
    STACK_OF(X509) *untrusted = NULL;
    STACK_OF(X509) *chain;
    X509_VERIFY_PARAM *param;
    X509 *root = NULL;
    const X509_NAME *rname;
    char subject[300];
    int i, n, err;
    int r = DEVID_ERR_INTERNAL;

    if (store == NULL || verdict == NULL || leaf == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(verdict, 0, sizeof(*verdict));
    why[0] = '\0';
    if ((untrusted = sk_X509_new_null()) == NULL || (ctx = X509_STORE_CTX_new()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    n = device_chain == NULL ? 0 : sk_X509_num(device_chain);
    for (i = 0; i < n && i < CHAIN_MAX_INTERMEDIATES; i++) {
        if (sk_X509_push(untrusted, sk_X509_value(device_chain, i)) <= 0) {
            r = DEVID_ERR_ALLOC;
            goto out;
        }
    }
    for (i = 0; i < sk_X509_num(store->intermediates); i++) {
        if (sk_X509_push(untrusted, sk_X509_value(store->intermediates, i)) <= 0) {
            r = DEVID_ERR_ALLOC;
            goto out;
        }
    }
    if (X509_STORE_CTX_init(ctx, store->store, leaf, untrusted) != 1) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    /* Purpose "any": the IDevID's own keyUsage/EKU are the TLS layer's
     * business; CA certificates are still held to basicConstraints and
     * keyUsage keyCertSign by X509_V_FLAG_X509_STRICT. */
    param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, now);
    X509_VERIFY_PARAM_set_depth(param, CHAIN_MAX_DEPTH);
    if (X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT) != 1 ||
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY) != 1) {
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    if (X509_verify_cert(ctx) != 1) {
        err = X509_STORE_CTX_get_error(ctx);
        subject_str(subject, sizeof(subject), X509_STORE_CTX_get_current_cert(ctx));
        snprintf(why, why_len, "certificate %s (chain depth %d): %s", subject,
                 X509_STORE_CTX_get_error_depth(ctx), X509_verify_cert_error_string(err));
        r = map_error(err);
        goto out;
    }
    chain = X509_STORE_CTX_get0_chain(ctx);
    if (chain == NULL || sk_X509_num(chain) < 1 ||
        (root = sk_X509_value(chain, sk_X509_num(chain) - 1)) == NULL || X509_up_ref(root) != 1) {
        root = NULL;
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    rname = X509_get_subject_name(root);
    if (name_entry(verdict->manufacturer, sizeof(verdict->manufacturer), rname,
                   NID_organizationName) != 0 &&
        name_entry(verdict->manufacturer, sizeof(verdict->manufacturer), rname, NID_commonName) !=
            0) {
        subject_str(subject, sizeof(subject), root);
        snprintf(why, why_len, "trust anchor %s has neither O nor CN to name the manufacturer",
                 subject);
        r = DEVID_ERR_CHAIN_INVALID;
        goto out;
    }
    verdict->root = root;
    root = NULL;
    r = 0;
out:
    if (r != 0 && verdict != NULL)
        memset(verdict, 0, sizeof(*verdict));
    X509_free(root);
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    return r;
}
