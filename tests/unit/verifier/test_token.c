/* Unit tests for verifier/token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "verifier/core/token.h"

static const int64_t NOW = 1735689600;

struct fixture {
    uint8_t key[TOKEN_KEY_LEN];
    uint8_t nonce[TOKEN_NONCE_LEN];
    uint8_t hash[TOKEN_CERT_HASH_LEN];
    uint8_t conn[TOKEN_CONN_HASH_LEN];
    uint8_t tok[TOKEN_LEN];
};

static void setup(struct fixture *f, int64_t expires)
{
    size_t i;

    for (i = 0; i < TOKEN_KEY_LEN; i++)
        f->key[i] = (uint8_t)(0x40 + i);
    for (i = 0; i < TOKEN_NONCE_LEN; i++)
        f->nonce[i] = (uint8_t)(0x90 ^ i);
    for (i = 0; i < TOKEN_CERT_HASH_LEN; i++)
        f->hash[i] = (uint8_t)(3 * i);
    for (i = 0; i < TOKEN_CONN_HASH_LEN; i++)
        f->conn[i] = (uint8_t)(0xc0 + 5 * i);
    assert_int_equal(token_seal(f->tok, f->key, f->nonce, expires, f->hash, f->conn), 0);
}

static void test_good(void **state)
{
    struct fixture f;
    uint8_t nonce[TOKEN_NONCE_LEN], conn[TOKEN_CONN_HASH_LEN];

    setup(&f, NOW + 60);
    assert_int_equal(f.tok[0], TOKEN_VERSION);
    assert_int_equal(token_open(nonce, conn, f.key, f.tok, TOKEN_LEN, NOW, f.hash), 0);
    assert_memory_equal(nonce, f.nonce, TOKEN_NONCE_LEN);
    assert_memory_equal(conn, f.conn, TOKEN_CONN_HASH_LEN);
    /* Still valid at the expiry second itself. */
    assert_int_equal(token_open(nonce, conn, f.key, f.tok, TOKEN_LEN, NOW + 60, f.hash), 0);
}

static void test_expired(void **state)
{
    struct fixture f;
    uint8_t nonce[TOKEN_NONCE_LEN], conn[TOKEN_CONN_HASH_LEN];

    setup(&f, NOW + 60);
    assert_int_equal(token_open(nonce, conn, f.key, f.tok, TOKEN_LEN, NOW + 61, f.hash),
                     DEVID_ERR_TOKEN_EXPIRED);
}

/* Flipping any bit of any byte breaks the MAC (or the version check). */
static void test_tampered_every_byte(void **state)
{
    struct fixture f;
    uint8_t nonce[TOKEN_NONCE_LEN], conn[TOKEN_CONN_HASH_LEN], t[TOKEN_LEN];
    size_t i;

    setup(&f, NOW + 60);
    for (i = 0; i < TOKEN_LEN; i++) {
        memcpy(t, f.tok, TOKEN_LEN);
        t[i] ^= 0x01;
        assert_int_equal(token_open(nonce, conn, f.key, t, TOKEN_LEN, NOW, f.hash),
                         DEVID_ERR_TOKEN_INVALID);
        memcpy(t, f.tok, TOKEN_LEN);
        t[i] ^= 0x80;
        assert_int_equal(token_open(nonce, conn, f.key, t, TOKEN_LEN, NOW, f.hash),
                         DEVID_ERR_TOKEN_INVALID);
    }
}

/* A token extended by tampering with the expiry is refused as invalid, not
 * accepted or reported expired. */
static void test_tampered_expiry_checked_before_time(void **state)
{
    struct fixture f;
    uint8_t nonce[TOKEN_NONCE_LEN], conn[TOKEN_CONN_HASH_LEN];

    setup(&f, NOW - 10);
    f.tok[1 + TOKEN_NONCE_LEN + 7] ^= 0xff;
    assert_int_equal(token_open(nonce, conn, f.key, f.tok, TOKEN_LEN, NOW, f.hash),
                     DEVID_ERR_TOKEN_INVALID);
}

static void test_wrong_key(void **state)
{
    struct fixture f;
    uint8_t nonce[TOKEN_NONCE_LEN], conn[TOKEN_CONN_HASH_LEN];

    setup(&f, NOW + 60);
    f.key[31] ^= 1;
    assert_int_equal(token_open(nonce, conn, f.key, f.tok, TOKEN_LEN, NOW, f.hash),
                     DEVID_ERR_TOKEN_INVALID);
}

