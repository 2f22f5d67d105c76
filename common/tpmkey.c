#include "common/tpmkey.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include "common/err.h"

const EVP_MD *tpmkey_hash_md(TPMI_ALG_HASH alg)
{
    switch (alg) {
        case TPM2_ALG_SHA256:
            return EVP_sha256();
        case TPM2_ALG_SHA384:
            return EVP_sha384();
        case TPM2_ALG_SHA512:
            return EVP_sha512();
        default:
            return NULL;
    }
}

static const char *curve_name(TPMI_ECC_CURVE curve, size_t *coord_len)
{
    switch (curve) {
        case TPM2_ECC_NIST_P256:
            *coord_len = 32;
            return SN_X9_62_prime256v1;
        case TPM2_ECC_NIST_P384:
            *coord_len = 48;
            return SN_secp384r1;
        case TPM2_ECC_NIST_P521:
            *coord_len = 66;
            return SN_secp521r1;
        default:
            return NULL;
    }
}

int tpmkey_ec_point_to_pkey(EVP_PKEY **out, const char *group, const uint8_t *point, size_t len)
{
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    int r = DEVID_ERR_ALLOC;

    *out = NULL;
    if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, len) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL)
        goto out;
    r = DEVID_ERR_BAD_REQUEST;
    if (EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1)
        goto out;
    r = 0;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return r;
}

static int ecc_to_pkey(EVP_PKEY **out, const TPMT_PUBLIC *pub)
{
    const TPMS_ECC_POINT *pt = &pub->unique.ecc;
    uint8_t point[1 + 2 * 66];
    const char *group;
    size_t coord = 0;

    if ((group = curve_name(pub->parameters.eccDetail.curveID, &coord)) == NULL)
        return DEVID_ERR_BAD_REQUEST;
    if (pt->x.size > coord || pt->y.size > coord)
        return DEVID_ERR_BAD_REQUEST;
    memset(point, 0, sizeof(point));
    point[0] = POINT_CONVERSION_UNCOMPRESSED;
    memcpy(point + 1 + coord - pt->x.size, pt->x.buffer, pt->x.size);
    memcpy(point + 1 + 2 * coord - pt->y.size, pt->y.buffer, pt->y.size);
    return tpmkey_ec_point_to_pkey(out, group, point, 1 + 2 * coord);
}

