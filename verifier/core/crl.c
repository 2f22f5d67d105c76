#include "verifier/core/crl.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/err.h"

static int reason_ok(int reason)
{
    return reason >= 0 && reason <= 10 && reason != 7;
}

static ASN1_INTEGER *parse_serial(const char *hex)
{
    ASN1_INTEGER *ai = NULL;
    BIGNUM *bn = NULL;
    size_t len, i;

    if (hex == NULL || (len = strlen(hex)) == 0 || len > 40)
        return NULL;
    for (i = 0; i < len; i++) {
        char c = hex[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return NULL;
    }
    if (BN_hex2bn(&bn, hex) == (int)len)
        ai = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    return ai;
}

static int add_entry(X509_CRL *crl, const struct crl_entry *e)
{
    X509_REVOKED *rev = NULL;
    ASN1_INTEGER *serial = NULL;
    ASN1_TIME *when = NULL;
    ASN1_ENUMERATED *reason = NULL;
    int r = DEVID_ERR_INVALID_ARGUMENT;

    if (!reason_ok(e->reason) || e->revoked_at < 0 ||
        (serial = parse_serial(e->serial_hex)) == NULL)
        goto out;
    r = DEVID_ERR_CRYPTO;
    if ((rev = X509_REVOKED_new()) == NULL ||
        (when = ASN1_TIME_set(NULL, (time_t)e->revoked_at)) == NULL ||
        X509_REVOKED_set_serialNumber(rev, serial) != 1 ||
        X509_REVOKED_set_revocationDate(rev, when) != 1)
        goto out;
    if (e->reason != 0) {
        if ((reason = ASN1_ENUMERATED_new()) == NULL ||
            ASN1_ENUMERATED_set(reason, e->reason) != 1 ||
            X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0) != 1)
            goto out;
    }
    if (X509_CRL_add0_revoked(crl, rev) != 1)
        goto out;
    rev = NULL;
    r = 0;
out:
    ASN1_ENUMERATED_free(reason);
    ASN1_TIME_free(when);
    ASN1_INTEGER_free(serial);
    X509_REVOKED_free(rev);
    return r;
}

static int add_aki(X509_CRL *crl, X509 *ca_cert)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca_cert);
    AUTHORITY_KEYID *akid = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    int r = DEVID_ERR_CRYPTO;

    if ((akid = AUTHORITY_KEYID_new()) == NULL)
        goto out;
    if (ski != NULL) {
        if ((akid->keyid = ASN1_OCTET_STRING_dup(ski)) == NULL)
            goto out;
    } else {
        if (X509_pubkey_digest(ca_cert, EVP_sha1(), md, &md_len) != 1 ||
            (akid->keyid = ASN1_OCTET_STRING_new()) == NULL ||
            ASN1_OCTET_STRING_set(akid->keyid, md, (int)md_len) != 1)
            goto out;
    }
    if (X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0) != 1)
        goto out;
    r = 0;
out:
    AUTHORITY_KEYID_free(akid);
    return r;
}

int crl_build(X509_CRL **out, X509 *ca_cert, const struct crl_entry *entries, size_t n, time_t now,
              long next_update_seconds, uint64_t crl_number)
{
    X509_CRL *crl = NULL;
    ASN1_TIME *last = NULL, *next = NULL;
    ASN1_INTEGER *number = NULL;
    size_t i;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (ca_cert == NULL || (entries == NULL && n > 0) || n > CRL_MAX_ENTRIES || now < 0 ||
        next_update_seconds <= 0 || (int64_t)now > INT64_MAX - next_update_seconds)
        return DEVID_ERR_INVALID_ARGUMENT;
    r = DEVID_ERR_CRYPTO;
    if ((crl = X509_CRL_new()) == NULL || X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)) != 1 ||
        (last = ASN1_TIME_set(NULL, now)) == NULL ||
        (next = ASN1_TIME_set(NULL, now + (time_t)next_update_seconds)) == NULL ||
        X509_CRL_set1_lastUpdate(crl, last) != 1 || X509_CRL_set1_nextUpdate(crl, next) != 1 ||
        (number = ASN1_INTEGER_new()) == NULL || ASN1_INTEGER_set_uint64(number, crl_number) != 1 ||
        X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0) != 1)
        goto out;
    if ((r = add_aki(crl, ca_cert)) != 0)
        goto out;
    for (i = 0; i < n; i++) {
        if ((r = add_entry(crl, &entries[i])) != 0)
            goto out;
    }
    r = DEVID_ERR_CRYPTO;
    if (X509_CRL_sort(crl) != 1)
        goto out;
    *out = crl;
    crl = NULL;
    r = 0;
out:
    ASN1_INTEGER_free(number);
    ASN1_TIME_free(next);
    ASN1_TIME_free(last);
    X509_CRL_free(crl);
    return r;
}

/* Reads one CRL at |*p| (DER when it starts a SEQUENCE, else the next PEM
 * block of |bio|); NULL at the end or on an error. */
static X509_CRL *next_crl(BIO *bio, const unsigned char **p, const unsigned char *end, int der)
{
    if (!der)
        return PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
    if (*p >= end)
        return NULL;
    return d2i_X509_CRL(NULL, p, end - *p);
}

int crl_parse(STACK_OF(X509_CRL) **out, const uint8_t *buf, size_t len, size_t max, char *why,
              size_t why_len)
{
    STACK_OF(X509_CRL) *sk = NULL;
    const unsigned char *p = buf, *end = buf + len;
    X509_CRL *crl = NULL;
    BIO *bio = NULL;
    char reason[256];
    int der = len > 0 && buf[0] == 0x30, r = DEVID_ERR_ALLOC;

    if (out == NULL || (buf == NULL && len > 0) || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (len > INT_MAX || (sk = sk_X509_CRL_new_null()) == NULL ||
        (!der && (bio = BIO_new_mem_buf(buf, (int)len)) == NULL))
        goto out;
    while ((crl = next_crl(bio, &p, end, der)) != NULL) {
        if ((size_t)sk_X509_CRL_num(sk) >= max) {
            snprintf(why, why_len, "more than %zu CRLs", max);
            r = DEVID_ERR_CONFIG;
            goto out;
        }
        if (sk_X509_CRL_push(sk, crl) <= 0)
            goto out;
        crl = NULL;
    }
    r = DEVID_ERR_CONFIG;
    if ((der && p != end) ||
        (!der && ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) ||
        sk_X509_CRL_num(sk) == 0) {
        snprintf(why, why_len, "bad CRL: %s", devid_openssl_reason(reason, sizeof(reason)));
        goto out;
    }
    *out = sk;
    sk = NULL;
    r = 0;
out:
    ERR_clear_error();
    X509_CRL_free(crl);
    BIO_free(bio);
    sk_X509_CRL_pop_free(sk, X509_CRL_free);
    return r;
}
