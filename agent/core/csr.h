/* PKCS#10 requests signed by a key that lives elsewhere (the TPM). Pure: the
 * signature comes from a callback, and failures are told in a why buffer. */
#ifndef DEVID_AGENT_CORE_CSR_H
#define DEVID_AGENT_CORE_CSR_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

/* A csr_sign_fn signs the SHA-256 |digest| with the private half of the CSR's
 * key, writes the signature to |*sig| and returns 0 or a DEVID_ERR_* code. */
typedef int (*csr_sign_fn)(void *arg, TPMT_SIGNATURE *sig,
                           const uint8_t digest[TPM2_SHA256_DIGEST_SIZE]);

/*
 * csr_build sets |*out| (OPENSSL_malloc) to a DER PKCS#10 request for the
 * public key |pub| (EC, or RSA) with subject CN=|cn|, signed with SHA-256 by
 * |sign|(|arg|, ...), and |*out_len| to its length. The request's
 * self-signature is verified before it is returned. On failure writes the
 * reason to |why| (|why_len| bytes). Returns 0, the callback's error,
 * DEVID_ERR_INVALID_ARGUMENT for a key that is neither EC nor RSA,
 * DEVID_ERR_CRYPTO when the signature does not verify, or DEVID_ERR_ALLOC.
 */
int csr_build(uint8_t **out, size_t *out_len, EVP_PKEY *pub, const char *cn, csr_sign_fn sign,
              void *arg, char *why, size_t why_len);

#endif
