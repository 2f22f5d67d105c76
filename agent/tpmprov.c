#include "agent/tpmprov.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>

#include "common/err.h"
#include "common/io/log.h"
#include "common/tpmkey.h"

#define PROV_NAME "devid-tpm"
#define PROV_PROPS "provider=devid-tpm"
/* The private import parameter that binds a key to its TPM signer. */
#define PARAM_SIGNER "devid-tpm-signer"

#define FN(f) ((void (*)(void))(f))

struct signer {
    tpmprov_sign_fn sign;
    void *arg;
    TPMI_ALG_SIG_SCHEME scheme; /* the key's fixed scheme, or TPM2_ALG_NULL */
    TPMI_ALG_HASH hash;         /* and its hash */
};

struct tpmprov {
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *prov;
};

/* A key of this provider: the public half as a default-provider key, and,
 * for a key made by tpmprov_pkey_new, the TPM signer. */
struct key {
    bool rsa;
    EVP_PKEY *pub;
    bool has_signer;
    struct signer signer;
};

struct sigctx {
    struct key *key;
    EVP_MD *md;
    EVP_MD_CTX *mdctx;
    int pad;     /* RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
    int saltlen; /* RSA_PSS_SALTLEN_DIGEST or a byte count */
};

/* ---- key management ---- */

static void *key_alloc(bool rsa)
{
    struct key *k = calloc(1, sizeof(*k));

    if (k != NULL)
        k->rsa = rsa;
    return k;
}

static void *ec_new(void *provctx)
{
    (void)provctx;
    return key_alloc(false);
}

static void *rsa_new(void *provctx)
{
    (void)provctx;
    return key_alloc(true);
}

static void key_free(void *kd)
{
    struct key *k = kd;

    if (k == NULL)
        return;
    EVP_PKEY_free(k->pub);
    OPENSSL_cleanse(&k->signer, sizeof(k->signer));
    free(k);
}

static int key_has(const void *kd, int selection)
{
    const struct key *k = kd;
    int ok = 1;

    if (k == NULL)
        return 0;
    if ((selection & (OSSL_KEYMGMT_SELECT_PUBLIC_KEY | OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)) != 0)
        ok = ok && k->pub != NULL;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        ok = ok && k->has_signer;
    return ok;
}

/* key_import takes the public half (from tpmprov_pkey_new, or from another
 * provider's key being compared with ours) and, with the private selection,
 * the signer parameter. */
static int key_import(void *kd, int selection, const OSSL_PARAM params[])
{
    struct key *k = kd;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pub = NULL;
    const OSSL_PARAM *p;
    int what, ok = 0;

    if (k == NULL || params == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0)
        what = EVP_PKEY_PUBLIC_KEY;
    else if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0)
        what = EVP_PKEY_KEY_PARAMETERS;
    else
        return 0;
    if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, k->rsa ? "RSA" : "EC", NULL)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pub, what, (OSSL_PARAM *)params) != 1)
        goto out;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 &&
        (p = OSSL_PARAM_locate_const(params, PARAM_SIGNER)) != NULL) {
        if (p->data_type != OSSL_PARAM_OCTET_STRING || p->data_size != sizeof(k->signer) ||
            p->data == NULL)
            goto out;
        memcpy(&k->signer, p->data, sizeof(k->signer));
        k->has_signer = k->signer.sign != NULL;
    }
    EVP_PKEY_free(k->pub);
    k->pub = pub;
    pub = NULL;
    ok = 1;
out:
    EVP_PKEY_free(pub);
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* key_export gives the public half only. Refusing a private selection is what
 * makes OpenSSL sign with this provider instead of copying the key into the
 * default one, which would have no private key. */
static int key_export(void *kd, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    struct key *k = kd;
    OSSL_PARAM *params = NULL;
    int what, ok;

    if (k == NULL || k->pub == NULL || (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0)
        what = EVP_PKEY_PUBLIC_KEY;
    else if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0)
        what = EVP_PKEY_KEY_PARAMETERS;
    else
        return 0;
    if (EVP_PKEY_todata(k->pub, what, &params) != 1)
        return 0;
    ok = cb(params, cbarg);
    OSSL_PARAM_free(params);
    return ok;
}