static int rsa_to_pkey(EVP_PKEY **out, const TPMT_PUBLIC *pub)
{
    uint32_t exp = pub->parameters.rsaDetail.exponent;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    BIGNUM *n = NULL, *e = NULL;
    int r = DEVID_ERR_INTERNAL;

    if (pub->unique.rsa.size == 0)
        return DEVID_ERR_BAD_REQUEST;
    if (exp == 0)
        exp = 65537;
    if ((n = BN_bin2bn(pub->unique.rsa.buffer, pub->unique.rsa.size, NULL)) == NULL ||
        (e = BN_new()) == NULL || !BN_set_word(e, exp) || (bld = OSSL_PARAM_BLD_new()) == NULL ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if (EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        r = DEVID_ERR_BAD_REQUEST;
        goto out;
    }
    r = 0;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return r;
}

int tpmkey_public_to_pkey(EVP_PKEY **out, const TPMT_PUBLIC *pub)
{
    if (out == NULL || pub == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    switch (pub->type) {
        case TPM2_ALG_ECC:
            return ecc_to_pkey(out, pub);
        case TPM2_ALG_RSA:
            return rsa_to_pkey(out, pub);
        default:
            return DEVID_ERR_BAD_REQUEST;
    }
}

int tpmkey_unmarshal_public(TPMT_PUBLIC *pub, const uint8_t *buf, size_t len)
{
    size_t off = 0;

    if (pub == NULL || buf == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(pub, 0, sizeof(*pub));
    if (Tss2_MU_TPMT_PUBLIC_Unmarshal(buf, len, &off, pub) != TSS2_RC_SUCCESS || off != len)
        return DEVID_ERR_BAD_REQUEST;
    return 0;
}

int tpmkey_unmarshal_signature(TPMT_SIGNATURE *sig, const uint8_t *buf, size_t len)
{
    size_t off = 0;

    if (sig == NULL || buf == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(sig, 0, sizeof(*sig));
    if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(buf, len, &off, sig) != TSS2_RC_SUCCESS || off != len)
        return DEVID_ERR_BAD_REQUEST;
    return 0;
}

int tpmkey_signature_to_der(uint8_t **out, size_t *out_len, const TPMT_SIGNATURE *sig)
{
    const TPMS_SIGNATURE_ECC *ecc;
    const TPM2B_PUBLIC_KEY_RSA *rsa;
    ECDSA_SIG *esig = NULL;
    BIGNUM *br = NULL, *bs = NULL;
    uint8_t *der = NULL;
    int der_len;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || out_len == NULL || sig == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    *out_len = 0;
    switch (sig->sigAlg) {
        case TPM2_ALG_ECDSA:
            ecc = &sig->signature.ecdsa;
            if ((esig = ECDSA_SIG_new()) == NULL ||
                (br = BN_bin2bn(ecc->signatureR.buffer, ecc->signatureR.size, NULL)) == NULL ||
                (bs = BN_bin2bn(ecc->signatureS.buffer, ecc->signatureS.size, NULL)) == NULL) {
                r = DEVID_ERR_ALLOC;
                goto out;
            }
            if (ECDSA_SIG_set0(esig, br, bs) != 1) {
                r = DEVID_ERR_ALLOC;
                goto out;
            }
            br = bs = NULL;
            if ((der_len = i2d_ECDSA_SIG(esig, &der)) <= 0) {
                r = DEVID_ERR_CRYPTO;
                goto out;
            }
            *out = der;
            *out_len = (size_t)der_len;
            break;
        case TPM2_ALG_RSASSA:
        case TPM2_ALG_RSAPSS:
            rsa = sig->sigAlg == TPM2_ALG_RSASSA ? &sig->signature.rsassa.sig
                                                 : &sig->signature.rsapss.sig;
            if (rsa->size == 0) {
                r = DEVID_ERR_BAD_REQUEST;
                goto out;
            }
            if ((*out = OPENSSL_memdup(rsa->buffer, rsa->size)) == NULL) {
                r = DEVID_ERR_ALLOC;
                goto out;
            }
            *out_len = rsa->size;
            break;
        default:
            r = DEVID_ERR_BAD_REQUEST;
            goto out;
    }
    r = 0;
out:
    ECDSA_SIG_free(esig);
    BN_free(br);
    BN_free(bs);
    return r;
}

TPMI_ALG_HASH tpmkey_signature_hash(const TPMT_SIGNATURE *sig)
{
    switch (sig->sigAlg) {
        case TPM2_ALG_ECDSA:
            return sig->signature.ecdsa.hash;
        case TPM2_ALG_RSASSA:
            return sig->signature.rsassa.hash;
        case TPM2_ALG_RSAPSS:
            return sig->signature.rsapss.hash;
        default:
            return TPM2_ALG_NULL;
    }
}

int tpmkey_verify_digest(EVP_PKEY *pkey, const TPMT_SIGNATURE *sig, const uint8_t *digest,
                         size_t digest_len)
{
    const EVP_MD *md = tpmkey_hash_md(tpmkey_signature_hash(sig));
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    int base = EVP_PKEY_get_base_id(pkey);
    int r = DEVID_ERR_INTERNAL;

    if (md == NULL || (size_t)EVP_MD_get_size(md) != digest_len)
        return DEVID_ERR_CRYPTO;
    if ((sig->sigAlg == TPM2_ALG_ECDSA) != (base == EVP_PKEY_EC))
        return DEVID_ERR_CRYPTO;
    if ((r = tpmkey_signature_to_der(&der, &der_len, sig)) != 0)
        return DEVID_ERR_CRYPTO;
    if ((ctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    r = DEVID_ERR_CRYPTO;
    if (EVP_PKEY_verify_init(ctx) != 1 || EVP_PKEY_CTX_set_signature_md(ctx, md) != 1)
        goto out;
    if (sig->sigAlg == TPM2_ALG_RSASSA && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)
        goto out;
    if (sig->sigAlg == TPM2_ALG_RSAPSS &&
        (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_AUTO) != 1))
        goto out;
    if (EVP_PKEY_verify(ctx, der, der_len, digest, digest_len) != 1)
        goto out;
    r = 0;
out:
    EVP_PKEY_CTX_free(ctx);
    OPENSSL_free(der);
    return r;
}

int tpmkey_name_from_bytes(uint8_t *out, size_t *out_len, const uint8_t *pub_bytes, size_t pub_len)
{
    TPMI_ALG_HASH alg;
    const EVP_MD *md;
    unsigned int dlen = 0;

    if (out == NULL || out_len == NULL || pub_bytes == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out_len = 0;
    /* TPMT_PUBLIC starts with type (2 bytes), then nameAlg (2 bytes). */
    if (pub_len < 4)
        return DEVID_ERR_BAD_REQUEST;
    alg = (TPMI_ALG_HASH)((pub_bytes[2] << 8) | pub_bytes[3]);
    if ((md = tpmkey_hash_md(alg)) == NULL)
        return DEVID_ERR_BAD_REQUEST;
    out[0] = pub_bytes[2];
    out[1] = pub_bytes[3];
    if (EVP_Digest(pub_bytes, pub_len, out + 2, &dlen, md, NULL) != 1)
        return DEVID_ERR_CRYPTO;
    *out_len = 2 + dlen;
    return 0;
}
