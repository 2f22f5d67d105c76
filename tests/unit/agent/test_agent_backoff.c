/* Unit tests for agent/backoff.c: the retry schedule, with the random source
 * injected as plain numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agent/core/backoff.h"
#include "common/err.h"

static const struct backoff_policy policy = {
    .initial_ms = 1000,
    .max_ms = 16000,
    .deadline_ms = 60000,
};

static void ceiling_doubles_then_caps(void **state)
{
    (void)state;
    assert_int_equal(backoff_ceiling_ms(&policy, 0), 1000);
    assert_int_equal(backoff_ceiling_ms(&policy, 1), 2000);
    assert_int_equal(backoff_ceiling_ms(&policy, 3), 8000);
    assert_int_equal(backoff_ceiling_ms(&policy, 4), 16000);
    assert_int_equal(backoff_ceiling_ms(&policy, 5), 16000);
    assert_int_equal(backoff_ceiling_ms(&policy, 1000000), 16000);
}

static void full_jitter(void **state)
{
    uint64_t d;

    (void)state;
    /* rnd = 0: no wait; rnd = max: just under the ceiling; half: half. */
    assert_int_equal(backoff_next(&d, &policy, 2, 0, 0, 0), 0);
    assert_int_equal(d, 0);
    assert_int_equal(backoff_next(&d, &policy, 2, 0, 0, UINT32_MAX), 0);
    assert_true(d >= 3999 && d < 4000);
    assert_int_equal(backoff_next(&d, &policy, 2, 0, 0, 0x80000000u), 0);
    assert_int_equal(d, 2000);
    /* Never above the ceiling, whatever the attempt. */
    for (unsigned a = 0; a < 40; a++) {
        assert_int_equal(backoff_next(&d, &policy, a, 0, 0, UINT32_MAX), 0);
        assert_true(d <= backoff_ceiling_ms(&policy, a));
    }
}

static void retry_after_is_a_floor(void **state)
{
    uint64_t d;

    (void)state;
    assert_int_equal(backoff_next(&d, &policy, 0, 2000, 0, 0), 0);
    assert_int_equal(d, 2000);
    /* A jittered wait longer than Retry-After stays. */
    assert_int_equal(backoff_next(&d, &policy, 4, 2000, 0, 0x80000000u), 0);
    assert_int_equal(d, 8000);
}

static void deadline(void **state)
{
    uint64_t d;

    (void)state;
    /* Past the deadline: no retry. */
    assert_int_equal(backoff_next(&d, &policy, 0, 0, 60000, 0), DEVID_ERR_NOT_FOUND);
    assert_int_equal(backoff_next(&d, &policy, 0, 0, 70000, 0), DEVID_ERR_NOT_FOUND);
    /* A jittered wait is cut to end at the deadline. */
    assert_int_equal(backoff_next(&d, &policy, 10, 0, 59000, UINT32_MAX), 0);
    assert_int_equal(d, 1000);
    /* A Retry-After that ends after the deadline: give up now, say how long. */
    assert_int_equal(backoff_next(&d, &policy, 0, 5000, 58000, 0), DEVID_ERR_NOT_FOUND);
    assert_int_equal(d, 5000);
    assert_int_equal(backoff_next(NULL, &policy, 0, 0, 0, 0), DEVID_ERR_INVALID_ARGUMENT);
}

static void huge_values_do_not_overflow(void **state)
{
    const struct backoff_policy big = {
        .initial_ms = UINT64_MAX / 4, .max_ms = UINT64_MAX, .deadline_ms = UINT64_MAX};
    uint64_t d;

    (void)state;
    assert_int_equal(backoff_ceiling_ms(&big, 70), UINT64_MAX);
    assert_int_equal(backoff_next(&d, &big, 70, 0, 0, UINT32_MAX), 0);
    assert_true(d > UINT64_MAX / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ceiling_doubles_then_caps),   cmocka_unit_test(full_jitter),
        cmocka_unit_test(retry_after_is_a_floor),      cmocka_unit_test(deadline),
        cmocka_unit_test(huge_values_do_not_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
