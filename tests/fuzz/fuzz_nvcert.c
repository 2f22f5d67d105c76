/* NV contents as a TPM returns them (common/nvcert): the framing alone
 * (nvcert_find) and the certificates decoded from it (nvcert_parse). Checks
 * that every span lies inside the input and starts a SEQUENCE, and that a
 * DER certificate accepted is byte for byte its span: what the agent sends
 * is what was stored. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "common/nvcert.h"

#define MAX 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nvcert_span spans[MAX];
    STACK_OF(X509) *sk = NULL;
    unsigned char *enc = NULL;
    char why[256];
    size_t i, n = 0;
    int found, len;

    found = nvcert_find(spans, MAX, &n, data, size, why, sizeof(why)) == 0;
    for (i = 0; found && i < n; i++) {
        if (spans[i].off > size || spans[i].len > size - spans[i].off || spans[i].len < 2 ||
            data[spans[i].off] != 0x30)
            abort();
    }
    if (nvcert_parse(&sk, data, size, MAX, why, sizeof(why)) == 0) {
        if (sk_X509_num(sk) < 1 || sk_X509_num(sk) > MAX)
            abort();
        if (size > 0 && data[0] != '-') {
            if (!found || (size_t)sk_X509_num(sk) != n)
                abort();
            for (i = 0; i < n; i++) {
                len = i2d_X509(sk_X509_value(sk, (int)i), &enc);
                if (len < 0 || (size_t)len != spans[i].len ||
                    memcmp(enc, data + spans[i].off, spans[i].len) != 0)
                    abort();
                OPENSSL_free(enc);
                enc = NULL;
            }
        }
        sk_X509_pop_free(sk, X509_free);
    }
    ERR_clear_error();
    return 0;
}
