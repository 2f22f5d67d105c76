/* Unit tests for verifier/crl: build, sign with a test CA, parse back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "testutil.h"
#include "verifier/core/crl.h"

struct fx {
    EVP_PKEY *ca_key;
    X509 *ca;
};

static int setup(void **state)
{
    struct fx *f = test_calloc(1, sizeof(*f));
    struct tu_cert_spec ca = {.o = "Example Ops",
                              .cn = "Ops Issuing CA",
                              .ca = 1,
                              .not_before = TU_NOW - 10 * TU_DAY,
                              .not_after = TU_NOW + 3650 * TU_DAY};

    f->ca_key = tu_ec_key();
    f->ca = tu_cert(&ca, f->ca_key, NULL, f->ca_key);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    X509_free(f->ca);
    EVP_PKEY_free(f->ca_key);
    test_free(f);
    return 0;
}

/* sign_and_reparse signs |crl| with the CA key, checks the signature and
 * returns the CRL as a relying party decodes it from DER. */
static X509_CRL *sign_and_reparse(struct fx *f, X509_CRL *crl)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    X509_CRL *back;
    int len;

    assert_true(X509_CRL_sign(crl, f->ca_key, EVP_sha256()) > 0);
    assert_true((len = i2d_X509_CRL(crl, &der)) > 0);
    p = der;
    assert_non_null(back = d2i_X509_CRL(NULL, &p, len));
    OPENSSL_free(der);
    assert_int_equal(X509_CRL_verify(back, f->ca_key), 1);
    return back;
}

static int entry_reason(X509_REVOKED *rev)
{
    ASN1_ENUMERATED *e;
    int crit = -1;
    long v;

    if ((e = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, &crit, NULL)) == NULL)
        return -1;
    v = ASN1_ENUMERATED_get(e);
    ASN1_ENUMERATED_free(e);
    assert_int_equal(crit, 0);
    return (int)v;
}

static void assert_serial(X509_REVOKED *rev, const char *hex)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(rev), NULL);
    char *got = BN_bn2hex(bn);

    assert_string_equal(got, hex);
    OPENSSL_free(got);
    BN_free(bn);
}

static void test_build_full(void **state)
{
    struct fx *f = *state;
    const struct crl_entry entries[] = {
        {"7E0102030405060708090A0B0C0D0E0F", TU_NOW - 100, 1},
        {"0a", TU_NOW - 200, 0},
        {"ff", TU_NOW - 300, 4},
        {"1b", TU_NOW - 400, 5},
    };
    X509_CRL *crl = NULL, *back;
    STACK_OF(X509_REVOKED) *revs;
    AUTHORITY_KEYID *akid;
    ASN1_INTEGER *num;
    int crit = -1;

    assert_int_equal(crl_build(&crl, f->ca, entries, 4, TU_NOW, 24 * 3600, 42), 0);
    back = sign_and_reparse(f, crl);

    assert_int_equal(X509_CRL_get_version(back), X509_CRL_VERSION_2);
    assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(back), X509_get_subject_name(f->ca)), 0);
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(back), TU_NOW), 0);
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(back), TU_NOW + 86400), 0);

    assert_non_null(num = X509_CRL_get_ext_d2i(back, NID_crl_number, &crit, NULL));
    assert_int_equal(ASN1_INTEGER_get(num), 42);
    assert_int_equal(crit, 0);
    ASN1_INTEGER_free(num);
    assert_non_null(akid = X509_CRL_get_ext_d2i(back, NID_authority_key_identifier, &crit, NULL));
    assert_non_null(akid->keyid);
    assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(f->ca)), 0);
    AUTHORITY_KEYID_free(akid);

    revs = X509_CRL_get_REVOKED(back);
    assert_int_equal(sk_X509_REVOKED_num(revs), 4);
    /* sorted by serial */
    assert_serial(sk_X509_REVOKED_value(revs, 0), "0A");
    assert_serial(sk_X509_REVOKED_value(revs, 1), "1B");
    assert_serial(sk_X509_REVOKED_value(revs, 2), "FF");
    assert_serial(sk_X509_REVOKED_value(revs, 3), "7E0102030405060708090A0B0C0D0E0F");
    assert_int_equal(entry_reason(sk_X509_REVOKED_value(revs, 0)), -1); /* unspecified: absent */
    assert_int_equal(entry_reason(sk_X509_REVOKED_value(revs, 1)), 5);
    assert_int_equal(entry_reason(sk_X509_REVOKED_value(revs, 2)), 4);
    assert_int_equal(entry_reason(sk_X509_REVOKED_value(revs, 3)), 1);
    assert_int_equal(
        ASN1_TIME_cmp_time_t(X509_REVOKED_get0_revocationDate(sk_X509_REVOKED_value(revs, 3)),
                             TU_NOW - 100),
        0);
    X509_CRL_free(back);
    X509_CRL_free(crl);
}

