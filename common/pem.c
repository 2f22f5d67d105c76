#include "common/pem.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "common/err.h"

static int push(STACK_OF(X509) *sk, X509 **x, size_t max, char *why, size_t why_len)
{
    if ((size_t)sk_X509_num(sk) >= max) {
        snprintf(why, why_len, "more than %zu certificates", max);
        return DEVID_ERR_CONFIG;
    }
    if (sk_X509_push(sk, *x) <= 0)
        return DEVID_ERR_ALLOC;
    *x = NULL;
    return 0;
}

static int parse_pem(STACK_OF(X509) *sk, const uint8_t *buf, size_t len, size_t max, char *why,
                     size_t why_len)
{
    char reason[256];
    BIO *bio;
    X509 *x = NULL;
    int r = 0;

    if (len > INT_MAX || (bio = BIO_new_mem_buf(buf, (int)len)) == NULL)
        return DEVID_ERR_ALLOC;
    while (r == 0 && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
        r = push(sk, &x, max, why, why_len);
    if (r == 0 && ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
        snprintf(why, why_len, "bad PEM certificate: %s",
                 devid_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CONFIG;
    }
    ERR_clear_error();
    X509_free(x);
    BIO_free(bio);
    return r;
}

static int parse_der(STACK_OF(X509) *sk, const uint8_t *buf, size_t len, size_t max, unsigned flags,
                     char *why, size_t why_len)
{
    const unsigned char *p = buf, *end = buf + len;
    char reason[256];
    X509 *x = NULL;
    int r;

    while (p < end && *p == 0x30) {
        if ((x = d2i_X509(NULL, &p, end - p)) == NULL) {
            snprintf(why, why_len, "malformed DER certificate at byte %zu: %s", (size_t)(p - buf),
                     devid_openssl_reason(reason, sizeof(reason)));
            return DEVID_ERR_CONFIG;
        }
        if ((r = push(sk, &x, max, why, why_len)) != 0) {
            X509_free(x);
            return r;
        }
    }
    for (; p < end; p++) {
        if ((flags & PEM_ALLOW_PADDING) == 0 || (*p != 0x00 && *p != 0xff)) {
            snprintf(why, why_len, "%zu bytes after the DER certificates", (size_t)(end - p));
            return DEVID_ERR_CONFIG;
        }
    }
    return 0;
}

int pem_parse_certs(STACK_OF(X509) **out, const uint8_t *buf, size_t len, size_t max,
                    unsigned flags, char *why, size_t why_len)
{
    STACK_OF(X509) *sk = NULL;
    int r;

    if (out == NULL || (buf == NULL && len > 0) || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    why[0] = '\0';
    if ((sk = sk_X509_new_null()) == NULL)
        return DEVID_ERR_ALLOC;
    if (len > 0 && buf[0] == 0x30)
        r = parse_der(sk, buf, len, max, flags, why, why_len);
    else
        r = parse_pem(sk, buf, len, max, why, why_len);
    if (r == 0 && sk_X509_num(sk) == 0) {
        snprintf(why, why_len, "no PEM or DER certificate");
        r = DEVID_ERR_CONFIG;
    }
    if (r != 0) {
        sk_X509_pop_free(sk, X509_free);
        return r;
    }
    *out = sk;
    return 0;
}

int pem_parse_cert(X509 **out, const uint8_t *buf, size_t len, unsigned flags, char *why,
                   size_t why_len)
{
    STACK_OF(X509) *sk = NULL;
    int r;

    if (out == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((r = pem_parse_certs(&sk, buf, len, 1, flags, why, why_len)) != 0)
        return r;
    *out = sk_X509_shift(sk);
    sk_X509_free(sk);
    return 0;
}

int pem_write_certs(BIO *bio, STACK_OF(X509) *certs)
{
    int i;

    for (i = 0; i < sk_X509_num(certs); i++) {
        if (PEM_write_bio_X509(bio, sk_X509_value(certs, i)) != 1)
            return DEVID_ERR_CRYPTO;
    }
    return 0;
}
