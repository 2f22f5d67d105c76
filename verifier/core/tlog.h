/* The issuance log's bytes: what one entry (a leaf of the Merkle tree,
 * verifier/core/merkle.h) says, and the signed tree head. Both encodings
 * are versioned and documented in docs/protocol.md ("The issuance log"), so
 * that a third party can check them with a few lines of code. Pure.
 *
 * Leaf, version 1 (all integers big-endian):
 *   u8   version = 1
 *   u8   type: 1 issued, 2 revoked
 *   u64  time: issued at, or revoked at (seconds since the epoch)
 *   u8   reason: 0 for an issuance; the RFC 5280 CRLReason of a revocation
 *   32   SHA-256 of the certificate's DER
 *   u8   n, then n bytes: the certificate serial (1..20 bytes, no leading
 *        zero byte: the ledger's lowercase hex, decoded)
 *   u8   n, then n bytes: the manufacturer (1..127)
 *   u8   n, then n bytes: the device serial (1..127)
 *
 * Tree head, signed by the log key (not the CA key):
 *   18   "devid/v1 tree head" (ASCII, no NUL)
 *   u64  tree size
 *   u64  timestamp (seconds since the epoch)
 *   32   root hash
 * Signed tree head: those 66 bytes, u16 signature length, the signature
 * (ECDSA or RSA PKCS#1 v1.5 with SHA-256 over the 66 bytes, or Ed25519 of
 * them). */
#ifndef DEVID_VERIFIER_CORE_TLOG_H
#define DEVID_VERIFIER_CORE_TLOG_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "verifier/core/merkle.h"

#define TLOG_LEAF_VERSION 1
#define TLOG_NAME_MAX 127
#define TLOG_SERIAL_MAX 20
#define TLOG_LEAF_MAX (43 + 1 + TLOG_SERIAL_MAX + 2 * (1 + TLOG_NAME_MAX))

#define TLOG_HEAD_CONTEXT "devid/v1 tree head"
#define TLOG_HEAD_CONTEXT_LEN 18
#define TLOG_TBS_LEN (TLOG_HEAD_CONTEXT_LEN + 8 + 8 + MERKLE_HASH_LEN)
#define TLOG_SIG_MAX 1024
#define TLOG_SIGNED_HEAD_MAX (TLOG_TBS_LEN + 2 + TLOG_SIG_MAX)

enum tlog_type {
    TLOG_ISSUED = 1,
    TLOG_REVOKED = 2,
};

/* One entry of the log. */
struct tlog_entry {
    enum tlog_type type;
    int64_t time;
    int reason;
    uint8_t cert_sha256[32];
    /* The serial as the ledger writes it: lowercase hex, no leading zero
     * byte (ledger_serial_normalize). */
    char cert_serial[2 * TLOG_SERIAL_MAX + 1];
    char manufacturer[TLOG_NAME_MAX + 1];
    char device_serial[TLOG_NAME_MAX + 1];
};

/* A tree head: what the log key signs. */
struct tlog_head {
    uint64_t size;
    int64_t timestamp;
    uint8_t root[MERKLE_HASH_LEN];
};

/*
 * tlog_leaf_encode writes the version 1 leaf of |e| into |out| (at most
 * TLOG_LEAF_MAX bytes; |*len| gets how many). Returns 0, or
 * DEVID_ERR_INVALID_ARGUMENT for an unknown type, a negative time, a reason
 * outside 0..255, a serial that is not 1..20 bytes of lowercase hex without
 * a leading zero byte, or a name that is empty or over 127 bytes.
 */
int tlog_leaf_encode(uint8_t out[TLOG_LEAF_MAX], size_t *len, const struct tlog_entry *e);

/*
 * tlog_leaf_decode fills |e| from the leaf |in| (|len| bytes). Returns 0, or
 * DEVID_ERR_PROTOCOL with what was wrong in |why|: another version, an
 * unknown type, truncation, a bad length, trailing bytes. Decoding and
 * encoding again gives the same bytes.
 */
