#include "common/nvcert.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "common/err.h"
#include "common/limits.h"

#define TAG_SEQUENCE 0x30
/* TCG_TAG_PCCLIENT_STORED_CERT, TCG_FULL_CERT, TCG_TAG_PCCLIENT_FULL_CERT */
#define TCG_STORED_CERT_0 0x10
#define TCG_STORED_CERT_1 0x01
#define TCG_FULL_CERT 0x00
#define TCG_FULL_CERT_TAG_0 0x10
#define TCG_FULL_CERT_TAG_1 0x02
#define PEM_BEGIN "-----BEGIN "
/* Most certificates nvcert_parse reads from one index. */
#define NVCERT_PARSE_MAX DEVID_MAX_INTERMEDIATES

/* der_length sets |*total| to the length (tag and length bytes included) of
 * the DER SEQUENCE at |p|, |avail| bytes of which are present; |at| is its
 * offset, for messages. Only definite, minimal lengths up to 4 bytes. */
static int der_length(size_t *total, const uint8_t *p, size_t avail, size_t at, char *why,
                      size_t why_len)
{
    size_t hdr, clen = 0, i, nb;

    if (avail < 2)
        return devid_why(DEVID_ERR_CONFIG, why, why_len,
                         "truncated certificate at byte %zu: %zu byte(s) left", at, avail);
    if (p[1] < 0x80) {
        hdr = 2;
        clen = p[1];
    } else if (p[1] == 0x80) {
        return devid_why(DEVID_ERR_CONFIG, why, why_len,
                         "certificate at byte %zu has an indefinite length (BER, not DER)", at);
    } else {
        nb = p[1] & 0x7fu;
        if (nb > 4)
            return devid_why(DEVID_ERR_CONFIG, why, why_len,
                             "certificate at byte %zu has a %zu-byte length: too long", at, nb);
        hdr = 2 + nb;
        if (avail < hdr)
            return devid_why(DEVID_ERR_CONFIG, why, why_len,
                             "truncated certificate at byte %zu: its length is cut", at);
        for (i = 0; i < nb; i++)
            clen = clen << 8 | p[2 + i];
        if (p[2] == 0 || (nb == 1 && clen < 0x80))
            return devid_why(
                DEVID_ERR_CONFIG, why, why_len,
                "certificate at byte %zu has a non-minimal length encoding (BER, not DER)", at);
    }
    if (clen > avail - hdr)
        return devid_why(
            DEVID_ERR_CONFIG, why, why_len,
            "truncated certificate at byte %zu: its DER length says %zu bytes, %zu are there", at,
            hdr + clen, avail);
    *total = hdr + clen;
    return 0;
}

/* padding checks that |buf| from |p| to |len| is 0x00 or 0xFF only. */
static int padding(const uint8_t *buf, size_t p, size_t len, char *why, size_t why_len)
{
    size_t q;

    for (q = p; q < len; q++) {
        if (buf[q] != 0x00 && buf[q] != 0xff)
            return devid_why(
                DEVID_ERR_CONFIG, why, why_len,
                "byte 0x%02x at offset %zu after the certificate (which ends at byte %zu) "
                "is not 0x00 or 0xFF padding",
                buf[q], q, p);
    }
    return 0;
}

/* tcg_header checks the TCG stored-certificate header at the start of |buf|
 * and frames the one certificate after it into |span|. */
static int tcg_header(struct nvcert_span *span, const uint8_t *buf, size_t len, char *why,
                      size_t why_len)
{
    size_t cert_size, total;
    int r;

    if (len < NVCERT_TCG_HEADER_LEN + 1)
        return devid_why(DEVID_ERR_CONFIG, why, why_len,
                         "truncated TCG header (10 01): %zu bytes, no certificate after it", len);
    if (buf[2] != TCG_FULL_CERT)
        return devid_why(
            DEVID_ERR_CONFIG, why, why_len,
            "TCG header certType 0x%02x: only a full certificate (TCG_FULL_CERT, 00) is "
            "read",
            buf[2]);
    if (buf[5] != TCG_FULL_CERT_TAG_0 || buf[6] != TCG_FULL_CERT_TAG_1)
        return devid_why(
            DEVID_ERR_CONFIG, why, why_len,
            "TCG header: bytes 5-6 are %02x %02x, not TCG_TAG_PCCLIENT_FULL_CERT (10 02)", buf[5],
            buf[6]);
    cert_size = (size_t)buf[3] << 8 | buf[4];
    if (buf[NVCERT_TCG_HEADER_LEN] != TAG_SEQUENCE)
        return devid_why(DEVID_ERR_CONFIG, why, why_len,
                         "no DER certificate after the TCG header (byte 7 is 0x%02x)",
                         buf[NVCERT_TCG_HEADER_LEN]);
    if ((r = der_length(&total, buf + NVCERT_TCG_HEADER_LEN, len - NVCERT_TCG_HEADER_LEN,
                        NVCERT_TCG_HEADER_LEN, why, why_len)) != 0)
        return r;
    if (cert_size != total + 2)
        return devid_why(
            DEVID_ERR_CONFIG, why, why_len,
            "TCG header certSize %zu does not match the %zu-byte DER certificate after it "
            "(want %zu)",
            cert_size, total, total + 2);
    span->off = NVCERT_TCG_HEADER_LEN;
    span->len = total;
    return 0;
}

