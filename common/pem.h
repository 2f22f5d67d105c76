/* Certificates from bytes: PEM blocks or DER, the one parser both sides use
 * for certificate files, NV contents and protobuf fields. Pure: the caller
 * reads the bytes (common/io/pemfile.h for files). */
#ifndef DEVID_COMMON_PEM_H
#define DEVID_COMMON_PEM_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/bio.h>
#include <openssl/x509.h>

/* pem_parse_certs flag: DER certificates may be followed by 0x00 or 0xff
 * bytes, as in an NV index larger than its contents. */
#define PEM_ALLOW_PADDING 0x1u

/*
 * pem_parse_certs sets |*out| to a new stack of every certificate in |buf|
 * (|len| bytes): PEM blocks (anything between them is ignored, as openssl
 * does), or DER certificates back to back, decoded from the bytes as given.
 * None, more than |max|, a malformed certificate or bytes after the DER
 * (other than padding, with PEM_ALLOW_PADDING) are refused with the reason
 * in |why|. The caller owns |*out| (sk_X509_pop_free(s, X509_free)). Returns
 * 0, DEVID_ERR_CONFIG for bad contents, or DEVID_ERR_ALLOC.
 */
int pem_parse_certs(STACK_OF(X509) **out, const uint8_t *buf, size_t len, size_t max,
                    unsigned flags, char *why, size_t why_len);

/*
 * pem_parse_cert is pem_parse_certs for exactly one certificate, which
 * |*out| then owns.
 */
int pem_parse_cert(X509 **out, const uint8_t *buf, size_t len, unsigned flags, char *why,
                   size_t why_len);

/*
 * pem_write_certs appends each certificate of |certs| to |bio| as PEM.
 * Returns 0 or DEVID_ERR_CRYPTO.
 */
int pem_write_certs(BIO *bio, STACK_OF(X509) *certs);

#endif
