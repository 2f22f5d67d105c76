/* EK certificate index contents (common/nvcert.h nvcert_parse_ek) and the
 * certificate the verifier then decodes and reads the TPM's identity from
 * (verifier/core/ekcert.h). Checks that the span lies inside the input and
 * starts a SEQUENCE, and that exactly its bytes decode again as the one
 * certificate the verifier receives. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "common/nvcert.h"
#include "verifier/core/ekcert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nvcert_span span;
    struct ekcert_tpm tpm;
    X509 *x = NULL, *y = NULL;
    char why[256];

    if (nvcert_parse_ek(&x, &span, data, size, why, sizeof(why)) == 0) {
        if (x == NULL || span.off > size || span.len > size - span.off || span.len < 2 ||
            data[span.off] != 0x30)
            abort();
        if (ekcert_decode(&y, data + span.off, span.len, why, sizeof(why)) != 0 &&
            span.len <= 65536)
            abort();
        (void)ekcert_tpm_info(&tpm, x, why, sizeof(why));
        X509_free(y);
        X509_free(x);
    }
    (void)ekcert_decode(&y, data, size, why, sizeof(why));
    X509_free(y);
    ERR_clear_error();
    return 0;
}
