/* Stateless challenge tokens: any replica holding the shared key can check
 * them. During a key change a replica holds two: the current key, which seals
 * and opens, and an accept-only key, which only opens (docs/operator.md,
 * "Rotate the token key"). Pure: no clock, no I/O. */
#ifndef DEVID_VERIFIER_CORE_TOKEN_H
#define DEVID_VERIFIER_CORE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_KEY_LEN 32
#define TOKEN_NONCE_LEN 32
#define TOKEN_CERT_HASH_LEN 32
#define TOKEN_CONN_HASH_LEN 32
#define TOKEN_EK_HASH_LEN 32
/* version(1) || nonce(32) || expires_at(8, big-endian) || cert_hash(32) ||
 * conn_hash(32) || ek_cert_hash(32) || name_hash(32) || HMAC-SHA-256 over
 * everything before it (32). The format is the verifier's own: clients
 * return the token unchanged. Version 1 had no conn_hash, version 2 no EK
 * hashes. */
#define TOKEN_LEN                                                                                  \
    (1 + TOKEN_NONCE_LEN + 8 + TOKEN_CERT_HASH_LEN + TOKEN_CONN_HASH_LEN + 2 * TOKEN_EK_HASH_LEN + \
     32)
#define TOKEN_VERSION 3
/* Hex digits of a key's id (token_key_id). */
#define TOKEN_KEY_ID_LEN 8

/* Which key opened a token (token_open_either). */
enum token_key_role {
    /* None did (the zero value, as in a cleared verdict). */
    TOKEN_KEY_NONE = 0,
    /* The current key, the one that seals. */
    TOKEN_KEY_CURRENT,
    /* The accept-only key of a key change. */
    TOKEN_KEY_ACCEPT,
};

/* What a token seals of an EK credential activation (docs/protocol.md
 * section 6.1): SHA-256 of the EK certificate as received and SHA-256 of the
 * Name the credential was made for. All zero: the challenge had no EK. */
struct token_ek {
    uint8_t ek_cert_hash[TOKEN_EK_HASH_LEN];
    uint8_t name_hash[TOKEN_EK_HASH_LEN];
};

/*
 * token_conn_hash writes to |out| what a token seals of the TLS connection:
 * SHA-256 of its tls-exporter value |exporter| (|len| bytes). Returns 0 or a
 * DEVID_ERR_* code.
 */
int token_conn_hash(uint8_t out[TOKEN_CONN_HASH_LEN], const uint8_t *exporter, size_t len);

/*
 * token_seal writes a TOKEN_LEN-byte token to |out| binding |nonce|,
 * |expires_at| (Unix seconds), |cert_hash| (SHA-256 of the client
 * certificate's DER) and |conn_hash| (token_conn_hash of the connection the
 * challenge was answered on) under |key|. Returns 0 or a DEVID_ERR_* code.
 */
int token_seal(uint8_t out[TOKEN_LEN], const uint8_t key[TOKEN_KEY_LEN],
               const uint8_t nonce[TOKEN_NONCE_LEN], int64_t expires_at,
               const uint8_t cert_hash[TOKEN_CERT_HASH_LEN],
               const uint8_t conn_hash[TOKEN_CONN_HASH_LEN]);

/* token_seal_ek is token_seal that also seals |ek| (NULL: all zero). */
int token_seal_ek(uint8_t out[TOKEN_LEN], const uint8_t key[TOKEN_KEY_LEN],
                  const uint8_t nonce[TOKEN_NONCE_LEN], int64_t expires_at,
                  const uint8_t cert_hash[TOKEN_CERT_HASH_LEN],
                  const uint8_t conn_hash[TOKEN_CONN_HASH_LEN], const struct token_ek *ek);

/*
 * token_open checks |token| (|len| bytes) under |key| at time |now| against
 * the presenting client's |cert_hash| and, on success, copies the sealed nonce
 * to |nonce_out| and the sealed connection hash to |conn_hash_out|. Checks in
 * order: length and version, then MAC (DEVID_ERR_TOKEN_INVALID), then expiry
 * (DEVID_ERR_TOKEN_EXPIRED), then the client binding
 * (DEVID_ERR_TOKEN_WRONG_CLIENT). The connection binding is the caller's to
 * compare, after the nonce (a retry of a recorded request may come on any
 * connection). Returns 0 or that code.
 */
int token_open(uint8_t nonce_out[TOKEN_NONCE_LEN], uint8_t conn_hash_out[TOKEN_CONN_HASH_LEN],
               const uint8_t key[TOKEN_KEY_LEN], const uint8_t *token, size_t len, int64_t now,
               const uint8_t cert_hash[TOKEN_CERT_HASH_LEN]);

/* token_open_ek is token_open that also copies the sealed EK hashes to
 * |ek_out| on success. */
int token_open_ek(uint8_t nonce_out[TOKEN_NONCE_LEN], uint8_t conn_hash_out[TOKEN_CONN_HASH_LEN],
                  struct token_ek *ek_out, const uint8_t key[TOKEN_KEY_LEN], const uint8_t *token,
                  size_t len, int64_t now, const uint8_t cert_hash[TOKEN_CERT_HASH_LEN]);

/*
 * token_open_either is token_open_ek under either of two keys: |key|, the
 * current one, and |accept_key| (NULL: none), which opens tokens but does not
 * seal them. Both MACs are computed and compared in constant time whatever
 * the token; when both match, the current key opened it. On success
 * |*role_out| (may be NULL) is TOKEN_KEY_CURRENT or TOKEN_KEY_ACCEPT, else
 * TOKEN_KEY_NONE. Returns as token_open_ek: a token that neither key sealed
 * is DEVID_ERR_TOKEN_INVALID, checked before its expiry and client.
 */
int token_open_either(uint8_t nonce_out[TOKEN_NONCE_LEN],
                      uint8_t conn_hash_out[TOKEN_CONN_HASH_LEN], struct token_ek *ek_out,
                      enum token_key_role *role_out, const uint8_t key[TOKEN_KEY_LEN],
                      const uint8_t *accept_key, const uint8_t *token, size_t len, int64_t now,
                      const uint8_t cert_hash[TOKEN_CERT_HASH_LEN]);

/*
 * token_key_id writes to |out| the name of |key| in logs and metrics: the
 * first TOKEN_KEY_ID_LEN lowercase hex digits of SHA-256 of its
 * TOKEN_KEY_LEN bytes (what `sha256sum FILE | cut -c1-8` prints for the key
 * file), NUL terminated. It tells keys apart and gives away nothing usable of
 * a random 32-byte key. Returns 0 or DEVID_ERR_CRYPTO.
 */
int token_key_id(char out[TOKEN_KEY_ID_LEN + 1], const uint8_t key[TOKEN_KEY_LEN]);

/* token_ek_present returns 1 when |ek| is not all zero (the challenge had an
 * EK), else 0. */
int token_ek_present(const struct token_ek *ek);

#endif
