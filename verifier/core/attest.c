#include "verifier/core/attest.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <tss2/tss2_mu.h>

#include "common/err.h"
#include "common/tpmkey.h"

void attest_result_cleanup(struct attest_result *res)
{
    if (res == NULL)
        return;
    EVP_PKEY_free(res->key);
    memset(res, 0, sizeof(*res));
}

const char *attest_signer_str(enum attest_signer s)
{
    switch (s) {
        case ATTEST_SIGNER_IAK_RESTRICTED:
            return "iak-restricted";
        case ATTEST_SIGNER_IDEVID_RESTRICTED:
            return "idevid-restricted";
        case ATTEST_SIGNER_IDEVID_UNRESTRICTED:
        default:
            return "idevid-unrestricted";
    }
}

static int check_structure(TPMS_ATTEST *att, const struct attest_input *in, char *why,
                           size_t why_len)
{
    size_t off = 0;
    TSS2_RC rc;

    memset(att, 0, sizeof(*att));
    rc = Tss2_MU_TPMS_ATTEST_Unmarshal(in->info, in->info_len, &off, att);
    if (rc != TSS2_RC_SUCCESS) {
        snprintf(why, why_len, "certify_info: TPMS_ATTEST does not parse (tss2-mu error 0x%x)",
                 (unsigned)rc);
        return DEVID_ERR_ATTEST_MALFORMED;
    }
    if (off != in->info_len) {
        snprintf(why, why_len, "certify_info: %zu trailing bytes after TPMS_ATTEST",
                 in->info_len - off);
        return DEVID_ERR_ATTEST_MALFORMED;
    }
    if (att->magic != TPM2_GENERATED_VALUE) {
        snprintf(why, why_len, "certify_info: magic 0x%08x is not TPM_GENERATED_VALUE",
                 (unsigned)att->magic);
        return DEVID_ERR_ATTEST_MALFORMED;
    }
    if (att->type != TPM2_ST_ATTEST_CERTIFY) {
        snprintf(why, why_len, "certify_info: type 0x%04x is not TPM_ST_ATTEST_CERTIFY",
                 (unsigned)att->type);
        return DEVID_ERR_ATTEST_MALFORMED;
    }
    return 0;
}

static int check_attributes(const TPMT_PUBLIC *pub, char *why, size_t why_len)
{
    static const struct {
        TPMA_OBJECT bit;
        int want;
        const char *name;
    } rules[] = {
        {TPMA_OBJECT_FIXEDTPM, 1, "fixedTPM"},
        {TPMA_OBJECT_FIXEDPARENT, 1, "fixedParent"},
        {TPMA_OBJECT_SENSITIVEDATAORIGIN, 1, "sensitiveDataOrigin"},
        {TPMA_OBJECT_SIGN_ENCRYPT, 1, "sign"},
        {TPMA_OBJECT_DECRYPT, 0, "decrypt"},
        {TPMA_OBJECT_RESTRICTED, 0, "restricted"},
    };
    TPMA_OBJECT attrs = pub->objectAttributes;
    size_t i;

    for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        int set = (attrs & rules[i].bit) != 0;
        if (set != rules[i].want) {
            snprintf(why, why_len, "ldevid_public: objectAttributes 0x%08x: %s must be %s",
                     (unsigned)attrs, rules[i].name, rules[i].want ? "set" : "clear");
            return DEVID_ERR_ATTEST_ATTRIBUTES;
        }
    }
    return 0;
}

/* The key types and parameters accepted for the new key (docs/protocol.md
 * section 6): ECC on NIST P-256, P-384 or P-521, or RSA of at least
 * ATTEST_RSA_MIN_BITS whose modulus is as long as keyBits says. */
