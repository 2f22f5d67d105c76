#include "agent/tpmprov_key.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

static void *key_alloc(bool rsa)
{
    struct tpmprov_key *k = calloc(1, sizeof(*k));

    if (k != NULL)
        k->rsa = rsa;
    return k;
}

static void *ec_new(void *provctx)
{
    (void)provctx;
    return key_alloc(false);
}

static void *rsa_new(void *provctx)
{
    (void)provctx;
    return key_alloc(true);
}

static void key_free(void *kd)
{
    struct tpmprov_key *k = kd;

    if (k == NULL)
        return;
    EVP_PKEY_free(k->pub);
    OPENSSL_cleanse(&k->signer, sizeof(k->signer));
    free(k);
}

static int key_has(const void *kd, int selection)
{
    const struct tpmprov_key *k = kd;
    int ok = 1;

    if (k == NULL)
        return 0;
    if ((selection & (OSSL_KEYMGMT_SELECT_PUBLIC_KEY | OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)) != 0)
        ok = ok && k->pub != NULL;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        ok = ok && k->has_signer;
    return ok;
}

/* key_import takes the public half (from tpmprov_pkey_new, or from another
 * provider's key being compared with ours) and, with the private selection,
 * the signer parameter. */
static int key_import(void *kd, int selection, const OSSL_PARAM params[])
{
    struct tpmprov_key *k = kd;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pub = NULL;
    const OSSL_PARAM *p;
    int what, ok = 0;

    if (k == NULL || params == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0)
        what = EVP_PKEY_PUBLIC_KEY;
    else if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0)
        what = EVP_PKEY_KEY_PARAMETERS;
    else
        return 0;
    if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, k->rsa ? "RSA" : "EC", NULL)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pub, what, (OSSL_PARAM *)params) != 1)
        goto out;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 &&
        (p = OSSL_PARAM_locate_const(params, TPMPROV_PARAM_SIGNER)) != NULL) {
        if (p->data_type != OSSL_PARAM_OCTET_STRING || p->data_size != sizeof(k->signer) ||
            p->data == NULL)
            goto out;
        memcpy(&k->signer, p->data, sizeof(k->signer));
        k->has_signer = k->signer.sign != NULL;
    }
    EVP_PKEY_free(k->pub);
    k->pub = pub;
    pub = NULL;
    ok = 1;
out:
    EVP_PKEY_free(pub);
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* key_export gives the public half only. Refusing a private selection is what
 * makes OpenSSL sign with this provider instead of copying the key into the
 * default one, which would have no private key. */
static int key_export(void *kd, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    struct tpmprov_key *k = kd;
    OSSL_PARAM *params = NULL;
    int what, ok;

    if (k == NULL || k->pub == NULL || (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0)
        what = EVP_PKEY_PUBLIC_KEY;
    else if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0)
        what = EVP_PKEY_KEY_PARAMETERS;
    else
        return 0;
    if (EVP_PKEY_todata(k->pub, what, &params) != 1)
        return 0;
    ok = cb(params, cbarg);
    OSSL_PARAM_free(params);
    return ok;
}

static const OSSL_PARAM ec_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_octet_string(TPMPROV_PARAM_SIGNER, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM rsa_types[] = {
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_octet_string(TPMPROV_PARAM_SIGNER, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ec_types_fn(int selection)
{
    (void)selection;
    return ec_types;
}

static const OSSL_PARAM *rsa_types_fn(int selection)
{
    (void)selection;
    return rsa_types;
}

static int key_match(const void *a, const void *b, int selection)
{
    const struct tpmprov_key *ka = a, *kb = b;

    if (ka == NULL || kb == NULL || ka->pub == NULL || kb->pub == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0)
        return EVP_PKEY_eq(ka->pub, kb->pub) == 1;
    return EVP_PKEY_parameters_eq(ka->pub, kb->pub) == 1;
}

/* key_get_params answers from the public half: bits, security bits, maximum
 * signature size, default digest, group name, encoded public key. */
static int key_get_params(void *kd, OSSL_PARAM params[])
{
    struct tpmprov_key *k = kd;

    if (k == NULL || k->pub == NULL)
        return 0;
    return EVP_PKEY_get_params(k->pub, params);
}

static const OSSL_PARAM ec_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM rsa_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ec_gettable_fn(void *provctx)
{
    (void)provctx;
    return ec_gettable;
}

static const OSSL_PARAM *rsa_gettable_fn(void *provctx)
{
    (void)provctx;
    return rsa_gettable;
}

static const char *ec_op_name(int op)
{
    return op == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

static const char *rsa_op_name(int op)
{
    return op == OSSL_OP_SIGNATURE ? "RSA" : NULL;
}

const OSSL_DISPATCH tpmprov_ec_keymgmt[] = {
    {OSSL_FUNC_KEYMGMT_NEW, TPMPROV_FN(ec_new)},
    {OSSL_FUNC_KEYMGMT_FREE, TPMPROV_FN(key_free)},
    {OSSL_FUNC_KEYMGMT_HAS, TPMPROV_FN(key_has)},
    {OSSL_FUNC_KEYMGMT_MATCH, TPMPROV_FN(key_match)},
    {OSSL_FUNC_KEYMGMT_IMPORT, TPMPROV_FN(key_import)},
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, TPMPROV_FN(ec_types_fn)},
    {OSSL_FUNC_KEYMGMT_EXPORT, TPMPROV_FN(key_export)},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, TPMPROV_FN(ec_types_fn)},
    {OSSL_FUNC_KEYMGMT_GET_PARAMS, TPMPROV_FN(key_get_params)},
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, TPMPROV_FN(ec_gettable_fn)},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, TPMPROV_FN(ec_op_name)},
    {0, NULL},
};

const OSSL_DISPATCH tpmprov_rsa_keymgmt[] = {
    {OSSL_FUNC_KEYMGMT_NEW, TPMPROV_FN(rsa_new)},
    {OSSL_FUNC_KEYMGMT_FREE, TPMPROV_FN(key_free)},
    {OSSL_FUNC_KEYMGMT_HAS, TPMPROV_FN(key_has)},
    {OSSL_FUNC_KEYMGMT_MATCH, TPMPROV_FN(key_match)},
    {OSSL_FUNC_KEYMGMT_IMPORT, TPMPROV_FN(key_import)},
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, TPMPROV_FN(rsa_types_fn)},
    {OSSL_FUNC_KEYMGMT_EXPORT, TPMPROV_FN(key_export)},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, TPMPROV_FN(rsa_types_fn)},
    {OSSL_FUNC_KEYMGMT_GET_PARAMS, TPMPROV_FN(key_get_params)},
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, TPMPROV_FN(rsa_gettable_fn)},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, TPMPROV_FN(rsa_op_name)},
    {0, NULL},
};
