/* Software MakeCredential (verifier/core/credential.h) against credentials
 * a TPM activated: credvec/vectors.h holds, for swtpm's RSA 2048 EK
 * (SHA-256, AES-128-CFB) and its ECC P-384 EK (SHA-384, AES-256-CFB), the
 * EK public area, an object's Name, a credential, the randomness used, and
 * the TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET from which
 * TPM2_ActivateCredential in swtpm recovered exactly that credential
 * (credvec/credvec.sh). Made again with the same randomness, they must come
 * out byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "common/tpmkey.h"
#include "credvec/vectors.h"
#include "verifier/core/credential.h"

static void ek_of(TPMT_PUBLIC *ek, const uint8_t *b, size_t n)
{
    assert_int_equal(tpmkey_unmarshal_public(ek, b, n), 0);
}

/* RSA: the ID object is a function of the seed, the Name and the
 * credential: it must equal the one the TPM accepted. The OAEP encryption
 * of the seed draws fresh randomness, so only its size (the modulus) is
 * fixed. */
static void test_rsa_vector(void **state)
{
    struct credential_blob blob;
    TPMT_PUBLIC ek;
    char why[256];

    (void)state;
    ek_of(&ek, rsa_ek_public, sizeof(rsa_ek_public));
    assert_int_equal(credential_make_with(&blob, &ek, rsa_name, sizeof(rsa_name), rsa_credential,
                                          sizeof(rsa_credential), rsa_seed, NULL, why, sizeof(why)),
                     0);
    assert_int_equal(blob.id_object_len, sizeof(rsa_id_object));
    assert_memory_equal(blob.id_object, rsa_id_object, sizeof(rsa_id_object));
    assert_int_equal(blob.secret_len, sizeof(rsa_secret));
    assert_int_equal(blob.secret_len, 2 + 256);
    assert_int_equal(blob.secret[0] << 8 | blob.secret[1], 256);
}

/* ECC: with the same ephemeral key everything is deterministic: the ID
 * object and the encrypted secret (the ephemeral point) equal the TPM's. */
static void test_ecc_vector(void **state)
{
    struct credential_blob blob;
    const unsigned char *p = ecc_ephemeral_der;
    EVP_PKEY *eph;
    TPMT_PUBLIC ek;
    char why[256];

    (void)state;
    ek_of(&ek, ecc_ek_public, sizeof(ecc_ek_public));
    assert_int_equal(ek.parameters.eccDetail.curveID, TPM2_ECC_NIST_P384);
    assert_int_equal(ek.nameAlg, TPM2_ALG_SHA384);
    assert_non_null(eph = d2i_PrivateKey(EVP_PKEY_EC, NULL, &p, sizeof(ecc_ephemeral_der)));
    assert_int_equal(credential_make_with(&blob, &ek, ecc_name, sizeof(ecc_name), ecc_credential,
                                          sizeof(ecc_credential), NULL, eph, why, sizeof(why)),
                     0);
    assert_int_equal(blob.id_object_len, sizeof(ecc_id_object));
    assert_memory_equal(blob.id_object, ecc_id_object, sizeof(ecc_id_object));
    assert_int_equal(blob.secret_len, sizeof(ecc_secret));
    assert_memory_equal(blob.secret, ecc_secret, sizeof(ecc_secret));
    EVP_PKEY_free(eph);
}

/* With fresh randomness two credentials for the same inputs differ, and one
 * bit of the Name changes the ID object. */
static void test_fresh_randomness(void **state)
{
    struct credential_blob a, b;
    TPMT_PUBLIC ek;
    uint8_t name[sizeof(ecc_name)];
    char why[256];

    (void)state;
    ek_of(&ek, ecc_ek_public, sizeof(ecc_ek_public));
    assert_int_equal(credential_make(&a, &ek, ecc_name, sizeof(ecc_name), ecc_credential,
                                     sizeof(ecc_credential), why, sizeof(why)),
                     0);
    assert_int_equal(credential_make(&b, &ek, ecc_name, sizeof(ecc_name), ecc_credential,
                                     sizeof(ecc_credential), why, sizeof(why)),
                     0);
    assert_int_equal(a.secret_len, b.secret_len);
    assert_memory_not_equal(a.secret, b.secret, a.secret_len);
    assert_memory_not_equal(a.id_object, b.id_object, a.id_object_len);
    memcpy(name, rsa_name, sizeof(rsa_name));
    ek_of(&ek, rsa_ek_public, sizeof(rsa_ek_public));
    assert_int_equal(credential_make_with(&a, &ek, name, sizeof(rsa_name), rsa_credential,
                                          sizeof(rsa_credential), rsa_seed, NULL, why, sizeof(why)),
                     0);
    name[5] ^= 1;
    assert_int_equal(credential_make_with(&b, &ek, name, sizeof(rsa_name), rsa_credential,
                                          sizeof(rsa_credential), rsa_seed, NULL, why, sizeof(why)),
                     0);
    assert_memory_not_equal(a.id_object, b.id_object, a.id_object_len);
}

