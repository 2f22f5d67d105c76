#include "agent/csr.h"

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "common/io/log.h"
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

int csr_build(uint8_t **out, size_t *out_len, EVP_PKEY *pub, const char *cn, csr_sign_fn sign,
              void *arg)
{
    X509_REQ *req = NULL;
    uint8_t *tbs = NULL, *sig = NULL, *der = NULL;
    uint8_t digest[CSR_DIGEST_LEN];
    TPMT_SIGNATURE tsig;
    size_t sig_len = 0;
    int tbs_len = 0, der_len, sig_nid, param_type;
    char reason[256];
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || out_len == NULL || pub == NULL || cn == NULL || sign == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    *out_len = 0;
    switch (EVP_PKEY_get_base_id(pub)) {
        case EVP_PKEY_EC:
            sig_nid = NID_ecdsa_with_SHA256;
            param_type = V_ASN1_UNDEF;
            break;
        case EVP_PKEY_RSA:
            sig_nid = NID_sha256WithRSAEncryption;
            param_type = V_ASN1_NULL;
            break;
        default:
            log_err("CSR: unsupported key type %s", EVP_PKEY_get0_type_name(pub));
            return DEVID_ERR_INVALID_ARGUMENT;
    }
    if ((req = X509_REQ_new()) == NULL || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
        X509_REQ_set_pubkey(req, pub) != 1) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if ((r = set_subject(req, cn)) != 0)
        goto out;
    if ((tbs_len = i2d_re_X509_REQ_tbs(req, &tbs)) <= 0) {
        log_err("CSR: cannot encode the request info: %s",
                devid_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    if (SHA256(tbs, (size_t)tbs_len, digest) == NULL) {
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    if ((r = sign(arg, &tsig, digest)) != 0)
        goto out;
    if ((r = tpmkey_signature_to_der(&sig, &sig_len, &tsig)) != 0) {
        log_err("CSR: the signer returned an unsupported signature (algorithm 0x%04x)",
                tsig.sigAlg);
        goto out;
    }
    if ((r = set_signature(req, sig_nid, param_type, sig, sig_len)) != 0)
        goto out;
    if (X509_REQ_verify(req, pub) != 1) {
        log_err("CSR: the TPM signature does not verify with the CSR's key: %s",
                devid_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    if ((der_len = i2d_X509_REQ(req, &der)) <= 0) {
        log_err("CSR: cannot encode the request: %s", devid_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    *out = der;
    *out_len = (size_t)der_len;
    r = 0;
out:
    OPENSSL_free(tbs);
    OPENSSL_free(sig);
    X509_REQ_free(req);
    return r;
}
