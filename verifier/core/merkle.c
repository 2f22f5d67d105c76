#include "verifier/core/merkle.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "common/err.h"

int merkle_leaf_hash(uint8_t out[MERKLE_HASH_LEN], const uint8_t *leaf, size_t len)
{
    static const uint8_t prefix = 0x00;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;

    ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, &prefix, 1) == 1 &&
         (len == 0 || EVP_DigestUpdate(ctx, leaf, len) == 1) &&
         EVP_DigestFinal_ex(ctx, out, NULL) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : DEVID_ERR_CRYPTO;
}

void merkle_node_hash(uint8_t out[MERKLE_HASH_LEN], const uint8_t left[MERKLE_HASH_LEN],
                      const uint8_t right[MERKLE_HASH_LEN])
{
    uint8_t buf[1 + 2 * MERKLE_HASH_LEN];

    buf[0] = 0x01;
    memcpy(buf + 1, left, MERKLE_HASH_LEN);
    memcpy(buf + 1 + MERKLE_HASH_LEN, right, MERKLE_HASH_LEN);
    SHA256(buf, sizeof(buf), out);
}

/* split returns the largest power of two below |n| (n > 1): RFC 6962's k. */
static size_t split(size_t n)
{
    size_t k = 1;

    while (k < n - k)
        k <<= 1;
    return k;
}

/* subtree sets |out| to MTH of the |n| >= 1 leaves at |leaves|. */
static void subtree(uint8_t out[MERKLE_HASH_LEN], const uint8_t (*leaves)[MERKLE_HASH_LEN],
                    size_t n)
{
    uint8_t left[MERKLE_HASH_LEN], right[MERKLE_HASH_LEN];
    size_t k;

    if (n == 1) {
        memcpy(out, leaves[0], MERKLE_HASH_LEN);
        return;
    }
    k = split(n);
    subtree(left, leaves, k);
    subtree(right, leaves + k, n - k);
    merkle_node_hash(out, left, right);
}

void merkle_root(uint8_t out[MERKLE_HASH_LEN], const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n)
{
    if (n == 0) {
        SHA256((const uint8_t *)"", 0, out);
        return;
    }
    subtree(out, leaves, n);
}

void merkle_compact_init(struct merkle_compact *c)
{
    memset(c, 0, sizeof(*c));
}

int merkle_compact_append(struct merkle_compact *c, const uint8_t leaf[MERKLE_HASH_LEN])
{
    uint64_t s;

    if (c->size == UINT64_MAX)
        return DEVID_ERR_TOO_LARGE;
    memcpy(c->node[c->n++], leaf, MERKLE_HASH_LEN);
    /* Each trailing one bit of the old size is a perfect subtree the new
     * leaf completes into one twice as large. */
    for (s = c->size; (s & 1) != 0; s >>= 1) {
        merkle_node_hash(c->node[c->n - 2], c->node[c->n - 2], c->node[c->n - 1]);
        c->n--;
    }
    c->size++;
    return 0;
}

void merkle_compact_root(const struct merkle_compact *c, uint8_t out[MERKLE_HASH_LEN])
{
    size_t i;

    if (c->n == 0) {
        SHA256((const uint8_t *)"", 0, out);
        return;
    }
    memcpy(out, c->node[c->n - 1], MERKLE_HASH_LEN);
    for (i = c->n - 1; i > 0; i--)
        merkle_node_hash(out, c->node[i - 1], out);
}

/* path appends PATH(m, D[n]) to |proof|. */
static void path(uint8_t (*proof)[MERKLE_HASH_LEN], size_t *len,
                 const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n, size_t m)
{
    size_t k;

    if (n <= 1)
        return;
    k = split(n);
    if (m < k) {
        path(proof, len, leaves, k, m);
        subtree(proof[(*len)++], leaves + k, n - k);
    } else {
        path(proof, len, leaves + k, n - k, m - k);
        subtree(proof[(*len)++], leaves, k);
    }
}

int merkle_inclusion_proof(uint8_t (*proof)[MERKLE_HASH_LEN], size_t *proof_len,
                           const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n, size_t index)
{
    *proof_len = 0;
    if (index >= n)
        return DEVID_ERR_INVALID_ARGUMENT;
    path(proof, proof_len, leaves, n, index);
    return 0;
}