static const OSSL_PARAM ec_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_octet_string(PARAM_SIGNER, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM rsa_types[] = {
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_octet_string(PARAM_SIGNER, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ec_types_fn(int selection)
{
    (void)selection;
    return ec_types;
}

static const OSSL_PARAM *rsa_types_fn(int selection)
{
    (void)selection;
    return rsa_types;
}

static int key_match(const void *a, const void *b, int selection)
{
    const struct key *ka = a, *kb = b;

    if (ka == NULL || kb == NULL || ka->pub == NULL || kb->pub == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0)
        return EVP_PKEY_eq(ka->pub, kb->pub) == 1;
    return EVP_PKEY_parameters_eq(ka->pub, kb->pub) == 1;
}

/* key_get_params answers from the public half: bits, security bits, maximum
 * signature size, default digest, group name, encoded public key. */
static int key_get_params(void *kd, OSSL_PARAM params[])
{
    struct key *k = kd;

    if (k == NULL || k->pub == NULL)
        return 0;
    return EVP_PKEY_get_params(k->pub, params);
}

static const OSSL_PARAM ec_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM rsa_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ec_gettable_fn(void *provctx)
{
    (void)provctx;
    return ec_gettable;
}

static const OSSL_PARAM *rsa_gettable_fn(void *provctx)
{
    (void)provctx;
    return rsa_gettable;
}

static const char *ec_op_name(int op)
{
    return op == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

static const char *rsa_op_name(int op)
{
    return op == OSSL_OP_SIGNATURE ? "RSA" : NULL;
}

static const OSSL_DISPATCH ec_keymgmt[] = {
    {OSSL_FUNC_KEYMGMT_NEW, FN(ec_new)},
    {OSSL_FUNC_KEYMGMT_FREE, FN(key_free)},
    {OSSL_FUNC_KEYMGMT_HAS, FN(key_has)},
    {OSSL_FUNC_KEYMGMT_MATCH, FN(key_match)},
    {OSSL_FUNC_KEYMGMT_IMPORT, FN(key_import)},
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, FN(ec_types_fn)},
    {OSSL_FUNC_KEYMGMT_EXPORT, FN(key_export)},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, FN(ec_types_fn)},
    {OSSL_FUNC_KEYMGMT_GET_PARAMS, FN(key_get_params)},
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, FN(ec_gettable_fn)},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, FN(ec_op_name)},
    {0, NULL},
};

static const OSSL_DISPATCH rsa_keymgmt[] = {
    {OSSL_FUNC_KEYMGMT_NEW, FN(rsa_new)},
    {OSSL_FUNC_KEYMGMT_FREE, FN(key_free)},
    {OSSL_FUNC_KEYMGMT_HAS, FN(key_has)},
    {OSSL_FUNC_KEYMGMT_MATCH, FN(key_match)},
    {OSSL_FUNC_KEYMGMT_IMPORT, FN(key_import)},
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, FN(rsa_types_fn)},
    {OSSL_FUNC_KEYMGMT_EXPORT, FN(key_export)},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, FN(rsa_types_fn)},
    {OSSL_FUNC_KEYMGMT_GET_PARAMS, FN(key_get_params)},
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, FN(rsa_gettable_fn)},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, FN(rsa_op_name)},
    {0, NULL},
};

/* ---- signatures ---- */

static TPMI_ALG_HASH tpm_hash(const EVP_MD *md)
{
    switch (EVP_MD_get_type(md)) {
        case NID_sha1:
            return TPM2_ALG_SHA1;
        case NID_sha256:
            return TPM2_ALG_SHA256;
        case NID_sha384:
            return TPM2_ALG_SHA384;
        case NID_sha512:
            return TPM2_ALG_SHA512;
        default:
            return TPM2_ALG_NULL;
    }
}

static void *sig_newctx(void *provctx, const char *propq)
{
    struct sigctx *c = calloc(1, sizeof(*c));

    (void)provctx;
    (void)propq;
    if (c == NULL)
        return NULL;
    c->pad = RSA_PKCS1_PADDING;
    c->saltlen = RSA_PSS_SALTLEN_DIGEST;
    return c;
}

