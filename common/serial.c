#include "common/serial.h"

#include <stdio.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>

#include "common/err.h"

int serial_hex(char *out, size_t out_size, const X509 *cert)
{
    if (cert == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    return serial_hex_of(out, out_size, X509_get0_serialNumber(cert));
}

int serial_hex_of(char *out, size_t out_size, const ASN1_INTEGER *serial)
{
    BIGNUM *bn = NULL;
    char *hex = NULL, *p;
    int n, r = DEVID_ERR_ALLOC;

    if (out == NULL || out_size == 0 || serial == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    out[0] = '\0';
    if ((bn = ASN1_INTEGER_to_BN(serial, NULL)) == NULL || (hex = BN_bn2hex(bn)) == NULL)
        goto out;
    for (p = hex; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    }
    n = snprintf(out, out_size, "%s", hex);
    if (n < 0 || (size_t)n >= out_size) {
        out[0] = '\0';
        r = DEVID_ERR_TOO_LARGE;
        goto out;
    }
    r = 0;
out:
    OPENSSL_free(hex);
    BN_free(bn);
    return r;
}
