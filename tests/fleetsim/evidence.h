/* What a device's TPM and agent produce for one enrollment, made in software:
 * a fresh LDevID key with its TPMT_PUBLIC, a CSR signed by it, the
 * TPM2_Certify evidence and the TPM2_Sign challenge signature by the IDevID
 * key, packed as a devid.v1.EnrollRequest. Pure: no socket, file or clock. */
#ifndef DEVID_TESTS_FLEETSIM_EVIDENCE_H
#define DEVID_TESTS_FLEETSIM_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/transcript.h"
#include "factory.h"

/* Largest packed EnrollRequest the simulator builds. */
#define EVIDENCE_BODY_MAX (16 * 1024)

/*
 * evidence_enroll_request builds an EnrollRequest for |dev| answering the
 * challenge (|nonce|, |token|) on the connection with tls-exporter value
 * |exporter|: a new P-256 LDevID key (attributes fixedTPM|fixedParent|
 * sensitiveDataOrigin|userWithAuth|sign, nameAlg SHA-256), its CSR
 * (CN=device serial), T = transcript_compute(nonce, exporter, csr), the
 * TPMS_ATTEST of TPM2_Certify(LDevID, IDevID, qualifyingData=T) and
 * TPM2_Sign(IDevID, T), both ECDSA SHA-256 TPMT_SIGNATUREs, signer_public the
 * IDevID's TPMT_PUBLIC, and the factory intermediate in intermediates. Sets
 * |*out| (malloc, caller frees) and |*out_len|; |*ldevid| (optional) receives
 * the new key. Returns 0 or a DEVID_ERR_* code. Advances dev's TPM clock.
 */
/*
 * evidence_p256_public marshals to |buf| (|*len| bytes available; the length
 * written on return) the TPMT_PUBLIC a TPM returns for P-256 key |key| made
 * with object attributes |attrs| and signing scheme |scheme| (TPM2_ALG_NULL,
 * or TPM2_ALG_ECDSA with SHA-256), nameAlg SHA-256. Returns 0 or
 * DEVID_ERR_CRYPTO.
 */
int evidence_p256_public(uint8_t *buf, size_t *len, EVP_PKEY *key, TPMA_OBJECT attrs,
                         TPMI_ALG_ECC_SCHEME scheme);

int evidence_enroll_request(uint8_t **out, size_t *out_len, EVP_PKEY **ldevid, struct device *dev,
                            const struct factory *f, const uint8_t *nonce, size_t nonce_len,
                            const uint8_t *token, size_t token_len,
                            const uint8_t exporter[TRANSCRIPT_EXPORTER_LEN]);

#endif