static void sig_freectx(void *vc)
{
    struct sigctx *c = vc;

    if (c == NULL)
        return;
    EVP_MD_CTX_free(c->mdctx);
    EVP_MD_free(c->md);
    free(c);
}

static void *sig_dupctx(void *vc)
{
    struct sigctx *c = vc, *d;

    if ((d = calloc(1, sizeof(*d))) == NULL)
        return NULL;
    *d = *c;
    d->md = NULL;
    d->mdctx = NULL;
    if (c->md != NULL) {
        if (EVP_MD_up_ref(c->md) != 1)
            goto err;
        d->md = c->md;
    }
    if (c->mdctx != NULL &&
        ((d->mdctx = EVP_MD_CTX_new()) == NULL || EVP_MD_CTX_copy_ex(d->mdctx, c->mdctx) != 1))
        goto err;
    return d;
err:
    sig_freectx(d);
    return NULL;
}

/* set_md fetches |name| (or the key's fixed hash, else SHA-256) from the
 * default context. A hash the TPM key cannot sign with is refused here, so
 * that TLS skips the signature algorithms that would need it. */
static int set_md(struct sigctx *c, const char *name)
{
    const struct signer *s = &c->key->signer;
    EVP_MD *md;
    TPMI_ALG_HASH h;

    if (name == NULL || name[0] == '\0') {
        if (s->hash == TPM2_ALG_SHA384)
            name = "SHA384";
        else if (s->hash == TPM2_ALG_SHA512)
            name = "SHA512";
        else
            name = "SHA256";
    }
    if ((md = EVP_MD_fetch(NULL, name, NULL)) == NULL)
        return 0;
    h = tpm_hash(md);
    if (h == TPM2_ALG_NULL || (s->scheme != TPM2_ALG_NULL && s->hash != h)) {
        ERR_raise_data(ERR_LIB_EVP, EVP_R_UNSUPPORTED_ALGORITHM,
                       "the TPM key cannot sign a %s digest", name);
        EVP_MD_free(md);
        return 0;
    }
    EVP_MD_free(c->md);
    c->md = md;
    return 1;
}

static int get_int_or_str(const OSSL_PARAM *p, int *out, const OSSL_ITEM *names, size_t n)
{
    const char *s = NULL;
    char *end = NULL;
    long v;
    size_t i;

    if (p->data_type != OSSL_PARAM_UTF8_STRING)
        return OSSL_PARAM_get_int(p, out);
    if (OSSL_PARAM_get_utf8_string_ptr(p, &s) != 1)
        return 0;
    for (i = 0; i < n; i++) {
        if (strcmp(s, names[i].ptr) == 0) {
            *out = (int)names[i].id;
            return 1;
        }
    }
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < -1000 || v > 1000)
        return 0;
    *out = (int)v;
    return 1;
}

static int sig_set_ctx_params(void *vc, const OSSL_PARAM params[])
{
    static const OSSL_ITEM pads[] = {
        {RSA_PKCS1_PADDING, OSSL_PKEY_RSA_PAD_MODE_PKCSV15},
        {RSA_PKCS1_PSS_PADDING, OSSL_PKEY_RSA_PAD_MODE_PSS},
    };
    static const OSSL_ITEM salts[] = {
        {(unsigned)RSA_PSS_SALTLEN_DIGEST, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST},
        {(unsigned)RSA_PSS_SALTLEN_MAX, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX},
        {(unsigned)RSA_PSS_SALTLEN_AUTO, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO},
    };
    struct sigctx *c = vc;
    const OSSL_PARAM *p;
    const char *name = NULL;
    int v;

    if (c == NULL)
        return 0;
    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST)) != NULL) {
        if (c->key == NULL || OSSL_PARAM_get_utf8_string_ptr(p, &name) != 1 || !set_md(c, name))
            return 0;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE)) != NULL) {
        if (c->key == NULL || !c->key->rsa ||
            !get_int_or_str(p, &v, pads, sizeof(pads) / sizeof(pads[0])) ||
            (v != RSA_PKCS1_PADDING && v != RSA_PKCS1_PSS_PADDING))
            return 0;
        if (c->key->signer.scheme != TPM2_ALG_NULL &&
            c->key->signer.scheme !=
                (v == RSA_PKCS1_PSS_PADDING ? TPM2_ALG_RSAPSS : TPM2_ALG_RSASSA))
            return 0;
        c->pad = v;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != NULL) {
        if (!get_int_or_str(p, &v, salts, sizeof(salts) / sizeof(salts[0])))
            return 0;
        /* The TPM chooses the salt; swtpm (and TPM 2.0 library 1.38 on)
         * uses the digest length, the only one this provider accepts. */
        if (v != RSA_PSS_SALTLEN_DIGEST && (c->md == NULL || v != EVP_MD_get_size(c->md)))
            return 0;
        c->saltlen = RSA_PSS_SALTLEN_DIGEST;
    }
    return 1;
}

