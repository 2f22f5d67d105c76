/* Unit tests for verifier/csr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "testutil.h"
#include "verifier/core/csr.h"

static EVP_PKEY *key, *other;

static int group_setup(void **state)
{
    key = tu_ec_key();
    other = tu_ec_key();
    return 0;
}

static int group_teardown(void **state)
{
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
    return 0;
}

static void test_good_and_key(void **state)
{
    size_t len;
    uint8_t *der = tu_csr_der(&len, key, key);
    X509_REQ *req = NULL;
    char why[256];

    assert_int_equal(csr_parse(&req, der, len, why, sizeof(why)), 0);
    assert_non_null(req);
    assert_int_equal(csr_check_key(req, key, why, sizeof(why)), 0);
    assert_int_equal(csr_check_key(req, other, why, sizeof(why)), DEVID_ERR_CSR_KEY_MISMATCH);
    assert_true(why[0] != '\0');
    X509_REQ_free(req);
    free(der);
}

static void test_bad_self_signature(void **state)
{
    size_t len;
    uint8_t *der = tu_csr_der(&len, key, other);
    X509_REQ *req = NULL;
    char why[256];

    assert_int_equal(csr_parse(&req, der, len, why, sizeof(why)), DEVID_ERR_CSR_INVALID);
    assert_null(req);
    assert_non_null(strstr(why, "self-signature"));
    free(der);
}

static void test_lengths(void **state)
{
    size_t len, n;
    uint8_t *der = tu_csr_der(&len, key, key);
    uint8_t *big = calloc(1, CSR_MAX_LEN + 1);
    X509_REQ *req = NULL;
    char why[256];

    assert_non_null(big);
    for (n = 0; n < len; n++) {
        assert_int_equal(csr_parse(&req, der, n, why, sizeof(why)), DEVID_ERR_CSR_INVALID);
        assert_null(req);
    }
    memcpy(big, der, len);
    assert_int_equal(csr_parse(&req, big, len + 1, why, sizeof(why)), DEVID_ERR_CSR_INVALID);
    assert_non_null(strstr(why, "trailing"));
    assert_int_equal(csr_parse(&req, big, CSR_MAX_LEN + 1, why, sizeof(why)),
                     DEVID_ERR_CSR_INVALID);
    assert_int_equal(csr_parse(&req, NULL, 0, why, sizeof(why)), DEVID_ERR_CSR_INVALID);
    free(big);
    free(der);
}

static void test_tampered(void **state)
{
    size_t len;
    uint8_t *der = tu_csr_der(&len, key, key);
    X509_REQ *req = NULL;
    char why[256];

    /* The subject CN "ldevid" sits inside the signed part. */
    size_t i;

    for (i = 0; i + 6 <= len && memcmp(der + i, "ldevid", 6) != 0; i++)
        ;
    assert_true(i + 6 <= len);
    der[i] = 'L';
    assert_int_equal(csr_parse(&req, der, len, why, sizeof(why)), DEVID_ERR_CSR_INVALID);
    free(der);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_and_key),
        cmocka_unit_test(test_bad_self_signature),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_tampered),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
