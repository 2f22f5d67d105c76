/* The signer's wire: what the serving process and the privilege-separated
 * signer (verifier/pki/signer.c) say to each other over their socketpair.
 * Pure: bytes in, bytes out; the shells do the reading and writing.
 *
 * Every message, either way, is a 5-byte head and a body:
 *   u32 big-endian  body length (the type byte not included)
 *   u8              type (a request) or status (an answer)
 *   body
 * Each request type has a fixed maximum body, checked from the head before
 * anything is allocated or read, so a hostile worker cannot make the signer
 * allocate more than that. The request table is fixed: sign an operational
 * certificate, sign a CRL, sign the issuance log's tree head (with the log
 * key, never the CA key). */
#ifndef DEVID_VERIFIER_CORE_SIGNREQ_H
#define DEVID_VERIFIER_CORE_SIGNREQ_H

#include <stddef.h>
#include <stdint.h>

#include "verifier/core/crl.h"
#include "verifier/core/merkle.h"
#include "verifier/core/tlog.h"

#define SIGNREQ_HEAD_LEN 5
/* The largest certificate request body: one X509 DER. */
#define SIGNREQ_MAX_CERT 16384
/* A CRL entry on the wire: serial length, serial hex (at most 40), revoked
 * at, reason. */
#define SIGNREQ_CRL_ENTRY_MAX (1 + 40 + 8 + 1)
#define SIGNREQ_CRL_FIXED (8 + 8 + 8 + 4)
/* The largest CRL request body: CRL_MAX_ENTRIES entries. */
#define SIGNREQ_MAX_CRL (SIGNREQ_CRL_FIXED + (size_t)CRL_MAX_ENTRIES * SIGNREQ_CRL_ENTRY_MAX)
/* A tree head request: size, timestamp, root, proof count, proof. */
#define SIGNREQ_TREE_HEAD_FIXED (8 + 8 + MERKLE_HASH_LEN + 1)
#define SIGNREQ_MAX_TREE_HEAD (SIGNREQ_TREE_HEAD_FIXED + MERKLE_MAX_PROOF * MERKLE_HASH_LEN)
/* The largest answer body: a signed CRL of CRL_MAX_ENTRIES entries, or a
 * refusal's reason. */
#define SIGNREQ_MAX_ANSWER (SIGNREQ_MAX_CRL + 4096)
/* The longest refusal reason. */
#define SIGNREQ_MAX_WHY 512

/* The request table. The numbers are the wire's; append only. */
enum signreq_type {
    /* Body: an operational certificate's DER, with a placeholder signature
     * the signer replaces. Answer: the signed certificate's DER. */
    SIGNREQ_CERT = 1,
    /* Body: a CRL's contents (struct signreq_crl). Answer: the signed
     * CRL's DER. */
    SIGNREQ_CRL = 2,
    /* Body: a tree head and the consistency proof from the last head the
     * signer signed (struct signreq_tree_head). Answer: the signed tree
     * head (verifier/core/tlog.h), signed with the log key. */
    SIGNREQ_TREE_HEAD = 3,
};

/* The status byte of an answer. */
enum signreq_status {
    /* Body: the signed DER. */
    SIGNREQ_SIGNED = 0,
    /* Body: why the request was refused (text, at most SIGNREQ_MAX_WHY). */
    SIGNREQ_REFUSED = 1,
    /* Body: why the signer could not sign (text): its key or provider
     * failed. */
    SIGNREQ_FAILED = 2,
};

/* What a CRL request carries: crl_build's inputs. */
struct signreq_crl {
    uint64_t number;
    int64_t this_update;
    int64_t next_update_seconds;
    size_t n;
    /* |n| entries. */
    struct crl_entry *entries;
    /* Decoded: the NUL-terminated serials |entries| point at. */
    char *serials;
};

/* What a tree head request carries: the head to sign, and the consistency
 * proof (RFC 6962 2.1.2) from the last head this signer signed to it (empty
 * for the first head, or one of the same size). */
struct signreq_tree_head {
    struct tlog_head head;
    size_t proof_len;
    uint8_t proof[MERKLE_MAX_PROOF][MERKLE_HASH_LEN];
};