static void test_build_empty(void **state)
{
    struct fx *f = *state;
    X509_CRL *crl = NULL, *back;

    assert_int_equal(crl_build(&crl, f->ca, NULL, 0, TU_NOW, 3600, 1), 0);
    back = sign_and_reparse(f, crl);
    /* OpenSSL keeps no list at all for a CRL without entries */
    assert_true(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(back)) <= 0);
    X509_CRL_free(back);
    X509_CRL_free(crl);
}

/* A CA without a subjectKeyIdentifier: the AKI is SHA-1 of its key. */
static void test_aki_without_ski(void **state)
{
    struct fx *f = *state;
    X509 *bare = X509_new();
    X509_CRL *crl = NULL;
    AUTHORITY_KEYID *akid;
    unsigned char md[SHA_DIGEST_LENGTH];
    unsigned int md_len = 0;

    assert_non_null(bare);
    assert_int_equal(X509_set_version(bare, X509_VERSION_3), 1);
    assert_int_equal(X509_set_pubkey(bare, f->ca_key), 1);
    assert_int_equal(X509_set_subject_name(bare, X509_get_subject_name(f->ca)), 1);
    assert_int_equal(crl_build(&crl, bare, NULL, 0, TU_NOW, 3600, 1), 0);
    assert_non_null(akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL));
    assert_int_equal(X509_pubkey_digest(bare, EVP_sha1(), md, &md_len), 1);
    assert_int_equal(ASN1_STRING_length(akid->keyid), (int)md_len);
    assert_memory_equal(ASN1_STRING_get0_data(akid->keyid), md, md_len);
    AUTHORITY_KEYID_free(akid);
    X509_CRL_free(crl);
    X509_free(bare);
}

static void test_bad_input(void **state)
{
    struct fx *f = *state;
    struct crl_entry e = {"0a", TU_NOW, 1};
    X509_CRL *crl = NULL;
    static const char *const bad_serials[] = {"", "xyz", "-0a", "0x0a",
                                              "0102030405060708090a0b0c0d0e0f101112131415"};
    size_t i;

    for (i = 0; i < sizeof(bad_serials) / sizeof(bad_serials[0]); i++) {
        e.serial_hex = bad_serials[i];
        assert_int_equal(crl_build(&crl, f->ca, &e, 1, TU_NOW, 3600, 1),
                         DEVID_ERR_INVALID_ARGUMENT);
        assert_null(crl);
    }
    e.serial_hex = "0a";
    e.reason = 7;
    assert_int_equal(crl_build(&crl, f->ca, &e, 1, TU_NOW, 3600, 1), DEVID_ERR_INVALID_ARGUMENT);
    e.reason = 11;
    assert_int_equal(crl_build(&crl, f->ca, &e, 1, TU_NOW, 3600, 1), DEVID_ERR_INVALID_ARGUMENT);
    e.reason = 1;
    assert_int_equal(crl_build(&crl, f->ca, &e, 1, TU_NOW, 0, 1), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(crl_build(&crl, f->ca, NULL, 1, TU_NOW, 3600, 1), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(crl_build(&crl, f->ca, &e, CRL_MAX_ENTRIES + 1, TU_NOW, 3600, 1),
                     DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(crl_build(&crl, NULL, &e, 1, TU_NOW, 3600, 1), DEVID_ERR_INVALID_ARGUMENT);
    assert_null(crl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_build_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aki_without_ski, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
