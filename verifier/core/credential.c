#include "verifier/core/credential.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include "common/err.h"
#include "common/tpmkey.h"

static const char identity_label[] = "IDENTITY"; /* KDFe and OAEP add the NUL */

int credential_kdfa(uint8_t *out, size_t out_len, const EVP_MD *md, const uint8_t *key,
                    size_t key_len, const char *label, const uint8_t *ctx_u, size_t ctx_u_len,
                    const uint8_t *ctx_v, size_t ctx_v_len)
{
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kctx = NULL;
    OSSL_PARAM params[7], *p = params;
    uint8_t ctx[2 * TPMKEY_NAME_MAX];
    int r = DEVID_ERR_CRYPTO;

    if (md == NULL || key == NULL || ctx_u_len + ctx_v_len > sizeof(ctx))
        return DEVID_ERR_INVALID_ARGUMENT;
    if (ctx_u_len > 0)
        memcpy(ctx, ctx_u, ctx_u_len);
    if (ctx_v_len > 0)
        memcpy(ctx + ctx_u_len, ctx_v, ctx_v_len);
    /* SP 800-108 counter mode: [i]_32 || label || 0x00 || context || [L]_32. */
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, (char *)"HMAC", 0);
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)EVP_MD_get0_name(md), 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)label, strlen(label));
    if (ctx_u_len + ctx_v_len > 0)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, ctx, ctx_u_len + ctx_v_len);
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, (char *)"COUNTER", 0);
    *p = OSSL_PARAM_construct_end();
    if ((kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL)) == NULL ||
        (kctx = EVP_KDF_CTX_new(kdf)) == NULL || EVP_KDF_derive(kctx, out, out_len, params) != 1)
        goto out;
    r = 0;
out:
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    ERR_clear_error();
    return r;
}

/* KDFe(H, Z, "IDENTITY", u, v, 8 * out_len): SP 800-56A one-step, H(counter
 * || Z || "IDENTITY\0" || u || v). */
static int kdfe(uint8_t *out, size_t out_len, const EVP_MD *md, const uint8_t *z, size_t z_len,
                const uint8_t *u, size_t u_len, const uint8_t *v, size_t v_len)
{
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kctx = NULL;
    OSSL_PARAM params[4];
    uint8_t info[sizeof(identity_label) + 2 * TPM2_MAX_ECC_KEY_BYTES];
    size_t n = sizeof(identity_label);
    int r = DEVID_ERR_CRYPTO;

    if (u_len > TPM2_MAX_ECC_KEY_BYTES || v_len > TPM2_MAX_ECC_KEY_BYTES)
        return DEVID_ERR_INVALID_ARGUMENT;
    memcpy(info, identity_label, sizeof(identity_label));
    memcpy(info + n, u, u_len);
    n += u_len;
    memcpy(info + n, v, v_len);
    n += v_len;
    params[0] =
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)EVP_MD_get0_name(md), 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)z, z_len);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
    params[3] = OSSL_PARAM_construct_end();
    if ((kdf = EVP_KDF_fetch(NULL, "SSKDF", NULL)) == NULL ||
        (kctx = EVP_KDF_CTX_new(kdf)) == NULL || EVP_KDF_derive(kctx, out, out_len, params) != 1)
        goto out;
    r = 0;
out:
    OPENSSL_cleanse(info, sizeof(info));
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    ERR_clear_error();
    return r;
}

static const TPMT_SYM_DEF_OBJECT *ek_symmetric(const TPMT_PUBLIC *ek)
{
    return ek->type == TPM2_ALG_RSA ? &ek->parameters.rsaDetail.symmetric
                                    : &ek->parameters.eccDetail.symmetric;
}

