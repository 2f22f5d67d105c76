/* The signatures of the built-in devid-tpm provider (agent/tpmprov.h):
 * ECDSA, RSA PKCS#1 v1.5 and RSA-PSS (salt length = digest length), hashed
 * with OpenSSL's default provider and signed by the key's TPM signer.
 * Internal to the provider: only tpmprov.c includes this. */
#ifndef DEVID_AGENT_TPMPROV_SIG_H
#define DEVID_AGENT_TPMPROV_SIG_H

#include <openssl/core_dispatch.h>

/* tpmprov_signature is the signature implementation of the provider's keys,
 * for both EC and RSA. */
extern const OSSL_DISPATCH tpmprov_signature[];

#endif
