/* The fixed world every fuzz target and the seed generator share: keys made
 * from fixed seeds, certificates with fixed serials and dates signed with
 * Ed25519 (deterministic), a trust store, a token key and an exporter. The
 * same bytes come out in every process, so committed seeds (tokens bound to
 * the IDevID hash, Names, CSRs) stay valid. Failures abort: a fixture that
 * cannot be built is a broken harness, not a finding. */
#ifndef DEVID_TESTS_FUZZ_FUZZUTIL_H
#define DEVID_TESTS_FUZZ_FUZZUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <tss2/tss2_tpm2_types.h>

#include "common/transcript.h"
#include "verifier/core/chain.h"
#include "verifier/core/enroll.h"
#include "verifier/core/policy.h"
#include "verifier/core/token.h"

/* The fixed clock: 2025-01-01T00:00:00Z. */
#define FU_NOW ((time_t)1735689600)

/* The attributes of a valid LDevID key. */
#define FU_LDEVID_ATTRS                                                                 \
    (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
     TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT)

/* The byte PCR 7 of the gated policy is filled with. */
#define FU_PCR7 0x77

struct fu_world {
    /* Ed25519 root (trust anchor) and intermediate. */
    EVP_PKEY *root_key, *inter_key;
    X509 *root, *inter;
    /* The IDevID (P-256, signed by |inter|): the fixed TLS client certificate. */
    EVP_PKEY *idevid_key;
    X509 *idevid;
    /* The LDevID key (P-256) the CSR and the certify evidence name. */
    EVP_PKEY *ldevid_key;
    /* A trust store holding |root| only, and a policy denying serial "DENY*". */
    struct chain_store *store;
    /* TPM vendor "fuzz vendor" rooted at |root| too (CHAIN_LEAF_EK rules),
     * for the EK certificates of ChallengeRequest. */
    struct chain_store *ek_store;
    struct policy *policy;
    /* |policy| with the boot-state gate: PCR 7 of "fuzz-model" must hold
     * FU_PCR7 bytes (the quote and AK checks of a request with a quote). */
    struct policy *policy_pcr;
    uint8_t token_key[TOKEN_KEY_LEN];
    uint8_t exporter[TRANSCRIPT_EXPORTER_LEN];
    /* token_conn_hash of |exporter|: the connection tokens are bound to. */
    uint8_t conn_hash[TOKEN_CONN_HASH_LEN];
    /* SHA-256 of the IDevID DER: the client tokens are bound to. */
    uint8_t idevid_sha256[TOKEN_CERT_HASH_LEN];
    /* A fixed 32-byte qualifyingData for the attest target. */
    uint8_t qualifying[32];
};

/* fu_world returns the process-wide fixture, building it on first use. It is
 * never freed. */
const struct fu_world *fu_world(void);

/* fu_tls returns the TLS facts of the fixed connection: TLS 1.3, the IDevID
 * as client certificate without a handshake chain, |exporter|. */
struct enroll_tls fu_tls(void);

/* fu_fail prints |what| and aborts. */
void fu_fail(const char *what) __attribute__((noreturn));

/* fu_ec_key returns a new P-256 key whose private scalar is SHA-256(|label|). */
EVP_PKEY *fu_ec_key(const char *label);

/* fu_ed_key returns a new Ed25519 key whose seed is SHA-256(|label|). */
EVP_PKEY *fu_ed_key(const char *label);

struct fu_cert_spec {
    const char *o, *cn, *serial; /* subject entries, or NULL */
    int ca;
    long serial_number;
    time_t not_before, not_after;
    const char *hw_serial; /* hardwareModuleName hwSerialNum, or NULL */
};

/* fu_cert returns a new certificate for |key| signed by |issuer_key| (Ed25519
 * or EC) with |issuer| as issuer, self-signed when |issuer| is NULL. */
X509 *fu_cert(const struct fu_cert_spec *spec, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key);

/* fu_der returns the malloc'd DER of |x| and its length in |*len|. */
uint8_t *fu_der(size_t *len, X509 *x);

/* fu_csr_der returns a malloc'd DER PKCS#10 request for |key| signed by
 * |signer| (NULL digest for Ed25519 signers). */
uint8_t *fu_csr_der(size_t *len, EVP_PKEY *key, EVP_PKEY *signer);

/* fu_tpm_public marshals a P-256 ECC TPMT_PUBLIC for |key| with |attrs| into
 * |buf| (|*len| in/out). */
void fu_tpm_public(uint8_t *buf, size_t *len, EVP_PKEY *key, TPMA_OBJECT attrs);

/* fu_tpm_name computes the SHA-256 Name of the marshalled TPMT_PUBLIC |pub|. */
void fu_tpm_name(TPM2B_NAME *name, const uint8_t *pub, size_t pub_len);

/* fu_tpm_sign ECDSA-signs the 32-byte |digest| with |key| and marshals the
 * TPMT_SIGNATURE into |buf| (|*len| in/out). */
void fu_tpm_sign(uint8_t *buf, size_t *len, EVP_PKEY *key, const uint8_t *digest);

/* fu_certify_info marshals a TPMS_ATTEST of type CERTIFY for |name| with
 * extraData |extra| into |buf| (|*len| in/out). */
void fu_certify_info(uint8_t *buf, size_t *len, const TPM2B_NAME *name, const uint8_t *extra,
                     size_t extra_len);

/* fu_sha256 writes SHA-256 of |in| to |out|. */
void fu_sha256(uint8_t out[32], const uint8_t *in, size_t len);

#endif