int credential_check_ek(const TPMT_PUBLIC *ek, char *why, size_t why_len)
{
    const TPMA_OBJECT need = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM;
    const TPMT_SYM_DEF_OBJECT *sym;

    if (ek->type != TPM2_ALG_RSA && ek->type != TPM2_ALG_ECC) {
        snprintf(why, why_len, "EK type 0x%04x is neither RSA nor ECC", ek->type);
        return DEVID_ERR_EK_KEY;
    }
    if ((ek->objectAttributes & need) != need ||
        (ek->objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT)) {
        snprintf(why, why_len,
                 "EK attributes 0x%08x: an EK is a restricted decryption key with fixedTPM "
                 "(restricted, decrypt, fixedTPM set; sign clear)",
                 ek->objectAttributes);
        return DEVID_ERR_EK_KEY;
    }
    if (ek->nameAlg != TPM2_ALG_SHA256 && ek->nameAlg != TPM2_ALG_SHA384) {
        snprintf(why, why_len, "EK nameAlg 0x%04x is neither SHA-256 nor SHA-384", ek->nameAlg);
        return DEVID_ERR_EK_KEY;
    }
    sym = ek_symmetric(ek);
    if (sym->algorithm != TPM2_ALG_AES || sym->mode.aes != TPM2_ALG_CFB ||
        (sym->keyBits.aes != 128 && sym->keyBits.aes != 192 && sym->keyBits.aes != 256)) {
        snprintf(why, why_len, "EK symmetric definition is not AES-128/192/256-CFB");
        return DEVID_ERR_EK_KEY;
    }
    if (ek->type == TPM2_ALG_RSA && ek->parameters.rsaDetail.keyBits < 2048) {
        snprintf(why, why_len, "EK RSA key of %u bits: at least 2048 required",
                 (unsigned)ek->parameters.rsaDetail.keyBits);
        return DEVID_ERR_EK_KEY;
    }
    if (ek->type == TPM2_ALG_ECC && ek->parameters.eccDetail.curveID != TPM2_ECC_NIST_P256 &&
        ek->parameters.eccDetail.curveID != TPM2_ECC_NIST_P384 &&
        ek->parameters.eccDetail.curveID != TPM2_ECC_NIST_P521) {
        snprintf(why, why_len, "EK curve 0x%04x is not NIST P-256, P-384 or P-521",
                 ek->parameters.eccDetail.curveID);
        return DEVID_ERR_EK_KEY;
    }
    return 0;
}

/* RSA: OAEP(H, "IDENTITY\0") of |seed| under |pk| into |secret|. */
static int rsa_secret(TPM2B_ENCRYPTED_SECRET *secret, EVP_PKEY *pk, const EVP_MD *md,
                      const uint8_t *seed, size_t seed_len)
{
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t *label = NULL;
    size_t len = sizeof(secret->secret);
    int r = DEVID_ERR_CRYPTO;

    if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL ||
        EVP_PKEY_encrypt_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) != 1)
        goto out;
    if ((label = OPENSSL_memdup(identity_label, sizeof(identity_label))) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, sizeof(identity_label)) != 1)
        goto out;
    label = NULL;
    if (EVP_PKEY_encrypt(ctx, secret->secret, &len, seed, seed_len) != 1)
        goto out;
    secret->size = (UINT16)len;
    r = 0;
out:
    OPENSSL_free(label);
    EVP_PKEY_CTX_free(ctx);
    return r;
}

/* Writes the affine x and y of |pk| (|coord| bytes each) to |pt|. */
static int ec_point(TPMS_ECC_POINT *pt, EVP_PKEY *pk, size_t coord)
{
    BIGNUM *x = NULL, *y = NULL;
    int r = DEVID_ERR_CRYPTO;

    if (coord > sizeof(pt->x.buffer) ||
        EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
        EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1 ||
        BN_bn2binpad(x, pt->x.buffer, (int)coord) != (int)coord ||
        BN_bn2binpad(y, pt->y.buffer, (int)coord) != (int)coord)
        goto out;
    pt->x.size = pt->y.size = (UINT16)coord;
    r = 0;
out:
    BN_free(x);
    BN_free(y);
    return r;
}

/* ECC: the seed from ECDH of |eph| with the EK |pk| (KDFe), and the
 * ephemeral point as the encrypted secret. */
static int ecc_secret(TPM2B_ENCRYPTED_SECRET *secret, uint8_t *seed, size_t seed_len,
                      const TPMT_PUBLIC *ek, EVP_PKEY *pk, EVP_PKEY *eph, const EVP_MD *md)
{
    EVP_PKEY_CTX *ctx = NULL;
    TPMS_ECC_POINT pt;
    uint8_t z[TPM2_MAX_ECC_KEY_BYTES];
    size_t zlen = sizeof(z), off = 0, coord = ek->unique.ecc.x.size;
    int r = DEVID_ERR_CRYPTO;

    memset(&pt, 0, sizeof(pt));
    if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL)) == NULL ||
        EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, pk) != 1 ||
        EVP_PKEY_derive(ctx, z, &zlen) != 1)
        goto out;
    if ((r = ec_point(&pt, eph, coord)) != 0 ||
        (r = kdfe(seed, seed_len, md, z, zlen, pt.x.buffer, pt.x.size, ek->unique.ecc.x.buffer,
                  ek->unique.ecc.x.size)) != 0)
        goto out;
    if (Tss2_MU_TPMS_ECC_POINT_Marshal(&pt, secret->secret, sizeof(secret->secret), &off) !=
        TSS2_RC_SUCCESS) {
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    secret->size = (UINT16)off;
    r = 0;
out:
    OPENSSL_cleanse(z, sizeof(z));
    EVP_PKEY_CTX_free(ctx);
    return r;
}

