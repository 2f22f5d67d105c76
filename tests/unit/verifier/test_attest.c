/* Unit tests for verifier/attest. The TPM2_Certify output is built in the
 * test (tss2-mu marshalling, software P-256 signer): no TPM runs here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <tss2/tss2_mu.h>

#include "common/err.h"
#include "testutil.h"
#include "verifier/core/attest.h"

struct ev {
    EVP_PKEY *signer;
    EVP_PKEY *ldevid;
    uint8_t t[32];
    uint8_t pub[1024];
    size_t pub_len;
    uint8_t info[2048];
    size_t info_len;
    uint8_t sig[512];
    size_t sig_len;
    TPM2B_NAME name;
};

static void ev_sign(struct ev *e, EVP_PKEY *by)
{
    uint8_t d[32];

    tu_sha256(d, e->info, e->info_len);
    e->sig_len = sizeof(e->sig);
    tu_tpm_sign(e->sig, &e->sig_len, by, d);
}

static void ev_build(struct ev *e, TPMA_OBJECT attrs)
{
    TPMT_PUBLIC pub;

    e->pub_len = sizeof(e->pub);
    tu_tpm_public(&pub, e->pub, &e->pub_len, e->ldevid, attrs);
    tu_tpm_name(&e->name, e->pub, e->pub_len);
    e->info_len = sizeof(e->info);
    tu_certify_info(e->info, &e->info_len, &e->name, e->t, sizeof(e->t));
    ev_sign(e, e->signer);
}

static int setup(void **state)
{
    struct ev *e = test_calloc(1, sizeof(*e));
    size_t i;

    e->signer = tu_ec_key();
    e->ldevid = tu_ec_key();
    for (i = 0; i < 32; i++)
        e->t[i] = (uint8_t)(0xc0 + i);
    ev_build(e, TU_LDEVID_ATTRS);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct ev *e = *state;

    EVP_PKEY_free(e->signer);
    EVP_PKEY_free(e->ldevid);
    test_free(e);
    return 0;
}

static int check(struct ev *e, char *why, size_t why_len)
{
    struct attest_input in = {
        .info = e->info,
        .info_len = e->info_len,
        .sig = e->sig,
        .sig_len = e->sig_len,
        .pub = e->pub,
        .pub_len = e->pub_len,
        .signer = e->signer,
        .qualifying = e->t,
        .qualifying_len = sizeof(e->t),
    };
    struct attest_result res;
    int r = attest_check_certify(&res, &in, why, why_len);

    if (r == 0) {
        assert_non_null(res.key);
        assert_int_equal(EVP_PKEY_eq(res.key, e->ldevid), 1);
        assert_int_equal(res.pub.type, TPM2_ALG_ECC);
    } else {
        assert_null(res.key);
        assert_true(why[0] != '\0');
    }
    attest_result_cleanup(&res);
    return r;
}

static void test_good(void **state)
{
    char why[256];

    assert_int_equal(check(*state, why, sizeof(why)), 0);
}

static void test_wrong_nonce(void **state)
{
    struct ev *e = *state;
    char why[256];

    e->t[0] ^= 1;
    assert_int_equal(check(e, why, sizeof(why)), DEVID_ERR_ATTEST_NONCE);
}

static void test_short_nonce(void **state)
{
    struct ev *e = *state;
    char why[256];

    e->info_len = sizeof(e->info);
    tu_certify_info(e->info, &e->info_len, &e->name, e->t, 31);
    ev_sign(e, e->signer);
    assert_int_equal(check(e, why, sizeof(why)), DEVID_ERR_ATTEST_NONCE);
}

/* A public area other than the certified one (another key). */
static void test_wrong_name(void **state)
{
    struct ev *e = *state;
    EVP_PKEY *other = tu_ec_key();
    TPMT_PUBLIC pub;
    char why[256];

    e->pub_len = sizeof(e->pub);
    tu_tpm_public(&pub, e->pub, &e->pub_len, other, TU_LDEVID_ATTRS);
    assert_int_equal(check(e, why, sizeof(why)), DEVID_ERR_ATTEST_NAME);
    EVP_PKEY_free(other);
}

