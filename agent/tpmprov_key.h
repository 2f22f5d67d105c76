/* The keys of the built-in devid-tpm provider (agent/tpmprov.h): key
 * management for EC and RSA keys whose public half is an ordinary OpenSSL key
 * and whose private half is a TPM signer. Internal to the provider: only
 * tpmprov.c and tpmprov_sig.c include this. */
#ifndef DEVID_AGENT_TPMPROV_KEY_H
#define DEVID_AGENT_TPMPROV_KEY_H

#include <stdbool.h>

#include <openssl/core_dispatch.h>
#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

#include "agent/tpmprov.h"

#define TPMPROV_NAME "devid-tpm"
#define TPMPROV_PROPS "provider=devid-tpm"
/* The private import parameter that binds a key to its TPM signer. */
#define TPMPROV_PARAM_SIGNER "devid-tpm-signer"

/* TPMPROV_FN casts a provider function for an OSSL_DISPATCH table. */
#define TPMPROV_FN(f) ((void (*)(void))(f))

/* The TPM behind a key: the callback, and the key's fixed scheme, if any. */
struct tpmprov_signer {
    tpmprov_sign_fn sign;
    void *arg;
    TPMI_ALG_SIG_SCHEME scheme; /* the key's fixed scheme, or TPM2_ALG_NULL */
    TPMI_ALG_HASH hash;         /* and its hash */
};

/* A key of this provider: the public half as a default-provider key, and,
 * for a key made by tpmprov_pkey_new, the TPM signer. */
struct tpmprov_key {
    bool rsa;
    EVP_PKEY *pub;
    bool has_signer;
    struct tpmprov_signer signer;
};

/* tpmprov_ec_keymgmt is the key management of the provider's EC keys. */
extern const OSSL_DISPATCH tpmprov_ec_keymgmt[];

/* tpmprov_rsa_keymgmt is the key management of the provider's RSA keys. */
extern const OSSL_DISPATCH tpmprov_rsa_keymgmt[];

#endif