/* The ID object from |seed|: encIdentity and its outer HMAC. */
static int id_object(TPM2B_ID_OBJECT *obj, const EVP_MD *md, unsigned sym_bits, const uint8_t *seed,
                     size_t seed_len, const uint8_t *name, size_t name_len, const uint8_t *cv,
                     size_t cv_len)
{
    TPM2B_DIGEST plain, hmac;
    uint8_t sym[32], hkey[64], pbuf[sizeof(TPM2B_DIGEST)], *enc;
    const EVP_CIPHER *cipher = sym_bits == 128   ? EVP_aes_128_cfb128()
                               : sym_bits == 192 ? EVP_aes_192_cfb128()
                                                 : EVP_aes_256_cfb128();
    static const uint8_t iv[16];
    EVP_CIPHER_CTX *cctx = NULL;
    size_t plen = 0, dsz = (size_t)EVP_MD_get_size(md), off = 0;
    unsigned int hlen = 0;
    int n1 = 0, n2 = 0, r = DEVID_ERR_CRYPTO;

    memset(&plain, 0, sizeof(plain));
    plain.size = (UINT16)cv_len;
    memcpy(plain.buffer, cv, cv_len);
    if (Tss2_MU_TPM2B_DIGEST_Marshal(&plain, pbuf, sizeof(pbuf), &plen) != TSS2_RC_SUCCESS)
        goto out;
    if ((r = credential_kdfa(sym, sym_bits / 8, md, seed, seed_len, "STORAGE", name, name_len, NULL,
                             0)) != 0 ||
        (r = credential_kdfa(hkey, dsz, md, seed, seed_len, "INTEGRITY", NULL, 0, NULL, 0)) != 0)
        goto out;
    r = DEVID_ERR_CRYPTO;
    /* credential = TPM2B_DIGEST outerHMAC || encIdentity */
    enc = obj->credential + 2 + dsz;
    if ((cctx = EVP_CIPHER_CTX_new()) == NULL ||
        EVP_EncryptInit_ex(cctx, cipher, NULL, sym, iv) != 1 ||
        EVP_EncryptUpdate(cctx, enc, &n1, pbuf, (int)plen) != 1 ||
        EVP_EncryptFinal_ex(cctx, enc + n1, &n2) != 1 || (size_t)(n1 + n2) != plen)
        goto out;
    {
        uint8_t mac_in[sizeof(pbuf) + TPMKEY_NAME_MAX];
        memcpy(mac_in, enc, plen);
        memcpy(mac_in + plen, name, name_len);
        if (HMAC(md, hkey, (int)dsz, mac_in, plen + name_len, hmac.buffer, &hlen) == NULL ||
            hlen != dsz)
            goto out;
    }
    hmac.size = (UINT16)hlen;
    if (Tss2_MU_TPM2B_DIGEST_Marshal(&hmac, obj->credential, 2 + dsz, &off) != TSS2_RC_SUCCESS ||
        off != 2 + dsz)
        goto out;
    obj->size = (UINT16)(2 + dsz + plen);
    r = 0;
out:
    EVP_CIPHER_CTX_free(cctx);
    OPENSSL_cleanse(sym, sizeof(sym));
    OPENSSL_cleanse(hkey, sizeof(hkey));
    OPENSSL_cleanse(&plain, sizeof(plain));
    OPENSSL_cleanse(pbuf, sizeof(pbuf));
    return r;
}

