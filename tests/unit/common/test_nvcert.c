/* Unit tests for common/nvcert: one certificate from an NV index as real TPMs
 * store it (padded, behind a TCG header, PEM) and every way the contents can
 * be wrong. The certificates come from tests/unit/testutil (tu_pki). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/pem.h>

#include "common/err.h"
#include "common/nvcert.h"
#include "tests/unit/testutil.h"

/* The IDevID and intermediate of one tu_pki, as DER. */
struct fixture {
    struct tu_pki pki;
    uint8_t *leaf, *inter;
    size_t leaf_len, inter_len;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    int n;

    assert_non_null(f);
    tu_pki_init(&f->pki);
    n = i2d_X509(f->pki.idevid, &f->leaf);
    assert_true(n > 0);
    f->leaf_len = (size_t)n;
    n = i2d_X509(f->pki.intermediate, &f->inter);
    assert_true(n > 0);
    f->inter_len = (size_t)n;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    OPENSSL_free(f->leaf);
    OPENSSL_free(f->inter);
    tu_pki_cleanup(&f->pki);
    free(f);
    return 0;
}

/* An NV image: |pre| (|pre_len| bytes), then |der|, then |pad| bytes of |fill|. */
static uint8_t *image(size_t *len, const uint8_t *pre, size_t pre_len, const uint8_t *der,
                      size_t der_len, size_t pad, uint8_t fill)
{
    uint8_t *b = malloc(pre_len + der_len + pad + 1);

    assert_non_null(b);
    if (pre_len > 0)
        memcpy(b, pre, pre_len);
    memcpy(b + pre_len, der, der_len);
    memset(b + pre_len + der_len, fill, pad);
    *len = pre_len + der_len + pad;
    return b;
}

/* The TCG stored-certificate header for a DER of |der_len| bytes. */
static void tcg_header(uint8_t h[NVCERT_TCG_HEADER_LEN], size_t der_len)
{
    h[0] = 0x10;
    h[1] = 0x01;
    h[2] = 0x00;
    h[3] = (uint8_t)((der_len + 2) >> 8);
    h[4] = (uint8_t)(der_len + 2);
    h[5] = 0x10;
    h[6] = 0x02;
}

/* Parses |buf| as one certificate and checks it is |der|, byte for byte. */
static void expect_one(const uint8_t *buf, size_t len, const uint8_t *der, size_t der_len)
{
    unsigned char *enc = NULL;
    char why[256];
    X509 *x = NULL;
    int n;

    assert_int_equal(nvcert_parse_one(&x, buf, len, why, sizeof(why)), 0);
    assert_non_null(x);
    n = i2d_X509(x, &enc);
    assert_int_equal(n, (int)der_len);
    assert_memory_equal(enc, der, der_len);
    OPENSSL_free(enc);
    X509_free(x);
}

/* Parses |buf| as one certificate and expects a refusal mentioning |text|. */
static void expect_refused(const uint8_t *buf, size_t len, const char *text)
{
    char why[256];
    X509 *x = NULL;

    assert_int_equal(nvcert_parse_one(&x, buf, len, why, sizeof(why)), DEVID_ERR_CONFIG);
    assert_null(x);
    if (strstr(why, text) == NULL)
        fail_msg("reason \"%s\" does not mention \"%s\"", why, text);
}

static void test_plain_der(void **state)
{
    struct fixture *f = *state;
    struct nvcert_span span;
    char why[256];
    size_t n = 9;

    expect_one(f->leaf, f->leaf_len, f->leaf, f->leaf_len);
    assert_int_equal(nvcert_find(&span, 1, &n, f->leaf, f->leaf_len, why, sizeof(why)), 0);
    assert_int_equal(n, 1);
    assert_int_equal(span.off, 0);
    assert_int_equal(span.len, f->leaf_len);
}

static void test_padding(void **state)
{
    struct fixture *f = *state;
    struct nvcert_span span;
    uint8_t *b;
    char why[256];
    size_t len, n = 0;

    /* ST33: 0xFF to the end of a 2048-byte index. */
    b = image(&len, NULL, 0, f->leaf, f->leaf_len, 2048 - f->leaf_len, 0xff);
    expect_one(b, len, f->leaf, f->leaf_len);
    assert_int_equal(nvcert_find(&span, 1, &n, b, len, why, sizeof(why)), 0);
    assert_int_equal(span.len, f->leaf_len);
    free(b);
    b = image(&len, NULL, 0, f->leaf, f->leaf_len, 17, 0x00);
    expect_one(b, len, f->leaf, f->leaf_len);
    free(b);
}

