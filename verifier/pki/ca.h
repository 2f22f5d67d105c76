/* The issuing CA. The private key is reached only through ca_sign, so it can
 * move into a TPM, an HSM or a separate process without touching callers. */
#ifndef DEVID_VERIFIER_PKI_CA_H
#define DEVID_VERIFIER_PKI_CA_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "verifier/core/certview.h"
#include "verifier/core/signreq.h"

struct ca;
struct signer;

/*
 * ca_new sets |*out| to a CA with the certificate from |cert_file| (PEM; any
 * further certificates in it form the issuing chain, issuer first) and the
 * private key at OpenSSL store URI |key_uri| ("file:/path", a plain path, or a
 * provider URI such as "handle:0x81000002"). A key file readable by group or
 * others is refused. The key must match the certificate. Errors are logged
 * with the file and reason. Returns 0 or a DEVID_ERR_* code.
 */
int ca_new(struct ca **out, const char *cert_file, const char *key_uri);

/*
 * ca_load_key sets |*out| to the private key at OpenSSL store URI |uri| (a
 * path, "file:", or a provider's URI), refusing a key file readable by
 * group or others; |what| names it in messages ("CA key", "log key"). The
 * caller owns |*out|. Returns 0, DEVID_ERR_IO or DEVID_ERR_CONFIG (logged).
 */
int ca_load_key(EVP_PKEY **out, const char *uri, const char *what);

/*
 * ca_new_remote sets |*out| to a CA with the certificate and chain from
 * |cert_file| whose key is held by |signer| (verifier/pki/signer.h), which it
 * borrows: ca_sign and ca_sign_crl ask it. This process never loads the
 * key. Returns 0 or a DEVID_ERR_* code.
 */
int ca_new_remote(struct ca **out, const char *cert_file, struct signer *signer);

/*
 * ca_use_provider loads OpenSSL's default provider and then provider |name|
 * (for example "tpm2"), so that ca_new can reach a key through it. |tcti|,
 * when not NULL, is the TPM the tpm2 provider talks to (TPM2OPENSSL_TCTI).
 * Call before ca_new and before any thread starts. Returns 0 or
 * DEVID_ERR_CONFIG with the reason logged.
 */
int ca_use_provider(const char *name, const char *tcti);

/* ca_release_providers unloads what ca_use_provider loaded. Call after the
 * last ca_free. */
void ca_release_providers(void);

/* ca_free frees |ca|; NULL is a no-op. */
void ca_free(struct ca *ca);

/* ca_get0_cert returns the CA certificate, owned by |ca|. */
X509 *ca_get0_cert(const struct ca *ca);

/* ca_get0_chain returns the issuing chain above the CA certificate (may be
 * empty), owned by |ca|. */
STACK_OF(X509) *ca_get0_chain(const struct ca *ca);

/*
 * ca_sign signs the unsigned |cert| with the CA key (SHA-256 for RSA and
 * EC) and sets |*der| to a new malloc'd DER encoding of the signed
 * certificate (|*der_len| bytes; free it with free()). With a key of its
 * own it signs |cert| in place; through the signer, |cert| keeps a
 * placeholder signature algorithm and the signer's answer is checked to be
 * |cert| signed (signreq_cert_answer_check) without parsing it again.
 * Thread-safe; a key behind a provider other than the default one is used
 * by one thread at a time. Returns 0, DEVID_ERR_CRYPTO, or through the
 * signer DEVID_ERR_REFUSED (outside the profile) or DEVID_ERR_INTERNAL (the
 * signer is gone, or answered with another certificate; retryable), with
 * the reason logged.
 */
int ca_sign(struct ca *ca, X509 *cert, uint8_t **der, size_t *der_len);

/*
 * ca_sign_view is ca_sign with a key of its own, for the signer: it signs
 * |cert| in place and sets |*der| to its DER (OPENSSL_malloc; free it with
 * OPENSSL_free). Returns 0, DEVID_ERR_CRYPTO, or DEVID_ERR_INVALID_ARGUMENT
 * when this CA's key is the signer's.
 */
int ca_sign_view(struct ca *ca, CERT_VIEW *cert, uint8_t **der, size_t *der_len);

/*
 * ca_sign_crl sets |*out| to a new CRL of |contents| (crl_build's inputs)
 * signed with the CA key: built here with a key of its own, or built and
 * signed by the signer, which refuses a CRL number that does not go up. The
 * caller owns |*out|. Returns 0 or a DEVID_ERR_* code as for ca_sign.
 */
int ca_sign_crl(struct ca *ca, X509_CRL **out, const struct signreq_crl *contents);

#endif