int credential_make_with(struct credential_blob *out, const TPMT_PUBLIC *ek, const uint8_t *name,
                         size_t name_len, const uint8_t *cv, size_t cv_len, const uint8_t *seed_in,
                         EVP_PKEY *ephemeral, char *why, size_t why_len)
{
    TPM2B_ID_OBJECT obj;
    TPM2B_ENCRYPTED_SECRET secret;
    EVP_PKEY *pk = NULL;
    const EVP_MD *md;
    uint8_t seed[64];
    size_t dsz, off;
    int r;

    if (out == NULL || ek == NULL || name == NULL || cv == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    why[0] = '\0';
    memset(out, 0, sizeof(*out));
    memset(&obj, 0, sizeof(obj));
    memset(&secret, 0, sizeof(secret));
    if ((r = credential_check_ek(ek, why, why_len)) != 0)
        return r;
    md = tpmkey_hash_md(ek->nameAlg);
    dsz = (size_t)EVP_MD_get_size(md);
    if (cv_len == 0 || cv_len > dsz || name_len < 2 || name_len > TPMKEY_NAME_MAX) {
        snprintf(why, why_len, "credential of %zu bytes or Name of %zu bytes out of range", cv_len,
                 name_len);
        return DEVID_ERR_INVALID_ARGUMENT;
    }
    if (tpmkey_public_to_pkey(&pk, ek) != 0) {
        snprintf(why, why_len, "EK public key does not decode");
        return DEVID_ERR_EK_KEY;
    }
    if (ek->type == TPM2_ALG_RSA) {
        if (seed_in != NULL)
            memcpy(seed, seed_in, dsz);
        else if (RAND_bytes(seed, (int)dsz) != 1) {
            r = DEVID_ERR_CRYPTO;
            goto fail;
        }
        r = rsa_secret(&secret, pk, md, seed, dsz);
    } else {
        EVP_PKEY *eph = ephemeral;
        char group[64];
        size_t glen = 0;

        if (eph == NULL && (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                           sizeof(group), &glen) != 1 ||
                            (eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group)) == NULL)) {
            r = DEVID_ERR_CRYPTO;
            goto fail;
        }
        r = ecc_secret(&secret, seed, dsz, ek, pk, eph, md);
        if (eph != ephemeral)
            EVP_PKEY_free(eph);
    }
    if (r != 0 || (r = id_object(&obj, md, ek_symmetric(ek)->keyBits.aes, seed, dsz, name, name_len,
                                 cv, cv_len)) != 0)
        goto fail;
    off = 0;
    if (Tss2_MU_TPM2B_ID_OBJECT_Marshal(&obj, out->id_object, sizeof(out->id_object), &off) !=
        TSS2_RC_SUCCESS) {
        r = DEVID_ERR_CRYPTO;
        goto fail;
    }
    out->id_object_len = off;
    off = 0;
    if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(&secret, out->secret, sizeof(out->secret), &off) !=
        TSS2_RC_SUCCESS) {
        r = DEVID_ERR_CRYPTO;
        goto fail;
    }
    out->secret_len = off;
    r = 0;
    goto done;
fail:
    ERR_clear_error();
    if (why[0] == '\0' || r == DEVID_ERR_CRYPTO)
        snprintf(why, why_len, "making the credential for the EK failed (%s)", devid_err_str(r));
    memset(out, 0, sizeof(*out));
done:
    OPENSSL_cleanse(seed, sizeof(seed));
    OPENSSL_cleanse(&obj, sizeof(obj));
    EVP_PKEY_free(pk);
    return r;
}

int credential_make(struct credential_blob *out, const TPMT_PUBLIC *ek, const uint8_t *name,
                    size_t name_len, const uint8_t *cv, size_t cv_len, char *why, size_t why_len)
{
    return credential_make_with(out, ek, name, name_len, cv, cv_len, NULL, NULL, why, why_len);
}

/* derive is HMAC-SHA-256(|key|, |label| || the three 32-byte inputs). */
static int derive(uint8_t out[CREDENTIAL_SECRET_LEN], const char *label, const uint8_t key[32],
                  const uint8_t nonce[32], const uint8_t ek_cert_hash[32],
                  const uint8_t name_hash[32])
{
    uint8_t in[64 + 3 * 32];
    size_t label_len = strlen(label);
    unsigned int len = 0;
    int r = DEVID_ERR_CRYPTO;

    if (label_len > sizeof(in) - 3 * 32)
        return DEVID_ERR_INTERNAL;
    memcpy(in, label, label_len);
    memcpy(in + label_len, nonce, 32);
    memcpy(in + label_len + 32, ek_cert_hash, 32);
    memcpy(in + label_len + 64, name_hash, 32);
    if (HMAC(EVP_sha256(), key, 32, in, label_len + 3 * 32, out, &len) != NULL &&
        len == CREDENTIAL_SECRET_LEN)
        r = 0;
    OPENSSL_cleanse(in, sizeof(in));
    return r;
}

int credential_derive(uint8_t out[CREDENTIAL_SECRET_LEN], const uint8_t key[32],
                      const uint8_t nonce[32], const uint8_t ek_cert_hash[32],
                      const uint8_t name_hash[32])
{
    return derive(out, "devid/v1 credential", key, nonce, ek_cert_hash, name_hash);
}