int tlog_leaf_decode(struct tlog_entry *e, const uint8_t *in, size_t len, char *why,
                     size_t why_len);

/* tlog_head_tbs writes the 66 bytes the log key signs for |h| to |out|. */
void tlog_head_tbs(uint8_t out[TLOG_TBS_LEN], const struct tlog_head *h);

/*
 * tlog_signed_head_encode writes the signed head of |h| with signature
 * |sig| (|sig_len| bytes, 1..TLOG_SIG_MAX) to |out| (at least
 * TLOG_SIGNED_HEAD_MAX bytes); |*len| gets its length. Returns 0 or
 * DEVID_ERR_INVALID_ARGUMENT.
 */
int tlog_signed_head_encode(uint8_t *out, size_t *len, const struct tlog_head *h,
                            const uint8_t *sig, size_t sig_len);

/*
 * tlog_signed_head_parse fills |h| from the signed head |in| (|len| bytes)
 * and points |*sig| at its signature inside |in| (|*sig_len| bytes). It
 * checks the form only, not the signature. Returns 0, or DEVID_ERR_PROTOCOL
 * with what was wrong in |why|: the context string, truncation, a signature
 * length of 0 or over TLOG_SIG_MAX, trailing bytes, a negative timestamp.
 */
int tlog_signed_head_parse(struct tlog_head *h, const uint8_t **sig, size_t *sig_len,
                           const uint8_t *in, size_t len, char *why, size_t why_len);

/*
 * tlog_signed_head_verify parses the signed head |in| and checks its
 * signature with public key |pub|; |h| gets the head. Returns 0,
 * DEVID_ERR_PROTOCOL for a malformed head, or DEVID_ERR_REFUSED when the
 * signature does not verify; |why| says which.
 */
int tlog_signed_head_verify(struct tlog_head *h, const uint8_t *in, size_t len, EVP_PKEY *pub,
                            char *why, size_t why_len);

/*
 * Saved leaves: what `audit --save-leaves` keeps beside a saved head, so
 * that a later audit can name each entry a rewrite removed or changed (a
 * head alone carries only a root). The file is TLOG_LEAVES_MAGIC (20
 * bytes), a big-endian u64 count, then each leaf as a big-endian u16 length
 * and the leaf's bytes, in index order. It is authenticated by the signed
 * head it goes with: the leaves must hash to its root.
 */
#define TLOG_LEAVES_MAGIC "devid/v1 log leaves\n"
#define TLOG_LEAVES_MAGIC_LEN 20
#define TLOG_LEAVES_HEADER_LEN (TLOG_LEAVES_MAGIC_LEN + 8)

/* tlog_leaves_header writes the header for |count| leaves to |out|. */
void tlog_leaves_header(uint8_t out[TLOG_LEAVES_HEADER_LEN], uint64_t count);

/* tlog_leaves_frame writes the u16 length of a |len|-byte leaf (at most
 * TLOG_LEAF_MAX) to |out|. */
void tlog_leaves_frame(uint8_t out[2], size_t len);

/*
 * tlog_leaves_parse reads a saved-leaves file |in| (|len| bytes): it checks
 * the magic, then calls |each| with each leaf in order (index 0 first),
 * each 1..TLOG_LEAF_MAX bytes, and checks that exactly the count announced
 * is there and nothing after; |*count| gets it. It does not decode the
 * leaves. Returns 0, DEVID_ERR_PROTOCOL with what was wrong and where in
 * |why|, or the first nonzero value |each| returned.
 */
int tlog_leaves_parse(const uint8_t *in, size_t len, uint64_t *count,
                      int (*each)(void *arg, int64_t index, const uint8_t *leaf, size_t len),
                      void *arg, char *why, size_t why_len);

/* tlog_type_name returns "issued", "revoked" or "unknown". */
const char *tlog_type_name(int type);

#endif
