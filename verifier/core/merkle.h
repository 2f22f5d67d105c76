/* Merkle hash trees as RFC 6962 section 2.1 defines them (and RFC 9162
 * section 2.1 verifies them), with SHA-256: the leaf hash, the tree hash of
 * any size, inclusion proofs (audit paths) and consistency proofs, made and
 * checked. Pure: hashes in, hashes out.
 *
 *   leaf hash   MTH({d}) = SHA-256(0x00 || d)
 *   node hash   SHA-256(0x01 || left || right)
 *   empty tree  MTH({}) = SHA-256("")
 *   n > 1       MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n])), k the largest
 *               power of two below n.
 *
 * A tree is given as the array of its leaf hashes, index 0 first. */
#ifndef DEVID_VERIFIER_CORE_MERKLE_H
#define DEVID_VERIFIER_CORE_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_LEN 32

/* The longest inclusion or consistency proof of a tree of up to 2^64
 * leaves: one hash per level, and one more for a consistency proof. */
#define MERKLE_MAX_PROOF 65

/* merkle_leaf_hash sets |out| to SHA-256(0x00 || |leaf|). Returns 0, or
 * DEVID_ERR_CRYPTO when OpenSSL could not hash. */
int merkle_leaf_hash(uint8_t out[MERKLE_HASH_LEN], const uint8_t *leaf, size_t len);

/* merkle_node_hash sets |out| to SHA-256(0x01 || |left| || |right|); |out|
 * may be either input. */
void merkle_node_hash(uint8_t out[MERKLE_HASH_LEN], const uint8_t left[MERKLE_HASH_LEN],
                      const uint8_t right[MERKLE_HASH_LEN]);

/* merkle_root sets |out| to the tree hash of the |n| leaf hashes at
 * |leaves| (SHA-256("") for none). */
void merkle_root(uint8_t out[MERKLE_HASH_LEN], const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n);

/* A tree being grown one leaf at a time: the roots of its perfect subtrees,
 * largest first (one per set bit of |size|), so that the tree hash of every
 * prefix is at hand without keeping the leaves. */
struct merkle_compact {
    uint64_t size;
    size_t n;
    uint8_t node[64][MERKLE_HASH_LEN];
};

/* merkle_compact_init makes |c| the empty tree. */
void merkle_compact_init(struct merkle_compact *c);

/* merkle_compact_append adds leaf hash |leaf| to |c|. Returns 0, or
 * DEVID_ERR_TOO_LARGE when |c| already holds 2^64 - 1 leaves. */
int merkle_compact_append(struct merkle_compact *c, const uint8_t leaf[MERKLE_HASH_LEN]);

/* merkle_compact_root sets |out| to the tree hash of the leaves appended to
 * |c| so far. */
void merkle_compact_root(const struct merkle_compact *c, uint8_t out[MERKLE_HASH_LEN]);

/*
 * merkle_inclusion_proof writes the audit path (RFC 6962 2.1.1) of leaf
 * |index| in the tree of the |n| leaf hashes at |leaves| into |proof|: at
 * most MERKLE_MAX_PROOF hashes, |*proof_len| of them, leaf side first.
 * Returns 0, or DEVID_ERR_INVALID_ARGUMENT when |index| >= |n|.
 */
int merkle_inclusion_proof(uint8_t (*proof)[MERKLE_HASH_LEN], size_t *proof_len,
                           const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n, size_t index);

/*
 * merkle_inclusion_verify returns 0 when |proof| (|proof_len| hashes) shows
 * that leaf hash |leaf| is at |index| in the tree of |size| leaves whose
 * hash is |root| (RFC 9162 2.1.3.2); otherwise DEVID_ERR_REFUSED. An index
 * outside the tree, a proof too short or too long, and a root that differs
 * are all refusals.
 */
int merkle_inclusion_verify(uint64_t index, uint64_t size, const uint8_t leaf[MERKLE_HASH_LEN],
                            const uint8_t (*proof)[MERKLE_HASH_LEN], size_t proof_len,
                            const uint8_t root[MERKLE_HASH_LEN]);

/*
 * merkle_consistency_proof writes the consistency proof (RFC 6962 2.1.2)
 * between the tree of the first |m| leaves and the tree of all |n| leaves
 * at |leaves| into |proof| (at most MERKLE_MAX_PROOF hashes, |*proof_len|
 * of them; none when m is 0 or m == n). Returns 0, or
 * DEVID_ERR_INVALID_ARGUMENT when |m| > |n|.
 */
int merkle_consistency_proof(uint8_t (*proof)[MERKLE_HASH_LEN], size_t *proof_len,
                             const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n, size_t m);

/*
 * merkle_consistency_verify returns 0 when |proof| shows that the tree of
 * |size1| leaves with hash |root1| is a prefix of the tree of |size2| leaves
 * with hash |root2| (RFC 9162 2.1.4.2); otherwise DEVID_ERR_REFUSED. Equal
 * sizes need equal roots and an empty proof; size1 0 is a prefix of every
 * tree (with an empty proof); size1 > size2 is refused.
 */
int merkle_consistency_verify(uint64_t size1, uint64_t size2, const uint8_t root1[MERKLE_HASH_LEN],
                              const uint8_t root2[MERKLE_HASH_LEN],
                              const uint8_t (*proof)[MERKLE_HASH_LEN], size_t proof_len);

#endif