static void test_wrong_client(void **state)
{
    struct fixture f;
    uint8_t nonce[TOKEN_NONCE_LEN], conn[TOKEN_CONN_HASH_LEN];

    setup(&f, NOW + 60);
    f.hash[0] ^= 1;
    assert_int_equal(token_open(nonce, conn, f.key, f.tok, TOKEN_LEN, NOW, f.hash),
                     DEVID_ERR_TOKEN_WRONG_CLIENT);
}

static void test_wrong_length_version(void **state)
{
    struct fixture f;
    uint8_t nonce[TOKEN_NONCE_LEN], conn[TOKEN_CONN_HASH_LEN], big[TOKEN_LEN + 1];

    setup(&f, NOW + 60);
    assert_int_equal(token_open(nonce, conn, f.key, f.tok, TOKEN_LEN - 1, NOW, f.hash),
                     DEVID_ERR_TOKEN_INVALID);
    assert_int_equal(token_open(nonce, conn, f.key, f.tok, 0, NOW, f.hash),
                     DEVID_ERR_TOKEN_INVALID);
    assert_int_equal(token_open(nonce, conn, f.key, NULL, 0, NOW, f.hash), DEVID_ERR_TOKEN_INVALID);
    memcpy(big, f.tok, TOKEN_LEN);
    big[TOKEN_LEN] = 0;
    assert_int_equal(token_open(nonce, conn, f.key, big, sizeof(big), NOW, f.hash),
                     DEVID_ERR_TOKEN_INVALID);
    f.tok[0] = TOKEN_VERSION + 1;
    assert_int_equal(token_open(nonce, conn, f.key, f.tok, TOKEN_LEN, NOW, f.hash),
                     DEVID_ERR_TOKEN_INVALID);
}

static void test_deterministic(void **state)
{
    struct fixture a, b;

    setup(&a, NOW + 60);
    setup(&b, NOW + 60);
    assert_memory_equal(a.tok, b.tok, TOKEN_LEN);
    setup(&b, NOW + 61);
    assert_memory_not_equal(a.tok, b.tok, TOKEN_LEN);
}

/* Another connection's hash gives another token; token_open does not judge
 * the connection, it returns what was sealed. */
static void test_connection_sealed(void **state)
{
    struct fixture a;
    uint8_t nonce[TOKEN_NONCE_LEN], conn[TOKEN_CONN_HASH_LEN], other[TOKEN_LEN];

    setup(&a, NOW + 60);
    a.conn[7] ^= 1;
    assert_int_equal(token_seal(other, a.key, a.nonce, NOW + 60, a.hash, a.conn), 0);
    assert_memory_not_equal(a.tok, other, TOKEN_LEN);
    assert_int_equal(token_open(nonce, conn, a.key, other, TOKEN_LEN, NOW, a.hash), 0);
    assert_memory_equal(conn, a.conn, TOKEN_CONN_HASH_LEN);
}

