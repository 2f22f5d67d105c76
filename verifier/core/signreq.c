#include "verifier/core/signreq.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>

#include "common/err.h"

#define SERIAL_HEX_MAX 40

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

const char *signreq_type_name(uint8_t type)
{
    switch (type) {
        case SIGNREQ_CERT:
            return "certificate";
        case SIGNREQ_CRL:
            return "CRL";
        case SIGNREQ_TREE_HEAD:
            return "tree head";
    }
    return "unknown";
}

/* The most a request of |type| may carry; 0 for a type outside the table. */
static size_t max_body(uint8_t type)
{
    switch (type) {
        case SIGNREQ_CERT:
            return SIGNREQ_MAX_CERT;
        case SIGNREQ_CRL:
            return SIGNREQ_MAX_CRL;
        case SIGNREQ_TREE_HEAD:
            return SIGNREQ_MAX_TREE_HEAD;
    }
    return 0;
}

int signreq_head_parse(uint8_t *type, size_t *body_len, const uint8_t head[SIGNREQ_HEAD_LEN],
                       int answer, char *why, size_t why_len)
{
    size_t len = get_u32(head), max;
    uint8_t t = head[4];

    *type = 0;
    *body_len = 0;
    if (answer) {
        if (t != SIGNREQ_SIGNED && t != SIGNREQ_REFUSED && t != SIGNREQ_FAILED) {
            snprintf(why, why_len, "answer status %u is not one the signer sends", t);
            return DEVID_ERR_PROTOCOL;
        }
        max = t == SIGNREQ_SIGNED ? SIGNREQ_MAX_ANSWER : SIGNREQ_MAX_WHY;
    } else {
        if ((max = max_body(t)) == 0) {
            snprintf(why, why_len, "request type %u is not in the request table", t);
            return DEVID_ERR_PROTOCOL;
        }
    }
    if (len > max) {
        snprintf(why, why_len, "%s %s of %zu bytes is over the %zu-byte limit",
                 answer ? "answer" : signreq_type_name(t), answer ? "body" : "request", len, max);
        return DEVID_ERR_PROTOCOL;
    }
    *type = t;
    *body_len = len;
    return 0;
}

int signreq_head_write(uint8_t head[SIGNREQ_HEAD_LEN], uint8_t type, size_t body_len)
{
    if (body_len > UINT32_MAX)
        return DEVID_ERR_TOO_LARGE;
    put_u32(head, (uint32_t)body_len);
    head[4] = type;
    return 0;
}