/* Same key, attributes changed after certification: Name differs. */
static void test_name_covers_attributes(void **state)
{
    struct ev *e = *state;
    TPMT_PUBLIC pub;
    char why[256];

    e->pub_len = sizeof(e->pub);
    tu_tpm_public(&pub, e->pub, &e->pub_len, e->ldevid, TU_LDEVID_ATTRS | TPMA_OBJECT_DECRYPT);
    assert_int_equal(check(e, why, sizeof(why)), DEVID_ERR_ATTEST_NAME);
}

static void expect_attr_refused(void **state, TPMA_OBJECT attrs, const char *word)
{
    struct ev *e = *state;
    char why[256];

    ev_build(e, attrs);
    assert_int_equal(check(e, why, sizeof(why)), DEVID_ERR_ATTEST_ATTRIBUTES);
    assert_non_null(strstr(why, word));
}

static void test_not_fixedtpm(void **state)
{
    expect_attr_refused(state, TU_LDEVID_ATTRS & ~TPMA_OBJECT_FIXEDTPM, "fixedTPM");
}

static void test_not_fixedparent(void **state)
{
    expect_attr_refused(state, TU_LDEVID_ATTRS & ~TPMA_OBJECT_FIXEDPARENT, "fixedParent");
}

static void test_not_sensitivedataorigin(void **state)
{
    expect_attr_refused(state, TU_LDEVID_ATTRS & ~TPMA_OBJECT_SENSITIVEDATAORIGIN,
                        "sensitiveDataOrigin");
}

static void test_not_sign(void **state)
{
    expect_attr_refused(state, TU_LDEVID_ATTRS & ~TPMA_OBJECT_SIGN_ENCRYPT, "sign");
}

static void test_decrypt_key(void **state)
{
    expect_attr_refused(state, TU_LDEVID_ATTRS | TPMA_OBJECT_DECRYPT, "decrypt");
}

static void test_restricted_key(void **state)
{
    expect_attr_refused(state, TU_LDEVID_ATTRS | TPMA_OBJECT_RESTRICTED, "restricted");
}

static void test_signature_other_key(void **state)
{
    struct ev *e = *state;
    EVP_PKEY *other = tu_ec_key();
    char why[256];

    ev_sign(e, other);
    assert_int_equal(check(e, why, sizeof(why)), DEVID_ERR_ATTEST_SIGNATURE);
    EVP_PKEY_free(other);
}

static void test_signature_over_other_bytes(void **state)
{
    struct ev *e = *state;
    char why[256];

    e->sig[e->sig_len - 1] ^= 1;
    assert_int_equal(check(e, why, sizeof(why)), DEVID_ERR_ATTEST_SIGNATURE);
}

static void test_signature_truncated(void **state)
{
    struct ev *e = *state;
    char why[256];

    e->sig_len -= 1;
    assert_int_equal(check(e, why, sizeof(why)), DEVID_ERR_ATTEST_SIGNATURE);
}

static void test_truncated(void **state)
{
    struct ev *e = *state;
    size_t full = e->info_len, n;
    char why[256];

    for (n = 0; n < full; n++) {
        e->info_len = n;
        assert_int_equal(check(e, why, sizeof(why)), DEVID_ERR_ATTEST_MALFORMED);
    }
}

static void test_trailing_bytes(void **state)
{
    struct ev *e = *state;
    char why[256];

    e->info[e->info_len++] = 0;
    ev_sign(e, e->signer);
    assert_int_equal(check(e, why, sizeof(why)), DEVID_ERR_ATTEST_MALFORMED);
    assert_non_null(strstr(why, "trailing"));
}

static void test_bad_magic(void **state)
{
    struct ev *e = *state;
    char why[256];

    e->info[0] ^= 0x01;
    ev_sign(e, e->signer);
    assert_int_equal(check(e, why, sizeof(why)), DEVID_ERR_ATTEST_MALFORMED);
    assert_non_null(strstr(why, "magic"));
}

static void test_wrong_type(void **state)
{
    struct ev *e = *state;
    TPMS_ATTEST att;
    size_t off = 0;
    char why[256];

    memset(&att, 0, sizeof(att));
    att.magic = TPM2_GENERATED_VALUE;
    att.type = TPM2_ST_ATTEST_QUOTE;
    memcpy(att.extraData.buffer, e->t, 32);
    att.extraData.size = 32;
    att.attested.quote.pcrDigest.size = 32;
    assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(&att, e->info, sizeof(e->info), &off),
                     TSS2_RC_SUCCESS);
    e->info_len = off;
    ev_sign(e, e->signer);
    assert_int_equal(check(e, why, sizeof(why)), DEVID_ERR_ATTEST_MALFORMED);
    assert_non_null(strstr(why, "type"));
}

