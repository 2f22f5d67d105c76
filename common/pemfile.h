/* Reading certificates from PEM files: the file shell shared by both sides. */
#ifndef DEVID_COMMON_PEMFILE_H
#define DEVID_COMMON_PEMFILE_H

#include <stddef.h>

#include <openssl/x509.h>

/*
 * pemfile_read_certs sets |*out| to a new stack of every certificate in PEM
 * file |path|, in file order. More than |max| certificates, or none, is an
 * error. Logs the path and reason on failure. The caller owns |*out| (free
 * with sk_X509_pop_free(s, X509_free)). Returns 0, DEVID_ERR_IO when the file
 * cannot be read, or DEVID_ERR_CONFIG for bad contents.
 */
int pemfile_read_certs(STACK_OF(X509) **out, const char *path, size_t max);

/*
 * pemfile_write_certs appends each certificate of |certs| to |bio| as PEM.
 * Returns 0 or DEVID_ERR_CRYPTO.
 */
int pemfile_write_certs(BIO *bio, STACK_OF(X509) *certs);

#endif