int credential_derive_ak(uint8_t out[CREDENTIAL_SECRET_LEN], const uint8_t key[32],
                         const uint8_t nonce[32], const uint8_t ek_cert_hash[32],
                         const uint8_t ak_name_hash[32])
{
    return derive(out, "devid/v1 ak credential", key, nonce, ek_cert_hash, ak_name_hash);
}

/* check_ak_type checks the AK's type, curve or modulus, and scheme. */
static int check_ak_type(const TPMT_PUBLIC *ak, char *why, size_t why_len)
{
    const TPMS_RSA_PARMS *rsa = &ak->parameters.rsaDetail;
    TPMI_ALG_SIG_SCHEME scheme;

    if (ak->type == TPM2_ALG_ECC) {
        switch (ak->parameters.eccDetail.curveID) {
            case TPM2_ECC_NIST_P256:
            case TPM2_ECC_NIST_P384:
            case TPM2_ECC_NIST_P521:
                break;
            default:
                return devid_why(DEVID_ERR_ATTEST_ATTRIBUTES, why, why_len,
                                 "ak_public: ECC curve 0x%04x: only NIST P-256, P-384 and P-521",
                                 ak->parameters.eccDetail.curveID);
        }
        scheme = ak->parameters.eccDetail.scheme.scheme;
        if (scheme != TPM2_ALG_NULL && scheme != TPM2_ALG_ECDSA)
            return devid_why(DEVID_ERR_ATTEST_ATTRIBUTES, why, why_len,
                             "ak_public: ECC scheme 0x%04x: only ECDSA or none", scheme);
        return 0;
    }
    if (ak->type == TPM2_ALG_RSA) {
        if (rsa->keyBits < CREDENTIAL_AK_RSA_MIN_BITS ||
            (size_t)ak->unique.rsa.size * 8 != rsa->keyBits)
            return devid_why(DEVID_ERR_ATTEST_ATTRIBUTES, why, why_len,
                             "ak_public: RSA keyBits %u with a %u-byte modulus: at least %d bits, "
                             "and a modulus of that length",
                             rsa->keyBits, ak->unique.rsa.size, CREDENTIAL_AK_RSA_MIN_BITS);
        scheme = rsa->scheme.scheme;
        if (scheme != TPM2_ALG_NULL && scheme != TPM2_ALG_RSASSA && scheme != TPM2_ALG_RSAPSS)
            return devid_why(DEVID_ERR_ATTEST_ATTRIBUTES, why, why_len,
                             "ak_public: RSA scheme 0x%04x: only RSASSA, RSAPSS or none", scheme);
        return 0;
    }
    return devid_why(DEVID_ERR_ATTEST_ATTRIBUTES, why, why_len,
                     "ak_public: type 0x%04x: only ECC or RSA", ak->type);
}

int credential_check_ak(const TPMT_PUBLIC *ak, char *why, size_t why_len)
{
    static const struct {
        TPMA_OBJECT bit;
        int want;
        const char *name;
    } rules[] = {
        {TPMA_OBJECT_RESTRICTED, 1, "restricted"},
        {TPMA_OBJECT_SIGN_ENCRYPT, 1, "sign"},
        {TPMA_OBJECT_FIXEDTPM, 1, "fixedTPM"},
        {TPMA_OBJECT_FIXEDPARENT, 1, "fixedParent"},
        {TPMA_OBJECT_SENSITIVEDATAORIGIN, 1, "sensitiveDataOrigin"},
        {TPMA_OBJECT_DECRYPT, 0, "decrypt"},
    };
    size_t i;

    if (ak == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        if (((ak->objectAttributes & rules[i].bit) != 0) != rules[i].want)
            return devid_why(DEVID_ERR_ATTEST_ATTRIBUTES, why, why_len,
                             "ak_public: objectAttributes 0x%08x: %s must be %s",
                             (unsigned)ak->objectAttributes, rules[i].name,
                             rules[i].want ? "set" : "clear");
    }
    if (ak->nameAlg != TPM2_ALG_SHA256 && ak->nameAlg != TPM2_ALG_SHA384 &&
        ak->nameAlg != TPM2_ALG_SHA512)
        return devid_why(DEVID_ERR_ATTEST_ATTRIBUTES, why, why_len,
                         "ak_public: nameAlg 0x%04x: only SHA-256, SHA-384 or SHA-512",
                         ak->nameAlg);
    return check_ak_type(ak, why, why_len);
}
