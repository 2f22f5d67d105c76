#include "common/transcript.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "common/err.h"

static const char transcript_label[] = "devid/v1 enroll";

int transcript_compute(uint8_t out[TRANSCRIPT_LEN], const uint8_t *nonce, size_t nonce_len,
                       const uint8_t *exporter, size_t exporter_len, const uint8_t *csr,
                       size_t csr_len)
{
    uint8_t csr_hash[SHA256_DIGEST_LENGTH];
    EVP_MD_CTX *ctx = NULL;
    unsigned int len = 0;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || nonce == NULL || exporter == NULL || csr == NULL ||
        nonce_len != TRANSCRIPT_NONCE_LEN || exporter_len != TRANSCRIPT_EXPORTER_LEN ||
        csr_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (SHA256(csr, csr_len, csr_hash) == NULL) {
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    if ((ctx = EVP_MD_CTX_new()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, transcript_label, strlen(transcript_label)) != 1 ||
        EVP_DigestUpdate(ctx, nonce, nonce_len) != 1 ||
        EVP_DigestUpdate(ctx, exporter, exporter_len) != 1 ||
        EVP_DigestUpdate(ctx, csr_hash, sizeof(csr_hash)) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &len) != 1 || len != TRANSCRIPT_LEN) {
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    r = 0;
out:
    EVP_MD_CTX_free(ctx);
    return r;
}
