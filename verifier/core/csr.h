/* PKCS#10 request checking. Pure. */
#ifndef DEVID_VERIFIER_CORE_CSR_H
#define DEVID_VERIFIER_CORE_CSR_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define CSR_MAX_LEN 8192

/*
 * csr_parse sets |*out| to the request parsed from exactly |len| DER bytes
 * at |der| (at most CSR_MAX_LEN) after checking its self-signature. The caller
 * owns |*out|. Returns 0 or DEVID_ERR_CSR_INVALID with the reason in |why|.
 */
int csr_parse(X509_REQ **out, const uint8_t *der, size_t len, char *why, size_t why_len);

/*
 * csr_check_key returns 0 when |req|'s public key equals |key|, else
 * DEVID_ERR_CSR_KEY_MISMATCH with the reason in |why|.
 */
int csr_check_key(X509_REQ *req, EVP_PKEY *key, char *why, size_t why_len);

#endif