/*
 * signreq_head_parse reads the 5-byte head in |head|: |*type| gets the type
 * or status byte and |*body_len| the body length. As a request head
 * (|answer| 0) an unknown type or a body over its type's maximum is refused;
 * as an answer head, an unknown status or a body over SIGNREQ_MAX_ANSWER.
 * Returns 0 or DEVID_ERR_PROTOCOL with the reason in |why|.
 */
int signreq_head_parse(uint8_t *type, size_t *body_len, const uint8_t head[SIGNREQ_HEAD_LEN],
                       int answer, char *why, size_t why_len);

/* signreq_head_write writes the head of a message of |type| (or status)
 * with a |body_len|-byte body into |head|. Returns 0, or
 * DEVID_ERR_TOO_LARGE when |body_len| does not fit in 32 bits. */
int signreq_head_write(uint8_t head[SIGNREQ_HEAD_LEN], uint8_t type, size_t body_len);

/*
 * signreq_crl_encode sets |*out| to a new malloc'd CRL request body for
 * |crl| (|*out_len| bytes; the caller frees it). Serials longer than 40 hex
 * digits or more than CRL_MAX_ENTRIES entries are refused. Returns 0,
 * DEVID_ERR_INVALID_ARGUMENT or DEVID_ERR_ALLOC.
 */
int signreq_crl_encode(uint8_t **out, size_t *out_len, const struct signreq_crl *crl);

/*
 * signreq_crl_decode fills |*out| from the CRL request |body| (|len| bytes):
 * |out|->entries and the serials they point at are new (free them with
 * signreq_crl_cleanup). Truncation, trailing
 * bytes, a count over CRL_MAX_ENTRIES, a serial that is empty, over 40 or
 * not hex, or a negative time are refused. Returns 0, DEVID_ERR_PROTOCOL
 * with the reason in |why|, or DEVID_ERR_ALLOC.
 */
int signreq_crl_decode(struct signreq_crl *out, const uint8_t *body, size_t len, char *why,
                       size_t why_len);

/* signreq_crl_cleanup frees what signreq_crl_decode allocated and zeroes
 * |crl|; NULL is a no-op. */
void signreq_crl_cleanup(struct signreq_crl *crl);

/*
 * signreq_tree_head_encode writes the tree head request |req| to |out|
 * (SIGNREQ_MAX_TREE_HEAD bytes; |*out_len| gets how many). Returns 0, or
 * DEVID_ERR_INVALID_ARGUMENT for a negative timestamp or a proof over
 * MERKLE_MAX_PROOF hashes.
 */
int signreq_tree_head_encode(uint8_t out[SIGNREQ_MAX_TREE_HEAD], size_t *out_len,
                             const struct signreq_tree_head *req);

/*
 * signreq_tree_head_decode fills |out| from the tree head request |body|
 * (|len| bytes). A truncated body, a proof count over MERKLE_MAX_PROOF, a
 * length that is not the count's, or a negative timestamp are refused.
 * Returns 0, or DEVID_ERR_PROTOCOL with the reason in |why|.
 */
int signreq_tree_head_decode(struct signreq_tree_head *out, const uint8_t *body, size_t len,
                             char *why, size_t why_len);

/*
 * signreq_cert_answer_check checks that the signer's answer |answer| to a
 * certificate request |asked| (both DER, as sent and as received) is the
 * certificate asked for: one Certificate with no trailing bytes, whose
 * TBSCertificate is the one asked for in every field but the signature
 * algorithm, which the signer sets to its key's, and whose outer signature
 * algorithm is that same one, followed by a BIT STRING. It walks the DER
 * without decoding the public key, which is what a full parse would cost
 * (an OpenSSL 3.0 decoder round per certificate); the signature itself is
 * the signer's to make and is not verified here. Returns 0, or
 * DEVID_ERR_PROTOCOL with what differs in |why|.
 */
int signreq_cert_answer_check(const uint8_t *asked, size_t asked_len, const uint8_t *answer,
                              size_t answer_len, char *why, size_t why_len);

/* signreq_type_name returns a name for request |type| ("certificate",
 * "CRL", "tree head") or "unknown". */
const char *signreq_type_name(uint8_t type);

#endif