/* An EK must be a restricted decryption key with fixedTPM, SHA-256 or
 * SHA-384, AES-CFB; anything else is refused before any wrapping. */
static void test_ek_refusals(void **state)
{
    struct credential_blob blob;
    TPMT_PUBLIC ek, bad;
    char why[256];

    (void)state;
    ek_of(&ek, rsa_ek_public, sizeof(rsa_ek_public));
    assert_int_equal(credential_check_ek(&ek, why, sizeof(why)), 0);
    bad = ek;
    bad.objectAttributes &= ~TPMA_OBJECT_RESTRICTED;
    assert_int_equal(credential_check_ek(&bad, why, sizeof(why)), DEVID_ERR_EK_KEY);
    assert_non_null(strstr(why, "restricted decryption key with fixedTPM"));
    bad = ek;
    bad.objectAttributes &= ~TPMA_OBJECT_FIXEDTPM;
    assert_int_equal(credential_make(&blob, &bad, rsa_name, sizeof(rsa_name), rsa_credential,
                                     sizeof(rsa_credential), why, sizeof(why)),
                     DEVID_ERR_EK_KEY);
    bad = ek;
    bad.nameAlg = TPM2_ALG_SHA1;
    assert_int_equal(credential_check_ek(&bad, why, sizeof(why)), DEVID_ERR_EK_KEY);
    assert_non_null(strstr(why, "nameAlg"));
    bad = ek;
    bad.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CBC;
    assert_int_equal(credential_check_ek(&bad, why, sizeof(why)), DEVID_ERR_EK_KEY);
    assert_non_null(strstr(why, "AES-128/192/256-CFB"));
}

/* credential_derive is HMAC-SHA-256(key, "devid/v1 credential" || nonce ||
 * EK certificate hash || Name hash), as docs/protocol.md section 6.1 says,
 * and each input changes it. */
static void test_derive(void **state)
{
    static const char label[] = "devid/v1 credential";
    uint8_t key[32], in[3][32], msg[sizeof(label) - 1 + 96], want[32], got[32], other[32];
    unsigned int len = 0;
    size_t i, j;

    (void)state;
    for (i = 0; i < 32; i++) {
        key[i] = (uint8_t)(7 * i);
        for (j = 0; j < 3; j++)
            in[j][i] = (uint8_t)(0x20 * (j + 1) + i);
    }
    memcpy(msg, label, sizeof(label) - 1);
    for (j = 0; j < 3; j++)
        memcpy(msg + sizeof(label) - 1 + 32 * j, in[j], 32);
    assert_non_null(HMAC(EVP_sha256(), key, 32, msg, sizeof(msg), want, &len));
    assert_int_equal(credential_derive(got, key, in[0], in[1], in[2]), 0);
    assert_memory_equal(got, want, 32);
    for (j = 0; j < 3; j++) {
        in[j][31] ^= 1;
        assert_int_equal(credential_derive(other, key, in[0], in[1], in[2]), 0);
        assert_memory_not_equal(other, got, 32);
        in[j][31] ^= 1;
    }
}

/* credential_derive_ak is HMAC-SHA-256(key, "devid/v1 ak credential" ||
 * nonce || EK certificate hash || AK Name hash) (docs/protocol.md section
 * 6.2), never the LDevID's credential over the same inputs. */
static void test_derive_ak(void **state)
{
    static const char label[] = "devid/v1 ak credential";
    uint8_t key[32], in[3][32], msg[sizeof(label) - 1 + 96], want[32], got[32], ld[32];
    unsigned int len = 0;
    size_t i, j;

    (void)state;
    for (i = 0; i < 32; i++) {
        key[i] = (uint8_t)(5 * i);
        for (j = 0; j < 3; j++)
            in[j][i] = (uint8_t)(0x31 * (j + 1) + i);
    }
    memcpy(msg, label, sizeof(label) - 1);
    for (j = 0; j < 3; j++)
        memcpy(msg + sizeof(label) - 1 + 32 * j, in[j], 32);
    assert_non_null(HMAC(EVP_sha256(), key, 32, msg, sizeof(msg), want, &len));
    assert_int_equal(credential_derive_ak(got, key, in[0], in[1], in[2]), 0);
    assert_memory_equal(got, want, 32);
    assert_int_equal(credential_derive(ld, key, in[0], in[1], in[2]), 0);
    assert_memory_not_equal(ld, got, 32);
}