static const OSSL_PARAM *sig_settable(void *vc, void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
        OSSL_PARAM_END,
    };

    (void)vc;
    (void)provctx;
    return settable;
}

static int sig_get_ctx_params(void *vc, OSSL_PARAM params[])
{
    struct sigctx *c = vc;
    OSSL_PARAM *p;

    if (c == NULL)
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST)) != NULL &&
        (c->md == NULL || OSSL_PARAM_set_utf8_string(p, EVP_MD_get0_name(c->md)) != 1))
        return 0;
    return 1;
}

static const OSSL_PARAM *sig_gettable(void *vc, void *provctx)
{
    static const OSSL_PARAM gettable[] = {
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_END,
    };

    (void)vc;
    (void)provctx;
    return gettable;
}

static int sig_sign_init(void *vc, void *kd, const OSSL_PARAM params[])
{
    struct sigctx *c = vc;
    struct key *k = kd;

    if (c == NULL)
        return 0;
    if (k != NULL)
        c->key = k;
    if (c->key == NULL || !c->key->has_signer) {
        ERR_raise_data(ERR_LIB_EVP, EVP_R_OPERATION_NOT_SUPPORTED_FOR_THIS_KEYTYPE,
                       "a devid-tpm key without a TPM signer cannot sign");
        return 0;
    }
    c->pad = RSA_PKCS1_PADDING;
    c->saltlen = RSA_PSS_SALTLEN_DIGEST;
    if (c->key->rsa && c->key->signer.scheme == TPM2_ALG_RSAPSS)
        c->pad = RSA_PKCS1_PSS_PADDING;
    return sig_set_ctx_params(c, params);
}

static int sig_digest_sign_init(void *vc, const char *mdname, void *kd, const OSSL_PARAM params[])
{
    struct sigctx *c = vc;

    if (!sig_sign_init(vc, kd, NULL) || !set_md(c, mdname))
        return 0;
    if (c->mdctx == NULL && (c->mdctx = EVP_MD_CTX_new()) == NULL)
        return 0;
    if (EVP_DigestInit_ex2(c->mdctx, c->md, NULL) != 1)
        return 0;
    return sig_set_ctx_params(c, params);
}

static size_t max_size(const struct sigctx *c)
{
    int n = EVP_PKEY_get_size(c->key->pub);

    return n > 0 ? (size_t)n : 0;
}

/* tpm_sign hands |digest| to the TPM and writes the signature as OpenSSL
 * expects it: DER ECDSA-Sig-Value, or the raw RSA signature. */
