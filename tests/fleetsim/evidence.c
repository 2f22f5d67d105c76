#include "evidence.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "common/err.h"
#include "common/tpmkey.h"
#include "devid/v1/enroll.pb-c.h"

/* Marshalled sizes: TPMT_PUBLIC (ECC P-256) 88 bytes, TPMT_SIGNATURE (ECDSA
 * P-256) 72, TPMS_ATTEST of a certify ~200. */
#define PUB_MAX 256
#define SIG_MAX 160
#define ATTEST_MAX 512
#define CSR_MAX 1024

int evidence_p256_public(uint8_t *buf, size_t *len, EVP_PKEY *key, TPMA_OBJECT attrs,
                         TPMI_ALG_ECC_SCHEME scheme)
{
    TPMT_PUBLIC pub;
    BIGNUM *x = NULL, *y = NULL;
    size_t off = 0;
    int r = DEVID_ERR_CRYPTO;

    memset(&pub, 0, sizeof(pub));
    pub.type = TPM2_ALG_ECC;
    pub.nameAlg = TPM2_ALG_SHA256;
    pub.objectAttributes = attrs;
    pub.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    pub.parameters.eccDetail.scheme.scheme = scheme;
    if (scheme == TPM2_ALG_ECDSA)
        pub.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    pub.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1 ||
        BN_bn2binpad(x, pub.unique.ecc.x.buffer, 32) != 32 ||
        BN_bn2binpad(y, pub.unique.ecc.y.buffer, 32) != 32)
        goto out;
    pub.unique.ecc.x.size = 32;
    pub.unique.ecc.y.size = 32;
    if (Tss2_MU_TPMT_PUBLIC_Marshal(&pub, buf, *len, &off) != TSS2_RC_SUCCESS)
        goto out;
    *len = off;
    r = 0;
out:
    BN_free(x);
    BN_free(y);
    return r;
}

/* tpm_sign signs the 32-byte |digest| with |key| as TPM2_Sign does and
 * writes the marshalled ECDSA/SHA-256 TPMT_SIGNATURE to |buf|. */
static int tpm_sign(uint8_t *buf, size_t *len, EVP_PKEY *key, const uint8_t digest[32])
{
    EVP_PKEY_CTX *ctx = NULL;
    ECDSA_SIG *es = NULL;
    const BIGNUM *br, *bs;
    TPMT_SIGNATURE sig;
    uint8_t der[128];
    const uint8_t *p = der;
    size_t der_len = sizeof(der), off = 0;
    int r = DEVID_ERR_CRYPTO;

    if ((ctx = EVP_PKEY_CTX_new(key, NULL)) == NULL || EVP_PKEY_sign_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1 ||
        EVP_PKEY_sign(ctx, der, &der_len, digest, 32) != 1 ||
        (es = d2i_ECDSA_SIG(NULL, &p, (long)der_len)) == NULL)
        goto out;
    ECDSA_SIG_get0(es, &br, &bs);
    memset(&sig, 0, sizeof(sig));
    sig.sigAlg = TPM2_ALG_ECDSA;
    sig.signature.ecdsa.hash = TPM2_ALG_SHA256;
    if (BN_bn2binpad(br, sig.signature.ecdsa.signatureR.buffer, 32) != 32 ||
        BN_bn2binpad(bs, sig.signature.ecdsa.signatureS.buffer, 32) != 32)
        goto out;
    sig.signature.ecdsa.signatureR.size = 32;
    sig.signature.ecdsa.signatureS.size = 32;
    if (Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, buf, *len, &off) != TSS2_RC_SUCCESS)
        goto out;
    *len = off;
    r = 0;
out:
    ECDSA_SIG_free(es);
    EVP_PKEY_CTX_free(ctx);
    return r;
}

