/* Unit tests for agent/core/renew.c: when a certificate is due for renewal,
 * the marker a renewal leaves while it runs, and what a run must do given
 * what it found. Times are plain numbers. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/core/renew.h"
#include "common/err.h"

#define NB 1700000000 /* notBefore of the test certificates */
#define DAY 86400

static void due_at_the_fraction(void **state)
{
    bool due = true;
    int64_t at = 0;

    (void)state;
    /* 100 s lifetime, 0.66: not due through second 65, due from 66. */
    assert_int_equal(renew_schedule(&due, &at, NB, NB + 100, NB + 65, 0.66), 0);
    assert_false(due);
    assert_int_equal(at, NB + 66);
    assert_int_equal(renew_schedule(&due, &at, NB, NB + 100, NB + 66, 0.66), 0);
    assert_true(due);
    assert_int_equal(renew_schedule(&due, &at, NB, NB + 100, NB + 67, 0.66), 0);
    assert_true(due);
    /* A fraction between whole seconds rounds up: 0.655 of 100 s is 65.5 s. */
    assert_int_equal(renew_schedule(&due, &at, NB, NB + 100, NB + 65, 0.655), 0);
    assert_false(due);
    assert_int_equal(at, NB + 66);
}

static void default_on_a_year(void **state)
{
    bool due = true;
    int64_t at = 0, na = NB + 365 * (int64_t)DAY + 300;

    (void)state;
    /* The verifier's profile: 365 days, backdated 300 s. Just issued: not due. */
    assert_int_equal(renew_schedule(&due, &at, NB, na, NB + 300, 0.66), 0);
    assert_false(due);
    assert_int_equal(at, NB + (int64_t)ceil(0.66 * (double)(na - NB)));
    assert_true(at > NB + 240 * (int64_t)DAY && at < NB + 241 * (int64_t)DAY);
    assert_int_equal(renew_schedule(&due, &at, NB, na, at - 1, 0.66), 0);
    assert_false(due);
    assert_int_equal(renew_schedule(&due, &at, NB, na, at, 0.66), 0);
    assert_true(due);
}

static void before_start_and_after_end(void **state)
{
    bool due = true;
    int64_t at = 0;

    (void)state;
    assert_int_equal(renew_schedule(&due, &at, NB, NB + DAY, NB - 1000, 0.5), 0);
    assert_false(due);
    assert_int_equal(renew_schedule(&due, &at, NB, NB + DAY, NB + 2 * DAY, 0.5), 0);
    assert_true(due);
}

static void tiny_and_whole_fractions(void **state)
{
    bool due = false;
    int64_t at = 0;

    (void)state;
    /* A one-day certificate (backdated 300 s) with renew_at 0.001 is due
     * 87 s after notBefore, so at once when it arrives. */
    assert_int_equal(renew_schedule(&due, &at, NB, NB + DAY + 300, NB + 300, 0.001), 0);
    assert_true(due);
    assert_int_equal(at, NB + 87);
    /* The smallest fraction still waits a whole second. */
    assert_int_equal(renew_schedule(&due, &at, NB, NB + 100, NB, 0.0001), 0);
    assert_false(due);
    assert_int_equal(at, NB + 1);
    /* 1.0: due at notAfter exactly, never later. */
    assert_int_equal(renew_schedule(&due, &at, NB, NB + 100, NB + 99, 1.0), 0);
    assert_false(due);
    assert_int_equal(at, NB + 100);
    assert_int_equal(renew_schedule(&due, &at, NB, NB + 100, NB + 100, 1.0), 0);
    assert_true(due);
}

