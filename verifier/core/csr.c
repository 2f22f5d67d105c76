#include "verifier/core/csr.h"

#include <stdio.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "verifier/core/certview.h"

int csr_parse(X509_REQ **out, const uint8_t *der, size_t len, char *why, size_t why_len)
{
    X509_REQ *req = NULL;
    EVP_PKEY *key;
    const unsigned char *p = der;
    char reason[256];
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    why[0] = '\0';
    if (der == NULL || len == 0 || len > CSR_MAX_LEN) {
        snprintf(why, why_len, "CSR is empty or longer than %d bytes", CSR_MAX_LEN);
        r = DEVID_ERR_CSR_INVALID;
        goto out;
    }
    if ((req = d2i_X509_REQ(NULL, &p, (long)len)) == NULL) {
        snprintf(why, why_len, "CSR does not parse as PKCS#10 DER: %s",
                 devid_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CSR_INVALID;
        goto out;
    }
    if (p != der + len) {
        snprintf(why, why_len, "CSR has %zu trailing bytes", (size_t)(der + len - p));
        r = DEVID_ERR_CSR_INVALID;
        goto out;
    }
    if ((key = X509_REQ_get0_pubkey(req)) == NULL) {
        snprintf(why, why_len, "CSR public key does not decode: %s",
                 devid_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CSR_INVALID;
        goto out;
    }
    if (X509_REQ_verify(req, key) != 1) {
        snprintf(why, why_len, "CSR self-signature does not verify: %s",
                 devid_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CSR_INVALID;
        goto out;
    }
    *out = req;
    req = NULL;
    r = 0;
out:
    X509_REQ_free(req);
    return r;
}

int csr_check_key(X509_REQ *req, EVP_PKEY *key, char *why, size_t why_len)
{
    EVP_PKEY *csr_key;

    if (req == NULL || key == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    why[0] = '\0';
    if ((csr_key = X509_REQ_get0_pubkey(req)) == NULL || EVP_PKEY_eq(csr_key, key) != 1) {
        ERR_clear_error();
        snprintf(why, why_len, "CSR public key is not the key certified by the TPM");
        return DEVID_ERR_CSR_KEY_MISMATCH;
    }
    return 0;
}

/* PKCS#10 (RFC 2986) as OpenSSL's X509_REQ template has it (crypto/x509/
 * x_req.c: attributes tolerated when absent), but with the key left as its
 * algorithm and bits: OpenSSL's own template decodes it on every parse. */
typedef struct {
    ASN1_ENCODING enc;
    ASN1_INTEGER *version;
    X509_NAME *subject;
    SPKI_VIEW *spki;
    STACK_OF(X509_ATTRIBUTE) *attributes;
} CSR_INFO;

typedef struct {
    CSR_INFO *info;
    X509_ALGOR *sig_alg;
    ASN1_BIT_STRING *signature;
} CSR_VIEW;

/* OpenSSL's template macros, laid out as OpenSSL does. */
/* clang-format off */
ASN1_SEQUENCE_enc(CSR_INFO, enc, 0) = {
    ASN1_SIMPLE(CSR_INFO, version, ASN1_INTEGER),
    ASN1_SIMPLE(CSR_INFO, subject, X509_NAME),
    ASN1_SIMPLE(CSR_INFO, spki, SPKI_VIEW),
    ASN1_IMP_SET_OF_OPT(CSR_INFO, attributes, X509_ATTRIBUTE, 0),
} static_ASN1_SEQUENCE_END_ref(CSR_INFO, CSR_INFO)

ASN1_SEQUENCE(CSR_VIEW) = {
    ASN1_SIMPLE(CSR_VIEW, info, CSR_INFO),
    ASN1_SIMPLE(CSR_VIEW, sig_alg, X509_ALGOR),
    ASN1_SIMPLE(CSR_VIEW, signature, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CSR_VIEW)

static CSR_VIEW *d2i_CSR_VIEW(const unsigned char **in, long len)
{
    return (CSR_VIEW *)ASN1_item_d2i(NULL, in, len, ASN1_ITEM_rptr(CSR_VIEW));
}
/* clang-format on */

static void CSR_VIEW_free(CSR_VIEW *v)
{
    ASN1_item_free((ASN1_VALUE *)v, ASN1_ITEM_rptr(CSR_VIEW));
}

static int i2d_SPKI_VIEW(const SPKI_VIEW *spki, unsigned char **out)
{
    return ASN1_item_i2d((const ASN1_VALUE *)spki, out, ASN1_ITEM_rptr(SPKI_VIEW));
}

/* ec_spki returns a new SubjectPublicKeyInfo of the EC key |key| (named
 * curve, uncompressed point), made without the encoder framework and
 * holding no decoded key; NULL when |key| is not such a key. */
static X509_PUBKEY *ec_spki(EVP_PKEY *key)
{
    char group[64];
    unsigned char point[1 + 2 * 66], *enc = NULL;
    size_t point_len = 0;
    X509_PUBKEY *pub = NULL;
    int nid;

    if (!EVP_PKEY_is_a(key, "EC") ||
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) != 1 ||
        (nid = OBJ_txt2nid(group)) == NID_undef ||
        EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point),
                                        &point_len) != 1 ||
        point_len < 3 || point[0] != 0x04 || (pub = X509_PUBKEY_new()) == NULL ||
        (enc = OPENSSL_memdup(point, point_len)) == NULL ||
        X509_PUBKEY_set0_param(pub, OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                               OBJ_nid2obj(nid), enc, (int)point_len) != 1) {
        OPENSSL_free(enc);
        X509_PUBKEY_free(pub);
        ERR_clear_error();
        return NULL;
    }
    return pub;
}

/* The path for every request the fast one does not take. */
static int check_slow(X509_PUBKEY **spki, const uint8_t *der, size_t len, EVP_PKEY *key, char *why,
                      size_t why_len)
{
    X509_REQ *req = NULL;
    int r;

    if ((r = csr_parse(&req, der, len, why, why_len)) != 0 ||
        (r = csr_check_key(req, key, why, why_len)) != 0)
        goto out;
    if ((*spki = X509_PUBKEY_dup(X509_REQ_get_X509_PUBKEY(req))) == NULL)
        r = DEVID_ERR_ALLOC;
out:
    X509_REQ_free(req);
    return r;
}

int csr_check(X509_PUBKEY **spki, const uint8_t *der, size_t len, EVP_PKEY *key, char *why,
              size_t why_len)
{
    const unsigned char *p = der;
    unsigned char *want = NULL, *have = NULL;
    X509_PUBKEY *pub = NULL;
    CSR_VIEW *view = NULL;
    int want_len, have_len, r = DEVID_ERR_INTERNAL;

    if (spki == NULL || key == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    *spki = NULL;
    why[0] = '\0';
    if (der == NULL || len == 0 || len > CSR_MAX_LEN)
        return check_slow(spki, der, len, key, why, why_len);
    /* The fast path: the request parses as PKCS#10 with no trailing bytes,
     * and its key is |key| as DER; else the slow one says what is wrong. */
    if ((pub = ec_spki(key)) == NULL || (want_len = i2d_X509_PUBKEY(pub, &want)) <= 0 ||
        (view = d2i_CSR_VIEW(&p, (long)len)) == NULL || p != der + len ||
        (have_len = i2d_SPKI_VIEW(view->info->spki, &have)) != want_len ||
        memcmp(have, want, (size_t)want_len) != 0) {
        ERR_clear_error();
        r = check_slow(spki, der, len, key, why, why_len);
        goto out;
    }
    if (ASN1_item_verify(ASN1_ITEM_rptr(CSR_INFO), view->sig_alg, view->signature, view->info,
                         key) != 1) {
        char reason[256];

        snprintf(why, why_len, "CSR self-signature does not verify: %s",
                 devid_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CSR_INVALID;
        goto out;
    }
    /* The request's key is these very bytes. */
    *spki = pub;
    pub = NULL;
    r = 0;
out:
    OPENSSL_free(want);
    OPENSSL_free(have);
    X509_PUBKEY_free(pub);
    CSR_VIEW_free(view);
    return r;
}