static void test_tcg_header(void **state)
{
    struct fixture *f = *state;
    struct nvcert_span span;
    uint8_t h[NVCERT_TCG_HEADER_LEN], *b;
    char why[256];
    size_t len, n = 0;

    tcg_header(h, f->leaf_len);
    b = image(&len, h, sizeof(h), f->leaf, f->leaf_len, 0, 0);
    expect_one(b, len, f->leaf, f->leaf_len);
    assert_int_equal(nvcert_find(&span, 1, &n, b, len, why, sizeof(why)), 0);
    assert_int_equal(span.off, NVCERT_TCG_HEADER_LEN);
    assert_int_equal(span.len, f->leaf_len);
    free(b);
    /* Header and padding together. */
    b = image(&len, h, sizeof(h), f->leaf, f->leaf_len, 100, 0xff);
    expect_one(b, len, f->leaf, f->leaf_len);
    free(b);
}

static void test_tcg_header_bad(void **state)
{
    struct fixture *f = *state;
    uint8_t h[NVCERT_TCG_HEADER_LEN], *b;
    size_t len;

    tcg_header(h, f->leaf_len + 1);
    b = image(&len, h, sizeof(h), f->leaf, f->leaf_len, 1, 0xff);
    expect_refused(b, len, "certSize");
    free(b);
    tcg_header(h, f->leaf_len);
    h[2] = 0x01;
    b = image(&len, h, sizeof(h), f->leaf, f->leaf_len, 0, 0);
    expect_refused(b, len, "certType 0x01");
    free(b);
    tcg_header(h, f->leaf_len);
    h[6] = 0x03;
    b = image(&len, h, sizeof(h), f->leaf, f->leaf_len, 0, 0);
    expect_refused(b, len, "TCG_TAG_PCCLIENT_FULL_CERT");
    free(b);
    tcg_header(h, f->leaf_len);
    expect_refused(h, sizeof(h), "truncated TCG header");
    b = image(&len, h, sizeof(h), f->leaf, f->leaf_len - 1, 0, 0);
    expect_refused(b, len, "truncated certificate at byte 7");
    free(b);
    /* A header describes one certificate: a second after it is refused. */
    b = image(&len, h, sizeof(h), f->leaf, f->leaf_len, 0, 0);
    b = realloc(b, len + f->inter_len);
    assert_non_null(b);
    memcpy(b + len, f->inter, f->inter_len);
    expect_refused(b, len + f->inter_len, "second certificate");
    free(b);
}

static void test_trailing(void **state)
{
    struct fixture *f = *state;
    uint8_t *b;
    size_t len;

    b = image(&len, NULL, 0, f->leaf, f->leaf_len, 8, 0xff);
    b[f->leaf_len + 3] = 0x41;
    expect_refused(b, len, "byte 0x41 at offset");
    free(b);
    /* A second certificate where one is expected. */
    b = image(&len, NULL, 0, f->leaf, f->leaf_len, f->inter_len, 0);
    memcpy(b + f->leaf_len, f->inter, f->inter_len);
    expect_refused(b, len, "another certificate");
    free(b);
}

static void test_truncated(void **state)
{
    struct fixture *f = *state;

    expect_refused(f->leaf, f->leaf_len - 1, "truncated");
    expect_refused(f->leaf, 3, "truncated");
    expect_refused(f->leaf, 1, "truncated");
}

