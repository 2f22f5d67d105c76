/* Unit tests for verifier/core/merkle: the RFC 6962 reference tree of 8
 * leaves (the vectors google/certificate-transparency and
 * transparency-dev/merkle publish: leaves, root of every size, inclusion and
 * consistency proofs), every proof of every tree up to 40 leaves made and
 * checked, and the corruptions a verifier must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/hex.h"
#include "verifier/core/merkle.h"

typedef uint8_t hash[MERKLE_HASH_LEN];

static const char *const inputs[8] = {
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
};

/* roots[n]: the tree hash of the first n leaves. */
static const char *const roots[9] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

struct vector {
    size_t a, b; /* inclusion: index, size; consistency: size1, size2 */
    size_t n;
    const char *proof[4];
};

/* Inclusion proofs (index 0-based). */
static const struct vector inclusions[] = {
    {0,
     8,
     3,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {5,
     8,
     3,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 3, 1, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {1,
     5,
     3,
     {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {0, 1, 0, {NULL}},
};

static const struct vector consistencies[] = {
    {1,
     8,
     3,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6,
     8,
     3,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2,
     5,
     2,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {6,
     7,
     3,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {1, 1, 0, {NULL}},
};

static void unhex(uint8_t *out, size_t len, const char *s)
{
    assert_int_equal(strlen(s), 2 * len);
    if (len > 0)
        assert_int_equal(hex_decode(out, len, s), 0);
}

static void reference_leaves(hash leaves[8])
{
    uint8_t buf[16];
    size_t i, n;

    for (i = 0; i < 8; i++) {
        n = strlen(inputs[i]) / 2;
        unhex(buf, n, inputs[i]);
        assert_int_equal(merkle_leaf_hash(leaves[i], buf, n), 0);
    }
}

static void assert_hash(const uint8_t *got, const char *want)
{
    char s[2 * MERKLE_HASH_LEN + 1];

    hex_encode(s, got, MERKLE_HASH_LEN);
    assert_string_equal(s, want);
}

static void test_reference_roots(void **state)
{
    struct merkle_compact c;
    hash leaves[8], root;
    size_t n;

    (void)state;
    reference_leaves(leaves);
    merkle_compact_init(&c);
    for (n = 0; n <= 8; n++) {
        merkle_root(root, (const uint8_t(*)[MERKLE_HASH_LEN])leaves, n);
        assert_hash(root, roots[n]);
        merkle_compact_root(&c, root);
        assert_hash(root, roots[n]);
        if (n < 8)
            assert_int_equal(merkle_compact_append(&c, leaves[n]), 0);
    }
}

static void test_reference_inclusion(void **state)
{
    hash leaves[8], proof[MERKLE_MAX_PROOF], want[4], root;
    size_t i, k, len;

    (void)state;
    reference_leaves(leaves);
    for (i = 0; i < sizeof(inclusions) / sizeof(inclusions[0]); i++) {
        const struct vector *v = &inclusions[i];

        assert_int_equal(merkle_inclusion_proof(
                             proof, &len, (const uint8_t(*)[MERKLE_HASH_LEN])leaves, v->b, v->a),
                         0);
        assert_int_equal(len, v->n);
        for (k = 0; k < v->n; k++) {
            assert_hash(proof[k], v->proof[k]);
            unhex(want[k], MERKLE_HASH_LEN, v->proof[k]);
        }
        unhex(root, MERKLE_HASH_LEN, roots[v->b]);
        assert_int_equal(
            merkle_inclusion_verify(v->a, v->b, leaves[v->a],
                                    (const uint8_t(*)[MERKLE_HASH_LEN])want, v->n, root),
            0);
    }
}

static void test_reference_consistency(void **state)
{
    hash leaves[8], proof[MERKLE_MAX_PROOF], want[4], r1, r2;
    size_t i, k, len;

    (void)state;
    reference_leaves(leaves);
    for (i = 0; i < sizeof(consistencies) / sizeof(consistencies[0]); i++) {
        const struct vector *v = &consistencies[i];

        assert_int_equal(merkle_consistency_proof(
                             proof, &len, (const uint8_t(*)[MERKLE_HASH_LEN])leaves, v->b, v->a),
                         0);
        assert_int_equal(len, v->n);
        for (k = 0; k < v->n; k++) {
            assert_hash(proof[k], v->proof[k]);
            unhex(want[k], MERKLE_HASH_LEN, v->proof[k]);
        }
        unhex(r1, MERKLE_HASH_LEN, roots[v->a]);
        unhex(r2, MERKLE_HASH_LEN, roots[v->b]);
        assert_int_equal(merkle_consistency_verify(v->a, v->b, r1, r2,
                                                   (const uint8_t(*)[MERKLE_HASH_LEN])want, v->n),
                         0);
    }
}

#define BIG 40

static void big_tree(hash leaves[BIG])
{
    uint8_t b[2];
    size_t i;

    for (i = 0; i < BIG; i++) {
        b[0] = (uint8_t)i;
        b[1] = (uint8_t)(i * 7);
        assert_int_equal(merkle_leaf_hash(leaves[i], b, 2), 0);
    }
}

/* Every leaf of every tree up to BIG leaves: its proof verifies, and with
 * the wrong index, size, leaf or root, or a changed, shortened or
 * lengthened proof, it does not. */
static void test_every_inclusion(void **state)
{
    hash leaves[BIG], proof[MERKLE_MAX_PROOF + 1], root, other;
    const uint8_t(*L)[MERKLE_HASH_LEN] = (const uint8_t(*)[MERKLE_HASH_LEN])leaves;
    const uint8_t(*P)[MERKLE_HASH_LEN] = (const uint8_t(*)[MERKLE_HASH_LEN])proof;
    size_t n, i, k, len;

    (void)state;
    big_tree(leaves);
    memset(other, 0xab, sizeof(other));
    for (n = 1; n <= BIG; n++) {
        merkle_root(root, L, n);
        for (i = 0; i < n; i++) {
            assert_int_equal(merkle_inclusion_proof(proof, &len, L, n, i), 0);
            assert_int_equal(merkle_inclusion_verify(i, n, leaves[i], P, len, root), 0);
            assert_int_not_equal(merkle_inclusion_verify(i, n, other, P, len, root), 0);
            assert_int_not_equal(merkle_inclusion_verify(i, n, leaves[i], P, len, other), 0);
            assert_int_not_equal(merkle_inclusion_verify(n, n, leaves[i], P, len, root), 0);
            if (n > 1)
                assert_int_not_equal(
                    merkle_inclusion_verify((i + 1) % n, n, leaves[i], P, len, root), 0);
            assert_int_not_equal(merkle_inclusion_verify(i, 2 * n + 1, leaves[i], P, len, root), 0);
            if (len > 0)
                assert_int_not_equal(merkle_inclusion_verify(i, n, leaves[i], P, len - 1, root), 0);
            memcpy(proof[len], root, MERKLE_HASH_LEN);
            assert_int_not_equal(merkle_inclusion_verify(i, n, leaves[i], P, len + 1, root), 0);
            for (k = 0; k < len; k++) {
                proof[k][0] ^= 8;
                assert_int_not_equal(merkle_inclusion_verify(i, n, leaves[i], P, len, root), 0);
                proof[k][0] ^= 8;
            }
        }
        assert_int_equal(merkle_inclusion_proof(proof, &len, L, n, n), DEVID_ERR_INVALID_ARGUMENT);
    }
}

/* Every pair of sizes up to BIG: the proof verifies, and a changed one, a
 * wrong size or a wrong root does not. (A second size one larger can pass
 * when its path has the same shape: the algorithm cannot tell a leaf hash
 * from a node hash, so, like the reference tests, this tries 2n and n/2.) */
static void test_every_consistency(void **state)
{
    hash leaves[BIG], proof[MERKLE_MAX_PROOF + 1], r1, r2;
    const uint8_t(*L)[MERKLE_HASH_LEN] = (const uint8_t(*)[MERKLE_HASH_LEN])leaves;
    const uint8_t(*P)[MERKLE_HASH_LEN] = (const uint8_t(*)[MERKLE_HASH_LEN])proof;
    size_t m, n, k, len;

    (void)state;
    big_tree(leaves);
    for (n = 0; n <= BIG; n++) {
        merkle_root(r2, L, n);
        for (m = 0; m <= n; m++) {
            merkle_root(r1, L, m);
            assert_int_equal(merkle_consistency_proof(proof, &len, L, n, m), 0);
            assert_int_equal(merkle_consistency_verify(m, n, r1, r2, P, len), 0);
            if (m == 0 || m == n)
                continue;
            assert_int_not_equal(merkle_consistency_verify(m, n, r2, r2, P, len), 0);
            assert_int_not_equal(merkle_consistency_verify(m, n, r1, r1, P, len), 0);
            assert_int_not_equal(merkle_consistency_verify(m - 1, n, r1, r2, P, len), 0);
            assert_int_not_equal(merkle_consistency_verify(m, 2 * n, r1, r2, P, len), 0);
            if (n / 2 >= m)
                assert_int_not_equal(merkle_consistency_verify(m, n / 2, r1, r2, P, len), 0);
            assert_int_not_equal(merkle_consistency_verify(n, m, r2, r1, P, len), 0);
            assert_int_not_equal(merkle_consistency_verify(m, n, r1, r2, P, len - 1), 0);
            memcpy(proof[len], r1, MERKLE_HASH_LEN);
            assert_int_not_equal(merkle_consistency_verify(m, n, r1, r2, P, len + 1), 0);
            for (k = 0; k < len; k++) {
                proof[k][0] ^= 16;
                assert_int_not_equal(merkle_consistency_verify(m, n, r1, r2, P, len), 0);
                proof[k][0] ^= 16;
            }
        }
    }
    assert_int_equal(merkle_consistency_proof(proof, &len, L, 3, 4), DEVID_ERR_INVALID_ARGUMENT);
}

/* The edge cases RFC 9162 and the reference verifier agree on. */
static void test_consistency_edges(void **state)
{
    hash a, b;

    (void)state;
    memset(a, 1, sizeof(a));
    memset(b, 2, sizeof(b));
    assert_int_equal(merkle_consistency_verify(0, 0, a, a, NULL, 0), 0);
    assert_int_equal(merkle_consistency_verify(0, 5, a, b, NULL, 0), 0);
    assert_int_equal(merkle_consistency_verify(3, 3, a, a, NULL, 0), 0);
    assert_int_not_equal(merkle_consistency_verify(3, 3, a, b, NULL, 0), 0);
    assert_int_not_equal(merkle_consistency_verify(2, 1, a, b, NULL, 0), 0);
    assert_int_not_equal(merkle_consistency_verify(1, 2, a, b, NULL, 0), 0);
    assert_int_not_equal(merkle_consistency_verify(0, 1, a, b, (const uint8_t(*)[32])a, 1), 0);
    assert_int_not_equal(merkle_inclusion_verify(0, 0, a, NULL, 0, a), 0);
    assert_int_equal(merkle_inclusion_verify(0, 1, a, NULL, 0, a), 0);
    assert_int_not_equal(merkle_inclusion_verify(0, 1, a, NULL, 0, b), 0);
}

/* A compact tree gives the root of every prefix, as merkle_root does. */
static void test_compact_prefixes(void **state)
{
    hash leaves[BIG], r1, r2;
    struct merkle_compact c;
    size_t n;

    (void)state;
    big_tree(leaves);
    merkle_compact_init(&c);
    for (n = 0; n < BIG; n++) {
        assert_int_equal(merkle_compact_append(&c, leaves[n]), 0);
        merkle_root(r1, (const uint8_t(*)[MERKLE_HASH_LEN])leaves, n + 1);
        merkle_compact_root(&c, r2);
        assert_memory_equal(r1, r2, MERKLE_HASH_LEN);
    }
    assert_int_equal(c.size, BIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_roots),       cmocka_unit_test(test_reference_inclusion),
        cmocka_unit_test(test_reference_consistency), cmocka_unit_test(test_every_inclusion),
        cmocka_unit_test(test_every_consistency),     cmocka_unit_test(test_consistency_edges),
        cmocka_unit_test(test_compact_prefixes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
