#include "verifier/core/chain_rules.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "common/err.h"

#define OID_HWMODULENAME "1.3.6.1.5.5.7.8.4"
#define OID_PERMANENTID "1.3.6.1.5.5.7.8.3"

void chain_rules_key_str(char *buf, size_t len, EVP_PKEY *pk)
{
    char group[64];
    size_t glen = 0;

    if (pk == NULL) {
        snprintf(buf, len, "(no key)");
        return;
    }
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
        EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &glen) == 1)
        snprintf(buf, len, "EC %s (%d bits)", group, EVP_PKEY_get_bits(pk));
    else
        snprintf(buf, len, "%s %d bits", OBJ_nid2sn(EVP_PKEY_get_base_id(pk)),
                 EVP_PKEY_get_bits(pk));
}

static int check_key(const struct chain_mfr_settings *set, const char *mfr, X509 *x, int depth,
                     char *why, size_t why_len)
{
    EVP_PKEY *pk = X509_get0_pubkey(x);
    char detail[512], desc[96];
    int id, bits, explicit_params = 0;

    if (pk == NULL)
        return chain_refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, x, depth,
                            "subjectPublicKeyInfo does not decode", NULL);
    id = EVP_PKEY_get_base_id(pk);
    bits = EVP_PKEY_get_bits(pk);
    chain_rules_key_str(desc, sizeof(desc), pk);
    switch (id) {
        case EVP_PKEY_RSA:
        case EVP_PKEY_RSA_PSS:
            if (bits < 0 || (unsigned)bits < set->min_rsa_bits) {
                snprintf(detail, sizeof(detail),
                         "%s is below min_rsa_bits %u of manufacturer \"%s\"", desc,
                         set->min_rsa_bits, mfr);
                return chain_refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, x, depth,
                                    "weak algorithm: subjectPublicKeyInfo key ", detail);
            }
            return 0;
        case EVP_PKEY_EC:
            if (EVP_PKEY_get_int_param(pk, OSSL_PKEY_PARAM_EC_DECODED_FROM_EXPLICIT_PARAMS,
                                       &explicit_params) == 1 &&
                explicit_params)
                return chain_refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, x, depth,
                                    "subjectPublicKeyInfo EC key has explicit curve parameters",
                                    NULL);
            if (bits < 0 || (unsigned)bits < set->min_ec_bits) {
                snprintf(detail, sizeof(detail),
                         "%s is below min_ec_bits %u of manufacturer \"%s\"", desc,
                         set->min_ec_bits, mfr);
                return chain_refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, x, depth,
                                    "weak algorithm: subjectPublicKeyInfo key ", detail);
            }
            return 0;
        case EVP_PKEY_ED25519:
        case EVP_PKEY_ED448:
            return 0;
        default:
            return chain_refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, x, depth,
                                "subjectPublicKeyInfo key type is not RSA, EC or EdDSA: ", desc);
    }
}

static int check_signature_alg(const struct chain_mfr_settings *set, const char *mfr, X509 *x,
                               int depth, char *why, size_t why_len)
{
    int mdnid = NID_undef, pknid = NID_undef, secbits = 0;
    uint32_t flags = 0;
    char detail[200];

    if (X509_get_signature_info(x, &mdnid, &pknid, &secbits, &flags) != 1) {
        ERR_clear_error();
        return chain_refuse(
            DEVID_ERR_CHAIN_INVALID, why, why_len, x, depth,
            "signatureAlgorithm is not supported: ", OBJ_nid2ln(X509_get_signature_nid(x)));
    }
    if (mdnid == NID_md5 || mdnid == NID_md4 || mdnid == NID_md2 ||
        (mdnid == NID_sha1 && !set->allow_sha1)) {
        snprintf(detail, sizeof(detail), "%s (manufacturer \"%s\" has allow_sha1 = %s)",
                 OBJ_nid2ln(X509_get_signature_nid(x)), mfr, set->allow_sha1 ? "yes" : "no");
        return chain_refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, x, depth,
                            "weak algorithm: signatureAlgorithm ", detail);
    }
    return 0;
}