static void test_pub_trailing(void **state)
{
    struct ev *e = *state;
    char why[256];

    e->pub[e->pub_len++] = 0;
    assert_int_equal(check(e, why, sizeof(why)), DEVID_ERR_ATTEST_MALFORMED);
}

/* Certifies the public area |pub| (marshalled here) instead of the
 * fixture's key. */
static void ev_certify_public(struct ev *e, const TPMT_PUBLIC *pub)
{
    size_t off = 0;

    assert_int_equal(Tss2_MU_TPMT_PUBLIC_Marshal(pub, e->pub, sizeof(e->pub), &off),
                     TSS2_RC_SUCCESS);
    e->pub_len = off;
    tu_tpm_name(&e->name, e->pub, e->pub_len);
    e->info_len = sizeof(e->info);
    tu_certify_info(e->info, &e->info_len, &e->name, e->t, sizeof(e->t));
    ev_sign(e, e->signer);
}

/* An RSA public area of |bits| bits with a modulus of |bytes| bytes. */
static void rsa_public(TPMT_PUBLIC *pub, unsigned bits, unsigned bytes)
{
    memset(pub, 0, sizeof(*pub));
    pub->type = TPM2_ALG_RSA;
    pub->nameAlg = TPM2_ALG_SHA256;
    pub->objectAttributes = TU_LDEVID_ATTRS;
    pub->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    pub->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
    pub->parameters.rsaDetail.keyBits = (TPMI_RSA_KEY_BITS)bits;
    pub->unique.rsa.size = (UINT16)bytes;
    memset(pub->unique.rsa.buffer, 0xc5, bytes);
}

static void expect_type_refused(struct ev *e, const TPMT_PUBLIC *pub, const char *word)
{
    char why[256];

    ev_certify_public(e, pub);
    assert_int_equal(check(e, why, sizeof(why)), DEVID_ERR_ATTEST_ATTRIBUTES);
    assert_non_null(strstr(why, word));
}

/* RSA below 2048 bits, or whose modulus is not keyBits long, is refused. */
static void test_rsa_small(void **state)
{
    TPMT_PUBLIC pub;

    rsa_public(&pub, 1024, 128);
    expect_type_refused(*state, &pub, "1024 bits");
    rsa_public(&pub, 2048, 128);
    expect_type_refused(*state, &pub, "at least 2048 bits");
}

static void test_key_type_refused(void **state)
{
    struct ev *e = *state;
    TPMT_PUBLIC pub;

    e->pub_len = sizeof(e->pub);
    tu_tpm_public(&pub, e->pub, &e->pub_len, e->ldevid, TU_LDEVID_ATTRS);
    pub.parameters.eccDetail.curveID = TPM2_ECC_BN_P256;
    expect_type_refused(e, &pub, "curve 0x0010");
    tu_tpm_public(&pub, e->pub, &e->pub_len, e->ldevid, TU_LDEVID_ATTRS);
    pub.nameAlg = TPM2_ALG_SHA1;
    expect_type_refused(e, &pub, "nameAlg 0x0004");
    memset(&pub, 0, sizeof(pub));
    pub.type = TPM2_ALG_KEYEDHASH;
    pub.nameAlg = TPM2_ALG_SHA256;
    pub.objectAttributes = TU_LDEVID_ATTRS;
    pub.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
    expect_type_refused(e, &pub, "key type 0x0008");
}

static void test_missing_input(void **state)
{
    struct ev *e = *state;
    struct attest_input in = {0};
    struct attest_result res;
    char why[128];

    in.info = e->info;
    in.info_len = e->info_len;
    assert_int_equal(attest_check_certify(&res, &in, why, sizeof(why)), DEVID_ERR_ATTEST_MALFORMED);
    attest_result_cleanup(&res);
    attest_result_cleanup(NULL);
}

#define TU_IAK_ATTRS                                                                    \
    (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
     TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_RESTRICTED)

/* Runs the check with signer_public made for |key| with |attrs| (no
 * signer_public when |key| is NULL). */
