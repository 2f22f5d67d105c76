/* TPM wire structures: the whole input as a TPMT_PUBLIC (to an EVP_PKEY and
 * a Name) and as a TPMT_SIGNATURE (to the form OpenSSL verifies). */
#include <stddef.h>
#include <stdint.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "common/tpmkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    TPMT_PUBLIC pub;
    TPMT_SIGNATURE sig;
    EVP_PKEY *key = NULL;
    uint8_t name[TPMKEY_NAME_MAX], *der = NULL;
    size_t name_len = 0, der_len = 0;

    if (tpmkey_unmarshal_public(&pub, data, size) == 0 && tpmkey_public_to_pkey(&key, &pub) == 0)
        EVP_PKEY_free(key);
    tpmkey_name_from_bytes(name, &name_len, data, size);
    if (tpmkey_unmarshal_signature(&sig, data, size) == 0 &&
        tpmkey_signature_to_der(&der, &der_len, &sig) == 0)
        OPENSSL_free(der);
    ERR_clear_error();
    return 0;
}
