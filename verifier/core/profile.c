#include "verifier/core/profile.h"

#include <stdint.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "common/err.h"

#define PROFILE_BACKDATE 300
#define PROFILE_SERIAL_MIN 8
#define PROFILE_SERIAL_MAX 20

static int set_serial(X509 *x, const uint8_t *serial, size_t len)
{
    uint8_t buf[PROFILE_SERIAL_MAX];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;
    int r = DEVID_ERR_INTERNAL;

    if (serial == NULL || len < PROFILE_SERIAL_MIN || len > PROFILE_SERIAL_MAX)
        return DEVID_ERR_INVALID_ARGUMENT;
    memcpy(buf, serial, len);
    buf[0] &= 0x7f;
    if ((bn = BN_bin2bn(buf, (int)len, NULL)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if (BN_is_zero(bn)) {
        r = DEVID_ERR_INVALID_ARGUMENT;
        goto out;
    }
    if ((ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL || X509_set_serialNumber(x, ai) != 1) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    r = 0;
out:
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return r;
}

static int add_name_entry(X509_NAME *name, int nid, const char *value)
{
    const unsigned char *v = (const unsigned char *)value;

    if (value[0] == '\0')
        return 0;
    if (X509_NAME_add_entry_by_NID(name, nid, MBSTRING_ASC, v, -1, -1, 0) == 1)
        return 0;
    /* Not representable in the attribute's preferred string type (for
     * example '_' in a PrintableString serialNumber): keep it as UTF8String. */
    ERR_clear_error();
    if (X509_NAME_add_entry_by_NID(name, nid, V_ASN1_UTF8STRING, v, -1, -1, 0) == 1)
        return 0;
    return DEVID_ERR_CRYPTO;
}

static int set_subject(X509 *x, const struct device_identity *id)
{
    X509_NAME *name = NULL;
    int r = DEVID_ERR_INTERNAL;

    if ((name = X509_NAME_new()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if ((r = add_name_entry(name, NID_organizationName, id->manufacturer)) != 0 ||
        (r = add_name_entry(name, NID_commonName, id->model)) != 0 ||
        (r = add_name_entry(name, NID_serialNumber, id->serial)) != 0)
        goto out;
    if (X509_set_subject_name(x, name) != 1) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    r = 0;
out:
    X509_NAME_free(name);
    return r;
}

static int set_validity(X509 *x, time_t now, long validity)
{
    if (validity <= 0 || now < PROFILE_BACKDATE || (intmax_t)now > INTMAX_MAX - validity)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (ASN1_TIME_set(X509_getm_notBefore(x), now - PROFILE_BACKDATE) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)((intmax_t)now + validity)) == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    return 0;
}

static int add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext;
    int ok;

    if ((ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value)) == NULL)
        return DEVID_ERR_CRYPTO;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : DEVID_ERR_ALLOC;
}

static int copy_hwmodulename(X509 *x, X509 *idevid)
{
    GENERAL_NAMES *src = NULL, *dst = NULL;
    GENERAL_NAME *g = NULL;
    ASN1_OBJECT *oid = NULL;
    int crit = -1, i;
    int r = DEVID_ERR_INTERNAL;

    if ((src = X509_get_ext_d2i(idevid, NID_subject_alt_name, &crit, NULL)) == NULL) {
        r = crit == -1 ? 0 : DEVID_ERR_IDENTITY;
        goto out;
    }
    if ((oid = OBJ_txt2obj(IDENTITY_OID_HWMODULENAME, 1)) == NULL ||
        (dst = GENERAL_NAMES_new()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    for (i = 0; i < sk_GENERAL_NAME_num(src); i++) {
        const GENERAL_NAME *s = sk_GENERAL_NAME_value(src, i);
        if (s->type != GEN_OTHERNAME || OBJ_cmp(s->d.otherName->type_id, oid) != 0)
            continue;
        if ((g = GENERAL_NAME_dup(s)) == NULL || sk_GENERAL_NAME_push(dst, g) <= 0) {
            r = DEVID_ERR_ALLOC;
            goto out;
        }
        g = NULL;
    }
    if (sk_GENERAL_NAME_num(dst) > 0 &&
        X509_add1_ext_i2d(x, NID_subject_alt_name, dst, 0, X509V3_ADD_DEFAULT) != 1) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    r = 0;
out:
    GENERAL_NAME_free(g);
    GENERAL_NAMES_free(dst);
    GENERAL_NAMES_free(src);
    ASN1_OBJECT_free(oid);
    return r;
}

static int add_assurance_policy(X509 *x, const char *oid)
{
    CERTIFICATEPOLICIES *pols = NULL;
    POLICYINFO *pi = NULL;
    int r = DEVID_ERR_ALLOC;

    if ((pols = CERTIFICATEPOLICIES_new()) == NULL || (pi = POLICYINFO_new()) == NULL)
        goto out;
    ASN1_OBJECT_free(pi->policyid);
    if ((pi->policyid = OBJ_txt2obj(oid, 1)) == NULL) {
        r = DEVID_ERR_INVALID_ARGUMENT;
        goto out;
    }
    if (sk_POLICYINFO_push(pols, pi) <= 0)
        goto out;
    pi = NULL;
    if (X509_add1_ext_i2d(x, NID_certificate_policies, pols, 0, X509V3_ADD_DEFAULT) != 1)
        goto out;
    r = 0;
out:
    POLICYINFO_free(pi);
    CERTIFICATEPOLICIES_free(pols);
    ERR_clear_error();
    return r;
}

/* set_pubkey copies the algorithm, parameters and key bits of |src| into
 * |x|'s SubjectPublicKeyInfo. */
static int set_pubkey(X509 *x, const X509_PUBKEY *src)
{
    const ASN1_OBJECT *alg_obj = NULL;
    const void *pval = NULL;
    const X509_ALGOR *alg = NULL;
    const unsigned char *bits = NULL;
    ASN1_OBJECT *obj = NULL;
    void *param = NULL;
    unsigned char *enc = NULL;
    int ptype = V_ASN1_UNDEF, len = 0;

    if (X509_PUBKEY_get0_param(NULL, &bits, &len, (X509_ALGOR **)&alg, src) != 1 || alg == NULL ||
        bits == NULL || len <= 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    X509_ALGOR_get0(&alg_obj, &ptype, &pval, alg);
    if ((obj = OBJ_dup(alg_obj)) == NULL)
        goto fail;
    switch (ptype) {
        case V_ASN1_UNDEF:
        case V_ASN1_NULL:
            break;
        case V_ASN1_OBJECT:
            if ((param = OBJ_dup(pval)) == NULL)
                goto fail;
            break;
        case V_ASN1_SEQUENCE:
            if ((param = ASN1_STRING_dup(pval)) == NULL)
                goto fail;
            break;
        default:
            ASN1_OBJECT_free(obj);
            return DEVID_ERR_INVALID_ARGUMENT;
    }
    if ((enc = OPENSSL_memdup(bits, (size_t)len)) == NULL ||
        X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), obj, ptype, param, enc, len) != 1)
        goto fail;
    return 0;
fail:
    OPENSSL_free(enc);
    if (ptype == V_ASN1_OBJECT)
        ASN1_OBJECT_free(param);
    else
        ASN1_STRING_free(param);
    ASN1_OBJECT_free(obj);
    return DEVID_ERR_ALLOC;
}

int profile_build(X509 **out, const struct profile_input *in)
{
    X509 *x = NULL;
    X509V3_CTX ctx;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (in == NULL || in->ca_cert == NULL || in->subject_key == NULL || in->id == NULL ||
        in->idevid == NULL || in->assurance_oid == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if ((x = X509_new()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if (X509_set_version(x, X509_VERSION_3) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(in->ca_cert)) != 1) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if ((r = set_pubkey(x, in->subject_key)) != 0 ||
        (r = set_serial(x, in->serial, in->serial_len)) != 0 || (r = set_subject(x, in->id)) != 0 ||
        (r = set_validity(x, in->now, in->validity_seconds)) != 0)
        goto out;
    X509V3_set_ctx(&ctx, in->ca_cert, x, NULL, NULL, 0);
    if ((r = add_conf_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE")) != 0 ||
        (r = add_conf_ext(x, &ctx, NID_key_usage, "critical,digitalSignature")) != 0 ||
        (r = add_conf_ext(x, &ctx, NID_ext_key_usage, "clientAuth")) != 0 ||
        (r = add_conf_ext(x, &ctx, NID_subject_key_identifier, "hash")) != 0 ||
        (r = add_conf_ext(x, &ctx, NID_authority_key_identifier, "keyid:always")) != 0)
        goto out;
    if ((r = copy_hwmodulename(x, in->idevid)) != 0 ||
        (r = add_assurance_policy(x, in->assurance_oid)) != 0)
        goto out;
    *out = x;
    x = NULL;
    r = 0;
out:
    X509_free(x);
    return r;
}

int profile_response_chain(STACK_OF(X509) **out, X509 *issuer, STACK_OF(X509) *above)
{
    STACK_OF(X509) *sk = NULL;
    X509 *x;
    int i, r = DEVID_ERR_ALLOC;

    if (out == NULL || issuer == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((sk = sk_X509_new_null()) == NULL)
        goto out;
    for (i = 0, x = issuer; x != NULL;
         x = i < sk_X509_num(above) ? sk_X509_value(above, i++) : NULL) {
        if (X509_self_signed(x, 0) == 1)
            break;
        if (X509_up_ref(x) != 1)
            goto out;
        if (sk_X509_push(sk, x) <= 0) {
            X509_free(x);
            goto out;
        }
    }
    *out = sk;
    sk = NULL;
    r = 0;
out:
    sk_X509_pop_free(sk, X509_free);
    return r;
}
