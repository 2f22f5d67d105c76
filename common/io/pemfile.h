/* Certificates from PEM (or DER) files: store_read and pem_parse_certs. */
#ifndef DEVID_COMMON_IO_PEMFILE_H
#define DEVID_COMMON_IO_PEMFILE_H

#include <stddef.h>

#include <openssl/x509.h>

/* Largest certificate file read. */
#define PEMFILE_MAX (1024 * 1024)

/*
 * pemfile_read_certs sets |*out| to a new stack of every certificate in file
 * |path| (PEM, or DER back to back), in file order. None, or more than
 * |max|, is an error. On failure writes the path and the reason to |why| and
 * logs nothing. The caller owns |*out| (sk_X509_pop_free(s, X509_free)).
 * Returns 0, DEVID_ERR_NOT_FOUND, DEVID_ERR_IO when the file cannot be read,
 * DEVID_ERR_CONFIG for bad contents, DEVID_ERR_TOO_LARGE or DEVID_ERR_ALLOC.
 */
int pemfile_read_certs(STACK_OF(X509) **out, const char *path, size_t max, char *why,
                       size_t why_len);

#endif
