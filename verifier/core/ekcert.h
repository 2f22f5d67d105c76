/* TPM endorsement key certificates (TCG EK Credential Profile for TPM Family
 * 2.0): decoding them as received, the TPM's identity their SAN carries, and
 * their chain to a configured TPM vendor. Pure. */
#ifndef DEVID_VERIFIER_CORE_EKCERT_H
#define DEVID_VERIFIER_CORE_EKCERT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "verifier/core/chain.h"

/* The TCG attribute OIDs of the EK certificate's SAN directoryName. */
#define EKCERT_OID_TPM_MANUFACTURER "2.23.133.2.1"
#define EKCERT_OID_TPM_MODEL "2.23.133.2.2"
#define EKCERT_OID_TPM_VERSION "2.23.133.2.3"

#define EKCERT_FIELD_LEN 65

/* What the EK certificate says of its TPM: from the subjectAltName
 * directoryName attributes tpmManufacturer ("id:49424D00"), tpmModel and
 * tpmVersion ("id:00010002"); empty when absent. Printable ASCII only
 * (anything else becomes '?'), cut to EKCERT_FIELD_LEN - 1 bytes. */
struct ekcert_tpm {
    char manufacturer[EKCERT_FIELD_LEN];
    char model[EKCERT_FIELD_LEN];
    char version[EKCERT_FIELD_LEN];
    /* Whether the SAN was marked critical (the profile requires it when the
     * subject is empty). */
    int san_critical;
};

/*
 * ekcert_decode sets |*out| to the certificate that is exactly the |len|
 * bytes at |der|, at most CHAIN_MAX_CERT_DER. BER encodings are accepted
 * (real EK certificates use them): OpenSSL keeps the received TBS bytes and
 * verifies the signature over them. Returns 0 or DEVID_ERR_EK_CERT with
 * |why|.
 */
int ekcert_decode(X509 **out, const uint8_t *der, size_t len, char *why, size_t why_len);

/*
 * ekcert_tpm_info fills |out| from |ek|'s subjectAltName. Returns 0 (also
 * when there is no SAN, or no TCG attributes in it) or DEVID_ERR_EK_CERT
 * when the SAN does not decode.
 */
int ekcert_tpm_info(struct ekcert_tpm *out, X509 *ek, char *why, size_t why_len);

/*
 * ekcert_verify validates |ek| with |chain| (untrusted, may be NULL) to a
 * TPM vendor of |ek_store| (a store with CHAIN_LEAF_EK rules) at |now|:
 * chain_verify, then ekcert_tpm_info into |tpm|. Fills |verdict| (the
 * vendor is verdict->manufacturer). Returns 0; DEVID_ERR_REVOCATION_UNKNOWN
 * as chain_verify; or DEVID_ERR_EK_CERT for every other failure, |why|
 * naming the check ("EK certificate: certificate ...: unable to get local
 * issuer certificate").
 */
int ekcert_verify(struct chain_verdict *verdict, struct ekcert_tpm *tpm,
                  const struct chain_store *ek_store, X509 *ek, STACK_OF(X509) *chain, time_t now,
                  char *why, size_t why_len);

#endif
