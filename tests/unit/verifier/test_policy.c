/* Unit tests for verifier/policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "verifier/core/policy.h"

static struct device_identity ident(const char *model, const char *serial)
{
    struct device_identity id;

    memset(&id, 0, sizeof(id));
    snprintf(id.manufacturer, sizeof(id.manufacturer), "Acme");
    snprintf(id.model, sizeof(id.model), "%s", model);
    snprintf(id.serial, sizeof(id.serial), "%s", serial);
    return id;
}

static void test_empty_allows(void **state)
{
    struct policy *p = policy_new();
    struct device_identity id = ident("W1", "SN1");
    char why[256];

    assert_non_null(p);
    assert_int_equal(policy_check(p, &id, why, sizeof(why)), 0);
    policy_free(p);
    policy_free(NULL);
}

static void test_allow_model(void **state)
{
    struct policy *p = policy_new();
    struct device_identity a = ident("W1", "SN1"), b = ident("W2", "SN1");
    char why[256];

    assert_int_equal(policy_add(p, POLICY_ALLOW_MODEL, "W1"), 0);
    assert_int_equal(policy_check(p, &a, why, sizeof(why)), 0);
    assert_int_equal(policy_check(p, &b, why, sizeof(why)), DEVID_ERR_POLICY_DENIED);
    assert_non_null(strstr(why, "model \"W2\""));
    policy_free(p);
}

static void test_deny_model(void **state)
{
    struct policy *p = policy_new();
    struct device_identity a = ident("W1", "SN1");
    char why[256];

    assert_int_equal(policy_add(p, POLICY_ALLOW_MODEL, "W1"), 0);
    assert_int_equal(policy_add(p, POLICY_DENY_MODEL, "W1"), 0);
    assert_int_equal(policy_check(p, &a, why, sizeof(why)), DEVID_ERR_POLICY_DENIED);
    assert_non_null(strstr(why, "deny rule \"W1\""));
    policy_free(p);
}

static void test_serial_globs(void **state)
{
    struct policy *p = policy_new();
    struct device_identity a = ident("W1", "SN1000"), b = ident("W1", "SN1666"),
                           c = ident("W1", "XX1000");
    char why[256];

    assert_int_equal(policy_add(p, POLICY_ALLOW_SERIAL, "SN1*"), 0);
    assert_int_equal(policy_add(p, POLICY_DENY_SERIAL, "SN16[0-9][0-9]"), 0);
    assert_int_equal(policy_check(p, &a, why, sizeof(why)), 0);
    assert_int_equal(policy_check(p, &b, why, sizeof(why)), DEVID_ERR_POLICY_DENIED);
    assert_non_null(strstr(why, "SN16[0-9][0-9]"));
    assert_int_equal(policy_check(p, &c, why, sizeof(why)), DEVID_ERR_POLICY_DENIED);
    assert_non_null(strstr(why, "no allow rule"));
    policy_free(p);
}

static void test_model_is_literal(void **state)
{
    struct policy *p = policy_new();
    struct device_identity a = ident("W1", "SN1");
    char why[256];

    assert_int_equal(policy_add(p, POLICY_ALLOW_MODEL, "W*"), 0);
    assert_int_equal(policy_check(p, &a, why, sizeof(why)), DEVID_ERR_POLICY_DENIED);
    policy_free(p);
}

static void test_add_bad(void **state)
{
    struct policy *p = policy_new();
    char big[300];
    int i;

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(policy_add(p, POLICY_ALLOW_MODEL, ""), DEVID_ERR_CONFIG);
    assert_int_equal(policy_add(p, POLICY_ALLOW_MODEL, big), DEVID_ERR_CONFIG);
    assert_int_equal(policy_add(p, (enum policy_list)9, "x"), DEVID_ERR_INVALID_ARGUMENT);
    for (i = 0; i < 100; i++)
        assert_int_equal(policy_add(p, POLICY_DENY_SERIAL, "x"), 0);
    policy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_allows),     cmocka_unit_test(test_allow_model),
        cmocka_unit_test(test_deny_model),       cmocka_unit_test(test_serial_globs),
        cmocka_unit_test(test_model_is_literal), cmocka_unit_test(test_add_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
