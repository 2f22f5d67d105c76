/* Unit tests for common/transcript: known answers and argument checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "common/err.h"
#include "common/transcript.h"

static void fill(uint8_t *b, size_t n, uint8_t start)
{
    size_t i;

    for (i = 0; i < n; i++)
        b[i] = (uint8_t)(start + i);
}

/* Vector computed outside C: python3 hashlib over the same inputs. */
static void test_known_answer_fixed(void **state)
{
    static const uint8_t want[32] = {
        0x2a, 0x81, 0x30, 0xc2, 0xfd, 0xb9, 0xff, 0xa0, 0x87, 0x5d, 0xa9,
        0xed, 0x8b, 0x2c, 0x78, 0xb2, 0x03, 0x0c, 0x45, 0x90, 0x7b, 0x7d,
        0x24, 0x3c, 0x01, 0x53, 0x30, 0xb1, 0x0f, 0x5b, 0xe1, 0x30,
    };
    uint8_t nonce[32], exp[32], out[32];

    fill(nonce, 32, 0);
    fill(exp, 32, 32);
    assert_int_equal(transcript_compute(out, nonce, 32, exp, 32, (const uint8_t *)"abc", 3), 0);
    assert_memory_equal(out, want, 32);
}

/* Independent recomputation with EVP over random-looking inputs. */
static void test_known_answer_evp(void **state)
{
    uint8_t nonce[32], exp[32], csr[300], h[32], want[32], out[32];
    unsigned int n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    fill(nonce, 32, 0xa0);
    fill(exp, 32, 0x11);
    fill(csr, sizeof(csr), 0x37);
    assert_int_equal(EVP_Digest(csr, sizeof(csr), h, &n, EVP_sha256(), NULL), 1);
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
    assert_int_equal(EVP_DigestUpdate(ctx, "devid/v1 enroll", 15), 1);
    assert_int_equal(EVP_DigestUpdate(ctx, nonce, 32), 1);
    assert_int_equal(EVP_DigestUpdate(ctx, exp, 32), 1);
    assert_int_equal(EVP_DigestUpdate(ctx, h, 32), 1);
    assert_int_equal(EVP_DigestFinal_ex(ctx, want, &n), 1);
    EVP_MD_CTX_free(ctx);
    assert_int_equal(transcript_compute(out, nonce, 32, exp, 32, csr, sizeof(csr)), 0);
    assert_memory_equal(out, want, 32);

    /* Each input changes the result. */
    nonce[5] ^= 1;
    assert_int_equal(transcript_compute(out, nonce, 32, exp, 32, csr, sizeof(csr)), 0);
    assert_memory_not_equal(out, want, 32);
    nonce[5] ^= 1;
    exp[31] ^= 0x80;
    assert_int_equal(transcript_compute(out, nonce, 32, exp, 32, csr, sizeof(csr)), 0);
    assert_memory_not_equal(out, want, 32);
    exp[31] ^= 0x80;
    csr[299] ^= 1;
    assert_int_equal(transcript_compute(out, nonce, 32, exp, 32, csr, sizeof(csr)), 0);
    assert_memory_not_equal(out, want, 32);
}

static void test_bad_args(void **state)
{
    uint8_t nonce[32] = {0}, exp[32] = {0}, out[32];
    const uint8_t csr[1] = {0x30};

    assert_int_equal(transcript_compute(out, nonce, 31, exp, 32, csr, 1),
                     DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(transcript_compute(out, nonce, 32, exp, 33, csr, 1),
                     DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(transcript_compute(out, nonce, 32, exp, 32, csr, 0),
                     DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(transcript_compute(out, NULL, 32, exp, 32, csr, 1),
                     DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(transcript_compute(NULL, nonce, 32, exp, 32, csr, 1),
                     DEVID_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer_fixed),
        cmocka_unit_test(test_known_answer_evp),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
