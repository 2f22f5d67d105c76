/* Unit tests for common/escape: what log fields and command output make of
 * client-controlled bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/escape.h"

#define LIT(s) (s), sizeof(s) - 1

static void test_str(void **state)
{
    char out[ESCAPE_SIZE(64)];

    assert_string_equal(escape_str(out, sizeof(out), LIT("Gateway X1")), "Gateway X1");
    assert_string_equal(escape_str(out, sizeof(out), LIT("a\"b\\c")), "a\\\"b\\\\c");
    assert_string_equal(escape_str(out, sizeof(out), LIT("l1\nl2\r\t\x7f")),
                        "l1\\x0al2\\x0d\\x09\\x7f");
    assert_string_equal(escape_str(out, sizeof(out), LIT("n\0ul")), "n\\x00ul");
    assert_string_equal(escape_str(out, sizeof(out), LIT("caf\xc3\xa9")), "caf\\xc3\\xa9");
    assert_string_equal(escape_str(out, sizeof(out), NULL, 5), "");
    /* Every byte, escaped, is a run of printable ASCII without a bare quote. */
    {
        char all[256], big[ESCAPE_SIZE(256)];
        size_t i;

        for (i = 0; i < sizeof(all); i++)
            all[i] = (char)i;
        escape_str(big, sizeof(big), all, sizeof(all));
        for (i = 0; big[i] != '\0'; i++) {
            assert_true(big[i] >= 0x20 && big[i] <= 0x7e);
            if (big[i] == '"')
                assert_int_equal(big[i - 1], '\\');
        }
        /* 161 bytes as \xHH, 93 as themselves, quote and backslash doubled. */
        assert_int_equal(strlen(big), 161 * 4 + 93 + 2 * 2);
    }
}

/* Output that does not fit is cut at a character boundary and ends in ... */
static void test_cut(void **state)
{
    char out[8];

    assert_string_equal(escape_str(out, sizeof(out), LIT("abcdefghij")), "abcd...");
    assert_string_equal(escape_str(out, sizeof(out), LIT("ab\ncdef")), "ab...");
    assert_string_equal(escape_str(out, sizeof(out), LIT("abcdefg")), "abcdefg");
    assert_string_equal(escape_str(out, 1, LIT("abc")), "");
    assert_null(escape_str(NULL, 4, LIT("abc")));
}

static void test_line(void **state)
{
    char out[ESCAPE_SIZE(64)];

    assert_string_equal(escape_line(out, sizeof(out), LIT("certificate \"CN=a\\,b\"")),
                        "certificate \"CN=a\\,b\"");
    assert_string_equal(escape_line(out, sizeof(out), LIT("x\ny\0z")), "x\\x0ay\\x00z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str),
        cmocka_unit_test(test_cut),
        cmocka_unit_test(test_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
