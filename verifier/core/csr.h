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

/*
 * csr_check checks the DER request at |der| (|len| bytes, at most
 * CSR_MAX_LEN) for the certified key |key|: it is what csr_parse and then
 * csr_check_key decide, with the same reasons, and |*spki| gets the
 * request's SubjectPublicKeyInfo (the caller frees it with X509_PUBKEY_free).
 *
 * An EC request whose SubjectPublicKeyInfo is |key|'s own DER encoding (a
 * named curve and the uncompressed point, as every TPM-made request has) is
 * parsed without decoding that key again: the same PKCS#10 structure as
 * OpenSSL's, the self-signature verified under |key|. Any other request
 * goes through csr_parse and csr_check_key. The two paths answer alike
 * (fuzz_csr compares them); the first saves a provider decoder round, a
 * tenth of an enrollment's CPU under OpenSSL 3.0.
 *
 * Returns 0, DEVID_ERR_CSR_INVALID or DEVID_ERR_CSR_KEY_MISMATCH with the
 * reason in |why|, or DEVID_ERR_ALLOC.
 */
int csr_check(X509_PUBKEY **spki, const uint8_t *der, size_t len, EVP_PKEY *key, char *why,
              size_t why_len);

#endif
