/* Unit tests for verifier/core/tlog (the log's leaf and signed tree head),
 * the tree head request of verifier/core/signreq and the signer's check of
 * it (signcheck_tree_head): each encoding round-trips to the same bytes,
 * each malformation is refused with its reason, a head signed with the log
 * key verifies and a changed one does not, and the signer signs a head that
 * extends its last one and refuses one that does not; a saved-leaves file
 * parses, and truncation, bad lengths, trailing bytes and another magic are
 * refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "common/err.h"
#include "testutil.h"
#include "verifier/core/merkle.h"
#include "verifier/core/signcheck.h"
#include "verifier/core/signreq.h"
#include "verifier/core/tlog.h"

static void sample(struct tlog_entry *e, enum tlog_type type)
{
    memset(e, 0, sizeof(*e));
    e->type = type;
    e->time = TU_NOW;
    e->reason = type == TLOG_REVOKED ? 1 : 0;
    memset(e->cert_sha256, 0x5a, sizeof(e->cert_sha256));
    snprintf(e->cert_serial, sizeof(e->cert_serial), "7f0102030405060708");
    snprintf(e->manufacturer, sizeof(e->manufacturer), "Example Devices");
    snprintf(e->device_serial, sizeof(e->device_serial), "SN0001");
}

static void test_leaf_round_trip(void **state)
{
    struct tlog_entry in, out;
    uint8_t buf[TLOG_LEAF_MAX], again[TLOG_LEAF_MAX];
    size_t len, len2;
    char why[256];
    int t;

    (void)state;
    for (t = TLOG_ISSUED; t <= TLOG_REVOKED; t++) {
        sample(&in, (enum tlog_type)t);
        assert_int_equal(tlog_leaf_encode(buf, &len, &in), 0);
        assert_int_equal(len, 44 + 9 + 1 + 15 + 1 + 6);
        assert_int_equal(buf[0], 1);
        assert_int_equal(buf[1], t);
        assert_int_equal(tlog_leaf_decode(&out, buf, len, why, sizeof(why)), 0);
        assert_int_equal(out.type, t);
        assert_int_equal(out.time, TU_NOW);
        assert_string_equal(out.cert_serial, in.cert_serial);
        assert_string_equal(out.manufacturer, in.manufacturer);
        assert_string_equal(out.device_serial, in.device_serial);
        assert_memory_equal(out.cert_sha256, in.cert_sha256, 32);
        assert_int_equal(tlog_leaf_encode(again, &len2, &out), 0);
        assert_int_equal(len2, len);
        assert_memory_equal(again, buf, len);
    }
}

static void test_leaf_refused(void **state)
{
    struct tlog_entry e, out;
    uint8_t buf[TLOG_LEAF_MAX + 1];
    size_t len;
    char why[256];

    (void)state;
    sample(&e, TLOG_ISSUED);
    e.reason = 1;
    assert_int_equal(tlog_leaf_encode(buf, &len, &e), DEVID_ERR_INVALID_ARGUMENT);
    sample(&e, TLOG_ISSUED);
    snprintf(e.cert_serial, sizeof(e.cert_serial), "00ff");
    assert_int_equal(tlog_leaf_encode(buf, &len, &e), DEVID_ERR_INVALID_ARGUMENT);
    snprintf(e.cert_serial, sizeof(e.cert_serial), "ABCD");
    assert_int_equal(tlog_leaf_encode(buf, &len, &e), DEVID_ERR_INVALID_ARGUMENT);
    sample(&e, TLOG_ISSUED);
    e.manufacturer[0] = '\0';
    assert_int_equal(tlog_leaf_encode(buf, &len, &e), DEVID_ERR_INVALID_ARGUMENT);

    sample(&e, TLOG_REVOKED);
    assert_int_equal(tlog_leaf_encode(buf, &len, &e), 0);
    assert_int_equal(tlog_leaf_decode(&out, buf, len - 1, why, sizeof(why)), DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "device serial"));
    buf[len] = 0;
    assert_int_equal(tlog_leaf_decode(&out, buf, len + 1, why, sizeof(why)), DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "bytes after"));
    buf[0] = 2;
    assert_int_equal(tlog_leaf_decode(&out, buf, len, why, sizeof(why)), DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "version"));
    buf[0] = 1;
    buf[1] = 3;
    assert_int_equal(tlog_leaf_decode(&out, buf, len, why, sizeof(why)), DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "type"));
    buf[1] = 2;
    assert_int_equal(tlog_leaf_decode(&out, buf, 20, why, sizeof(why)), DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "truncated"));
    assert_int_equal(tlog_leaf_decode(&out, buf, len, why, sizeof(why)), 0);
}

static size_t sign_head(uint8_t *out, EVP_PKEY *key, const struct tlog_head *h)
{
    uint8_t tbs[TLOG_TBS_LEN], sig[TLOG_SIG_MAX];
    size_t sig_len = sizeof(sig), len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    tlog_head_tbs(tbs, h);
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &sig_len, tbs, sizeof(tbs)), 1);
    EVP_MD_CTX_free(ctx);
    assert_int_equal(tlog_signed_head_encode(out, &len, h, sig, sig_len), 0);
    return len;
}

struct collected {
    size_t n;
    size_t lens[4];
};

static int collect(void *arg, int64_t index, const uint8_t *leaf, size_t len)
{
    struct collected *c = arg;

    (void)leaf;
    assert_int_equal(index, (int64_t)c->n);
    assert_true(c->n < 4);
    c->lens[c->n++] = len;
    return 0;
}

/* saved_leaves writes the issued and revoked samples as a leaves file. */
static size_t saved_leaves(uint8_t *out)
{
    struct tlog_entry e;
    size_t off = TLOG_LEAVES_HEADER_LEN, len;
    int t;

    tlog_leaves_header(out, 2);
    for (t = TLOG_ISSUED; t <= TLOG_REVOKED; t++) {
        sample(&e, (enum tlog_type)t);
        assert_int_equal(tlog_leaf_encode(out + off + 2, &len, &e), 0);
        tlog_leaves_frame(out + off, len);
        off += 2 + len;
    }
    return off;
}

