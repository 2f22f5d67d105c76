/* TPM2_Certify evidence checking. Pure: parses with tss2-mu, verifies with
 * OpenSSL over the raw bytes as received. */
#ifndef DEVID_VERIFIER_CORE_ATTEST_H
#define DEVID_VERIFIER_CORE_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

/* Smallest RSA key accepted for the new key, in bits. */
#define ATTEST_RSA_MIN_BITS 2048

struct attest_input {
    /* Raw TPMS_ATTEST bytes (contents of TPM2B_ATTEST). */
    const uint8_t *info;
    size_t info_len;
    /* TPMT_SIGNATURE over |info|, TPM wire format. */
    const uint8_t *sig;
    size_t sig_len;
    /* The certified key's TPMT_PUBLIC, TPM wire format. */
    const uint8_t *pub;
    size_t pub_len;
    /* The signer's public key, from its certificate (IDevID or IAK). */
    EVP_PKEY *signer;
    /* The signer's TPMT_PUBLIC, TPM wire format (TpmEvidence.signer_public);
     * may be absent (NULL) for an IDevID signer, which is then taken to be
     * unrestricted. Its key must equal |signer|. */
    const uint8_t *signer_public;
    size_t signer_public_len;
    /* The signer is an IAK: signer_public is required and must be restricted,
     * sign and fixedTPM. */
    bool signer_is_iak;
    /* Expected qualifyingData: the transcript T. */
    const uint8_t *qualifying;
    size_t qualifying_len;
};

struct attest_result {
    /* The certified key's public area, parsed. */
    TPMT_PUBLIC pub;
    /* The certified key as an OpenSSL public key; owned by the result. */
    EVP_PKEY *key;
    /* The signer's attributes: restricted (a TPM-only signer such as an IAK)
     * or not; false when signer_public was absent. */
    bool signer_restricted;
    bool signer_public_present;
};

/* The kind of signer that vouched for the key, for verdicts and logs. */
enum attest_signer {
    ATTEST_SIGNER_IDEVID_UNRESTRICTED = 0,
    ATTEST_SIGNER_IDEVID_RESTRICTED,
    ATTEST_SIGNER_IAK_RESTRICTED,
};

/* attest_signer_str returns "idevid-unrestricted", "idevid-restricted" or
 * "iak-restricted" (static). */
const char *attest_signer_str(enum attest_signer s);

/* attest_result_cleanup frees what |res| owns. */
void attest_result_cleanup(struct attest_result *res);

/*
 * attest_check_certify checks |in|: TPMS_ATTEST magic TPM_GENERATED_VALUE,
 * type TPM_ST_ATTEST_CERTIFY, no trailing bytes (DEVID_ERR_ATTEST_MALFORMED);
 * extraData == qualifying (DEVID_ERR_ATTEST_NONCE); |pub| parses
 * (DEVID_ERR_ATTEST_MALFORMED) and its nameAlg is SHA-256, SHA-384 or SHA-512
 * (DEVID_ERR_ATTEST_ATTRIBUTES); certified Name == Name of |pub| computed
 * over its bytes (DEVID_ERR_ATTEST_NAME); key attributes fixedTPM,
 * fixedParent, sensitiveDataOrigin, sign, not decrypt, not restricted, and
 * type ECC P-256/P-384/P-521 or RSA of at least ATTEST_RSA_MIN_BITS
 * (DEVID_ERR_ATTEST_ATTRIBUTES); signer_public parses, its key
 * equals |signer| (DEVID_ERR_ATTEST_SIGNATURE) and, for an IAK, it is
 * restricted, sign and fixedTPM (DEVID_ERR_ATTEST_ATTRIBUTES); signature by
 * |signer| over the hash of |info| (DEVID_ERR_ATTEST_SIGNATURE). Fills |res|
 * on success. |why| gets a reason naming the field on failure. Returns 0 or
 * that code.
 */
int attest_check_certify(struct attest_result *res, const struct attest_input *in, char *why,
                         size_t why_len);

#endif