/* subproof appends SUBPROOF(m, D[n], b) to |proof|. */
static void subproof(uint8_t (*proof)[MERKLE_HASH_LEN], size_t *len,
                     const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n, size_t m, int b)
{
    size_t k;

    if (m == n) {
        if (!b)
            subtree(proof[(*len)++], leaves, n);
        return;
    }
    k = split(n);
    if (m <= k) {
        subproof(proof, len, leaves, k, m, b);
        subtree(proof[(*len)++], leaves + k, n - k);
    } else {
        subproof(proof, len, leaves + k, n - k, m - k, 0);
        subtree(proof[(*len)++], leaves, k);
    }
}

int merkle_consistency_proof(uint8_t (*proof)[MERKLE_HASH_LEN], size_t *proof_len,
                             const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n, size_t m)
{
    *proof_len = 0;
    if (m > n)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (m == 0 || m == n)
        return 0;
    subproof(proof, proof_len, leaves, n, m, 1);
    return 0;
}

int merkle_inclusion_verify(uint64_t index, uint64_t size, const uint8_t leaf[MERKLE_HASH_LEN],
                            const uint8_t (*proof)[MERKLE_HASH_LEN], size_t proof_len,
                            const uint8_t root[MERKLE_HASH_LEN])
{
    uint8_t r[MERKLE_HASH_LEN];
    uint64_t fn = index, sn;
    size_t i;

    if (index >= size || proof_len > MERKLE_MAX_PROOF)
        return DEVID_ERR_REFUSED;
    sn = size - 1;
    memcpy(r, leaf, MERKLE_HASH_LEN);
    for (i = 0; i < proof_len; i++) {
        if (sn == 0)
            return DEVID_ERR_REFUSED;
        if ((fn & 1) != 0 || fn == sn) {
            merkle_node_hash(r, proof[i], r);
            while ((fn & 1) == 0 && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            merkle_node_hash(r, r, proof[i]);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0 || CRYPTO_memcmp(r, root, MERKLE_HASH_LEN) != 0)
        return DEVID_ERR_REFUSED;
    return 0;
}

int merkle_consistency_verify(uint64_t size1, uint64_t size2, const uint8_t root1[MERKLE_HASH_LEN],
                              const uint8_t root2[MERKLE_HASH_LEN],
                              const uint8_t (*proof)[MERKLE_HASH_LEN], size_t proof_len)
{
    uint8_t fr[MERKLE_HASH_LEN], sr[MERKLE_HASH_LEN];
    const uint8_t *first;
    uint64_t fn, sn;
    size_t i = 0;

    if (size1 > size2 || proof_len > MERKLE_MAX_PROOF)
        return DEVID_ERR_REFUSED;
    if (size1 == size2)
        return proof_len == 0 && CRYPTO_memcmp(root1, root2, MERKLE_HASH_LEN) == 0
                   ? 0
                   : DEVID_ERR_REFUSED;
    if (size1 == 0)
        return proof_len == 0 ? 0 : DEVID_ERR_REFUSED;
    if (proof_len == 0)
        return DEVID_ERR_REFUSED;
    /* A first tree of a power-of-two size is a node of the second: the
     * proof starts from its root, which the proof leaves out. */
    if ((size1 & (size1 - 1)) == 0) {
        first = root1;
    } else {
        first = proof[0];
        i = 1;
    }
    fn = size1 - 1;
    sn = size2 - 1;
    while ((fn & 1) != 0) {
        fn >>= 1;
        sn >>= 1;
    }
    memcpy(fr, first, MERKLE_HASH_LEN);
    memcpy(sr, first, MERKLE_HASH_LEN);
    for (; i < proof_len; i++) {
        if (sn == 0)
            return DEVID_ERR_REFUSED;
        if ((fn & 1) != 0 || fn == sn) {
            merkle_node_hash(fr, proof[i], fr);
            merkle_node_hash(sr, proof[i], sr);
            while ((fn & 1) == 0 && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            merkle_node_hash(sr, sr, proof[i]);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0 || CRYPTO_memcmp(fr, root1, MERKLE_HASH_LEN) != 0 ||
        CRYPTO_memcmp(sr, root2, MERKLE_HASH_LEN) != 0)
        return DEVID_ERR_REFUSED;
    return 0;
}
