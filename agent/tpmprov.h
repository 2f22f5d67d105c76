/* A minimal built-in OpenSSL 3 provider ("devid-tpm") whose EC and RSA keys
 * live in the TPM and sign through a callback into the agent's own ESAPI
 * connection, so that the TLS client key needs no second TPM connection (and
 * so no resource manager). It implements what OpenSSL's TLS client asks of a
 * client key: key management (public half, match, parameters) and ECDSA, RSA
 * PKCS#1 v1.5 and RSA-PSS (salt length = digest length) signatures. The
 * provider lives in its own OSSL_LIB_CTX: no fetch in the default context
 * can land on these TPM-only implementations. */
#ifndef DEVID_AGENT_TPMPROV_H
#define DEVID_AGENT_TPMPROV_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

/*
 * tpmprov_sign_fn signs |digest| (|digest_len| bytes, a |hash| digest) with
 * the TPM key behind |arg| using |scheme| (TPM2_ALG_ECDSA, TPM2_ALG_RSASSA or
 * TPM2_ALG_RSAPSS) and writes the TPM's signature to |*sig|. Returns 0 or a
 * negative DEVID_ERR_* code, having logged the reason.
 */
typedef int (*tpmprov_sign_fn)(void *arg, TPMT_SIGNATURE *sig, TPMI_ALG_SIG_SCHEME scheme,
                               TPMI_ALG_HASH hash, const uint8_t *digest, size_t digest_len);

struct tpmprov;

/*
 * tpmprov_new sets |*out| to a new library context holding only the devid-tpm
 * provider. The caller owns |*out| and frees it with tpmprov_free, after every
 * key made from it. Returns 0, DEVID_ERR_ALLOC or DEVID_ERR_INTERNAL.
 */
int tpmprov_new(struct tpmprov **out);

/* tpmprov_free unloads the provider and frees its library context.
 * tpmprov_free(NULL) does nothing. */
void tpmprov_free(struct tpmprov *p);

/*
 * tpmprov_pkey_new sets |*out| to a new EVP_PKEY of |p|'s provider for the
 * TPM key whose public area is |pub| (ECC P-256/P-384 or RSA). Its public half
 * is |pub|'s; its signatures hash with OpenSSL's default provider and call
 * |sign| with |arg|, which must outlive |*out|. A key with a fixed signing
 * scheme in |pub| accepts only that scheme's hash. The caller owns |*out|.
 * Returns 0, DEVID_ERR_BAD_REQUEST for an unsupported key, or
 * DEVID_ERR_INTERNAL.
 */
int tpmprov_pkey_new(EVP_PKEY **out, struct tpmprov *p, const TPMT_PUBLIC *pub,
                     tpmprov_sign_fn sign, void *arg);

#endif
