#include "verifier/core/certview.h"

#include <limits.h>

#include <openssl/err.h>
#include <openssl/objects.h>

#include "common/err.h"
#include "common/tpmkey.h"

/* OpenSSL's template macros, laid out as OpenSSL does (X509_CINF in
 * crypto/x509/x_x509.c, but for the key). */
/* clang-format off */
ASN1_SEQUENCE(SPKI_VIEW) = {
    ASN1_SIMPLE(SPKI_VIEW, algor, X509_ALGOR),
    ASN1_SIMPLE(SPKI_VIEW, public_key, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(SPKI_VIEW)

ASN1_SEQUENCE(TBS_VIEW) = {
    ASN1_EXP_OPT(TBS_VIEW, version, ASN1_INTEGER, 0),
    ASN1_SIMPLE(TBS_VIEW, serial, ASN1_INTEGER),
    ASN1_SIMPLE(TBS_VIEW, signature, X509_ALGOR),
    ASN1_SIMPLE(TBS_VIEW, issuer, X509_NAME),
    ASN1_SIMPLE(TBS_VIEW, validity, X509_VAL),
    ASN1_SIMPLE(TBS_VIEW, subject, X509_NAME),
    ASN1_SIMPLE(TBS_VIEW, spki, SPKI_VIEW),
    ASN1_IMP_OPT(TBS_VIEW, issuer_uid, ASN1_BIT_STRING, 1),
    ASN1_IMP_OPT(TBS_VIEW, subject_uid, ASN1_BIT_STRING, 2),
    ASN1_EXP_SEQUENCE_OF_OPT(TBS_VIEW, extensions, X509_EXTENSION, 3),
} static_ASN1_SEQUENCE_END(TBS_VIEW)

ASN1_SEQUENCE(CERT_VIEW) = {
    ASN1_SIMPLE(CERT_VIEW, tbs, TBS_VIEW),
    ASN1_SIMPLE(CERT_VIEW, sig_alg, X509_ALGOR),
    ASN1_SIMPLE(CERT_VIEW, signature, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CERT_VIEW)

void certview_free(CERT_VIEW *v)
{
    ASN1_item_free((ASN1_VALUE *)v, ASN1_ITEM_rptr(CERT_VIEW));
}
/* clang-format on */

int certview_parse(CERT_VIEW **out, const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    CERT_VIEW *v;

    *out = NULL;
    if (der == NULL || len == 0 || len > LONG_MAX)
        return DEVID_ERR_BAD_REQUEST;
    v = (CERT_VIEW *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(CERT_VIEW));
    if (v == NULL || p != der + len) {
        certview_free(v);
        ERR_clear_error();
        return DEVID_ERR_BAD_REQUEST;
    }
    *out = v;
    return 0;
}

/* A named-curve EC key from its point; NULL when it is not one. */
static EVP_PKEY *ec_from_point(const SPKI_VIEW *spki)
{
    const ASN1_OBJECT *alg = NULL;
    const void *param = NULL;
    int ptype = V_ASN1_UNDEF;
    const char *group;
    EVP_PKEY *key = NULL;

    X509_ALGOR_get0(&alg, &ptype, &param, spki->algor);
    if (OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey || ptype != V_ASN1_OBJECT ||
        (group = OBJ_nid2sn(OBJ_obj2nid(param))) == NULL ||
        ASN1_STRING_length(spki->public_key) <= 0 ||
        tpmkey_ec_point_to_pkey(&key, group, ASN1_STRING_get0_data(spki->public_key),
                                (size_t)ASN1_STRING_length(spki->public_key)) != 0)
        return NULL;
    return key;
}

EVP_PKEY *certview_pkey(const CERT_VIEW *v)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    EVP_PKEY *key;
    int len;

    if (v == NULL || v->tbs == NULL || v->tbs->spki == NULL)
        return NULL;
    if ((key = ec_from_point(v->tbs->spki)) == NULL &&
        (len = ASN1_item_i2d((const ASN1_VALUE *)v->tbs->spki, &der, ASN1_ITEM_rptr(SPKI_VIEW))) >
            0) {
        p = der;
        if ((key = d2i_PUBKEY(NULL, &p, len)) != NULL && p != der + len) {
            EVP_PKEY_free(key);
            key = NULL;
        }
    }
    OPENSSL_free(der);
    ERR_clear_error();
    return key;
}

int certview_sign(CERT_VIEW *v, EVP_MD_CTX *mctx)
{
    if (v == NULL || mctx == NULL ||
        ASN1_item_sign_ctx(ASN1_ITEM_rptr(TBS_VIEW), v->tbs->signature, v->sig_alg, v->signature,
                           v->tbs, mctx) <= 0)
        return DEVID_ERR_CRYPTO;
    return 0;
}

int certview_encode(const CERT_VIEW *v, uint8_t **der, size_t *len)
{
    unsigned char *out = NULL;
    int n;

    *der = NULL;
    *len = 0;
    if (v == NULL ||
        (n = ASN1_item_i2d((const ASN1_VALUE *)v, &out, ASN1_ITEM_rptr(CERT_VIEW))) <= 0)
        return DEVID_ERR_CRYPTO;
    *der = out;
    *len = (size_t)n;
    return 0;
}
