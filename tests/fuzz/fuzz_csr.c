/* PKCS#10 from the network: csr_parse, then csr_check_key against the fixed
 * LDevID key; and csr_check, which parses a request for that key without
 * decoding the key again, must decide every input as those two do. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/err.h>

#include "fuzzutil.h"
#include "verifier/core/csr.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fu_world();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    EVP_PKEY *key = fu_world()->ldevid_key;
    X509_REQ *req = NULL;
    X509_PUBKEY *spki = NULL;
    char why[256];
    int slow, fast;

    if ((slow = csr_parse(&req, data, size, why, sizeof(why))) == 0)
        slow = csr_check_key(req, key, why, sizeof(why));
    X509_REQ_free(req);
    why[0] = '\0';
    fast = csr_check(&spki, data, size, key, why, sizeof(why));
    if (fast != slow || (fast == 0) != (spki != NULL) || (fast != 0 && why[0] == '\0'))
        abort();
    X509_PUBKEY_free(spki);
    ERR_clear_error();
    return 0;
}
