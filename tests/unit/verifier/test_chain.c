/* Unit tests for verifier/chain with CA hierarchies built in the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "testutil.h"
#include "verifier/core/chain.h"
#include "verifier/core/chain_memo.h"

struct pki {
    EVP_PKEY *root_key, *int_key, *leaf_key;
    X509 *root, *intermediate, *leaf;
    struct chain_store *store;
    STACK_OF(X509) *device;
};

static const struct tu_cert_spec root_spec = {
    .o = "Acme Devices",
    .cn = "Acme Root CA",
    .ca = 1,
    .not_before = TU_NOW - 365 * TU_DAY,
    .not_after = TU_NOW + 3650 * TU_DAY,
};
static const struct tu_cert_spec int_spec = {
    .o = "Acme Devices",
    .cn = "Acme IDevID CA 1",
    .ca = 1,
    .not_before = TU_NOW - 365 * TU_DAY,
    .not_after = TU_NOW + 3650 * TU_DAY,
};
static const struct tu_cert_spec leaf_spec = {
    .cn = "Widget 3000",
    .serial = "SN0001",
    .not_before = TU_NOW - 30 * TU_DAY,
    .not_after = TU_NOW + 3650 * TU_DAY,
    .hw_serial = "SN0001",
};

static int setup(void **state)
{
    struct pki *p = test_calloc(1, sizeof(*p));

    p->root_key = tu_ec_key();
    p->int_key = tu_ec_key();
    p->leaf_key = tu_ec_key();
    p->root = tu_cert(&root_spec, p->root_key, NULL, p->root_key);
    p->intermediate = tu_cert(&int_spec, p->int_key, p->root, p->root_key);
    p->leaf = tu_cert(&leaf_spec, p->leaf_key, p->intermediate, p->int_key);
    assert_non_null(p->store = chain_store_new());
    assert_int_equal(chain_store_add_root(p->store, p->root), 0);
    assert_non_null(p->device = sk_X509_new_null());
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct pki *p = *state;

    sk_X509_free(p->device);
    chain_store_free(p->store);
    X509_free(p->leaf);
    X509_free(p->intermediate);
    X509_free(p->root);
    EVP_PKEY_free(p->leaf_key);
    EVP_PKEY_free(p->int_key);
    EVP_PKEY_free(p->root_key);
    test_free(p);
    return 0;
}

static int verify(struct pki *p, X509 *leaf, time_t now, char *why, size_t why_len)
{
    struct chain_verdict v;
    int r = chain_verify(p->store, &v, leaf, p->device, now, why, why_len);

    if (r == 0) {
        assert_non_null(v.root);
        assert_int_equal(X509_cmp(v.root, p->root), 0);
    } else {
        assert_null(v.root);
        assert_true(why[0] != '\0');
    }
    chain_verdict_cleanup(&v);
    return r;
}

static void test_good_device_intermediate(void **state)
{
    struct pki *p = *state;
    struct chain_verdict v;
    char why[512] = "";

    sk_X509_push(p->device, p->intermediate);
    assert_int_equal(chain_store_root_count(p->store), 1);
    assert_int_equal(chain_verify(p->store, &v, p->leaf, p->device, TU_NOW, why, sizeof(why)), 0);
    assert_string_equal(v.manufacturer, "Acme Devices");
    chain_verdict_cleanup(&v);
    assert_null(v.root);
}

static void test_intermediate_needed(void **state)
{
    struct pki *p = *state;
    char why[512];

    assert_int_equal(verify(p, p->leaf, TU_NOW, why, sizeof(why)), DEVID_ERR_CHAIN_UNTRUSTED);
    assert_non_null(strstr(why, "CN=Widget 3000"));
    assert_non_null(strstr(why, "issuer"));
}

static void test_good_config_intermediate(void **state)
{
    struct pki *p = *state;
    char why[512];

    assert_int_equal(chain_store_add_intermediate(p->store, p->intermediate), 0);
    assert_int_equal(verify(p, p->leaf, TU_NOW, why, sizeof(why)), 0);
}

static void test_expired_leaf(void **state)
{
    struct pki *p = *state;
    char why[512];

    sk_X509_push(p->device, p->intermediate);
    assert_int_equal(verify(p, p->leaf, TU_NOW + 3651 * TU_DAY, why, sizeof(why)),
                     DEVID_ERR_CHAIN_EXPIRED);
    assert_non_null(strstr(why, "expired"));
}

static void test_not_yet_valid(void **state)
{
    struct pki *p = *state;
    char why[512];

    sk_X509_push(p->device, p->intermediate);
    assert_int_equal(verify(p, p->leaf, TU_NOW - 31 * TU_DAY, why, sizeof(why)),
                     DEVID_ERR_CHAIN_EXPIRED);
    assert_non_null(strstr(why, "Widget 3000"));
}

static void test_expired_intermediate(void **state)
{
    struct pki *p = *state;
    struct tu_cert_spec s = int_spec;
    X509 *old, *leaf;
    char why[512];

    s.not_after = TU_NOW - TU_DAY;
    old = tu_cert(&s, p->int_key, p->root, p->root_key);
    leaf = tu_cert(&leaf_spec, p->leaf_key, old, p->int_key);
    sk_X509_push(p->device, old);
    assert_int_equal(verify(p, leaf, TU_NOW, why, sizeof(why)), DEVID_ERR_CHAIN_EXPIRED);
    assert_non_null(strstr(why, "Acme IDevID CA 1"));
    X509_free(leaf);
    X509_free(old);
}

static void test_untrusted_root(void **state)
{
    struct pki *p = *state;
    EVP_PKEY *k = tu_ec_key(), *ik = tu_ec_key();
    X509 *root = tu_cert(&root_spec, k, NULL, k);
    X509 *in = tu_cert(&int_spec, ik, root, k);
    X509 *leaf = tu_cert(&leaf_spec, p->leaf_key, in, ik);
    char why[512];

    sk_X509_push(p->device, in);
    sk_X509_push(p->device, root);
    assert_int_equal(verify(p, leaf, TU_NOW, why, sizeof(why)), DEVID_ERR_CHAIN_UNTRUSTED);
    X509_free(leaf);
    X509_free(in);
    X509_free(root);
    EVP_PKEY_free(ik);
    EVP_PKEY_free(k);
}

static void test_self_signed_leaf(void **state)
{
    struct pki *p = *state;
    X509 *leaf = tu_cert(&leaf_spec, p->leaf_key, NULL, p->leaf_key);
    char why[512];

    assert_int_equal(verify(p, leaf, TU_NOW, why, sizeof(why)), DEVID_ERR_CHAIN_UNTRUSTED);
    X509_free(leaf);
}

static void test_intermediate_not_ca(void **state)
{
    struct pki *p = *state;
    struct tu_cert_spec s = int_spec;
    X509 *in, *leaf;
    char why[512];

    s.ca = 0;
    in = tu_cert(&s, p->int_key, p->root, p->root_key);
    leaf = tu_cert(&leaf_spec, p->leaf_key, in, p->int_key);
    sk_X509_push(p->device, in);
    assert_int_equal(verify(p, leaf, TU_NOW, why, sizeof(why)), DEVID_ERR_CHAIN_INVALID);
    X509_free(leaf);
    X509_free(in);
}

static void test_bad_signature(void **state)
{
    struct pki *p = *state;
    EVP_PKEY *k = tu_ec_key();
    X509 *leaf = tu_cert(&leaf_spec, p->leaf_key, p->intermediate, k);
    char why[512];

    sk_X509_push(p->device, p->intermediate);
    assert_int_equal(verify(p, leaf, TU_NOW, why, sizeof(why)), DEVID_ERR_CHAIN_INVALID);
    assert_non_null(strstr(why, "signature"));
    X509_free(leaf);
    EVP_PKEY_free(k);
}

static void test_manufacturer_from_cn(void **state)
{
    struct pki *p = *state;
    struct tu_cert_spec rs = root_spec, is = int_spec;
    struct chain_store *store = chain_store_new();
    X509 *root, *in, *leaf;
    struct chain_verdict v;
    char why[512];

    rs.o = NULL;
    is.o = NULL;
    root = tu_cert(&rs, p->root_key, NULL, p->root_key);
    in = tu_cert(&is, p->int_key, root, p->root_key);
    leaf = tu_cert(&leaf_spec, p->leaf_key, in, p->int_key);
    assert_int_equal(chain_store_add_root(store, root), 0);
    assert_int_equal(chain_store_add_intermediate(store, in), 0);
    assert_int_equal(chain_verify(store, &v, leaf, NULL, TU_NOW, why, sizeof(why)), 0);
    assert_string_equal(v.manufacturer, "Acme Root CA");
    chain_verdict_cleanup(&v);
    chain_store_free(store);
    chain_store_free(NULL);
    X509_free(leaf);
    X509_free(in);
    X509_free(root);
}

static void test_empty_store(void **state)
{
    struct pki *p = *state;
    struct chain_store *store = chain_store_new();
    struct chain_verdict v;
    char why[512];

    sk_X509_push(p->device, p->intermediate);
    sk_X509_push(p->device, p->root);
    assert_int_equal(chain_verify(store, &v, p->leaf, p->device, TU_NOW, why, sizeof(why)),
                     DEVID_ERR_CHAIN_UNTRUSTED);
    chain_store_free(store);
}

/* memo_verify: chain_memo_verify of p's leaf and device chain at |now|;
 * checks the verdict as verify() does. */