static int sha256(uint8_t out[32], const uint8_t *in, size_t len)
{
    unsigned int n = 0;

    return EVP_Digest(in, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32 ? 0 : DEVID_ERR_CRYPTO;
}

/* certify_info marshals the TPMS_ATTEST that TPM2_Certify(object, signer =
 * the IDevID, qualifyingData = |t|) returns on |dev|'s TPM. */
static int certify_info(uint8_t *buf, size_t *len, struct device *dev, const uint8_t *pub,
                        size_t pub_len, const uint8_t t[TRANSCRIPT_LEN])
{
    TPMS_ATTEST att;
    uint8_t name[TPMKEY_NAME_MAX];
    size_t name_len = 0, off = 0;
    EVP_MD_CTX *md = NULL;
    unsigned int dlen = 0;
    int r;

    memset(&att, 0, sizeof(att));
    att.magic = TPM2_GENERATED_VALUE;
    att.type = TPM2_ST_ATTEST_CERTIFY;
    memcpy(att.qualifiedSigner.name, dev->qualified_name, dev->qualified_name_len);
    att.qualifiedSigner.size = (UINT16)dev->qualified_name_len;
    memcpy(att.extraData.buffer, t, TRANSCRIPT_LEN);
    att.extraData.size = TRANSCRIPT_LEN;
    att.clockInfo.clock = dev->clock_ms;
    att.clockInfo.resetCount = dev->reset_count;
    att.clockInfo.restartCount = dev->restart_count;
    att.clockInfo.safe = TPM2_YES;
    att.firmwareVersion = dev->firmware_version;
    if ((r = tpmkey_name_from_bytes(name, &name_len, pub, pub_len)) != 0)
        return r;
    memcpy(att.attested.certify.name.name, name, name_len);
    att.attested.certify.name.size = (UINT16)name_len;
    /* Qualified Name under the storage key: nameAlg || H(QN(SRK) || Name). */
    r = DEVID_ERR_CRYPTO;
    if ((md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, dev->srk_qualified_name, dev->srk_qualified_name_len) != 1 ||
        EVP_DigestUpdate(md, name, name_len) != 1 ||
        EVP_DigestFinal_ex(md, att.attested.certify.qualifiedName.name + 2, &dlen) != 1 ||
        dlen != 32)
        goto out;
    att.attested.certify.qualifiedName.name[0] = (BYTE)(TPM2_ALG_SHA256 >> 8);
    att.attested.certify.qualifiedName.name[1] = (BYTE)(TPM2_ALG_SHA256 & 0xff);
    att.attested.certify.qualifiedName.size = 34;
    if (Tss2_MU_TPMS_ATTEST_Marshal(&att, buf, *len, &off) != TSS2_RC_SUCCESS)
        goto out;
    *len = off;
    r = 0;
out:
    EVP_MD_CTX_free(md);
    return r;
}

static int make_csr(uint8_t *buf, size_t *len, EVP_PKEY *key, const char *cn)
{
    X509_REQ *req = NULL;
    X509_NAME *name = NULL;
    uint8_t *p = buf;
    int n, r = DEVID_ERR_CRYPTO;

    if ((req = X509_REQ_new()) == NULL || (name = X509_NAME_new()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
        X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn,
                                   -1, -1, 0) != 1 ||
        X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_sign(req, key, EVP_sha256()) <= 0)
        goto out;
    if ((n = i2d_X509_REQ(req, NULL)) <= 0 || (size_t)n > *len) {
        r = DEVID_ERR_TOO_LARGE;
        goto out;
    }
    i2d_X509_REQ(req, &p);
    *len = (size_t)n;
    r = 0;
out:
    X509_NAME_free(name);
    X509_REQ_free(req);
    return r;
}

int evidence_enroll_request(uint8_t **out, size_t *out_len, EVP_PKEY **ldevid, struct device *dev,
                            const struct factory *f, const uint8_t *nonce, size_t nonce_len,
                            const uint8_t *token, size_t token_len,
                            const uint8_t exporter[TRANSCRIPT_EXPORTER_LEN])
{
    Devid__V1__EnrollRequest req = DEVID__V1__ENROLL_REQUEST__INIT;
    Devid__V1__TpmEvidence ev = DEVID__V1__TPM_EVIDENCE__INIT;
    ProtobufCBinaryData inter;
    EVP_PKEY *key = NULL;
    uint8_t pub[PUB_MAX], csr[CSR_MAX], info[ATTEST_MAX], info_sig[SIG_MAX], ch_sig[SIG_MAX];
    uint8_t t[TRANSCRIPT_LEN], digest[32], *buf = NULL;
    size_t pub_len = sizeof(pub), csr_len = sizeof(csr), info_len = sizeof(info);
    size_t info_sig_len = sizeof(info_sig), ch_sig_len = sizeof(ch_sig), len;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || out_len == NULL || dev == NULL || f == NULL || nonce == NULL ||
        token == NULL || exporter == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    *out_len = 0;
    if (ldevid != NULL)
        *ldevid = NULL;
    if ((key = EVP_EC_gen("P-256")) == NULL) {
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    if ((r = evidence_p256_public(pub, &pub_len, key,
                                  TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                      TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                      TPMA_OBJECT_SIGN_ENCRYPT,
                                  TPM2_ALG_NULL)) != 0 ||
        (r = make_csr(csr, &csr_len, key, dev->serial)) != 0 ||
        (r = transcript_compute(t, nonce, nonce_len, exporter, TRANSCRIPT_EXPORTER_LEN, csr,
                                csr_len)) != 0)
        goto out;
    dev->clock_ms += 40; /* TPM2_CreateLoaded and the CSR signature took a while */
    if ((r = certify_info(info, &info_len, dev, pub, pub_len, t)) != 0 ||
        (r = sha256(digest, info, info_len)) != 0 ||
        (r = tpm_sign(info_sig, &info_sig_len, dev->key, digest)) != 0 ||
        (r = tpm_sign(ch_sig, &ch_sig_len, dev->key, t)) != 0)
        goto out;
    ev.certify_info.data = info;
    ev.certify_info.len = info_len;
    ev.certify_signature.data = info_sig;
    ev.certify_signature.len = info_sig_len;
    ev.ldevid_public.data = pub;
    ev.ldevid_public.len = pub_len;
    ev.signer = DEVID__V1__SIGNER_KIND__SIGNER_KIND_IDEVID;
    ev.signer_public.data = dev->pub;
    ev.signer_public.len = dev->pub_len;
    inter.data = (uint8_t *)factory_get0_intermediate_der(f, &inter.len);
    req.token.data = (uint8_t *)token;
    req.token.len = token_len;
    req.csr.data = csr;
    req.csr.len = csr_len;
    req.challenge_signature.data = ch_sig;
    req.challenge_signature.len = ch_sig_len;
    req.evidence = &ev;
    req.intermediates = &inter;
    req.n_intermediates = 1;
    len = devid__v1__enroll_request__get_packed_size(&req);
    if (len == 0 || len > EVIDENCE_BODY_MAX) {
        r = DEVID_ERR_TOO_LARGE;
        goto out;
    }
    if ((buf = malloc(len)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    devid__v1__enroll_request__pack(&req, buf);
    *out = buf;
    *out_len = len;
    buf = NULL;
    if (ldevid != NULL) {
        *ldevid = key;
        key = NULL;
    }
    r = 0;
out:
    OPENSSL_cleanse(t, sizeof(t));
    free(buf);
    EVP_PKEY_free(key);
    return r;
}