/* all_padding returns 1 when |buf| (|len| > 0 bytes) is 0x00 or 0xFF only. */
static int all_padding(const uint8_t *buf, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (buf[i] != 0x00 && buf[i] != 0xff)
            return 0;
    }
    return 1;
}

int nvcert_find(struct nvcert_span *spans, size_t max, size_t *n, const uint8_t *buf, size_t len,
                char *why, size_t why_len)
{
    size_t p = 0, total = 0;
    int r;

    if (spans == NULL || max == 0 || n == NULL || (buf == NULL && len > 0) || why == NULL ||
        why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    *n = 0;
    why[0] = '\0';
    if (len == 0)
        return devid_why(DEVID_ERR_CONFIG, why, why_len, "empty: no certificate");
    if (len >= 2 && buf[0] == TCG_STORED_CERT_0 && buf[1] == TCG_STORED_CERT_1) {
        if ((r = tcg_header(&spans[0], buf, len, why, why_len)) != 0)
            return r;
        p = spans[0].off + spans[0].len;
        if (p < len && buf[p] == TAG_SEQUENCE)
            return devid_why(
                DEVID_ERR_CONFIG, why, why_len,
                "a second certificate at byte %zu after the one the TCG header describes", p);
        if ((r = padding(buf, p, len, why, why_len)) != 0)
            return r;
        *n = 1;
        return 0;
    }
    if (buf[0] != TAG_SEQUENCE) {
        if (all_padding(buf, len))
            return devid_why(DEVID_ERR_CONFIG, why, why_len,
                             "no certificate: all %zu bytes are 0x00/0xFF (never written?)", len);
        return devid_why(
            DEVID_ERR_CONFIG, why, why_len,
            "first byte 0x%02x is not a DER certificate (30), a TCG header (10 01) or PEM", buf[0]);
    }
    while (p < len && buf[p] == TAG_SEQUENCE) {
        if (*n == max) {
            *n = 0;
            return devid_why(DEVID_ERR_CONFIG, why, why_len,
                             "another certificate at byte %zu: at most %zu expected here", p, max);
        }
        if ((r = der_length(&total, buf + p, len - p, p, why, why_len)) != 0) {
            *n = 0;
            return r;
        }
        spans[*n].off = p;
        spans[*n].len = total;
        (*n)++;
        p += total;
    }
    if ((r = padding(buf, p, len, why, why_len)) != 0)
        *n = 0;
    return r;
}

/* decode sets |*out| to the certificate that is exactly the |len| bytes at
 * |der| (at offset |at|), refusing one that i2d_X509 would not give back. */
static int decode(X509 **out, const uint8_t *der, size_t len, size_t at, char *why, size_t why_len)
{
    const unsigned char *p = der;
    unsigned char *enc = NULL;
    char reason[256];
    X509 *x = NULL;
    int n, r = DEVID_ERR_CONFIG;

    *out = NULL;
    if (len > LONG_MAX || (x = d2i_X509(NULL, &p, (long)len)) == NULL) {
        devid_why(DEVID_ERR_CONFIG, why, why_len, "malformed certificate at byte %zu: %s", at,
                  devid_openssl_reason(reason, sizeof(reason)));
        goto out;
    }
    if (p != der + len) {
        devid_why(DEVID_ERR_CONFIG, why, why_len,
                  "certificate at byte %zu: its decoding ends at byte %zu, not %zu", at,
                  at + (size_t)(p - der), at + len);
        goto out;
    }
    if ((n = i2d_X509(x, &enc)) < 0) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if ((size_t)n != len || memcmp(enc, der, len) != 0) {
        devid_why(
            DEVID_ERR_CONFIG, why, why_len,
            "certificate at byte %zu is not in DER form (OpenSSL re-encodes it to other bytes), "
            "so it could not be sent unchanged",
            at);
        goto out;
    }
    *out = x;
    x = NULL;
    r = 0;
out:
    ERR_clear_error();
    OPENSSL_free(enc);
    X509_free(x);
    return r;
}

static int push(STACK_OF(X509) *sk, X509 *x)
{
    if (sk_X509_push(sk, x) <= 0) {
        X509_free(x);
        return DEVID_ERR_ALLOC;
    }
    return 0;
}

static int parse_der(STACK_OF(X509) *sk, const uint8_t *buf, size_t len, size_t max, char *why,
                     size_t why_len)
{
    struct nvcert_span spans[NVCERT_PARSE_MAX];
    size_t i, n = 0;
    X509 *x;
    int r;

    if (max > NVCERT_PARSE_MAX)
        max = NVCERT_PARSE_MAX;
    if ((r = nvcert_find(spans, max, &n, buf, len, why, why_len)) != 0)
        return r;
    for (i = 0; i < n; i++) {
        if ((r = decode(&x, buf + spans[i].off, spans[i].len, spans[i].off, why, why_len)) != 0 ||
            (r = push(sk, x)) != 0)
            return r;
    }
    return 0;
}

/* pem_rest returns where the bytes |bio| has not read yet start in |buf|. */
static size_t pem_rest(BIO *bio, size_t len)
{
    size_t pending = BIO_ctrl_pending(bio);

    return pending <= len ? len - pending : len;
}

/* pem_block reads the PEM certificate at the read position of |bio| (offset
 * |at| in the contents): one DER certificate, nothing else. */
static int pem_block(STACK_OF(X509) *sk, BIO *bio, size_t at, char *why, size_t why_len)
{
    char *name = NULL, *header = NULL, reason[256];
    unsigned char *data = NULL;
    size_t total;
    X509 *x = NULL;
    long dlen = 0;
    int r = DEVID_ERR_CONFIG;

    if (PEM_read_bio(bio, &name, &header, &data, &dlen) != 1) {
        devid_why(DEVID_ERR_CONFIG, why, why_len, "bad PEM block at byte %zu: %s", at,
                  devid_openssl_reason(reason, sizeof(reason)));
        goto out;
    }
    if (strcmp(name, "CERTIFICATE") != 0 || header[0] != '\0') {
        devid_why(DEVID_ERR_CONFIG, why, why_len,
                  "PEM block at byte %zu is not a plain CERTIFICATE", at);
        goto out;
    }
    if (dlen <= 0 || data[0] != TAG_SEQUENCE ||
        (r = der_length(&total, data, (size_t)dlen, 0, why, why_len)) != 0 ||
        total != (size_t)dlen) {
        if (r == 0 || r == DEVID_ERR_CONFIG)
            devid_why(DEVID_ERR_CONFIG, why, why_len,
                      "PEM block at byte %zu is not exactly one DER certificate", at);
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    if ((r = decode(&x, data, total, 0, why, why_len)) == 0)
        r = push(sk, x);
out:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    ERR_clear_error();
    return r;
}

static int is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int parse_pem(STACK_OF(X509) *sk, const uint8_t *buf, size_t len, size_t max, char *why,
                     size_t why_len)
{
    size_t p;
    BIO *bio;
    int r = 0;

    if (len > INT_MAX || (bio = BIO_new_mem_buf(buf, (int)len)) == NULL)
        return DEVID_ERR_ALLOC;
    for (;;) {
        for (p = pem_rest(bio, len); p < len && is_space(buf[p]); p++)
            ;
        if (p == len || all_padding(buf + p, len - p))
            break;
        if (len - p < strlen(PEM_BEGIN) || memcmp(buf + p, PEM_BEGIN, strlen(PEM_BEGIN)) != 0) {
            r = devid_why(DEVID_ERR_CONFIG, why, why_len,
                          "byte 0x%02x at offset %zu after the PEM certificate is not "
                          "PEM, whitespace or 0x00/0xFF padding",
                          buf[p], p);
            break;
        }
        if ((size_t)sk_X509_num(sk) == max) {
            r = devid_why(DEVID_ERR_CONFIG, why, why_len,
                          "another PEM block at byte %zu: at most %zu expected here", p, max);
            break;
        }
        if ((r = pem_block(sk, bio, p, why, why_len)) != 0)
            break;
    }
    BIO_free(bio);
    return r;
}

int nvcert_parse(STACK_OF(X509) **out, const uint8_t *buf, size_t len, size_t max, char *why,
                 size_t why_len)
{
    STACK_OF(X509) *sk = NULL;
    int r;

    if (out == NULL || max == 0 || (buf == NULL && len > 0) || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    why[0] = '\0';
    if ((sk = sk_X509_new_null()) == NULL)
        return DEVID_ERR_ALLOC;
    if (len >= strlen(PEM_BEGIN) && memcmp(buf, PEM_BEGIN, strlen(PEM_BEGIN)) == 0)
        r = parse_pem(sk, buf, len, max, why, why_len);
    else
        r = parse_der(sk, buf, len, max, why, why_len);
    if (r == 0 && sk_X509_num(sk) == 0)
        r = devid_why(DEVID_ERR_CONFIG, why, why_len, "no certificate");
    if (r != 0) {
        sk_X509_pop_free(sk, X509_free);
        return r;
    }
    *out = sk;
    return 0;
}

int nvcert_parse_one(X509 **out, const uint8_t *buf, size_t len, char *why, size_t why_len)
{
    STACK_OF(X509) *sk = NULL;
    int r;

    if (out == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((r = nvcert_parse(&sk, buf, len, 1, why, why_len)) != 0)
        return r;
    *out = sk_X509_shift(sk);
    sk_X509_free(sk);
    return 0;
}

int nvcert_parse_ek(X509 **out, struct nvcert_span *span, const uint8_t *buf, size_t len, char *why,
                    size_t why_len)
{
    const unsigned char *p;
    char reason[256];
    size_t off = 0, used;
    X509 *x = NULL;
    int r = DEVID_ERR_CONFIG;

    if (out == NULL || span == NULL || (buf == NULL && len > 0) || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    memset(span, 0, sizeof(*span));
    why[0] = '\0';
    if (len == 0)
        return devid_why(DEVID_ERR_CONFIG, why, why_len, "empty: no EK certificate");
    if (len >= 2 && buf[0] == TCG_STORED_CERT_0 && buf[1] == TCG_STORED_CERT_1) {
        if (len < NVCERT_TCG_HEADER_LEN + 1)
            return devid_why(DEVID_ERR_CONFIG, why, why_len,
                             "truncated TCG header (10 01): %zu bytes", len);
        if (buf[2] != TCG_FULL_CERT || buf[5] != TCG_FULL_CERT_TAG_0 ||
            buf[6] != TCG_FULL_CERT_TAG_1)
            return devid_why(
                DEVID_ERR_CONFIG, why, why_len,
                "TCG header %02x %02x %02x .. %02x %02x is not a full stored certificate "
                "(10 01 00 .. .. 10 02)",
                buf[0], buf[1], buf[2], buf[5], buf[6]);
        off = NVCERT_TCG_HEADER_LEN;
    }
    if (buf[off] != TAG_SEQUENCE) {
        if (all_padding(buf, len))
            return devid_why(DEVID_ERR_CONFIG, why, why_len,
                             "no EK certificate: all %zu bytes are 0x00/0xFF (never written?)",
                             len);
        return devid_why(DEVID_ERR_CONFIG, why, why_len,
                         "byte %zu is 0x%02x, not the SEQUENCE (30) of a certificate", off,
                         buf[off]);
    }
    p = buf + off;
    if (len - off > LONG_MAX || (x = d2i_X509(NULL, &p, (long)(len - off))) == NULL) {
        devid_why(DEVID_ERR_CONFIG, why, why_len, "malformed EK certificate at byte %zu: %s", off,
                  devid_openssl_reason(reason, sizeof(reason)));
        goto out;
    }
    used = (size_t)(p - (buf + off));
    if (off != 0 && ((size_t)buf[3] << 8 | buf[4]) != used + 2) {
        devid_why(
            DEVID_ERR_CONFIG, why, why_len,
            "TCG header certSize %u does not match the %zu-byte certificate after it (want %zu)",
            (unsigned)buf[3] << 8 | buf[4], used, used + 2);
        goto out;
    }
    if ((r = padding(buf, off + used, len, why, why_len)) != 0)
        goto out;
    span->off = off;
    span->len = used;
    *out = x;
    x = NULL;
    r = 0;
out:
    ERR_clear_error();
    X509_free(x);
    return r;
}