static int tpm_sign(struct sigctx *c, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *digest, size_t digest_len)
{
    const struct signer *s = &c->key->signer;
    TPMT_SIGNATURE ts;
    TPMI_ALG_SIG_SCHEME scheme;
    uint8_t *der = NULL;
    size_t der_len = 0;
    int ok = 0;

    if (c->md == NULL || (size_t)EVP_MD_get_size(c->md) != digest_len) {
        ERR_raise_data(ERR_LIB_EVP, EVP_R_INVALID_DIGEST, "digest length %zu", digest_len);
        return 0;
    }
    if (!c->key->rsa)
        scheme = TPM2_ALG_ECDSA;
    else
        scheme = c->pad == RSA_PKCS1_PSS_PADDING ? TPM2_ALG_RSAPSS : TPM2_ALG_RSASSA;
    memset(&ts, 0, sizeof(ts));
    if (s->sign(s->arg, &ts, scheme, tpm_hash(c->md), digest, digest_len) != 0) {
        ERR_raise_data(ERR_LIB_EVP, ERR_R_OPERATION_FAIL,
                       "TPM2_Sign with the TLS client key failed (see the log)");
        goto out;
    }
    if (tpmkey_signature_to_der(&der, &der_len, &ts) != 0 || der_len > sigsize) {
        ERR_raise_data(ERR_LIB_EVP, ERR_R_OPERATION_FAIL,
                       "the TPM signature does not fit (%zu bytes, room for %zu)", der_len,
                       sigsize);
        goto out;
    }
    memcpy(sig, der, der_len);
    *siglen = der_len;
    ok = 1;
out:
    OPENSSL_free(der);
    return ok;
}

static int sig_sign(void *vc, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *tbs, size_t tbslen)
{
    struct sigctx *c = vc;
    const char *name = tbslen == 20   ? "SHA1"
                       : tbslen == 48 ? "SHA384"
                       : tbslen == 64 ? "SHA512"
                                      : "SHA256";

    if (c == NULL || c->key == NULL)
        return 0;
    if (sig == NULL) {
        *siglen = max_size(c);
        return 1;
    }
    if (c->md == NULL && !set_md(c, name))
        return 0;
    return tpm_sign(c, sig, siglen, sigsize, tbs, tbslen);
}

static int sig_digest_sign_update(void *vc, const unsigned char *data, size_t len)
{
    struct sigctx *c = vc;

    return c != NULL && c->mdctx != NULL && EVP_DigestUpdate(c->mdctx, data, len) == 1;
}

static int sig_digest_sign_final(void *vc, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    struct sigctx *c = vc;
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    int ok;

    if (c == NULL || c->key == NULL || c->mdctx == NULL)
        return 0;
    if (sig == NULL) {
        *siglen = max_size(c);
        return 1;
    }
    if (EVP_DigestFinal_ex(c->mdctx, dgst, &dlen) != 1)
        return 0;
    ok = tpm_sign(c, sig, siglen, sigsize, dgst, dlen);
    OPENSSL_cleanse(dgst, sizeof(dgst));
    return ok;
}

static int sig_digest_sign(void *vc, unsigned char *sig, size_t *siglen, size_t sigsize,
                           const unsigned char *tbs, size_t tbslen)
{
    if (sig == NULL)
        return sig_digest_sign_final(vc, sig, siglen, sigsize);
    return sig_digest_sign_update(vc, tbs, tbslen) &&
           sig_digest_sign_final(vc, sig, siglen, sigsize);
}

static const OSSL_DISPATCH signature_fns[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, FN(sig_newctx)},
    {OSSL_FUNC_SIGNATURE_FREECTX, FN(sig_freectx)},
    {OSSL_FUNC_SIGNATURE_DUPCTX, FN(sig_dupctx)},
    {OSSL_FUNC_SIGNATURE_SIGN_INIT, FN(sig_sign_init)},
    {OSSL_FUNC_SIGNATURE_SIGN, FN(sig_sign)},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, FN(sig_digest_sign_init)},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, FN(sig_digest_sign_update)},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, FN(sig_digest_sign_final)},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN, FN(sig_digest_sign)},
    {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, FN(sig_set_ctx_params)},
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, FN(sig_settable)},
    {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, FN(sig_get_ctx_params)},
    {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, FN(sig_gettable)},
    {0, NULL},
};

/* ---- the provider ---- */