int signreq_crl_encode(uint8_t **out, size_t *out_len, const struct signreq_crl *crl)
{
    uint8_t *buf, *p;
    size_t i, n, len = SIGNREQ_CRL_FIXED;

    *out = NULL;
    *out_len = 0;
    if (crl->n > CRL_MAX_ENTRIES || (crl->n > 0 && crl->entries == NULL))
        return DEVID_ERR_INVALID_ARGUMENT;
    for (i = 0; i < crl->n; i++) {
        if (crl->entries[i].serial_hex == NULL || (n = strlen(crl->entries[i].serial_hex)) == 0 ||
            n > SERIAL_HEX_MAX || crl->entries[i].reason < 0 || crl->entries[i].reason > 255)
            return DEVID_ERR_INVALID_ARGUMENT;
        len += 1 + n + 8 + 1;
    }
    if ((buf = malloc(len)) == NULL)
        return DEVID_ERR_ALLOC;
    p = buf;
    put_u64(p, crl->number);
    put_u64(p + 8, (uint64_t)crl->this_update);
    put_u64(p + 16, (uint64_t)crl->next_update_seconds);
    put_u32(p + 24, (uint32_t)crl->n);
    p += SIGNREQ_CRL_FIXED;
    for (i = 0; i < crl->n; i++) {
        n = strlen(crl->entries[i].serial_hex);
        *p++ = (uint8_t)n;
        memcpy(p, crl->entries[i].serial_hex, n);
        p += n;
        put_u64(p, (uint64_t)crl->entries[i].revoked_at);
        p += 8;
        *p++ = (uint8_t)crl->entries[i].reason;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

static int is_hex(const uint8_t *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return 0;
    }
    return 1;
}

static int refuse(char *why, size_t why_len, const char *what, size_t at)
{
    snprintf(why, why_len, "CRL request: %s at byte %zu", what, at);
    return DEVID_ERR_PROTOCOL;
}

int signreq_crl_decode(struct signreq_crl *out, const uint8_t *body, size_t len, char *why,
                       size_t why_len)
{
    struct signreq_crl c;
    size_t i, n, off;
    int r = DEVID_ERR_INTERNAL;

    memset(out, 0, sizeof(*out));
    memset(&c, 0, sizeof(c));
    if (len < SIGNREQ_CRL_FIXED)
        return refuse(why, why_len, "truncated head", len);
    c.number = get_u64(body);
    c.this_update = (int64_t)get_u64(body + 8);
    c.next_update_seconds = (int64_t)get_u64(body + 16);
    c.n = get_u32(body + 24);
    if (c.this_update < 0 || c.next_update_seconds <= 0)
        return refuse(why, why_len, "negative thisUpdate or nextUpdate", 8);
    if (c.n > CRL_MAX_ENTRIES)
        return refuse(why, why_len, "more entries than CRL_MAX_ENTRIES", 24);
    /* Each entry takes at least 11 bytes: a count the body cannot hold is
     * refused before anything is allocated for it. */
    if (c.n > (len - SIGNREQ_CRL_FIXED) / 11)
        return refuse(why, why_len, "more entries than the body holds", 24);
    if (c.n > 0 && ((c.entries = calloc(c.n, sizeof(*c.entries))) == NULL ||
                    (c.serials = malloc(c.n * (SERIAL_HEX_MAX + 1))) == NULL)) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    for (i = 0, off = SIGNREQ_CRL_FIXED; i < c.n; i++) {
        char *serial = c.serials + i * (SERIAL_HEX_MAX + 1);
        int64_t at;

        if (off >= len) {
            r = refuse(why, why_len, "truncated entry", off);
            goto out;
        }
        n = body[off];
        if (n == 0 || n > SERIAL_HEX_MAX || len - off - 1 < n + 9 || !is_hex(body + off + 1, n)) {
            r = refuse(why, why_len, "bad or truncated serial", off);
            goto out;
        }
        memcpy(serial, body + off + 1, n);
        serial[n] = '\0';
        off += 1 + n;
        if ((at = (int64_t)get_u64(body + off)) < 0) {
            r = refuse(why, why_len, "negative revocation time", off);
            goto out;
        }
        c.entries[i].serial_hex = serial;
        c.entries[i].revoked_at = at;
        c.entries[i].reason = body[off + 8];
        off += 9;
    }
    if (off != len) {
        r = refuse(why, why_len, "bytes after the last entry", off);
        goto out;
    }
    *out = c;
    memset(&c, 0, sizeof(c));
    r = 0;
out:
    signreq_crl_cleanup(&c);
    return r;
}

void signreq_crl_cleanup(struct signreq_crl *crl)
{
    if (crl == NULL)
        return;
    free(crl->entries);
    free(crl->serials);
    memset(crl, 0, sizeof(*crl));
}

int signreq_tree_head_encode(uint8_t out[SIGNREQ_MAX_TREE_HEAD], size_t *out_len,
                             const struct signreq_tree_head *req)
{
    size_t i;

    *out_len = 0;
    if (req->head.timestamp < 0 || req->proof_len > MERKLE_MAX_PROOF)
        return DEVID_ERR_INVALID_ARGUMENT;
    put_u64(out, req->head.size);
    put_u64(out + 8, (uint64_t)req->head.timestamp);
    memcpy(out + 16, req->head.root, MERKLE_HASH_LEN);
    out[16 + MERKLE_HASH_LEN] = (uint8_t)req->proof_len;
    for (i = 0; i < req->proof_len; i++)
        memcpy(out + SIGNREQ_TREE_HEAD_FIXED + i * MERKLE_HASH_LEN, req->proof[i], MERKLE_HASH_LEN);
    *out_len = SIGNREQ_TREE_HEAD_FIXED + req->proof_len * MERKLE_HASH_LEN;
    return 0;
}

int signreq_tree_head_decode(struct signreq_tree_head *out, const uint8_t *body, size_t len,
                             char *why, size_t why_len)
{
    size_t n, i;
    uint64_t t;

    memset(out, 0, sizeof(*out));
    if (len < SIGNREQ_TREE_HEAD_FIXED) {
        snprintf(why, why_len, "tree head request: %zu bytes, shorter than %d", len,
                 SIGNREQ_TREE_HEAD_FIXED);
        return DEVID_ERR_PROTOCOL;
    }
    n = body[16 + MERKLE_HASH_LEN];
    if (n > MERKLE_MAX_PROOF || len != SIGNREQ_TREE_HEAD_FIXED + n * MERKLE_HASH_LEN) {
        snprintf(why, why_len, "tree head request: a proof of %zu hashes (at most %d) in %zu bytes",
                 n, MERKLE_MAX_PROOF, len);
        return DEVID_ERR_PROTOCOL;
    }
    if ((t = get_u64(body + 8)) > INT64_MAX) {
        snprintf(why, why_len, "tree head request: negative timestamp");
        return DEVID_ERR_PROTOCOL;
    }
    out->head.size = get_u64(body);
    out->head.timestamp = (int64_t)t;
    memcpy(out->head.root, body + 16, MERKLE_HASH_LEN);
    out->proof_len = n;
    for (i = 0; i < n; i++)
        memcpy(out->proof[i], body + SIGNREQ_TREE_HEAD_FIXED + i * MERKLE_HASH_LEN,
               MERKLE_HASH_LEN);
    return 0;
}

/* One DER element: where it starts, its whole length, its content. */
struct tlv {
    const uint8_t *start, *content;
    size_t len, content_len;
    int tag, cls, constructed;
};

/* next_tlv reads the element at |*p| (before |end|) into |t| and moves |*p|
 * past it. Returns 0, or -1 for no element, a bad header or an indefinite
 * length (not DER). */
static int next_tlv(struct tlv *t, const uint8_t **p, const uint8_t *end)
{
    const unsigned char *q = *p;
    long clen = 0;
    int ret;

    if (*p >= end || end - *p > LONG_MAX)
        return -1;
    ret = ASN1_get_object(&q, &clen, &t->tag, &t->cls, (long)(end - *p));
    if ((ret & 0x80) != 0 || (ret & 0x01) != 0 || clen < 0 || clen > end - q)
        return -1;
    t->start = *p;
    t->content = q;
    t->content_len = (size_t)clen;
    t->constructed = (ret & V_ASN1_CONSTRUCTED) != 0;
    *p = q + clen;
    t->len = (size_t)(*p - t->start);
    return 0;
}

static int tlv_is(const struct tlv *t, int cls, int tag, int constructed)
{
    return t->cls == cls && t->tag == tag && t->constructed == constructed;
}

static int tlv_eq(const struct tlv *a, const struct tlv *b)
{
    return a->len == b->len && memcmp(a->start, b->start, a->len) == 0;
}

/* A certificate's parts, as signreq_cert_answer_check compares them. */
struct cert_parts {
    struct tlv version, serial, tbs_alg, alg;
    int has_version;
    /* The TBSCertificate after its signature algorithm: issuer to the end. */
    const uint8_t *rest;
    size_t rest_len;
};

/* split walks |der| as Certificate ::= SEQUENCE { tbsCertificate, algorithm,
 * signature BIT STRING } with no trailing bytes, the TBSCertificate as
 * SEQUENCE { [0] version OPTIONAL, serialNumber INTEGER, signature
 * AlgorithmIdentifier, ... }. */
static int split(struct cert_parts *c, const uint8_t *der, size_t len)
{
    const uint8_t *p = der, *end = der + len, *q, *tend;
    struct tlv outer, tbs, sig;

    memset(c, 0, sizeof(*c));
    if (der == NULL || next_tlv(&outer, &p, end) != 0 || p != end ||
        !tlv_is(&outer, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, 1))
        return -1;
    p = outer.content;
    end = outer.content + outer.content_len;
    if (next_tlv(&tbs, &p, end) != 0 || !tlv_is(&tbs, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, 1) ||
        next_tlv(&c->alg, &p, end) != 0 || !tlv_is(&c->alg, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, 1) ||
        next_tlv(&sig, &p, end) != 0 || !tlv_is(&sig, V_ASN1_UNIVERSAL, V_ASN1_BIT_STRING, 0) ||
        p != end)
        return -1;
    q = tbs.content;
    tend = tbs.content + tbs.content_len;
    if (next_tlv(&c->serial, &q, tend) != 0)
        return -1;
    if (tlv_is(&c->serial, V_ASN1_CONTEXT_SPECIFIC, 0, 1)) {
        c->version = c->serial;
        c->has_version = 1;
        if (next_tlv(&c->serial, &q, tend) != 0)
            return -1;
    }
    if (!tlv_is(&c->serial, V_ASN1_UNIVERSAL, V_ASN1_INTEGER, 0) ||
        next_tlv(&c->tbs_alg, &q, tend) != 0 ||
        !tlv_is(&c->tbs_alg, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, 1))
        return -1;
    c->rest = q;
    c->rest_len = (size_t)(tend - q);
    return 0;
}

int signreq_cert_answer_check(const uint8_t *asked, size_t asked_len, const uint8_t *answer,
                              size_t answer_len, char *why, size_t why_len)
{
    struct cert_parts a, b;

    if (why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    why[0] = '\0';
    if (split(&a, asked, asked_len) != 0) {
        snprintf(why, why_len, "the certificate asked for does not walk as DER");
        return DEVID_ERR_PROTOCOL;
    }
    if (split(&b, answer, answer_len) != 0) {
        snprintf(why, why_len, "the answer is not one DER certificate");
        return DEVID_ERR_PROTOCOL;
    }
    if (!tlv_eq(&a.serial, &b.serial)) {
        snprintf(why, why_len, "the answer has another serial number");
        return DEVID_ERR_PROTOCOL;
    }
    if (a.has_version != b.has_version || (a.has_version && !tlv_eq(&a.version, &b.version)) ||
        a.rest_len != b.rest_len || memcmp(a.rest, b.rest, a.rest_len) != 0) {
        snprintf(why, why_len, "the answer's TBSCertificate differs from the one asked for");
        return DEVID_ERR_PROTOCOL;
    }
    if (!tlv_eq(&b.tbs_alg, &b.alg)) {
        snprintf(why, why_len, "the answer's two signature algorithms differ");
        return DEVID_ERR_PROTOCOL;
    }
    return 0;
}