static int check_key_type(const TPMT_PUBLIC *pub, char *why, size_t why_len)
{
    const TPMS_RSA_PARMS *rsa = &pub->parameters.rsaDetail;

    switch (pub->type) {
        case TPM2_ALG_ECC:
            switch (pub->parameters.eccDetail.curveID) {
                case TPM2_ECC_NIST_P256:
                case TPM2_ECC_NIST_P384:
                case TPM2_ECC_NIST_P521:
                    return 0;
                default:
                    snprintf(why, why_len,
                             "ldevid_public: ECC curve 0x%04x: only NIST P-256, P-384 and P-521",
                             (unsigned)pub->parameters.eccDetail.curveID);
                    return DEVID_ERR_ATTEST_ATTRIBUTES;
            }
        case TPM2_ALG_RSA:
            if (rsa->keyBits < ATTEST_RSA_MIN_BITS || pub->unique.rsa.size * 8u != rsa->keyBits) {
                snprintf(why, why_len,
                         "ldevid_public: RSA key of %u bits (modulus of %u bytes): at least %d "
                         "bits",
                         (unsigned)rsa->keyBits, (unsigned)pub->unique.rsa.size,
                         ATTEST_RSA_MIN_BITS);
                return DEVID_ERR_ATTEST_ATTRIBUTES;
            }
            return 0;
        default:
            snprintf(why, why_len, "ldevid_public: key type 0x%04x: only ECC and RSA",
                     (unsigned)pub->type);
            return DEVID_ERR_ATTEST_ATTRIBUTES;
    }
}

/* The name algorithms accepted for the new key. */
static int check_name_alg(const TPMT_PUBLIC *pub, char *why, size_t why_len)
{
    switch (pub->nameAlg) {
        case TPM2_ALG_SHA256:
        case TPM2_ALG_SHA384:
        case TPM2_ALG_SHA512:
            return 0;
        default:
            snprintf(why, why_len,
                     "ldevid_public: nameAlg 0x%04x: only SHA-256, SHA-384 and SHA-512",
                     (unsigned)pub->nameAlg);
            return DEVID_ERR_ATTEST_ATTRIBUTES;
    }
}

static int check_signer(struct attest_result *res, const struct attest_input *in, char *why,
                        size_t why_len)
{
    static const struct {
        TPMA_OBJECT bit;
        const char *name;
    } iak_rules[] = {
        {TPMA_OBJECT_RESTRICTED, "restricted"},
        {TPMA_OBJECT_SIGN_ENCRYPT, "sign"},
        {TPMA_OBJECT_FIXEDTPM, "fixedTPM"},
    };
    TPMT_PUBLIC spub;
    EVP_PKEY *key = NULL;
    size_t i;
    int r = DEVID_ERR_ATTEST_SIGNATURE;

    if (in->signer_public == NULL || in->signer_public_len == 0) {
        if (in->signer_is_iak) {
            snprintf(why, why_len, "signer_public: absent, but an IAK signer must send it");
            r = DEVID_ERR_ATTEST_MALFORMED;
            goto out;
        }
        r = 0;
        goto out;
    }
    if (tpmkey_unmarshal_public(&spub, in->signer_public, in->signer_public_len) != 0) {
        snprintf(why, why_len, "signer_public: TPMT_PUBLIC does not parse");
        r = DEVID_ERR_ATTEST_MALFORMED;
        goto out;
    }
    if (tpmkey_public_to_pkey(&key, &spub) != 0 || EVP_PKEY_eq(key, in->signer) != 1) {
        snprintf(why, why_len, "signer_public: its key is not the %s certificate's key",
                 in->signer_is_iak ? "IAK" : "IDevID");
        goto out;
    }
    if (in->signer_is_iak) {
        for (i = 0; i < sizeof(iak_rules) / sizeof(iak_rules[0]); i++) {
            if ((spub.objectAttributes & iak_rules[i].bit) == 0) {
                snprintf(why, why_len, "signer_public: IAK objectAttributes 0x%08x: %s must be set",
                         (unsigned)spub.objectAttributes, iak_rules[i].name);
                r = DEVID_ERR_ATTEST_ATTRIBUTES;
                goto out;
            }
        }
    }
    res->signer_public_present = true;
    res->signer_restricted = (spub.objectAttributes & TPMA_OBJECT_RESTRICTED) != 0;
    r = 0;
out:
    ERR_clear_error();
    EVP_PKEY_free(key);
    return r;
}