static void test_saved_leaves(void **state)
{
    uint8_t buf[TLOG_LEAVES_HEADER_LEN + 2 * (2 + TLOG_LEAF_MAX) + 1];
    struct collected c;
    uint64_t count;
    char why[256];
    size_t len, first;

    (void)state;
    len = saved_leaves(buf);
    assert_memory_equal(buf, "devid/v1 log leaves\n", 20);
    memset(&c, 0, sizeof(c));
    assert_int_equal(tlog_leaves_parse(buf, len, &count, collect, &c, why, sizeof(why)), 0);
    assert_int_equal(count, 2);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.lens[0], 44 + 9 + 1 + 15 + 1 + 6);
    first = c.lens[0];

    /* Truncated in the second leaf, or in its length. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(tlog_leaves_parse(buf, len - 1, &count, collect, &c, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "leaf 1 at byte"));
    memset(&c, 0, sizeof(c));
    assert_int_equal(tlog_leaves_parse(buf, TLOG_LEAVES_HEADER_LEN + 2 + first + 1, &count, collect,
                                       &c, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "2 announced, the file ends after 1"));
    /* A byte after the last leaf. */
    buf[len] = 0;
    memset(&c, 0, sizeof(c));
    assert_int_equal(tlog_leaves_parse(buf, len + 1, &count, collect, &c, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "1 bytes after leaf 2"));
    /* A leaf length of 0, and one above the largest leaf. */
    buf[TLOG_LEAVES_HEADER_LEN] = 0;
    buf[TLOG_LEAVES_HEADER_LEN + 1] = 0;
    memset(&c, 0, sizeof(c));
    assert_int_equal(tlog_leaves_parse(buf, len, &count, collect, &c, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "leaf 0 at byte 28 has a bad length 0"));
    tlog_leaves_frame(buf + TLOG_LEAVES_HEADER_LEN, TLOG_LEAF_MAX + 1);
    assert_int_equal(tlog_leaves_parse(buf, len, &count, collect, &c, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    /* Another magic: a signed head is not a leaves file. */
    len = saved_leaves(buf);
    buf[0] = 'D';
    assert_int_equal(tlog_leaves_parse(buf, len, &count, collect, &c, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "not a devid leaves file"));
    /* A count above what is there is refused, not trusted for memory. */
    len = saved_leaves(buf);
    tlog_leaves_header(buf, UINT64_MAX);
    memset(&c, 0, sizeof(c));
    assert_int_equal(tlog_leaves_parse(buf, len, &count, collect, &c, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_int_equal(count, 0);
}

static void test_signed_head(void **state)
{
    EVP_PKEY *key = tu_ec_key(), *other = tu_ec_key();
    struct tlog_head h = {1000, TU_NOW, {0}}, got;
    uint8_t buf[TLOG_SIGNED_HEAD_MAX + 1];
    char why[256];
    size_t len, i;

    (void)state;
    memset(h.root, 0xc3, sizeof(h.root));
    len = sign_head(buf, key, &h);
    assert_memory_equal(buf, "devid/v1 tree head", 18);
    assert_int_equal(tlog_signed_head_verify(&got, buf, len, key, why, sizeof(why)), 0);
    assert_int_equal(got.size, 1000);
    assert_int_equal(got.timestamp, TU_NOW);
    assert_memory_equal(got.root, h.root, 32);
    assert_int_equal(tlog_signed_head_verify(&got, buf, len, other, why, sizeof(why)),
                     DEVID_ERR_REFUSED);
    assert_non_null(strstr(why, "does not verify"));
    /* Any changed byte of the head, size, time or root, is refused. */
    for (i = 18; i < TLOG_TBS_LEN; i++) {
        buf[i] ^= 1;
        assert_int_not_equal(tlog_signed_head_verify(&got, buf, len, key, why, sizeof(why)), 0);
        buf[i] ^= 1;
    }
    buf[0] = 'D';
    assert_int_equal(tlog_signed_head_verify(&got, buf, len, key, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    buf[0] = 'd';
    buf[len] = 0;
    assert_int_equal(tlog_signed_head_verify(&got, buf, len + 1, key, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_int_equal(tlog_signed_head_verify(&got, buf, 40, key, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_int_equal(tlog_signed_head_verify(&got, buf, len, key, why, sizeof(why)), 0);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static void test_request_round_trip(void **state)
{
    struct signreq_tree_head in, out;
    uint8_t buf[SIGNREQ_MAX_TREE_HEAD], again[SIGNREQ_MAX_TREE_HEAD];
    size_t len, len2;
    char why[256];

    (void)state;
    memset(&in, 0, sizeof(in));
    in.head.size = 7;
    in.head.timestamp = TU_NOW;
    memset(in.head.root, 1, 32);
    in.proof_len = 3;
    memset(in.proof, 9, sizeof(in.proof[0]) * 3);
    assert_int_equal(signreq_tree_head_encode(buf, &len, &in), 0);
    assert_int_equal(len, SIGNREQ_TREE_HEAD_FIXED + 96);
    assert_int_equal(signreq_tree_head_decode(&out, buf, len, why, sizeof(why)), 0);
    assert_int_equal(signreq_tree_head_encode(again, &len2, &out), 0);
    assert_int_equal(len2, len);
    assert_memory_equal(again, buf, len);
    assert_int_equal(signreq_tree_head_decode(&out, buf, len - 1, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "proof of 3 hashes"));
    buf[16 + 32] = MERKLE_MAX_PROOF + 1;
    assert_int_equal(signreq_tree_head_decode(&out, buf, len, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_int_equal(signreq_tree_head_decode(&out, buf, 10, why, sizeof(why)), DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "shorter"));
}

/* The signer's rules: a head that extends the last one (with its proof) is
 * signed; a smaller one, a fork, a same-size other root, a stale or
 * backwards timestamp are refused, each with its reason. */
static void test_signcheck_tree_head(void **state)
{
    uint8_t leaves[10][MERKLE_HASH_LEN], forked[10][MERKLE_HASH_LEN], b = 0;
    const uint8_t(*L)[MERKLE_HASH_LEN] = (const uint8_t(*)[MERKLE_HASH_LEN])leaves;
    struct signreq_tree_head req;
    struct tlog_head last;
    char why[256];
    size_t i;

    (void)state;
    for (i = 0; i < 10; i++) {
        b = (uint8_t)i;
        assert_int_equal(merkle_leaf_hash(leaves[i], &b, 1), 0);
    }
    memcpy(forked, leaves, sizeof(leaves));
    forked[2][0] ^= 1;
    last.size = 4;
    last.timestamp = TU_NOW - 10;
    merkle_root(last.root, L, 4);

    memset(&req, 0, sizeof(req));
    req.head.size = 10;
    req.head.timestamp = TU_NOW;
    merkle_root(req.head.root, L, 10);
    assert_int_equal(merkle_consistency_proof(req.proof, &req.proof_len, L, 10, 4), 0);
    assert_int_equal(signcheck_tree_head(&req, &last, TU_NOW, why, sizeof(why)), 0);
    assert_int_equal(signcheck_tree_head(&req, NULL, TU_NOW, why, sizeof(why)), 0);

    assert_int_equal(signcheck_tree_head(&req, &last, TU_NOW + 3600, why, sizeof(why)),
                     DEVID_ERR_REFUSED);
    assert_non_null(strstr(why, "is not now"));

    last.timestamp = TU_NOW + 1;
    assert_int_equal(signcheck_tree_head(&req, &last, TU_NOW, why, sizeof(why)), DEVID_ERR_REFUSED);
    assert_non_null(strstr(why, "before"));
    last.timestamp = TU_NOW - 10;

    /* The same size: the same root, no proof. */
    req.head.size = 4;
    merkle_root(req.head.root, L, 4);
    req.proof_len = 0;
    assert_int_equal(signcheck_tree_head(&req, &last, TU_NOW, why, sizeof(why)), 0);
    req.head.root[0] ^= 1;
    assert_int_equal(signcheck_tree_head(&req, &last, TU_NOW, why, sizeof(why)), DEVID_ERR_REFUSED);
    assert_non_null(strstr(why, "does not extend"));

    req.head.size = 3;
    merkle_root(req.head.root, L, 3);
    assert_int_equal(signcheck_tree_head(&req, &last, TU_NOW, why, sizeof(why)), DEVID_ERR_REFUSED);
    assert_non_null(strstr(why, "below 4"));

    /* A fork: a tree of 10 whose third leaf differs, with its own proof. */
    req.head.size = 10;
    merkle_root(req.head.root, (const uint8_t(*)[MERKLE_HASH_LEN])forked, 10);
    assert_int_equal(merkle_consistency_proof(req.proof, &req.proof_len,
                                              (const uint8_t(*)[MERKLE_HASH_LEN])forked, 10, 4),
                     0);
    assert_int_equal(signcheck_tree_head(&req, &last, TU_NOW, why, sizeof(why)), DEVID_ERR_REFUSED);
    assert_non_null(strstr(why, "does not extend the last one signed (size 4)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leaf_round_trip),     cmocka_unit_test(test_leaf_refused),
        cmocka_unit_test(test_signed_head),         cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_signcheck_tree_head), cmocka_unit_test(test_saved_leaves),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