static int memo_verify(struct pki *p, struct chain_memo *m, const struct chain_store *store,
                       time_t now)
{
    struct chain_verdict v;
    char why[512];
    int r = chain_memo_verify(m, store, &v, p->leaf, p->device, now, why, sizeof(why));

    if (r == 0) {
        assert_int_equal(X509_cmp(v.root, p->root), 0);
        assert_int_equal(sk_X509_num(v.path), 3);
        assert_string_equal(v.manufacturer, "Acme Devices");
    } else {
        assert_null(v.root);
        assert_true(why[0] != '\0');
    }
    chain_verdict_cleanup(&v);
    return r;
}

/* The second verification on one connection reuses the first's verdict;
 * the verdict is the caller's own (freed above while the memo keeps its). */
static void test_memo_reused(void **state)
{
    struct pki *p = *state;
    struct chain_memo m = {0};

    sk_X509_push(p->device, p->intermediate);
    assert_int_equal(memo_verify(p, &m, p->store, TU_NOW), 0);
    assert_int_equal(memo_verify(p, &m, p->store, TU_NOW + 5), 0);
    assert_int_equal(m.verified, 1);
    assert_int_equal(m.reused, 1);
    /* The certificates are valid 3650 more days; a verdict holds at most 366. */
    assert_int_equal(m.until, TU_NOW + 366 * TU_DAY);
    chain_memo_cleanup(&m);
}

