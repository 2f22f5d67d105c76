/* Unit tests for verifier/identity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/x509v3.h>

#include "common/err.h"
#include "testutil.h"
#include "verifier/core/identity.h"

static EVP_PKEY *key;

static int group_setup(void **state)
{
    key = tu_ec_key();
    return 0;
}

static int group_teardown(void **state)
{
    EVP_PKEY_free(key);
    return 0;
}

static int extract(const struct tu_cert_spec *s, struct device_identity *id, char *why,
                   size_t why_len)
{
    X509 *x = tu_cert(s, key, NULL, key);
    int r = identity_extract(id, x, "Acme Devices", why, why_len);

    X509_free(x);
    return r;
}

static const struct tu_cert_spec base = {
    .cn = "Widget 3000",
    .serial = "SN0001",
    .not_before = TU_NOW - TU_DAY,
    .not_after = TU_NOW + TU_DAY,
};

static void test_serial_and_model(void **state)
{
    struct device_identity id;
    char why[256];

    assert_int_equal(extract(&base, &id, why, sizeof(why)), 0);
    assert_string_equal(id.serial, "SN0001");
    assert_string_equal(id.model, "Widget 3000");
    assert_string_equal(id.manufacturer, "Acme Devices");
    assert_string_equal(id.hw_type, "");
}

static void test_san_match(void **state)
{
    struct tu_cert_spec s = base;
    struct device_identity id;
    char why[256];

    s.hw_serial = "SN0001";
    s.hw_type = "1.3.6.1.4.1.99999.7";
    assert_int_equal(extract(&s, &id, why, sizeof(why)), 0);
    assert_string_equal(id.hw_type, "1.3.6.1.4.1.99999.7");
    assert_string_equal(id.serial, "SN0001");
}

static void test_san_mismatch(void **state)
{
    struct tu_cert_spec s = base;
    struct device_identity id;
    char why[256];

    s.hw_serial = "SN9999";
    assert_int_equal(extract(&s, &id, why, sizeof(why)), DEVID_ERR_IDENTITY);
    assert_non_null(strstr(why, "\"SN9999\""));
    assert_non_null(strstr(why, "\"SN0001\""));
    assert_string_equal(id.serial, "");
}

static void test_missing_serial(void **state)
{
    struct tu_cert_spec s = base;
    struct device_identity id;
    char why[256];

    s.serial = NULL;
    assert_int_equal(extract(&s, &id, why, sizeof(why)), DEVID_ERR_IDENTITY);
    assert_non_null(strstr(why, "subject serialNumber"));
}

static void test_missing_cn(void **state)
{
    struct tu_cert_spec s = base;
    struct device_identity id;
    char why[256];

    s.cn = NULL;
    s.o = "Acme";
    assert_int_equal(extract(&s, &id, why, sizeof(why)), DEVID_ERR_IDENTITY);
    assert_non_null(strstr(why, "commonName"));
}

static void test_non_printable(void **state)
{
    struct device_identity id;
    X509 *x;
    X509_NAME *n = X509_NAME_new();
    char why[256];

    assert_int_equal(X509_NAME_add_entry_by_NID(n, NID_serialNumber, V_ASN1_UTF8STRING,
                                                (const unsigned char *)"SN\n1", -1, -1, 0),
                     1);
    assert_int_equal(X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_ASC,
                                                (const unsigned char *)"W", -1, -1, 0),
                     1);
    x = tu_cert(&base, key, NULL, key);
    assert_int_equal(X509_set_subject_name(x, n), 1);
    assert_int_equal(identity_extract(&id, x, "Acme", why, sizeof(why)), DEVID_ERR_IDENTITY);
    assert_non_null(strstr(why, "serialNumber"));
    assert_int_equal(identity_extract(&id, x, "Ac\x01me", why, sizeof(why)), DEVID_ERR_IDENTITY);
    X509_NAME_free(n);
    X509_free(x);
}

static void test_duplicate_serial(void **state)
{
    struct device_identity id;
    X509 *x = tu_cert(&base, key, NULL, key);
    X509_NAME *n = X509_NAME_dup(X509_get_subject_name(x));
    char why[256];

    assert_int_equal(X509_NAME_add_entry_by_NID(n, NID_serialNumber, MBSTRING_ASC,
                                                (const unsigned char *)"SN0002", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_subject_name(x, n), 1);
    assert_int_equal(identity_extract(&id, x, "Acme", why, sizeof(why)), DEVID_ERR_IDENTITY);
    assert_non_null(strstr(why, "more than one"));
    X509_NAME_free(n);
    X509_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serial_and_model), cmocka_unit_test(test_san_match),
        cmocka_unit_test(test_san_mismatch),     cmocka_unit_test(test_missing_serial),
        cmocka_unit_test(test_missing_cn),       cmocka_unit_test(test_non_printable),
        cmocka_unit_test(test_duplicate_serial),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
