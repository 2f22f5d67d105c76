#include "verifier/core/token.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "common/err.h"

#define TOKEN_MAC_LEN 32
#define TOKEN_BODY_LEN (TOKEN_LEN - TOKEN_MAC_LEN)
#define OFF_NONCE 1
#define OFF_EXPIRES (OFF_NONCE + TOKEN_NONCE_LEN)
#define OFF_HASH (OFF_EXPIRES + 8)
#define OFF_CONN (OFF_HASH + TOKEN_CERT_HASH_LEN)
#define OFF_EK (OFF_CONN + TOKEN_CONN_HASH_LEN)
#define OFF_NAME (OFF_EK + TOKEN_EK_HASH_LEN)

_Static_assert(OFF_NAME + TOKEN_EK_HASH_LEN == TOKEN_BODY_LEN, "token layout");

static int hmac_sha256(uint8_t out[TOKEN_MAC_LEN], const uint8_t key[TOKEN_KEY_LEN],
                       const uint8_t *in, size_t in_len)
{
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    char digest[] = "SHA256";
    size_t out_len = 0;
    int r = DEVID_ERR_INTERNAL;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL || (ctx = EVP_MAC_CTX_new(mac)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if (EVP_MAC_init(ctx, key, TOKEN_KEY_LEN, params) != 1 ||
        EVP_MAC_update(ctx, in, in_len) != 1 ||
        EVP_MAC_final(ctx, out, &out_len, TOKEN_MAC_LEN) != 1 || out_len != TOKEN_MAC_LEN) {
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    r = 0;
out:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return r;
}

int token_conn_hash(uint8_t out[TOKEN_CONN_HASH_LEN], const uint8_t *exporter, size_t len)
{
    unsigned int n = 0;

    if (out == NULL || exporter == NULL || len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (EVP_Digest(exporter, len, out, &n, EVP_sha256(), NULL) != 1 || n != TOKEN_CONN_HASH_LEN)
        return DEVID_ERR_CRYPTO;
    return 0;
}

int token_seal(uint8_t out[TOKEN_LEN], const uint8_t key[TOKEN_KEY_LEN],
               const uint8_t nonce[TOKEN_NONCE_LEN], int64_t expires_at,
               const uint8_t cert_hash[TOKEN_CERT_HASH_LEN],
               const uint8_t conn_hash[TOKEN_CONN_HASH_LEN])
{
    return token_seal_ek(out, key, nonce, expires_at, cert_hash, conn_hash, NULL);
}

int token_ek_present(const struct token_ek *ek)
{
    static const struct token_ek zero;

    return ek != NULL && CRYPTO_memcmp(ek, &zero, sizeof(zero)) != 0;
}

int token_seal_ek(uint8_t out[TOKEN_LEN], const uint8_t key[TOKEN_KEY_LEN],
                  const uint8_t nonce[TOKEN_NONCE_LEN], int64_t expires_at,
                  const uint8_t cert_hash[TOKEN_CERT_HASH_LEN],
                  const uint8_t conn_hash[TOKEN_CONN_HASH_LEN], const struct token_ek *ek)
{
    uint8_t buf[TOKEN_LEN];
    uint64_t e = (uint64_t)expires_at;
    int i;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || key == NULL || nonce == NULL || cert_hash == NULL || conn_hash == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    buf[0] = TOKEN_VERSION;
    memcpy(buf + OFF_NONCE, nonce, TOKEN_NONCE_LEN);
    for (i = 0; i < 8; i++)
        buf[OFF_EXPIRES + i] = (uint8_t)(e >> (56 - 8 * i));
    memcpy(buf + OFF_HASH, cert_hash, TOKEN_CERT_HASH_LEN);
    memcpy(buf + OFF_CONN, conn_hash, TOKEN_CONN_HASH_LEN);
    memset(buf + OFF_EK, 0, 2 * TOKEN_EK_HASH_LEN);
    if (ek != NULL) {
        memcpy(buf + OFF_EK, ek->ek_cert_hash, TOKEN_EK_HASH_LEN);
        memcpy(buf + OFF_NAME, ek->name_hash, TOKEN_EK_HASH_LEN);
    }
    if ((r = hmac_sha256(buf + TOKEN_BODY_LEN, key, buf, TOKEN_BODY_LEN)) != 0)
        goto out;
    memcpy(out, buf, TOKEN_LEN);
    r = 0;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    return r;
}

int token_open(uint8_t nonce_out[TOKEN_NONCE_LEN], uint8_t conn_hash_out[TOKEN_CONN_HASH_LEN],
               const uint8_t key[TOKEN_KEY_LEN], const uint8_t *token, size_t len, int64_t now,
               const uint8_t cert_hash[TOKEN_CERT_HASH_LEN])
{
    return token_open_ek(nonce_out, conn_hash_out, NULL, key, token, len, now, cert_hash);
}

int token_open_ek(uint8_t nonce_out[TOKEN_NONCE_LEN], uint8_t conn_hash_out[TOKEN_CONN_HASH_LEN],
                  struct token_ek *ek_out, const uint8_t key[TOKEN_KEY_LEN], const uint8_t *token,
                  size_t len, int64_t now, const uint8_t cert_hash[TOKEN_CERT_HASH_LEN])
{
    return token_open_either(nonce_out, conn_hash_out, ek_out, NULL, key, NULL, token, len, now,
                             cert_hash);
}

/* check_mac sets |*role| to the key whose MAC |token| carries: both are
 * computed and compared whichever matches, so the time taken says nothing
 * of which key, if any, sealed the token. */
static int check_mac(enum token_key_role *role, const uint8_t key[TOKEN_KEY_LEN],
                     const uint8_t *accept_key, const uint8_t token[TOKEN_LEN])
{
    uint8_t mac[TOKEN_MAC_LEN], accept_mac[TOKEN_MAC_LEN];
    int cur = 1, acc = 1;
    int r = DEVID_ERR_INTERNAL;

    *role = TOKEN_KEY_NONE;
    if ((r = hmac_sha256(mac, key, token, TOKEN_BODY_LEN)) != 0 ||
        (accept_key != NULL &&
         (r = hmac_sha256(accept_mac, accept_key, token, TOKEN_BODY_LEN)) != 0))
        goto out;
    cur = CRYPTO_memcmp(mac, token + TOKEN_BODY_LEN, TOKEN_MAC_LEN);
    if (accept_key != NULL)
        acc = CRYPTO_memcmp(accept_mac, token + TOKEN_BODY_LEN, TOKEN_MAC_LEN);
    if (cur == 0)
        *role = TOKEN_KEY_CURRENT;
    else if (acc == 0)
        *role = TOKEN_KEY_ACCEPT;
    r = 0;
out:
    OPENSSL_cleanse(mac, sizeof(mac));
    OPENSSL_cleanse(accept_mac, sizeof(accept_mac));
    return r;
}

int token_open_either(uint8_t nonce_out[TOKEN_NONCE_LEN],
                      uint8_t conn_hash_out[TOKEN_CONN_HASH_LEN], struct token_ek *ek_out,
                      enum token_key_role *role_out, const uint8_t key[TOKEN_KEY_LEN],
                      const uint8_t *accept_key, const uint8_t *token, size_t len, int64_t now,
                      const uint8_t cert_hash[TOKEN_CERT_HASH_LEN])
{
    enum token_key_role role = TOKEN_KEY_NONE;
    uint64_t e = 0;
    int i;
    int r = DEVID_ERR_INTERNAL;

    if (role_out != NULL)
        *role_out = TOKEN_KEY_NONE;
    if (nonce_out == NULL || conn_hash_out == NULL || key == NULL || cert_hash == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (token == NULL || len != TOKEN_LEN || token[0] != TOKEN_VERSION)
        return DEVID_ERR_TOKEN_INVALID;
    if ((r = check_mac(&role, key, accept_key, token)) != 0)
        return r;
    if (role == TOKEN_KEY_NONE)
        return DEVID_ERR_TOKEN_INVALID;
    for (i = 0; i < 8; i++)
        e = (e << 8) | token[OFF_EXPIRES + i];
    if (now > (int64_t)e)
        return DEVID_ERR_TOKEN_EXPIRED;
    if (CRYPTO_memcmp(cert_hash, token + OFF_HASH, TOKEN_CERT_HASH_LEN) != 0)
        return DEVID_ERR_TOKEN_WRONG_CLIENT;
    memcpy(nonce_out, token + OFF_NONCE, TOKEN_NONCE_LEN);
    memcpy(conn_hash_out, token + OFF_CONN, TOKEN_CONN_HASH_LEN);
    if (ek_out != NULL) {
        memcpy(ek_out->ek_cert_hash, token + OFF_EK, TOKEN_EK_HASH_LEN);
        memcpy(ek_out->name_hash, token + OFF_NAME, TOKEN_EK_HASH_LEN);
    }
    if (role_out != NULL)
        *role_out = role;
    return 0;
}

int token_key_id(char out[TOKEN_KEY_ID_LEN + 1], const uint8_t key[TOKEN_KEY_LEN])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t h[32];
    unsigned int n = 0;
    size_t i;

    if (out == NULL || key == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    out[0] = '\0';
    if (EVP_Digest(key, TOKEN_KEY_LEN, h, &n, EVP_sha256(), NULL) != 1 || n != sizeof(h))
        return DEVID_ERR_CRYPTO;
    for (i = 0; i < TOKEN_KEY_ID_LEN / 2; i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 0x0f];
    }
    out[TOKEN_KEY_ID_LEN] = '\0';
    return 0;
}