static void test_not_der(void **state)
{
    struct fixture *f = *state;
    uint8_t *b, *q;
    size_t len;
    uint8_t ff[64], indef[] = {0x30, 0x80, 0x30, 0x00, 0x00, 0x00};

    (void)f;
    memset(ff, 0xff, sizeof(ff));
    expect_refused(ff, sizeof(ff), "never written");
    expect_refused(ff, 0, "empty");
    expect_refused(indef, sizeof(indef), "indefinite length");
    expect_refused((const uint8_t *)"hello", 5, "first byte 0x68");
    /* The outer length 82 LL LL written as 83 00 LL LL. */
    assert_int_equal(f->leaf[1], 0x82);
    b = malloc(f->leaf_len + 1);
    assert_non_null(b);
    b[0] = 0x30;
    b[1] = 0x83;
    b[2] = 0x00;
    memcpy(b + 3, f->leaf + 2, f->leaf_len - 2);
    expect_refused(b, f->leaf_len + 1, "non-minimal");
    free(b);
    /* A non-minimal length inside (the signature BIT STRING, 03 LL written as
     * 03 81 LL): d2i_X509 takes it, i2d_X509 gives other bytes: refused,
     * since the agent could not send it unchanged. */
    assert_int_equal(f->leaf[5], 0x82); /* TBSCertificate, 30 82 TT TT */
    q = f->leaf + 4 + 4 + ((size_t)f->leaf[6] << 8 | f->leaf[7]);
    q += 2 + q[1]; /* past the AlgorithmIdentifier: the BIT STRING */
    assert_int_equal(q[0], 0x03);
    assert_true(q[1] < 0x80);
    len = f->leaf_len + 1;
    b = malloc(len);
    assert_non_null(b);
    memcpy(b, f->leaf, (size_t)(q - f->leaf) + 1);
    b[q - f->leaf + 1] = 0x81;
    memcpy(b + (q - f->leaf) + 2, q + 1, f->leaf_len - (size_t)(q - f->leaf) - 1);
    b[2] = (uint8_t)((len - 4) >> 8);
    b[3] = (uint8_t)(len - 4);
    expect_refused(b, len, "not in DER form");
    free(b);
}

static void test_chain(void **state)
{
    struct fixture *f = *state;
    STACK_OF(X509) *sk = NULL;
    struct nvcert_span spans[2];
    uint8_t *b;
    char why[256];
    size_t len, n = 0;

    b = image(&len, NULL, 0, f->leaf, f->leaf_len, f->inter_len + 5, 0xff);
    memcpy(b + f->leaf_len, f->inter, f->inter_len);
    assert_int_equal(nvcert_find(spans, 2, &n, b, len, why, sizeof(why)), 0);
    assert_int_equal(n, 2);
    assert_int_equal(spans[1].off, f->leaf_len);
    assert_int_equal(spans[1].len, f->inter_len);
    assert_int_equal(nvcert_parse(&sk, b, len, 2, why, sizeof(why)), 0);
    assert_int_equal(sk_X509_num(sk), 2);
    assert_int_equal(X509_cmp(sk_X509_value(sk, 1), f->pki.intermediate), 0);
    sk_X509_pop_free(sk, X509_free);
    assert_int_equal(nvcert_parse(&sk, b, len, 1, why, sizeof(why)), DEVID_ERR_CONFIG);
    assert_null(sk);
    free(b);
}

/* pem returns |x| as PEM text, malloc'd, with |*len|. */
static uint8_t *pem(size_t *len, X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    uint8_t *out;
    long n;

    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_X509(bio, x), 1);
    n = BIO_get_mem_data(bio, &data);
    assert_true(n > 0);
    out = malloc((size_t)n + 64);
    assert_non_null(out);
    memcpy(out, data, (size_t)n);
    *len = (size_t)n;
    BIO_free(bio);
    return out;
}

static void test_pem(void **state)
{
    struct fixture *f = *state;
    uint8_t *b;
    size_t len;

    b = pem(&len, f->pki.idevid);
    expect_one(b, len, f->leaf, f->leaf_len);
    memset(b + len, 0xff, 64);
    expect_one(b, len + 64, f->leaf, f->leaf_len);
    b[len + 10] = 'x';
    expect_refused(b, len + 64, "after the PEM certificate");
    free(b);
}

static void test_arguments(void **state)
{
    struct nvcert_span span;
    char why[8];
    size_t n;
    X509 *x = NULL;

    (void)state;
    assert_int_equal(nvcert_find(NULL, 1, &n, (const uint8_t *)"", 0, why, sizeof(why)),
                     DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(nvcert_find(&span, 0, &n, (const uint8_t *)"", 0, why, sizeof(why)),
                     DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(nvcert_parse_one(&x, NULL, 4, why, sizeof(why)), DEVID_ERR_INVALID_ARGUMENT);
    /* A short why buffer is cut, not overrun. */
    assert_int_equal(nvcert_parse_one(&x, (const uint8_t *)"\x30\x05", 2, why, sizeof(why)),
                     DEVID_ERR_CONFIG);
    assert_true(strlen(why) < sizeof(why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_der),  cmocka_unit_test(test_padding),
        cmocka_unit_test(test_tcg_header), cmocka_unit_test(test_tcg_header_bad),
        cmocka_unit_test(test_trailing),   cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_not_der),    cmocka_unit_test(test_chain),
        cmocka_unit_test(test_pem),        cmocka_unit_test(test_arguments),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