static void bad_arguments(void **state)
{
    bool due = true;
    int64_t at = 7;

    (void)state;
    assert_int_equal(renew_schedule(&due, &at, NB, NB, NB, 0.5), DEVID_ERR_INVALID_ARGUMENT);
    assert_false(due);
    assert_int_equal(at, 0);
    due = true;
    assert_int_equal(renew_schedule(&due, &at, NB + 1, NB, NB, 0.5), DEVID_ERR_INVALID_ARGUMENT);
    assert_false(due);
    assert_int_equal(renew_schedule(&due, &at, NB, NB + 100, NB, 0.0), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(renew_schedule(&due, &at, NB, NB + 100, NB, -0.5), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(renew_schedule(&due, &at, NB, NB + 100, NB, 1.5), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(renew_schedule(&due, &at, NB, NB + 100, NB, NAN), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(renew_schedule(&due, &at, NB, NB + 100, NB, INFINITY),
                     DEVID_ERR_INVALID_ARGUMENT);
    /* The lifetime does not fit in 64 bits. */
    assert_int_equal(renew_schedule(&due, &at, INT64_MIN, INT64_MAX, 0, 0.5),
                     DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(renew_schedule(&due, &at, -2, INT64_MAX - 1, 0, 0.5),
                     DEVID_ERR_INVALID_ARGUMENT);
    /* The widest lifetime that fits still works and stays within it. */
    assert_int_equal(renew_schedule(&due, &at, -1, INT64_MAX - 1, 0, 1.0), 0);
    assert_false(due);
    assert_int_equal(at, INT64_MAX - 1);
    assert_int_equal(renew_schedule(NULL, &at, NB, NB + 100, NB, 0.5), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(renew_schedule(&due, NULL, NB, NB + 100, NB, 0.5), DEVID_ERR_INVALID_ARGUMENT);
}

static void marker_round_trip(void **state)
{
    char buf[128], serial[RENEW_SERIAL_HEX_MAX + 1];
    const char *s = "5f3a9c0e11d2b7a4c8e6f0123456789a";
    size_t len = 0;

    (void)state;
    assert_int_equal(renew_marker_format(buf, sizeof(buf), &len, s), 0);
    assert_int_equal(len, strlen(buf));
    assert_int_equal(renew_marker_parse(serial, sizeof(serial), (const uint8_t *)buf, len), 0);
    assert_string_equal(serial, s);
    /* 40 hex digits (20 octets) is the longest serial. */
    memset(serial, 'f', RENEW_SERIAL_HEX_MAX);
    serial[RENEW_SERIAL_HEX_MAX] = '\0';
    assert_int_equal(renew_marker_format(buf, sizeof(buf), &len, serial), 0);
}

static void marker_refusals(void **state)
{
    static const char *const bad[] = {
        "",
        "renewing \n",
        "renewing abc",                                         /* no newline */
        "renewing ABC\n",                                       /* uppercase */
        "renewing 12 34\n",                                     /* space */
        "renewing 0x12\n",                                      /* prefix */
        "renew 1234\n",                                         /* wrong word */
        "renewing 1234\n\n",                                    /* trailing line */
        "renewing 12345678901234567890123456789012345678901\n", /* 41 digits */
    };
    char buf[16], serial[RENEW_SERIAL_HEX_MAX + 1];
    size_t i, len = 0;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(
            renew_marker_parse(serial, sizeof(serial), (const uint8_t *)bad[i], strlen(bad[i])),
            DEVID_ERR_BAD_REQUEST);
    assert_int_equal(renew_marker_parse(serial, 8, (const uint8_t *)"renewing 12\n", 12),
                     DEVID_ERR_BAD_REQUEST);
    assert_int_equal(renew_marker_format(buf, sizeof(buf), &len, ""), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(renew_marker_format(buf, sizeof(buf), &len, "12G4"),
                     DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(renew_marker_format(buf, sizeof(buf), &len, "AB"), DEVID_ERR_INVALID_ARGUMENT);
    /* Too long for the buffer. */
    assert_int_equal(renew_marker_format(buf, sizeof(buf), &len, "0123456789abcdef"),
                     DEVID_ERR_INVALID_ARGUMENT);
}

/* A renew run that found a valid certificate of 100 s from NB, at |now|. */
static struct renew_facts valid_cert(int64_t now)
{
    struct renew_facts f = {.renew = true,
                            .enrolled = true,
                            .not_before = NB,
                            .not_after = NB + 100,
                            .now = now,
                            .renew_at = 0.66};

    return f;
}

static void decide_with_marker(void **state)
{
    struct renew_facts f = {.marker = true, .marker_serial = "0a1b", .cert_serial = "0a1b"};
    enum renew_action a = RENEW_ACTION_NOT_DUE;
    int64_t at = -1;

    (void)state;
    /* cert.pem is still the certificate being renewed: redo the renewal. */
    assert_int_equal(renew_decide(&a, &at, &f), 0);
    assert_int_equal(a, RENEW_ACTION_REDO);
    assert_int_equal(at, 0);
    /* A malformed marker, or no readable cert.pem, is treated the same. */
    f.marker_serial = NULL;
    assert_int_equal(renew_decide(&a, &at, &f), 0);
    assert_int_equal(a, RENEW_ACTION_REDO);
    f.marker_serial = "0a1b";
    f.cert_serial = NULL;
    assert_int_equal(renew_decide(&a, &at, &f), 0);
    assert_int_equal(a, RENEW_ACTION_REDO);
    /* cert.pem is the successor: only the TPM side is left. For renew too,
     * and whatever the files or the schedule say. */
    f.cert_serial = "0c2d";
    assert_int_equal(renew_decide(&a, &at, &f), 0);
    assert_int_equal(a, RENEW_ACTION_FINISH);
    f.renew = true;
    f.enrolled = true;
    f.force = true;
    assert_int_equal(renew_decide(&a, &at, &f), 0);
    assert_int_equal(a, RENEW_ACTION_FINISH);
}

static void decide_without_marker(void **state)
{
    struct renew_facts f = valid_cert(NB + 10);
    enum renew_action a = RENEW_ACTION_REDO;
    int64_t at = 0;

    (void)state;
    /* renew, not due yet: nothing, and when it will be. */
    assert_int_equal(renew_decide(&a, &at, &f), 0);
    assert_int_equal(a, RENEW_ACTION_NOT_DUE);
    assert_int_equal(at, NB + 66);
    /* Forced, or due: start a renewal. */
    f.force = true;
    assert_int_equal(renew_decide(&a, &at, &f), 0);
    assert_int_equal(a, RENEW_ACTION_START);
    assert_int_equal(at, NB + 66);
    f = valid_cert(NB + 66);
    assert_int_equal(renew_decide(&a, &at, &f), 0);
    assert_int_equal(a, RENEW_ACTION_START);
    /* renew without a valid certificate enrolls; enroll always does. */
    f.enrolled = false;
    assert_int_equal(renew_decide(&a, &at, &f), 0);
    assert_int_equal(a, RENEW_ACTION_ENROLL);
    f = valid_cert(NB + 99);
    f.renew = false;
    assert_int_equal(renew_decide(&a, &at, &f), 0);
    assert_int_equal(a, RENEW_ACTION_ENROLL);
}

static void decide_refusals(void **state)
{
    struct renew_facts f = valid_cert(NB);
    enum renew_action a;
    int64_t at;

    (void)state;
    /* Validity dates that cannot be scheduled stop the run. */
    f.not_after = NB;
    assert_int_equal(renew_decide(&a, &at, &f), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(a, RENEW_ACTION_ENROLL);
    f = valid_cert(NB);
    f.renew_at = 0.0;
    assert_int_equal(renew_decide(&a, &at, &f), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(renew_decide(NULL, &at, &f), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(renew_decide(&a, NULL, &f), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(renew_decide(&a, &at, NULL), DEVID_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(due_at_the_fraction),
        cmocka_unit_test(default_on_a_year),
        cmocka_unit_test(before_start_and_after_end),
        cmocka_unit_test(tiny_and_whole_fractions),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(marker_round_trip),
        cmocka_unit_test(marker_refusals),
        cmocka_unit_test(decide_with_marker),
        cmocka_unit_test(decide_without_marker),
        cmocka_unit_test(decide_refusals),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
