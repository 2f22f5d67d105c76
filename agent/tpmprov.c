#include "agent/tpmprov.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "agent/tpmprov_key.h"
#include "agent/tpmprov_sig.h"
#include "common/err.h"
#include "common/io/log.h"
#include "common/tpmkey.h"

struct tpmprov {
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *prov;
};

static const OSSL_ALGORITHM keymgmt_algs[] = {
    {"EC:id-ecPublicKey:1.2.840.10045.2.1", TPMPROV_PROPS, tpmprov_ec_keymgmt, "devid TPM EC key"},
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", TPMPROV_PROPS, tpmprov_rsa_keymgmt,
     "devid TPM RSA key"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM signature_algs[] = {
    {"ECDSA", TPMPROV_PROPS, tpmprov_signature, "TPM2_Sign ECDSA"},
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", TPMPROV_PROPS, tpmprov_signature,
     "TPM2_Sign RSASSA/RSAPSS"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM *prov_query(void *provctx, int op, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    switch (op) {
        case OSSL_OP_KEYMGMT:
            return keymgmt_algs;
        case OSSL_OP_SIGNATURE:
            return signature_algs;
        default:
            return NULL;
    }
}

static const OSSL_DISPATCH prov_fns[] = {
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, TPMPROV_FN(prov_query)},
    {0, NULL},
};

static int prov_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                     const OSSL_DISPATCH **out, void **provctx)
{
    (void)in;
    *out = prov_fns;
    *provctx = (void *)handle;
    return 1;
}

int tpmprov_new(struct tpmprov **out)
{
    struct tpmprov *p = NULL;
    char reason[256];
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return DEVID_ERR_ALLOC;
    if ((p->libctx = OSSL_LIB_CTX_new()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if (OSSL_PROVIDER_add_builtin(p->libctx, TPMPROV_NAME, prov_init) != 1 ||
        (p->prov = OSSL_PROVIDER_load(p->libctx, TPMPROV_NAME)) == NULL) {
        log_err("cannot load the built-in OpenSSL provider %s: %s", TPMPROV_NAME,
                devid_openssl_reason(reason, sizeof(reason)));
        goto out;
    }
    *out = p;
    p = NULL;
    r = 0;
out:
    tpmprov_free(p);
    return r;
}

void tpmprov_free(struct tpmprov *p)
{
    if (p == NULL)
        return;
    OSSL_PROVIDER_unload(p->prov);
    OSSL_LIB_CTX_free(p->libctx);
    free(p);
}

int tpmprov_pkey_new(EVP_PKEY **out, struct tpmprov *p, const TPMT_PUBLIC *pub,
                     tpmprov_sign_fn sign, void *arg)
{
    struct tpmprov_signer s;
    EVP_PKEY *plain = NULL, *pkey = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    OSSL_PARAM *pubparams = NULL, *params = NULL;
    OSSL_PARAM extra[2];
    char reason[256];
    bool rsa;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || p == NULL || pub == NULL || sign == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    memset(&s, 0, sizeof(s));
    s.sign = sign;
    s.arg = arg;
    if (pub->type == TPM2_ALG_ECC) {
        rsa = false;
        s.scheme = pub->parameters.eccDetail.scheme.scheme;
        s.hash = pub->parameters.eccDetail.scheme.details.anySig.hashAlg;
    } else if (pub->type == TPM2_ALG_RSA) {
        rsa = true;
        s.scheme = pub->parameters.rsaDetail.scheme.scheme;
        s.hash = pub->parameters.rsaDetail.scheme.details.anySig.hashAlg;
    } else {
        log_err("the TLS client key is neither ECC nor RSA (TPM type 0x%04x)", pub->type);
        return DEVID_ERR_BAD_REQUEST;
    }
    if (s.scheme == TPM2_ALG_NULL)
        s.hash = TPM2_ALG_NULL;
    if ((r = tpmkey_public_to_pkey(&plain, pub)) != 0)
        goto out;
    r = DEVID_ERR_INTERNAL;
    extra[0] = OSSL_PARAM_construct_octet_string(TPMPROV_PARAM_SIGNER, &s, sizeof(s));
    extra[1] = OSSL_PARAM_construct_end();
    if (EVP_PKEY_todata(plain, EVP_PKEY_PUBLIC_KEY, &pubparams) != 1 ||
        (params = OSSL_PARAM_merge(pubparams, extra)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_name(p->libctx, rsa ? "RSA" : "EC", TPMPROV_PROPS)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) != 1) {
        log_err("cannot make the TPM-backed TLS client key: %s",
                devid_openssl_reason(reason, sizeof(reason)));
        goto out;
    }
    *out = pkey;
    pkey = NULL;
    r = 0;
out:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_free(pubparams);
    EVP_PKEY_free(plain);
    OPENSSL_cleanse(&s, sizeof(s));
    return r;
}
