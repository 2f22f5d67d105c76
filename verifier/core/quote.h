/* The boot-state gate's evidence: a TPM2_Quote over SHA-256 PCRs with the
 * transcript as qualifyingData (docs/protocol.md section 6.2). Pure: parses
 * with tss2-mu, verifies with OpenSSL over the raw bytes as received. */
#ifndef DEVID_VERIFIER_CORE_QUOTE_H
#define DEVID_VERIFIER_CORE_QUOTE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* PCRs of the SHA-256 bank a policy may name: 0 to QUOTE_PCR_COUNT - 1. */
#define QUOTE_PCR_COUNT 24
/* Most PCRs one quote covers: what one TPM2_PCR_Read returns. */
#define QUOTE_MAX_PCRS 8
/* Length of a SHA-256 PCR value. */
#define QUOTE_PCR_LEN 32
/* Longest text quote_pcrs_str writes, NUL included:
 * "23=sha256:<64 hex>" and a comma per PCR. */
#define QUOTE_PCRS_STR_LEN (QUOTE_MAX_PCRS * 76 + 1)

/* One PCR's value, as the agent reported it (PcrValue). */
struct quote_pcr {
    uint32_t index;
    uint8_t sha256[QUOTE_PCR_LEN];
};

struct quote_input {
    /* Raw TPMS_ATTEST bytes (contents of TPM2B_ATTEST). */
    const uint8_t *info;
    size_t info_len;
    /* TPMT_SIGNATURE over |info|, TPM wire format. */
    const uint8_t *sig;
    size_t sig_len;
    /* The restricted key that must have signed: the IAK, whose certificate
     * and attributes the certify evidence checked. */
    EVP_PKEY *signer;
    /* Expected qualifyingData: the transcript T. */
    const uint8_t *qualifying;
    size_t qualifying_len;
    /* The PCRs asked for (bit i: PCR i), non-zero. */
    uint32_t selection;
    /* The values the agent reported, |n_pcrs| of them. */
    const struct quote_pcr *pcrs;
    size_t n_pcrs;
};

/*
 * quote_check checks |in|: TPMS_ATTEST parses with no trailing bytes, magic
 * TPM_GENERATED_VALUE, type TPM_ST_ATTEST_QUOTE (DEVID_ERR_QUOTE_MALFORMED);
 * extraData == qualifying (DEVID_ERR_QUOTE_NONCE); the quote selects the
 * SHA-256 bank only, exactly the PCRs of in->selection, and in->pcrs name
 * each of them once, ascending (DEVID_ERR_QUOTE_SELECTION); pcrDigest ==
 * SHA-256 of the reported values in ascending order
 * (DEVID_ERR_QUOTE_DIGEST); the signature by in->signer over the hash of
 * |info| (DEVID_ERR_QUOTE_SIGNATURE). |why| gets a reason naming the field
 * on failure. Returns 0 or that code.
 */
int quote_check(const struct quote_input *in, char *why, size_t why_len);

/*
 * quote_selection_str writes the PCRs of |selection| as "7" or "0,7,11" to
 * |out| (|len| bytes; "" for none). Returns |out|.
 */
const char *quote_selection_str(char *out, size_t len, uint32_t selection);

/*
 * quote_pcrs_str writes |n| PCR values as "7=sha256:HEX,11=sha256:HEX"
 * (lowercase hex) to |out|, at least QUOTE_PCRS_STR_LEN bytes for
 * QUOTE_MAX_PCRS values; "" for none. Returns |out|.
 */
const char *quote_pcrs_str(char *out, size_t len, const struct quote_pcr *pcrs, size_t n);

#endif
