#include "agent/core/csr.h"

#include <stdio.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "common/tpmkey.h"

static int set_subject(X509_REQ *req, const char *cn)
{
    X509_NAME *name = NULL;
    int r = DEVID_ERR_ALLOC;

    if ((name = X509_NAME_new()) == NULL ||
        X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn,
                                   -1, -1, 0) != 1 ||
        X509_REQ_set_subject_name(req, name) != 1)
        goto out;
    r = 0;
out:
    X509_NAME_free(name);
    return r;
}

static int set_signature(X509_REQ *req, int sig_nid, int param_type, uint8_t *sig, size_t sig_len)
{
    X509_ALGOR *alg = NULL;
    ASN1_BIT_STRING *bits = NULL;
    int r = DEVID_ERR_ALLOC;

    if ((alg = X509_ALGOR_new()) == NULL ||
        X509_ALGOR_set0(alg, OBJ_nid2obj(sig_nid), param_type, NULL) != 1 ||
        X509_REQ_set1_signature_algo(req, alg) != 1)
        goto out;
    if ((bits = ASN1_BIT_STRING_new()) == NULL || ASN1_BIT_STRING_set(bits, sig, (int)sig_len) != 1)
        goto out;
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    X509_REQ_set0_signature(req, bits);
    bits = NULL;
    r = 0;
out:
    ASN1_BIT_STRING_free(bits);
    X509_ALGOR_free(alg);
    return r;
}

/* sig_alg names the signature algorithm of a SHA-256 signature by |pub|. */
static int sig_alg(int *sig_nid, int *param_type, EVP_PKEY *pub)
{
    switch (EVP_PKEY_get_base_id(pub)) {
        case EVP_PKEY_EC:
            *sig_nid = NID_ecdsa_with_SHA256;
            *param_type = V_ASN1_UNDEF;
            return 0;
        case EVP_PKEY_RSA:
            *sig_nid = NID_sha256WithRSAEncryption;
            *param_type = V_ASN1_NULL;
            return 0;
        default:
            return DEVID_ERR_INVALID_ARGUMENT;
    }
}

/* sign_req signs the request info of |req| through |sign| and sets the
 * signature. */
static int sign_req(X509_REQ *req, EVP_PKEY *pub, csr_sign_fn sign, void *arg, char *why,
                    size_t why_len)
{
    uint8_t *tbs = NULL, *sig = NULL;
    uint8_t digest[TPM2_SHA256_DIGEST_SIZE];
    TPMT_SIGNATURE tsig;
    size_t sig_len = 0;
    int tbs_len, sig_nid, param_type;
    char reason[256];
    int r = DEVID_ERR_CRYPTO;

    if ((r = sig_alg(&sig_nid, &param_type, pub)) != 0) {
        snprintf(why, why_len, "CSR: unsupported key type %s", EVP_PKEY_get0_type_name(pub));
        return r;
    }
    if ((tbs_len = i2d_re_X509_REQ_tbs(req, &tbs)) <= 0) {
        snprintf(why, why_len, "CSR: cannot encode the request info: %s",
                 devid_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    if (SHA256(tbs, (size_t)tbs_len, digest) == NULL) {
        snprintf(why, why_len, "CSR: SHA-256 failed");
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    if ((r = sign(arg, &tsig, digest)) != 0) {
        snprintf(why, why_len, "CSR: the signature by the new key failed: %s", devid_err_str(r));
        goto out;
    }
    if ((r = tpmkey_signature_to_der(&sig, &sig_len, &tsig)) != 0) {
        snprintf(why, why_len, "CSR: the signer returned an unsupported signature (0x%04x)",
                 tsig.sigAlg);
        goto out;
    }
    if ((r = set_signature(req, sig_nid, param_type, sig, sig_len)) != 0)
        snprintf(why, why_len, "CSR: out of memory");
out:
    OPENSSL_free(tbs);
    OPENSSL_free(sig);
    return r;
}

int csr_build(uint8_t **out, size_t *out_len, EVP_PKEY *pub, const char *cn, csr_sign_fn sign,
              void *arg, char *why, size_t why_len)
{
    X509_REQ *req = NULL;
    uint8_t *der = NULL;
    char reason[256];
    int der_len;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || out_len == NULL || pub == NULL || cn == NULL || sign == NULL ||
        why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    *out_len = 0;
    why[0] = '\0';
    if ((req = X509_REQ_new()) == NULL || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
        X509_REQ_set_pubkey(req, pub) != 1 || set_subject(req, cn) != 0) {
        snprintf(why, why_len, "CSR: out of memory");
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if ((r = sign_req(req, pub, sign, arg, why, why_len)) != 0)
        goto out;
    if (X509_REQ_verify(req, pub) != 1) {
        snprintf(why, why_len, "CSR: the TPM signature does not verify with the CSR's key: %s",
                 devid_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    if ((der_len = i2d_X509_REQ(req, &der)) <= 0) {
        snprintf(why, why_len, "CSR: cannot encode the request: %s",
                 devid_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    *out = der;
    *out_len = (size_t)der_len;
    r = 0;
out:
    X509_REQ_free(req);
    return r;
}
