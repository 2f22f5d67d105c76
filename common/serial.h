/* Certificate serial numbers as text: the one formatter both sides use. */
#ifndef DEVID_COMMON_SERIAL_H
#define DEVID_COMMON_SERIAL_H

#include <stddef.h>

#include <openssl/x509.h>

/* Longest serial text, NUL included: RFC 5280 allows 20 octets, 40 hex
 * digits; a longer (non-conforming) serial is refused by serial_hex. */
#define SERIAL_HEX_LEN 41

/*
 * serial_hex writes the serial number of |cert| to |out| (|out_size| bytes)
 * as lowercase hex without leading zeros, the form logs, the ledger and the
 * agent's files use. Returns 0, DEVID_ERR_TOO_LARGE when it does not fit (out
 * is then ""), or DEVID_ERR_ALLOC.
 */
int serial_hex(char *out, size_t out_size, const X509 *cert);

/* serial_hex_of is serial_hex for the serial number |serial|. */
int serial_hex_of(char *out, size_t out_size, const ASN1_INTEGER *serial);

#endif