static int check_leaf(X509 *leaf, enum chain_leaf kind, char *why, size_t why_len)
{
    const char *ee = kind == CHAIN_LEAF_EK ? "an EK certificate must be an end-entity certificate"
                                           : "an IDevID or IAK must be an end-entity certificate";
    uint32_t ku = X509_get_key_usage(leaf);
    int has_ku = (X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) != 0;

    GENERAL_NAMES *gens = NULL;
    ASN1_OBJECT *hw = NULL, *perm = NULL;
    X509_EXTENSION *ext;
    char oid[80];
    int idx, i, r = DEVID_ERR_INTERNAL;

    if (X509_get_extension_flags(leaf) & EXFLAG_CA) {
        r = chain_refuse(
            DEVID_ERR_CHAIN_INVALID, why, why_len, leaf, 0, "basicConstraints cA is TRUE: ",
            kind == CHAIN_LEAF_EK ? "an EK certificate must be an end-entity certificate, not a CA"
                                  : "an IDevID or IAK must be an end-entity certificate, not a CA");
        goto out;
    }
    if (has_ku && (ku & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) != 0) {
        r = chain_refuse(
            DEVID_ERR_CHAIN_INVALID, why, why_len, leaf, 0,
            (ku & KU_KEY_CERT_SIGN) ? "keyUsage allows keyCertSign: " : "keyUsage allows cRLSign: ",
            ee);
        goto out;
    }
    if (has_ku && kind == CHAIN_LEAF_IDEVID && (ku & KU_DIGITAL_SIGNATURE) == 0) {
        r = chain_refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, leaf, 0,
                         "keyUsage does not allow digitalSignature", NULL);
        goto out;
    }
    if (has_ku && kind == CHAIN_LEAF_EK && (ku & (KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT)) == 0) {
        r = chain_refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, leaf, 0,
                         "keyUsage allows neither keyEncipherment nor keyAgreement: an EK is a "
                         "decryption key",
                         NULL);
        goto out;
    }
    if ((idx = X509_get_ext_by_NID(leaf, NID_subject_alt_name, -1)) < 0 ||
        (ext = X509_get_ext(leaf, idx)) == NULL || !X509_EXTENSION_get_critical(ext)) {
        r = 0;
        goto out;
    }
    if ((gens = X509V3_EXT_d2i(ext)) == NULL) {
        r = chain_refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, leaf, 0,
                         "critical subjectAltName does not decode", NULL);
        goto out;
    }
    if ((hw = OBJ_txt2obj(OID_HWMODULENAME, 1)) == NULL ||
        (perm = OBJ_txt2obj(OID_PERMANENTID, 1)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_OTHERNAME || OBJ_cmp(g->d.otherName->type_id, hw) == 0 ||
            OBJ_cmp(g->d.otherName->type_id, perm) == 0)
            continue;
        OBJ_obj2txt(oid, sizeof(oid), g->d.otherName->type_id, 1);
        r = chain_refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, leaf, 0,
                         "critical subjectAltName holds an otherName of unknown type ", oid);
        goto out;
    }
    r = 0;
out:
    ASN1_OBJECT_free(hw);
    ASN1_OBJECT_free(perm);
    GENERAL_NAMES_free(gens);
    return r;
}

int chain_rules_check_path(const struct chain_mfr_settings *set, const char *mfr,
                           enum chain_leaf leaf, STACK_OF(X509) *path, char *why, size_t why_len)
{
    int i, r, n = sk_X509_num(path);

    for (i = 0; i < n; i++) {
        if ((r = check_key(set, mfr, sk_X509_value(path, i), i, why, why_len)) != 0)
            return r;
        if (i + 1 < n &&
            (r = check_signature_alg(set, mfr, sk_X509_value(path, i), i, why, why_len)) != 0)
            return r;
    }
    return n > 0 ? check_leaf(sk_X509_value(path, 0), leaf, why, why_len) : DEVID_ERR_INTERNAL;
}
