/* What `devid-verifier audit` and `show --proof` read from the ledger and
 * from operators' files (verifier/core/tlog.h, merkle.h): a log entry, a
 * signed tree head, and proofs. The first byte picks which:
 *   0  a leaf: one that decodes must encode back to the same bytes;
 *   1  a signed tree head: parsed, then its signature checked with the
 *      fixture's Ed25519 key; a refusal must say why;
 *   2  u64 index, u64 size, 32-byte leaf and root, then proof hashes: the
 *      inclusion and consistency verifiers must return without reading past
 *      the proof;
 *   3  a saved-leaves file (audit --earlier-leaves): each leaf handed out
 *      is decoded, and a refusal must say why. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "common/err.h"
#include "fuzzutil.h"
#include "verifier/core/merkle.h"
#include "verifier/core/tlog.h"

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void proofs(const uint8_t *data, size_t size)
{
    uint8_t proof[MERKLE_MAX_PROOF + 1][MERKLE_HASH_LEN];
    const uint8_t(*P)[MERKLE_HASH_LEN] = (const uint8_t(*)[MERKLE_HASH_LEN])proof;
    uint64_t a, b;
    size_t n;

    if (size < 16 + 2 * MERKLE_HASH_LEN)
        return;
    a = get_u64(data);
    b = get_u64(data + 8);
    n = (size - 16 - 2 * MERKLE_HASH_LEN) / MERKLE_HASH_LEN;
    if (n > MERKLE_MAX_PROOF + 1)
        n = MERKLE_MAX_PROOF + 1;
    memcpy(proof, data + 16 + 2 * MERKLE_HASH_LEN, n * MERKLE_HASH_LEN);
    (void)merkle_inclusion_verify(a, b, data + 16, P, n, data + 16 + MERKLE_HASH_LEN);
    (void)merkle_consistency_verify(a, b, data + 16, data + 16 + MERKLE_HASH_LEN, P, n);
}

static int each_leaf(void *arg, int64_t index, const uint8_t *leaf, size_t len)
{
    struct tlog_entry e;
    char why[256];

    (void)arg;
    if (index < 0 || len == 0 || len > TLOG_LEAF_MAX)
        abort();
    (void)tlog_leaf_decode(&e, leaf, len, why, sizeof(why));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct fu_world *w = fu_world();
    uint8_t again[TLOG_LEAF_MAX];
    struct tlog_entry e;
    struct tlog_head h;
    char why[256];
    size_t len;
    int r;

    if (size < 1)
        return 0;
    switch (data[0]) {
        case 0:
            if (tlog_leaf_decode(&e, data + 1, size - 1, why, sizeof(why)) == 0 &&
                (tlog_leaf_encode(again, &len, &e) != 0 || len != size - 1 ||
                 memcmp(again, data + 1, len) != 0))
                abort();
            break;
        case 1:
            why[0] = '\0';
            r = tlog_signed_head_verify(&h, data + 1, size - 1, w->inter_key, why, sizeof(why));
            if (r != 0 && why[0] == '\0')
                abort();
            break;
        case 2:
            proofs(data + 1, size - 1);
            break;
        case 3: {
            uint64_t count;

            why[0] = '\0';
            r = tlog_leaves_parse(data + 1, size - 1, &count, each_leaf, NULL, why, sizeof(why));
            if (r != 0 && why[0] == '\0')
                abort();
            break;
        }
    }
    ERR_clear_error();
    return 0;
}