/* A new store (a reload), other intermediates, a time outside the window:
 * each verifies afresh. */
static void test_memo_not_reused(void **state)
{
    struct pki *p = *state;
    struct chain_store *other;
    struct chain_memo m = {0};

    sk_X509_push(p->device, p->intermediate);
    assert_int_equal(memo_verify(p, &m, p->store, TU_NOW), 0);
    assert_non_null(other = chain_store_new());
    assert_true(chain_store_id(other) != chain_store_id(p->store));
    assert_int_equal(chain_store_add_root(other, p->root), 0);
    assert_int_equal(memo_verify(p, &m, other, TU_NOW), 0);
    assert_int_equal(m.verified, 2);
    /* The reload removed the root: refused, although a verdict was kept. */
    chain_store_free(other);
    assert_non_null(other = chain_store_new());
    assert_int_equal(memo_verify(p, &m, other, TU_NOW), DEVID_ERR_CHAIN_UNTRUSTED);
    assert_int_equal(m.verified, 3);
    assert_int_equal(m.kept, 0);
    chain_store_free(other);
    assert_int_equal(memo_verify(p, &m, p->store, TU_NOW), 0);
    sk_X509_push(p->device, p->root);
    assert_int_equal(memo_verify(p, &m, p->store, TU_NOW), 0);
    assert_int_equal(m.verified, 5);
    assert_int_equal(memo_verify(p, &m, p->store, TU_NOW - 1), 0);
    assert_int_equal(memo_verify(p, &m, p->store, TU_NOW + 367 * TU_DAY), 0);
    assert_int_equal(m.verified, 7);
    /* Past the leaf's notAfter the answer is the refusal, not the memo. */
    assert_int_equal(memo_verify(p, &m, p->store, TU_NOW + 3651 * TU_DAY), DEVID_ERR_CHAIN_EXPIRED);
    assert_int_equal(m.reused, 0);
    chain_memo_cleanup(&m);
}

/* A refusal is not kept: the next request verifies again. */
static void test_memo_refusal_not_kept(void **state)
{
    struct pki *p = *state;
    struct chain_memo m = {0};

    assert_int_equal(memo_verify(p, &m, p->store, TU_NOW), DEVID_ERR_CHAIN_UNTRUSTED);
    sk_X509_push(p->device, p->intermediate);
    assert_int_equal(memo_verify(p, &m, p->store, TU_NOW), 0);
    assert_int_equal(m.verified, 2);
    /* Without a memo it is chain_verify. */
    assert_int_equal(memo_verify(p, NULL, p->store, TU_NOW), 0);
    assert_int_equal(m.verified + m.reused, 2);
    chain_memo_cleanup(&m);
}