static const OSSL_ALGORITHM keymgmt_algs[] = {
    {"EC:id-ecPublicKey:1.2.840.10045.2.1", PROV_PROPS, ec_keymgmt, "devid TPM EC key"},
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", PROV_PROPS, rsa_keymgmt, "devid TPM RSA key"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM signature_algs[] = {
    {"ECDSA", PROV_PROPS, signature_fns, "TPM2_Sign ECDSA"},
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", PROV_PROPS, signature_fns,
     "TPM2_Sign RSASSA/RSAPSS"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM *prov_query(void *provctx, int op, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    switch (op) {
        case OSSL_OP_KEYMGMT:
            return keymgmt_algs;
        case OSSL_OP_SIGNATURE:
            return signature_algs;
        default:
            return NULL;
    }
}

static const OSSL_DISPATCH prov_fns[] = {
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, FN(prov_query)},
    {0, NULL},
};

static int prov_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                     const OSSL_DISPATCH **out, void **provctx)
{
    (void)in;
    *out = prov_fns;
    *provctx = (void *)handle;
    return 1;
}

int tpmprov_new(struct tpmprov **out)
{
    struct tpmprov *p = NULL;
    char reason[256];
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return DEVID_ERR_ALLOC;
    if ((p->libctx = OSSL_LIB_CTX_new()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if (OSSL_PROVIDER_add_builtin(p->libctx, PROV_NAME, prov_init) != 1 ||
        (p->prov = OSSL_PROVIDER_load(p->libctx, PROV_NAME)) == NULL) {
        log_err("cannot load the built-in OpenSSL provider %s: %s", PROV_NAME,
                devid_openssl_reason(reason, sizeof(reason)));
        goto out;
    }
    *out = p;
    p = NULL;
    r = 0;
out:
    tpmprov_free(p);
    return r;
}

void tpmprov_free(struct tpmprov *p)
{
    if (p == NULL)
        return;
    OSSL_PROVIDER_unload(p->prov);
    OSSL_LIB_CTX_free(p->libctx);
    free(p);
}

int tpmprov_pkey_new(EVP_PKEY **out, struct tpmprov *p, const TPMT_PUBLIC *pub,
                     tpmprov_sign_fn sign, void *arg)
{
    struct signer s;
    EVP_PKEY *plain = NULL, *pkey = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    OSSL_PARAM *pubparams = NULL, *params = NULL;
    OSSL_PARAM extra[2];
    char reason[256];
    bool rsa;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || p == NULL || pub == NULL || sign == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    memset(&s, 0, sizeof(s));
    s.sign = sign;
    s.arg = arg;
    if (pub->type == TPM2_ALG_ECC) {
        rsa = false;
        s.scheme = pub->parameters.eccDetail.scheme.scheme;
        s.hash = pub->parameters.eccDetail.scheme.details.anySig.hashAlg;
    } else if (pub->type == TPM2_ALG_RSA) {
        rsa = true;
        s.scheme = pub->parameters.rsaDetail.scheme.scheme;
        s.hash = pub->parameters.rsaDetail.scheme.details.anySig.hashAlg;
    } else {
        log_err("the TLS client key is neither ECC nor RSA (TPM type 0x%04x)", pub->type);
        return DEVID_ERR_BAD_REQUEST;
    }
    if (s.scheme == TPM2_ALG_NULL)
        s.hash = TPM2_ALG_NULL;
    if ((r = tpmkey_public_to_pkey(&plain, pub)) != 0)
        goto out;
    r = DEVID_ERR_INTERNAL;
    extra[0] = OSSL_PARAM_construct_octet_string(PARAM_SIGNER, &s, sizeof(s));
    extra[1] = OSSL_PARAM_construct_end();
    if (EVP_PKEY_todata(plain, EVP_PKEY_PUBLIC_KEY, &pubparams) != 1 ||
        (params = OSSL_PARAM_merge(pubparams, extra)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_name(p->libctx, rsa ? "RSA" : "EC", PROV_PROPS)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) != 1) {
        log_err("cannot make the TPM-backed TLS client key: %s",
                devid_openssl_reason(reason, sizeof(reason)));
        goto out;
    }
    *out = pkey;
    pkey = NULL;
    r = 0;
out:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_free(pubparams);
    EVP_PKEY_free(plain);
    OPENSSL_cleanse(&s, sizeof(s));
    return r;
}
