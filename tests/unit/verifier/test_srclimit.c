/* Unit tests for verifier/core/srclimit: handshake slots per source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "common/err.h"
#include "verifier/core/srclimit.h"

static void test_source(void **state)
{
    char s[SRCLIMIT_ADDR_MAX];

    (void)state;
    srclimit_source(s, "192.0.2.7:40001");
    assert_string_equal(s, "192.0.2.7");
    srclimit_source(s, "[2001:db8::1]:443");
    assert_string_equal(s, "[2001:db8::1]");
    /* Not ADDR:PORT: taken whole. */
    srclimit_source(s, "2001:db8::1");
    assert_string_equal(s, "2001:db8::1");
    srclimit_source(s, "unknown");
    assert_string_equal(s, "unknown");
}

static void test_per_source(void **state)
{
    struct srclimit t;

    (void)state;
    assert_int_equal(srclimit_init(&t, 8, 3), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(srclimit_take(&t, "192.0.2.7"), 0);
    assert_int_equal(srclimit_take(&t, "192.0.2.7"), DEVID_ERR_REFUSED);
    /* Another source still gets slots. */
    assert_int_equal(srclimit_take(&t, "192.0.2.8"), 0);
    assert_int_equal(srclimit_held(&t, "192.0.2.7"), 3);
    srclimit_give(&t, "192.0.2.7");
    assert_int_equal(srclimit_take(&t, "192.0.2.7"), 0);
    assert_int_equal(srclimit_take(&t, "192.0.2.7"), DEVID_ERR_REFUSED);
    /* Given back in full, a source leaves the table. */
    for (int i = 0; i < 3; i++)
        srclimit_give(&t, "192.0.2.7");
    assert_int_equal(srclimit_held(&t, "192.0.2.7"), 0);
    assert_int_equal(t.used, 1);
    assert_int_equal(srclimit_held(&t, "192.0.2.8"), 1);
    /* A slot never taken is not given back. */
    srclimit_give(&t, "198.51.100.1");
    assert_int_equal(t.used, 1);
    srclimit_cleanup(&t);
}

static void test_table_full(void **state)
{
    struct srclimit t;
    char a[SRCLIMIT_ADDR_MAX];

    (void)state;
    assert_int_equal(srclimit_init(&t, 4, 2), 0);
    for (int i = 0; i < 4; i++) {
        snprintf(a, sizeof(a), "10.0.0.%d", i);
        assert_int_equal(srclimit_take(&t, a), 0);
    }
    assert_int_equal(srclimit_take(&t, "10.0.0.9"), DEVID_ERR_REFUSED);
    /* A known source still counts within its own slots. */
    assert_int_equal(srclimit_take(&t, "10.0.0.1"), 0);
    srclimit_give(&t, "10.0.0.0");
    assert_int_equal(srclimit_take(&t, "10.0.0.9"), 0);
    assert_int_equal(srclimit_held(&t, "10.0.0.3"), 1);
    assert_int_equal(srclimit_held(&t, "10.0.0.1"), 2);
    srclimit_cleanup(&t);
    assert_int_equal(srclimit_init(&t, 0, 1), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(srclimit_init(&t, 1, 0), DEVID_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source),
        cmocka_unit_test(test_per_source),
        cmocka_unit_test(test_table_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