/* ak_public_of fills |ak| with a P-256 AK of |attrs|. */
static void ak_public_of(TPMT_PUBLIC *ak, TPMA_OBJECT attrs)
{
    memset(ak, 0, sizeof(*ak));
    ak->type = TPM2_ALG_ECC;
    ak->nameAlg = TPM2_ALG_SHA256;
    ak->objectAttributes = attrs;
    ak->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    ak->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    ak->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    ak->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    ak->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

/* credential_check_ak takes a restricted signing key made in the TPM and
 * refuses any attribute, nameAlg, curve, size or scheme outside the rules,
 * naming it. */
static void test_check_ak(void **state)
{
    static const TPMA_OBJECT good = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT |
                                    TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH;
    static const struct {
        TPMA_OBJECT flip;
        const char *name;
    } bits[] = {
        {TPMA_OBJECT_RESTRICTED, "restricted must be set"},
        {TPMA_OBJECT_SIGN_ENCRYPT, "sign must be set"},
        {TPMA_OBJECT_FIXEDTPM, "fixedTPM must be set"},
        {TPMA_OBJECT_FIXEDPARENT, "fixedParent must be set"},
        {TPMA_OBJECT_SENSITIVEDATAORIGIN, "sensitiveDataOrigin must be set"},
        {TPMA_OBJECT_DECRYPT, "decrypt must be clear"},
    };
    TPMT_PUBLIC ak;
    char why[256];
    size_t i;

    (void)state;
    ak_public_of(&ak, good);
    assert_int_equal(credential_check_ak(&ak, why, sizeof(why)), 0);
    ak.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    assert_int_equal(credential_check_ak(&ak, why, sizeof(why)), 0);
    for (i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
        ak_public_of(&ak, good ^ bits[i].flip);
        assert_int_equal(credential_check_ak(&ak, why, sizeof(why)), DEVID_ERR_ATTEST_ATTRIBUTES);
        assert_non_null(strstr(why, bits[i].name));
    }
    ak_public_of(&ak, good);
    ak.nameAlg = TPM2_ALG_SHA1;
    assert_int_equal(credential_check_ak(&ak, why, sizeof(why)), DEVID_ERR_ATTEST_ATTRIBUTES);
    assert_non_null(strstr(why, "nameAlg"));
    ak_public_of(&ak, good);
    ak.parameters.eccDetail.curveID = TPM2_ECC_BN_P256;
    assert_int_equal(credential_check_ak(&ak, why, sizeof(why)), DEVID_ERR_ATTEST_ATTRIBUTES);
    assert_non_null(strstr(why, "curve"));
    ak_public_of(&ak, good);
    ak.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDAA;
    assert_int_equal(credential_check_ak(&ak, why, sizeof(why)), DEVID_ERR_ATTEST_ATTRIBUTES);
    assert_non_null(strstr(why, "scheme"));
    memset(&ak, 0, sizeof(ak));
    ak.type = TPM2_ALG_RSA;
    ak.nameAlg = TPM2_ALG_SHA256;
    ak.objectAttributes = good;
    ak.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    ak.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
    ak.parameters.rsaDetail.keyBits = 2048;
    ak.unique.rsa.size = 256;
    assert_int_equal(credential_check_ak(&ak, why, sizeof(why)), 0);
    ak.parameters.rsaDetail.keyBits = 1024;
    ak.unique.rsa.size = 128;
    assert_int_equal(credential_check_ak(&ak, why, sizeof(why)), DEVID_ERR_ATTEST_ATTRIBUTES);
    assert_non_null(strstr(why, "RSA keyBits 1024"));
    ak.type = TPM2_ALG_KEYEDHASH;
    assert_int_equal(credential_check_ak(&ak, why, sizeof(why)), DEVID_ERR_ATTEST_ATTRIBUTES);
    assert_int_equal(credential_check_ak(NULL, why, sizeof(why)), DEVID_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa_vector),       cmocka_unit_test(test_ecc_vector),
        cmocka_unit_test(test_fresh_randomness), cmocka_unit_test(test_ek_refusals),
        cmocka_unit_test(test_derive),           cmocka_unit_test(test_derive_ak),
        cmocka_unit_test(test_check_ak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