static int check_signature(const struct attest_input *in, char *why, size_t why_len)
{
    TPMT_SIGNATURE sig;
    const EVP_MD *md;
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;

    if (tpmkey_unmarshal_signature(&sig, in->sig, in->sig_len) != 0) {
        snprintf(why, why_len, "certify_signature: TPMT_SIGNATURE does not parse");
        return DEVID_ERR_ATTEST_SIGNATURE;
    }
    if ((md = tpmkey_hash_md(tpmkey_signature_hash(&sig))) == NULL) {
        snprintf(why, why_len, "certify_signature: unsupported scheme 0x%04x or hash algorithm",
                 (unsigned)sig.sigAlg);
        return DEVID_ERR_ATTEST_SIGNATURE;
    }
    if (EVP_Digest(in->info, in->info_len, digest, &dlen, md, NULL) != 1) {
        snprintf(why, why_len, "certify_info: hashing failed");
        return DEVID_ERR_CRYPTO;
    }
    if (tpmkey_verify_digest(in->signer, &sig, digest, dlen) != 0) {
        snprintf(why, why_len,
                 "certify_signature: does not verify over certify_info with the signer key");
        return DEVID_ERR_ATTEST_SIGNATURE;
    }
    return 0;
}

int attest_check_certify(struct attest_result *res, const struct attest_input *in, char *why,
                         size_t why_len)
{
    TPMS_ATTEST att;
    TPMT_PUBLIC pub;
    uint8_t name[TPMKEY_NAME_MAX];
    size_t name_len = 0;
    const TPM2B_NAME *certified;
    EVP_PKEY *key = NULL;
    int r = DEVID_ERR_INTERNAL;

    if (res == NULL || in == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(res, 0, sizeof(*res));
    why[0] = '\0';
    if (in->info == NULL || in->sig == NULL || in->pub == NULL || in->signer == NULL ||
        in->qualifying == NULL) {
        snprintf(why, why_len, "certify evidence incomplete");
        r = DEVID_ERR_ATTEST_MALFORMED;
        goto out;
    }
    if ((r = check_structure(&att, in, why, why_len)) != 0)
        goto out;
    if (att.extraData.size != in->qualifying_len ||
        CRYPTO_memcmp(att.extraData.buffer, in->qualifying, in->qualifying_len) != 0) {
        snprintf(why, why_len, "certify_info: extraData (%u bytes) is not the transcript T",
                 (unsigned)att.extraData.size);
        r = DEVID_ERR_ATTEST_NONCE;
        goto out;
    }
    if (tpmkey_unmarshal_public(&pub, in->pub, in->pub_len) != 0) {
        snprintf(why, why_len, "ldevid_public: TPMT_PUBLIC does not parse");
        r = DEVID_ERR_ATTEST_MALFORMED;
        goto out;
    }
    if ((r = check_name_alg(&pub, why, why_len)) != 0)
        goto out;
    if (tpmkey_name_from_bytes(name, &name_len, in->pub, in->pub_len) != 0) {
        snprintf(why, why_len, "ldevid_public: unsupported nameAlg");
        r = DEVID_ERR_ATTEST_NAME;
        goto out;
    }
    certified = &att.attested.certify.name;
    if (certified->size != name_len || memcmp(certified->name, name, name_len) != 0) {
        snprintf(why, why_len, "certify_info: certified Name is not the Name of ldevid_public");
        r = DEVID_ERR_ATTEST_NAME;
        goto out;
    }
    if ((r = check_attributes(&pub, why, why_len)) != 0 ||
        (r = check_key_type(&pub, why, why_len)) != 0)
        goto out;
    if ((r = check_signer(res, in, why, why_len)) != 0)
        goto out;
    if ((r = check_signature(in, why, why_len)) != 0)
        goto out;
    if (tpmkey_public_to_pkey(&key, &pub) != 0) {
        snprintf(why, why_len, "ldevid_public: unsupported key type 0x%04x or parameters",
                 (unsigned)pub.type);
        r = DEVID_ERR_ATTEST_ATTRIBUTES;
        goto out;
    }
    res->pub = pub;
    res->key = key;
    key = NULL;
    r = 0;
out:
    if (r != 0)
        memset(res, 0, sizeof(*res));
    EVP_PKEY_free(key);
    return r;
}