/* der_of returns |x|'s DER (OPENSSL_free it) and its length in |*len|. */
static unsigned char *der_of(X509 *x, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);

    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

/* A certificate a request carries is the one TLS parsed when its bytes are
 * that one's, else parsed once per connection; bytes that are not one DER
 * certificate are refused whatever the memo holds. */
static void test_memo_der_cert(void **state)
{
    struct pki *p = *state;
    struct chain_memo m = {0};
    size_t ilen, rlen, zlen;
    unsigned char *inter = der_of(p->intermediate, &ilen), *root = der_of(p->root, &rlen), *zder;
    X509 *x, *y;
    int i;

    sk_X509_push(p->device, p->intermediate);
    assert_ptr_equal(x = chain_memo_der_cert(&m, p->device, inter, ilen, CHAIN_MAX_CERT_DER),
                     p->intermediate);
    X509_free(x);
    assert_int_equal(m.parse_reused, 1);
    assert_null(m.parsed);
    /* Not one TLS parsed: parsed, kept, and the same object the next time. */
    assert_non_null(x = chain_memo_der_cert(&m, p->device, root, rlen, CHAIN_MAX_CERT_DER));
    assert_int_equal(X509_cmp(x, p->root), 0);
    assert_ptr_not_equal(x, p->root);
    assert_ptr_equal(y = chain_memo_der_cert(&m, NULL, root, rlen, CHAIN_MAX_CERT_DER), x);
    assert_int_equal(m.parse_reused, 2);
    X509_free(y);
    /* Verifying afresh (another store) keeps the parsed certificates. */
    assert_int_equal(memo_verify(p, &m, p->store, TU_NOW), 0);
    assert_int_equal(sk_X509_num(m.parsed), 1);
    /* One byte more, one less, one changed, over the maximum: refused. */
    assert_null(chain_memo_der_cert(&m, p->device, root, rlen - 1, CHAIN_MAX_CERT_DER));
    assert_null(chain_memo_der_cert(&m, p->device, root, rlen, rlen - 1));
    root[rlen / 2] ^= 0x01;
    y = chain_memo_der_cert(&m, p->device, root, rlen, CHAIN_MAX_CERT_DER);
    assert_ptr_not_equal(y, x);
    X509_free(y);
    assert_null(chain_memo_der_cert(&m, NULL, NULL, 0, CHAIN_MAX_CERT_DER));
    /* What is kept stays within its bounds, however many come. */
    for (i = 0; i < 2 * CHAIN_MEMO_MAX_PARSED; i++) {
        X509 *z = tu_der_copy(p->root);

        assert_non_null(z);
        assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(z), 1000 + i), 1);
        zder = der_of(z, &zlen);
        assert_non_null(y = chain_memo_der_cert(&m, NULL, zder, zlen, CHAIN_MAX_CERT_DER));
        X509_free(y);
        OPENSSL_free(zder);
        X509_free(z);
    }
    assert_true(sk_X509_num(m.parsed) <= CHAIN_MEMO_MAX_PARSED);
    assert_true(m.parsed_bytes <= CHAIN_MEMO_MAX_PARSED_BYTES);
    /* Without a memo it is chain_der_cert. */
    assert_non_null(y = chain_memo_der_cert(NULL, NULL, inter, ilen, CHAIN_MAX_CERT_DER));
    assert_ptr_not_equal(y, p->intermediate);
    X509_free(y);
    X509_free(x);
    OPENSSL_free(inter);
    OPENSSL_free(root);
    chain_memo_cleanup(&m);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_good_device_intermediate),
        T(test_intermediate_needed),
        T(test_good_config_intermediate),
        T(test_expired_leaf),
        T(test_not_yet_valid),
        T(test_expired_intermediate),
        T(test_untrusted_root),
        T(test_self_signed_leaf),
        T(test_intermediate_not_ca),
        T(test_bad_signature),
        T(test_manufacturer_from_cn),
        T(test_empty_store),
        T(test_memo_reused),
        T(test_memo_not_reused),
        T(test_memo_refusal_not_kept),
        T(test_memo_der_cert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