/* token_conn_hash is SHA-256 of the exporter value. */
static void test_conn_hash(void **state)
{
    static const uint8_t abc_sha256[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                           0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                           0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                           0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    uint8_t h[TOKEN_CONN_HASH_LEN];

    assert_int_equal(token_conn_hash(h, (const uint8_t *)"abc", 3), 0);
    assert_memory_equal(h, abc_sha256, sizeof(h));
    assert_int_equal(token_conn_hash(h, NULL, 32), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(token_conn_hash(h, (const uint8_t *)"abc", 0), DEVID_ERR_INVALID_ARGUMENT);
}

/* The EK hashes travel sealed: back as they went in, all zero from
 * token_seal, and under the MAC like the rest. */
static void test_ek_hashes(void **state)
{
    struct fixture f;
    struct token_ek ek, got;
    uint8_t nonce[TOKEN_NONCE_LEN], conn[TOKEN_CONN_HASH_LEN], t[TOKEN_LEN];
    size_t i;

    (void)state;
    setup(&f, NOW + 60);
    memset(&got, 0xAA, sizeof(got));
    assert_int_equal(token_open_ek(nonce, conn, &got, f.key, f.tok, TOKEN_LEN, NOW, f.hash), 0);
    assert_false(token_ek_present(&got));
    for (i = 0; i < TOKEN_EK_HASH_LEN; i++) {
        ek.ek_cert_hash[i] = (uint8_t)(0x11 + i);
        ek.name_hash[i] = (uint8_t)(0xE0 - i);
    }
    assert_int_equal(token_seal_ek(t, f.key, f.nonce, NOW + 60, f.hash, f.conn, &ek), 0);
    assert_int_equal(token_open_ek(nonce, conn, &got, f.key, t, TOKEN_LEN, NOW, f.hash), 0);
    assert_true(token_ek_present(&got));
    assert_memory_equal(&got, &ek, sizeof(ek));
    assert_memory_equal(nonce, f.nonce, TOKEN_NONCE_LEN);
    /* A flipped bit in the name hash breaks the MAC. */
    t[TOKEN_LEN - 33] ^= 1;
    assert_int_equal(token_open_ek(nonce, conn, &got, f.key, t, TOKEN_LEN, NOW, f.hash),
                     DEVID_ERR_TOKEN_INVALID);
}

/* Keys of a key change: |old| sealed the fixture's token, |new| is another
 * key, |other| a third one. */
static void change_keys(const struct fixture *f, uint8_t old[TOKEN_KEY_LEN],
                        uint8_t new_key[TOKEN_KEY_LEN], uint8_t other[TOKEN_KEY_LEN])
{
    size_t i;

    memcpy(old, f->key, TOKEN_KEY_LEN);
    for (i = 0; i < TOKEN_KEY_LEN; i++) {
        new_key[i] = (uint8_t)(0xA0 ^ i);
        other[i] = (uint8_t)(0x11 * i + 1);
    }
}

/* During a key change, a token sealed with the old key opens when the old
 * key is the accept-only one, and says so; what it sealed comes back. */
static void test_accept_key_opens(void **state)
{
    struct fixture f;
    uint8_t old[TOKEN_KEY_LEN], new_key[TOKEN_KEY_LEN], other[TOKEN_KEY_LEN];
    uint8_t nonce[TOKEN_NONCE_LEN], conn[TOKEN_CONN_HASH_LEN];
    struct token_ek ek;
    enum token_key_role role = TOKEN_KEY_CURRENT;

    (void)state;
    setup(&f, NOW + 60);
    change_keys(&f, old, new_key, other);
    assert_int_equal(token_open(nonce, conn, new_key, f.tok, TOKEN_LEN, NOW, f.hash),
                     DEVID_ERR_TOKEN_INVALID);
    assert_int_equal(
        token_open_either(nonce, conn, &ek, &role, new_key, old, f.tok, TOKEN_LEN, NOW, f.hash), 0);
    assert_int_equal(role, TOKEN_KEY_ACCEPT);
    assert_memory_equal(nonce, f.nonce, TOKEN_NONCE_LEN);
    assert_memory_equal(conn, f.conn, TOKEN_CONN_HASH_LEN);
    assert_false(token_ek_present(&ek));
    /* Step 1 of a change: the old key still current, the new one accepted. */
    assert_int_equal(
        token_open_either(nonce, conn, NULL, &role, old, new_key, f.tok, TOKEN_LEN, NOW, f.hash),
        0);
    assert_int_equal(role, TOKEN_KEY_CURRENT);
    /* The same key in both places: the current one opened it. */
    assert_int_equal(
        token_open_either(nonce, conn, NULL, &role, old, old, f.tok, TOKEN_LEN, NOW, f.hash), 0);
    assert_int_equal(role, TOKEN_KEY_CURRENT);
}

/* The accept-only key opens nothing more than the current one would: expiry
 * and the client binding are checked after its MAC, as under the current
 * key. */
static void test_accept_key_checks(void **state)
{
    struct fixture f;
    uint8_t old[TOKEN_KEY_LEN], new_key[TOKEN_KEY_LEN], other[TOKEN_KEY_LEN];
    uint8_t nonce[TOKEN_NONCE_LEN], conn[TOKEN_CONN_HASH_LEN], t[TOKEN_LEN];
    enum token_key_role role = TOKEN_KEY_CURRENT;

    (void)state;
    setup(&f, NOW + 60);
    change_keys(&f, old, new_key, other);
    assert_int_equal(token_open_either(nonce, conn, NULL, &role, new_key, old, f.tok, TOKEN_LEN,
                                       NOW + 61, f.hash),
                     DEVID_ERR_TOKEN_EXPIRED);
    assert_int_equal(role, TOKEN_KEY_NONE);
    f.hash[0] ^= 1;
    assert_int_equal(
        token_open_either(nonce, conn, NULL, &role, new_key, old, f.tok, TOKEN_LEN, NOW, f.hash),
        DEVID_ERR_TOKEN_WRONG_CLIENT);
    f.hash[0] ^= 1;
    memcpy(t, f.tok, TOKEN_LEN);
    t[TOKEN_LEN - 1] ^= 1;
    assert_int_equal(
        token_open_either(nonce, conn, NULL, &role, new_key, old, t, TOKEN_LEN, NOW, f.hash),
        DEVID_ERR_TOKEN_INVALID);
}

/* A token sealed with a key that is neither the current nor the accept-only
 * one is refused as any bad MAC is, DEVID_ERR_TOKEN_INVALID; so is the old
 * key's token once the accept-only key is dropped. */
static void test_neither_key(void **state)
{
    struct fixture f;
    uint8_t old[TOKEN_KEY_LEN], new_key[TOKEN_KEY_LEN], other[TOKEN_KEY_LEN];
    uint8_t nonce[TOKEN_NONCE_LEN], conn[TOKEN_CONN_HASH_LEN];
    enum token_key_role role = TOKEN_KEY_CURRENT;

    (void)state;
    setup(&f, NOW + 60);
    change_keys(&f, old, new_key, other);
    assert_int_equal(
        token_open_either(nonce, conn, NULL, &role, new_key, other, f.tok, TOKEN_LEN, NOW, f.hash),
        DEVID_ERR_TOKEN_INVALID);
    assert_int_equal(role, TOKEN_KEY_NONE);
    role = TOKEN_KEY_CURRENT;
    assert_int_equal(
        token_open_either(nonce, conn, NULL, &role, new_key, NULL, f.tok, TOKEN_LEN, NOW, f.hash),
        DEVID_ERR_TOKEN_INVALID);
    assert_int_equal(role, TOKEN_KEY_NONE);
    assert_int_equal(
        token_open_either(nonce, conn, NULL, NULL, new_key, other, NULL, 0, NOW, f.hash),
        DEVID_ERR_TOKEN_INVALID);
    assert_int_equal(
        token_open_either(nonce, conn, NULL, NULL, NULL, old, f.tok, TOKEN_LEN, NOW, f.hash),
        DEVID_ERR_INVALID_ARGUMENT);
}

/* Sealing knows one key: what the new current key seals opens under it
 * alone, and not under the key it replaced. */
static void test_new_key_seals(void **state)
{
    struct fixture f;
    uint8_t old[TOKEN_KEY_LEN], new_key[TOKEN_KEY_LEN], other[TOKEN_KEY_LEN];
    uint8_t nonce[TOKEN_NONCE_LEN], conn[TOKEN_CONN_HASH_LEN], t[TOKEN_LEN];
    enum token_key_role role = TOKEN_KEY_NONE;

    (void)state;
    setup(&f, NOW + 60);
    change_keys(&f, old, new_key, other);
    assert_int_equal(token_seal(t, new_key, f.nonce, NOW + 60, f.hash, f.conn), 0);
    assert_memory_not_equal(t, f.tok, TOKEN_LEN);
    assert_int_equal(token_open(nonce, conn, new_key, t, TOKEN_LEN, NOW, f.hash), 0);
    assert_int_equal(token_open(nonce, conn, old, t, TOKEN_LEN, NOW, f.hash),
                     DEVID_ERR_TOKEN_INVALID);
    assert_int_equal(
        token_open_either(nonce, conn, NULL, &role, new_key, old, t, TOKEN_LEN, NOW, f.hash), 0);
    assert_int_equal(role, TOKEN_KEY_CURRENT);
}

/* A key's id is the start of the key file's SHA-256, as sha256sum prints
 * it. */
static void test_key_id(void **state)
{
    struct fixture f;
    char id[TOKEN_KEY_ID_LEN + 1];

    (void)state;
    setup(&f, NOW + 60);
    assert_int_equal(token_key_id(id, f.key), 0);
    assert_string_equal(id, "ca2a4fe7");
    f.key[0] ^= 1;
    assert_int_equal(token_key_id(id, f.key), 0);
    assert_string_not_equal(id, "ca2a4fe7");
    assert_int_equal(token_key_id(id, NULL), DEVID_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_ek_hashes),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_tampered_every_byte),
        cmocka_unit_test(test_tampered_expiry_checked_before_time),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_wrong_client),
        cmocka_unit_test(test_wrong_length_version),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_connection_sealed),
        cmocka_unit_test(test_conn_hash),
        cmocka_unit_test(test_accept_key_opens),
        cmocka_unit_test(test_accept_key_checks),
        cmocka_unit_test(test_neither_key),
        cmocka_unit_test(test_new_key_seals),
        cmocka_unit_test(test_key_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
