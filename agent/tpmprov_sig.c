#include "agent/tpmprov_sig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include "agent/tpmprov_key.h"
#include "common/tpmkey.h"

struct sigctx {
    struct tpmprov_key *key;
    EVP_MD *md;
    EVP_MD_CTX *mdctx;
    int pad;     /* RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
    int saltlen; /* RSA_PSS_SALTLEN_DIGEST or a byte count */
};

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
    const struct tpmprov_signer *s = &c->key->signer;
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
    struct tpmprov_key *k = kd;

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

/* sign_digest hands |digest| to the key's TPM signer and writes the
 * signature as OpenSSL expects it: DER ECDSA-Sig-Value, or the raw RSA
 * signature. */
static int sign_digest(struct sigctx *c, unsigned char *sig, size_t *siglen, size_t sigsize,
                       const unsigned char *digest, size_t digest_len)
{
    const struct tpmprov_signer *s = &c->key->signer;
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
    return sign_digest(c, sig, siglen, sigsize, tbs, tbslen);
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
    ok = sign_digest(c, sig, siglen, sigsize, dgst, dlen);
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

const OSSL_DISPATCH tpmprov_signature[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, TPMPROV_FN(sig_newctx)},
    {OSSL_FUNC_SIGNATURE_FREECTX, TPMPROV_FN(sig_freectx)},
    {OSSL_FUNC_SIGNATURE_DUPCTX, TPMPROV_FN(sig_dupctx)},
    {OSSL_FUNC_SIGNATURE_SIGN_INIT, TPMPROV_FN(sig_sign_init)},
    {OSSL_FUNC_SIGNATURE_SIGN, TPMPROV_FN(sig_sign)},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, TPMPROV_FN(sig_digest_sign_init)},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, TPMPROV_FN(sig_digest_sign_update)},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, TPMPROV_FN(sig_digest_sign_final)},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN, TPMPROV_FN(sig_digest_sign)},
    {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, TPMPROV_FN(sig_set_ctx_params)},
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, TPMPROV_FN(sig_settable)},
    {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, TPMPROV_FN(sig_get_ctx_params)},
    {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, TPMPROV_FN(sig_gettable)},
    {0, NULL},
};
