/* Unit tests for verifier/csr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/rsa.h>

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

/* slow_verdict is what csr_parse and csr_check_key decide of |der|. */
static int slow_verdict(const uint8_t *der, size_t len, EVP_PKEY *k)
{
    X509_REQ *req = NULL;
    char why[256];
    int r = csr_parse(&req, der, len, why, sizeof(why));

    if (r == 0)
        r = csr_check_key(req, k, why, sizeof(why));
    X509_REQ_free(req);
    return r;
}

/* check: csr_check of |der| for |k| returns |want|, as the slow path does,
 * with a reason on refusal and a key on success. */
static void check(const uint8_t *der, size_t len, EVP_PKEY *k, int want)
{
    X509_PUBKEY *spki = (X509_PUBKEY *)1;
    char why[256];

    assert_int_equal(slow_verdict(der, len, k), want);
    assert_int_equal(csr_check(&spki, der, len, k, why, sizeof(why)), want);
    if (want == 0) {
        assert_non_null(spki);
    } else {
        assert_null(spki);
        assert_true(why[0] != '\0');
    }
    X509_PUBKEY_free(spki);
}

static void test_check(void **state)
{
    size_t len, bad_len;
    uint8_t *der = tu_csr_der(&len, key, key), *bad = tu_csr_der(&bad_len, key, other);
    X509_PUBKEY *spki = NULL;
    unsigned char *enc = NULL;
    char why[256];
    X509_REQ *req = NULL;
    const unsigned char *p = der;
    int n;

    check(der, len, key, 0);
    check(der, len, other, DEVID_ERR_CSR_KEY_MISMATCH);
    /* The certified key's own encoding, signed by another key. */
    check(bad, bad_len, key, DEVID_ERR_CSR_INVALID);
    assert_int_equal(csr_check(&spki, bad, bad_len, key, why, sizeof(why)), DEVID_ERR_CSR_INVALID);
    assert_non_null(strstr(why, "self-signature"));
    check(der, len - 1, key, DEVID_ERR_CSR_INVALID);
    check(NULL, 0, key, DEVID_ERR_CSR_INVALID);
    /* The key is the request's, as encoded. */
    assert_int_equal(csr_check(&spki, der, len, key, why, sizeof(why)), 0);
    assert_non_null(req = d2i_X509_REQ(NULL, &p, (long)len));
    assert_true((n = i2d_X509_PUBKEY(spki, &enc)) > 0);
    {
        unsigned char *want = NULL;
        int m = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(req), &want);

        assert_int_equal(m, n);
        assert_memory_equal(enc, want, (size_t)n);
        OPENSSL_free(want);
    }
    OPENSSL_free(enc);
    X509_PUBKEY_free(spki);
    X509_REQ_free(req);
    free(bad);
    free(der);
}

/* Every one-byte change and every truncation: csr_check decides as
 * csr_parse and csr_check_key do. */
static void test_check_agrees(void **state)
{
    size_t len, i, n;
    uint8_t *der = tu_csr_der(&len, key, key);
    X509_PUBKEY *spki;
    char why[256];
    int slow, fast;

    for (i = 0; i < len; i++) {
        for (n = 0; n < 2; n++) {
            uint8_t save = der[i];

            der[i] = n == 0 ? (uint8_t)(save ^ 0x01) : (uint8_t)(save ^ 0x80);
            slow = slow_verdict(der, len, key);
            spki = NULL;
            fast = csr_check(&spki, der, len, key, why, sizeof(why));
            if (slow != fast)
                fail_msg("byte %zu ^ %#x: csr_check %d, csr_parse/csr_check_key %d", i,
                         n == 0 ? 0x01 : 0x80, fast, slow);
            X509_PUBKEY_free(spki);
            der[i] = save;
        }
        spki = NULL;
        assert_int_equal(csr_check(&spki, der, i, key, why, sizeof(why)),
                         slow_verdict(der, i, key));
        X509_PUBKEY_free(spki);
    }
    free(der);
}

/* An RSA request takes the slow path and is decided as before. */
static void test_check_rsa(void **state)
{
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    size_t len;
    uint8_t *der;

    assert_non_null(rsa);
    der = tu_csr_der(&len, rsa, rsa);
    check(der, len, rsa, 0);
    check(der, len, key, DEVID_ERR_CSR_KEY_MISMATCH);
    free(der);
    EVP_PKEY_free(rsa);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_and_key), cmocka_unit_test(test_bad_self_signature),
        cmocka_unit_test(test_lengths),      cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_check),        cmocka_unit_test(test_check_agrees),
        cmocka_unit_test(test_check_rsa),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
