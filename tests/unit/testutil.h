/* Helpers shared by the unit tests: keys, certificates, CSRs and TPM
 * structures made in-process with OpenSSL and tss2-mu. No TPM is used: the
 * TPM's output formats are produced by marshalling the structures the TPM
 * would return, signed by a software key. */
#ifndef DEVID_TESTS_UNIT_TESTUTIL_H
#define DEVID_TESTS_UNIT_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <tss2/tss2_tpm2_types.h>

#include "verifier/core/chain.h"

/* A fixed reference time for certificates and checks: 2025-01-01T00:00:00Z. */
#define TU_NOW ((time_t)1735689600)
#define TU_DAY ((time_t)86400)

/* tu_ec_key returns a new P-256 key pair; aborts the test on failure. */
EVP_PKEY *tu_ec_key(void);

struct tu_cert_spec {
    const char *o;      /* subject O, or NULL */
    const char *cn;     /* subject CN, or NULL */
    const char *serial; /* subject serialNumber, or NULL */
    int ca;             /* basicConstraints CA:TRUE and keyCertSign */
    time_t not_before;
    time_t not_after;
    /* hardwareModuleName SAN: added when hw_serial is not NULL. */
    const char *hw_type; /* dotted OID */
    const char *hw_serial;
};

/*
 * tu_cert returns a new certificate for |key| described by |spec|, signed by
 * |issuer_key| with |issuer| as issuer (self-signed when |issuer| is NULL).
 */
X509 *tu_cert(const struct tu_cert_spec *spec, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key);

/* tu_der_copy returns a new certificate parsed from |x|'s DER: what a
 * peer that receives |x| holds. */
X509 *tu_der_copy(X509 *x);

/* tu_csr_der returns a malloc'd DER PKCS#10 request for |key| signed by
 * |signer| (normally the same key); |*len| gets its length. */
uint8_t *tu_csr_der(size_t *len, EVP_PKEY *key, EVP_PKEY *signer);

/* tu_tpm_public fills |pub| with a P-256 ECC TPMT_PUBLIC for |key| with
 * attributes |attrs| and marshals it to |buf| (|*len| in/out). */
void tu_tpm_public(TPMT_PUBLIC *pub, uint8_t *buf, size_t *len, EVP_PKEY *key, TPMA_OBJECT attrs);

/* The attributes of a valid LDevID key. */
#define TU_LDEVID_ATTRS                                                                 \
    (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
     TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT)

/* tu_tpm_name computes the Name (SHA-256 nameAlg) of marshalled TPMT_PUBLIC. */
void tu_tpm_name(TPM2B_NAME *name, const uint8_t *pub, size_t pub_len);

/* tu_tpm_sign signs |digest| (32 bytes, SHA-256) with |key| and writes the
 * marshalled ECDSA TPMT_SIGNATURE to |buf| (|*len| in/out). */
void tu_tpm_sign(uint8_t *buf, size_t *len, EVP_PKEY *key, const uint8_t *digest);

/* tu_certify_info marshals a TPMS_ATTEST of type CERTIFY for |name| with
 * extraData |extra| into |buf| (|*len| in/out). */
void tu_certify_info(uint8_t *buf, size_t *len, const TPM2B_NAME *name, const uint8_t *extra,
                     size_t extra_len);

/* tu_sha256 writes SHA-256 of |in| to |out|. */
void tu_sha256(uint8_t out[32], const uint8_t *in, size_t len);

/* The IDevID of struct tu_pki: CN "Widget 3000", serial "SN0001" (subject
 * and hardwareModuleName), valid from 30 days before TU_NOW for 10 years. */
extern const struct tu_cert_spec tu_leaf_spec;

/* A manufacturer as the factory makes it, and one device: a root (O "Acme
 * Devices"), an intermediate and an IDevID (tu_leaf_spec), P-256, valid
 * around TU_NOW; the intermediate's DER; a trust store holding the root. */
struct tu_pki {
    EVP_PKEY *root_key, *int_key, *idev_key;
    X509 *root, *intermediate, *idevid;
    uint8_t *int_der;
    size_t int_der_len;
    struct chain_store *store;
};

/* tu_pki_init fills |p|; tu_pki_cleanup frees what it holds. */
void tu_pki_init(struct tu_pki *p);
void tu_pki_cleanup(struct tu_pki *p);

#endif
