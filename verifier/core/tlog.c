#include "verifier/core/tlog.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/err.h"
#include "common/hex.h"

static void put_u64(uint8_t *p, uint64_t v)
{
    int i;

    for (i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

const char *tlog_type_name(int type)
{
    switch (type) {
        case TLOG_ISSUED:
            return "issued";
        case TLOG_REVOKED:
            return "revoked";
    }
    return "unknown";
}

/* serial_ok: 2 to 40 lowercase hex digits, even, no leading zero byte
 * unless the serial is that one byte. */
static int serial_ok(const char *s)
{
    size_t n = strlen(s), i;

    if (n < 2 || n > 2 * TLOG_SERIAL_MAX || n % 2 != 0)
        return 0;
    for (i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return n == 2 || s[0] != '0' || s[1] != '0';
}

static int name_ok(const char *s)
{
    size_t n = strnlen(s, TLOG_NAME_MAX + 1);

    return n > 0 && n <= TLOG_NAME_MAX;
}

static size_t put_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s);

    p[0] = (uint8_t)n;
    memcpy(p + 1, s, n);
    return 1 + n;
}

int tlog_leaf_encode(uint8_t out[TLOG_LEAF_MAX], size_t *len, const struct tlog_entry *e)
{
    size_t n, off;

    *len = 0;
    if ((e->type != TLOG_ISSUED && e->type != TLOG_REVOKED) || e->time < 0 || e->reason < 0 ||
        e->reason > 255 || (e->type == TLOG_ISSUED && e->reason != 0) ||
        !serial_ok(e->cert_serial) || !name_ok(e->manufacturer) || !name_ok(e->device_serial))
        return DEVID_ERR_INVALID_ARGUMENT;
    out[0] = TLOG_LEAF_VERSION;
    out[1] = (uint8_t)e->type;
    put_u64(out + 2, (uint64_t)e->time);
    out[10] = (uint8_t)e->reason;
    memcpy(out + 11, e->cert_sha256, 32);
    n = strlen(e->cert_serial) / 2;
    out[43] = (uint8_t)n;
    if (hex_decode(out + 44, n, e->cert_serial) != 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    off = 44 + n;
    off += put_str(out + off, e->manufacturer);
    off += put_str(out + off, e->device_serial);
    *len = off;
    return 0;
}

static int refuse(char *why, size_t why_len, const char *what, size_t at)
{
    snprintf(why, why_len, "log entry: %s at byte %zu", what, at);
    return DEVID_ERR_PROTOCOL;
}

/* get_str reads a length-prefixed name of 1..TLOG_NAME_MAX bytes at
 * |*off| into |out| (TLOG_NAME_MAX + 1 bytes). */
static int get_str(char *out, const uint8_t *in, size_t len, size_t *off)
{
    size_t n, i;

    if (*off >= len)
        return -1;
    n = in[*off];
    if (n == 0 || n > TLOG_NAME_MAX || len - *off - 1 < n)
        return -1;
    for (i = 0; i < n; i++) {
        if (in[*off + 1 + i] == '\0')
            return -1;
    }
    memcpy(out, in + *off + 1, n);
    out[n] = '\0';
    *off += 1 + n;
    return 0;
}

int tlog_leaf_decode(struct tlog_entry *e, const uint8_t *in, size_t len, char *why, size_t why_len)
{
    size_t n, off;
    uint64_t t;

    memset(e, 0, sizeof(*e));
    if (len < 44)
        return refuse(why, why_len, "truncated", len);
    if (in[0] != TLOG_LEAF_VERSION)
        return refuse(why, why_len, "unknown version", 0);
    if (in[1] != TLOG_ISSUED && in[1] != TLOG_REVOKED)
        return refuse(why, why_len, "unknown type", 1);
    if ((t = get_u64(in + 2)) > INT64_MAX)
        return refuse(why, why_len, "time out of range", 2);
    if (in[1] == TLOG_ISSUED && in[10] != 0)
        return refuse(why, why_len, "an issuance with a revocation reason", 10);
    n = in[43];
    if (n == 0 || n > TLOG_SERIAL_MAX || len - 44 < n || (n > 1 && in[44] == 0))
        return refuse(why, why_len, "bad certificate serial", 43);
    e->type = in[1];
    e->time = (int64_t)t;
    e->reason = in[10];
    memcpy(e->cert_sha256, in + 11, 32);
    hex_encode(e->cert_serial, in + 44, n);
    off = 44 + n;
    if (get_str(e->manufacturer, in, len, &off) != 0)
        return refuse(why, why_len, "bad manufacturer", off);
    if (get_str(e->device_serial, in, len, &off) != 0)
        return refuse(why, why_len, "bad device serial", off);
    if (off != len)
        return refuse(why, why_len, "bytes after the device serial", off);
    return 0;
}

void tlog_head_tbs(uint8_t out[TLOG_TBS_LEN], const struct tlog_head *h)
{
    memcpy(out, TLOG_HEAD_CONTEXT, TLOG_HEAD_CONTEXT_LEN);
    put_u64(out + TLOG_HEAD_CONTEXT_LEN, h->size);
    put_u64(out + TLOG_HEAD_CONTEXT_LEN + 8, (uint64_t)h->timestamp);
    memcpy(out + TLOG_HEAD_CONTEXT_LEN + 16, h->root, MERKLE_HASH_LEN);
}

int tlog_signed_head_encode(uint8_t *out, size_t *len, const struct tlog_head *h,
                            const uint8_t *sig, size_t sig_len)
{
    *len = 0;
    if (sig_len == 0 || sig_len > TLOG_SIG_MAX || h->timestamp < 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    tlog_head_tbs(out, h);
    out[TLOG_TBS_LEN] = (uint8_t)(sig_len >> 8);
    out[TLOG_TBS_LEN + 1] = (uint8_t)sig_len;
    memcpy(out + TLOG_TBS_LEN + 2, sig, sig_len);
    *len = TLOG_TBS_LEN + 2 + sig_len;
    return 0;
}

int tlog_signed_head_parse(struct tlog_head *h, const uint8_t **sig, size_t *sig_len,
                           const uint8_t *in, size_t len, char *why, size_t why_len)
{
    size_t n;
    uint64_t t;

    memset(h, 0, sizeof(*h));
    *sig = NULL;
    *sig_len = 0;
    if (len < TLOG_TBS_LEN + 2) {
        snprintf(why, why_len, "signed tree head: %zu bytes, shorter than %d", len,
                 TLOG_TBS_LEN + 2);
        return DEVID_ERR_PROTOCOL;
    }
    if (memcmp(in, TLOG_HEAD_CONTEXT, TLOG_HEAD_CONTEXT_LEN) != 0) {
        snprintf(why, why_len, "signed tree head: does not start with \"%s\"", TLOG_HEAD_CONTEXT);
        return DEVID_ERR_PROTOCOL;
    }
    n = (size_t)in[TLOG_TBS_LEN] << 8 | in[TLOG_TBS_LEN + 1];
    if (n == 0 || n > TLOG_SIG_MAX || len - TLOG_TBS_LEN - 2 != n) {
        snprintf(why, why_len,
                 "signed tree head: a %zu-byte signature in %zu bytes after the head (1..%d, "
                 "nothing after it)",
                 n, len - TLOG_TBS_LEN - 2, TLOG_SIG_MAX);
        return DEVID_ERR_PROTOCOL;
    }
    if ((t = get_u64(in + TLOG_HEAD_CONTEXT_LEN + 8)) > INT64_MAX) {
        snprintf(why, why_len, "signed tree head: timestamp out of range");
        return DEVID_ERR_PROTOCOL;
    }
    h->size = get_u64(in + TLOG_HEAD_CONTEXT_LEN);
    h->timestamp = (int64_t)t;
    memcpy(h->root, in + TLOG_HEAD_CONTEXT_LEN + 16, MERKLE_HASH_LEN);
    *sig = in + TLOG_TBS_LEN + 2;
    *sig_len = n;
    return 0;
}

int tlog_signed_head_verify(struct tlog_head *h, const uint8_t *in, size_t len, EVP_PKEY *pub,
                            char *why, size_t why_len)
{
    const uint8_t *sig = NULL;
    size_t sig_len = 0;
    EVP_MD_CTX *ctx = NULL;
    const char *md;
    int id, r;

    if ((r = tlog_signed_head_parse(h, &sig, &sig_len, in, len, why, why_len)) != 0)
        return r;
    id = EVP_PKEY_get_base_id(pub);
    md = id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448 ? NULL : "SHA256";
    r = DEVID_ERR_REFUSED;
    if ((ctx = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestVerifyInit_ex(ctx, NULL, md, NULL, NULL, pub, NULL) != 1 ||
        EVP_DigestVerify(ctx, sig, sig_len, in, TLOG_TBS_LEN) != 1) {
        snprintf(why, why_len,
                 "the signature of the tree head of size %llu does not verify with the log key",
                 (unsigned long long)h->size);
        goto out;
    }
    r = 0;
out:
    EVP_MD_CTX_free(ctx);
    if (r != 0)
        memset(h, 0, sizeof(*h));
    return r;
}

void tlog_leaves_header(uint8_t out[TLOG_LEAVES_HEADER_LEN], uint64_t count)
{
    memcpy(out, TLOG_LEAVES_MAGIC, TLOG_LEAVES_MAGIC_LEN);
    put_u64(out + TLOG_LEAVES_MAGIC_LEN, count);
}

void tlog_leaves_frame(uint8_t out[2], size_t len)
{
    out[0] = (uint8_t)(len >> 8);
    out[1] = (uint8_t)len;
}

int tlog_leaves_parse(const uint8_t *in, size_t len, uint64_t *count,
                      int (*each)(void *arg, int64_t index, const uint8_t *leaf, size_t len),
                      void *arg, char *why, size_t why_len)
{
    uint64_t i, n;
    size_t off = TLOG_LEAVES_HEADER_LEN, l;
    int r;

    *count = 0;
    if (len < TLOG_LEAVES_HEADER_LEN || memcmp(in, TLOG_LEAVES_MAGIC, TLOG_LEAVES_MAGIC_LEN) != 0) {
        snprintf(why, why_len,
                 "saved leaves: not a devid leaves file (no \"devid/v1 log leaves\")");
        return DEVID_ERR_PROTOCOL;
    }
    n = get_u64(in + TLOG_LEAVES_MAGIC_LEN);
    for (i = 0; i < n; i++) {
        if (len - off < 2) {
            snprintf(why, why_len, "saved leaves: %llu announced, the file ends after %llu",
                     (unsigned long long)n, (unsigned long long)i);
            return DEVID_ERR_PROTOCOL;
        }
        l = (size_t)in[off] << 8 | in[off + 1];
        if (l == 0 || l > TLOG_LEAF_MAX || len - off - 2 < l) {
            snprintf(why, why_len, "saved leaves: leaf %llu at byte %zu has a bad length %zu",
                     (unsigned long long)i, off, l);
            return DEVID_ERR_PROTOCOL;
        }
        if ((r = each(arg, (int64_t)i, in + off + 2, l)) != 0)
            return r;
        off += 2 + l;
    }
    if (off != len) {
        snprintf(why, why_len, "saved leaves: %zu bytes after leaf %llu", len - off,
                 (unsigned long long)n);
        return DEVID_ERR_PROTOCOL;
    }
    *count = n;
    return 0;
}
