/* The assurance levels: names, order, and the certificatePolicies OIDs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "verifier/core/assurance.h"

static void test_names(void **state)
{
    static const char *const names[] = {"none", "ek", "iak"};
    enum assurance a;
    size_t i;

    for (i = 0; i < 3; i++) {
        assert_int_equal(assurance_parse(&a, names[i]), 0);
        assert_int_equal((int)a, (int)i);
        assert_string_equal(assurance_str(a), names[i]);
    }
    assert_int_equal(assurance_parse(&a, "IAK"), DEVID_ERR_CONFIG);
    assert_int_equal(assurance_parse(&a, ""), DEVID_ERR_CONFIG);
    assert_int_equal(assurance_parse(&a, "iak "), DEVID_ERR_CONFIG);
    assert_string_equal(assurance_str((enum assurance)3), "unknown");
    /* A minimum accepts its own level and every stronger one. */
    assert_true(ASSURANCE_NONE < ASSURANCE_EK && ASSURANCE_EK < ASSURANCE_IAK);
}

static void test_arcs(void **state)
{
    char big[ASSURANCE_ARC_MAX + 2];

    assert_true(assurance_arc_valid(ASSURANCE_DEFAULT_ARC));
    assert_true(assurance_arc_valid("1.3"));
    assert_true(assurance_arc_valid("1.3.6.1.4.1.32473.0"));
    assert_false(assurance_arc_valid("1"));
    assert_false(assurance_arc_valid("3.1"));
    assert_false(assurance_arc_valid("1..3"));
    assert_false(assurance_arc_valid("1.3."));
    assert_false(assurance_arc_valid(".1.3"));
    assert_false(assurance_arc_valid("1.03"));
    assert_false(assurance_arc_valid("1.3.x"));
    assert_false(assurance_arc_valid("12.3"));
    assert_false(assurance_arc_valid(""));
    assert_false(assurance_arc_valid(NULL));
    memset(big, '1', sizeof(big) - 1);
    big[0] = '1';
    big[1] = '.';
    big[sizeof(big) - 1] = '\0';
    assert_false(assurance_arc_valid(big));
    big[sizeof(big) - 2] = '\0';
    assert_true(assurance_arc_valid(big));
}

static void test_oids(void **state)
{
    char oid[ASSURANCE_OID_LEN], big[ASSURANCE_ARC_MAX + 1];

    assert_int_equal(assurance_policy_oid(oid, sizeof(oid), "1.3.6.1.4.1.32473.9", ASSURANCE_NONE),
                     0);
    assert_string_equal(oid, "1.3.6.1.4.1.32473.9.1");
    assert_int_equal(assurance_policy_oid(oid, sizeof(oid), "1.3.6.1.4.1.32473.9", ASSURANCE_EK),
                     0);
    assert_string_equal(oid, "1.3.6.1.4.1.32473.9.2");
    assert_int_equal(assurance_policy_oid(oid, sizeof(oid), ASSURANCE_DEFAULT_ARC, ASSURANCE_IAK),
                     0);
    assert_string_equal(oid, ASSURANCE_DEFAULT_ARC ".3");
    assert_int_equal(assurance_policy_oid(oid, sizeof(oid), "1..2", ASSURANCE_IAK),
                     DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(assurance_policy_oid(oid, sizeof(oid), "1.2", (enum assurance)3),
                     DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(assurance_policy_oid(oid, 5, "1.2.3", ASSURANCE_IAK),
                     DEVID_ERR_INVALID_ARGUMENT);
    /* The longest arc still fits ASSURANCE_OID_LEN. */
    memset(big, '1', sizeof(big) - 1);
    big[1] = '.';
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(assurance_policy_oid(oid, sizeof(oid), big, ASSURANCE_IAK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_arcs),
        cmocka_unit_test(test_oids),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
