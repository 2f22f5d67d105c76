/* Certificate revocation lists. Pure: builds the operational CA's unsigned
 * CRL from a list of entries (signing is the CA module's job, ca_sign_crl),
 * and parses manufacturers' CRLs from bytes (the caller reads the file). */
#ifndef DEVID_VERIFIER_CORE_CRL_H
#define DEVID_VERIFIER_CORE_CRL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

/* Most entries one CRL may carry. */
#define CRL_MAX_ENTRIES 1000000

/* One revoked certificate. */
struct crl_entry {
    /* The certificate serial, hex (at most 20 bytes). */
    const char *serial_hex;
    /* Seconds since the epoch. */
    int64_t revoked_at;
    /* RFC 5280 CRLReason (0..10 but 7); unspecified (0) adds no reasonCode
     * extension, as RFC 5280 5.3.1 asks. */
    int reason;
};

/*
 * crl_build sets |*out| to a new unsigned version 2 CRL issued by |ca_cert|:
 * issuer = the CA's subject, lastUpdate = |now|, nextUpdate = |now| +
 * |next_update_seconds|, the authorityKeyIdentifier (the CA's subject key
 * identifier, or SHA-1 of its public key when it has none), cRLNumber
 * |crl_number|, and one revoked entry per |entries| (|n| of them, at most
 * CRL_MAX_ENTRIES) with its revocation date and reasonCode, sorted by
 * serial. The caller owns |*out|. Returns 0, DEVID_ERR_INVALID_ARGUMENT for a
 * bad serial, reason, time or count, or DEVID_ERR_CRYPTO / DEVID_ERR_ALLOC.
 */
int crl_build(X509_CRL **out, X509 *ca_cert, const struct crl_entry *entries, size_t n, time_t now,
              long next_update_seconds, uint64_t crl_number);

/*
 * crl_parse sets |*out| to a new stack of the CRLs in |buf| (|len| bytes):
 * PEM blocks (anything between them is ignored), or DER CRLs back to back.
 * None, more than |max|, a malformed CRL or bytes after the DER are refused
 * with the reason in |why| ("bad CRL: ..."). The caller owns |*out|
 * (sk_X509_CRL_pop_free(s, X509_CRL_free)). Returns 0, DEVID_ERR_CONFIG for
 * bad contents, or DEVID_ERR_ALLOC.
 */
int crl_parse(STACK_OF(X509_CRL) **out, const uint8_t *buf, size_t len, size_t max, char *why,
              size_t why_len);

#endif
