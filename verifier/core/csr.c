#include "verifier/core/csr.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "common/err.h"

int csr_parse(X509_REQ **out, const uint8_t *der, size_t len, char *why, size_t why_len)
{
    X509_REQ *req = NULL;
    EVP_PKEY *key;
    const unsigned char *p = der;
    char reason[256];
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    why[0] = '\0';
    if (der == NULL || len == 0 || len > CSR_MAX_LEN) {
        snprintf(why, why_len, "CSR is empty or longer than %d bytes", CSR_MAX_LEN);
        r = DEVID_ERR_CSR_INVALID;
        goto out;
    }
    if ((req = d2i_X509_REQ(NULL, &p, (long)len)) == NULL) {
        snprintf(why, why_len, "CSR does not parse as PKCS#10 DER: %s",
                 devid_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CSR_INVALID;
        goto out;
    }
    if (p != der + len) {
        snprintf(why, why_len, "CSR has %zu trailing bytes", (size_t)(der + len - p));
        r = DEVID_ERR_CSR_INVALID;
        goto out;
    }
    if ((key = X509_REQ_get0_pubkey(req)) == NULL) {
        snprintf(why, why_len, "CSR public key does not decode: %s",
                 devid_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CSR_INVALID;
        goto out;
    }
    if (X509_REQ_verify(req, key) != 1) {
        snprintf(why, why_len, "CSR self-signature does not verify: %s",
                 devid_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CSR_INVALID;
        goto out;
    }
    *out = req;
    req = NULL;
    r = 0;
out:
    X509_REQ_free(req);
    return r;
}

int csr_check_key(X509_REQ *req, EVP_PKEY *key, char *why, size_t why_len)
{
    EVP_PKEY *csr_key;

    if (req == NULL || key == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    why[0] = '\0';
    if ((csr_key = X509_REQ_get0_pubkey(req)) == NULL || EVP_PKEY_eq(csr_key, key) != 1) {
        ERR_clear_error();
        snprintf(why, why_len, "CSR public key is not the key certified by the TPM");
        return DEVID_ERR_CSR_KEY_MISMATCH;
    }
    return 0;
}