static int check_signer(struct ev *e, EVP_PKEY *key, TPMA_OBJECT attrs, bool iak,
                        struct attest_result *res, char *why, size_t why_len)
{
    uint8_t spub[1024];
    size_t spub_len = sizeof(spub);
    TPMT_PUBLIC tp;
    struct attest_input in = {
        .info = e->info,
        .info_len = e->info_len,
        .sig = e->sig,
        .sig_len = e->sig_len,
        .pub = e->pub,
        .pub_len = e->pub_len,
        .signer = e->signer,
        .qualifying = e->t,
        .qualifying_len = sizeof(e->t),
        .signer_is_iak = iak,
    };

    if (key != NULL) {
        tu_tpm_public(&tp, spub, &spub_len, key, attrs);
        in.signer_public = spub;
        in.signer_public_len = spub_len;
    }
    return attest_check_certify(res, &in, why, why_len);
}

static void test_signer_unrestricted(void **state)
{
    struct ev *e = *state;
    struct attest_result res;
    char why[256];

    assert_int_equal(check_signer(e, e->signer, TU_LDEVID_ATTRS, false, &res, why, sizeof(why)), 0);
    assert_true(res.signer_public_present);
    assert_false(res.signer_restricted);
    attest_result_cleanup(&res);
    assert_int_equal(check_signer(e, NULL, 0, false, &res, why, sizeof(why)), 0);
    assert_false(res.signer_public_present);
    attest_result_cleanup(&res);
    assert_string_equal(attest_signer_str(ATTEST_SIGNER_IDEVID_UNRESTRICTED),
                        "idevid-unrestricted");
}

static void test_signer_iak_restricted(void **state)
{
    struct ev *e = *state;
    struct attest_result res;
    char why[256];

    assert_int_equal(check_signer(e, e->signer, TU_IAK_ATTRS, true, &res, why, sizeof(why)), 0);
    assert_true(res.signer_restricted);
    attest_result_cleanup(&res);
    assert_string_equal(attest_signer_str(ATTEST_SIGNER_IAK_RESTRICTED), "iak-restricted");
}

static void test_signer_iak_unrestricted(void **state)
{
    struct ev *e = *state;
    struct attest_result res;
    char why[256];

    assert_int_equal(check_signer(e, e->signer, TU_LDEVID_ATTRS, true, &res, why, sizeof(why)),
                     DEVID_ERR_ATTEST_ATTRIBUTES);
    assert_non_null(strstr(why, "restricted must be set"));
    assert_null(res.key);
    assert_int_equal(check_signer(e, e->signer, TU_IAK_ATTRS & ~TPMA_OBJECT_FIXEDTPM, true, &res,
                                  why, sizeof(why)),
                     DEVID_ERR_ATTEST_ATTRIBUTES);
    assert_non_null(strstr(why, "fixedTPM"));
}

static void test_signer_iak_absent(void **state)
{
    struct ev *e = *state;
    struct attest_result res;
    char why[256];

    assert_int_equal(check_signer(e, NULL, 0, true, &res, why, sizeof(why)),
                     DEVID_ERR_ATTEST_MALFORMED);
    assert_non_null(strstr(why, "signer_public"));
}

static void test_signer_public_other_key(void **state)
{
    struct ev *e = *state;
    struct attest_result res;
    char why[256];

    assert_int_equal(check_signer(e, e->ldevid, TU_IAK_ATTRS, true, &res, why, sizeof(why)),
                     DEVID_ERR_ATTEST_SIGNATURE);
    assert_non_null(strstr(why, "not the IAK certificate's key"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_good),
        T(test_signer_unrestricted),
        T(test_signer_iak_restricted),
        T(test_signer_iak_unrestricted),
        T(test_signer_iak_absent),
        T(test_signer_public_other_key),
        T(test_wrong_nonce),
        T(test_short_nonce),
        T(test_wrong_name),
        T(test_name_covers_attributes),
        T(test_not_fixedtpm),
        T(test_not_fixedparent),
        T(test_not_sensitivedataorigin),
        T(test_not_sign),
        T(test_decrypt_key),
        T(test_restricted_key),
        T(test_signature_other_key),
        T(test_signature_over_other_bytes),
        T(test_signature_truncated),
        T(test_truncated),
        T(test_trailing_bytes),
        T(test_bad_magic),
        T(test_wrong_type),
        T(test_pub_trailing),
        T(test_missing_input),
        T(test_rsa_small),
        T(test_key_type_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
