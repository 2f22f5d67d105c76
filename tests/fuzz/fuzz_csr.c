/* PKCS#10 from the network: csr_parse, then csr_check_key against the fixed
 * LDevID key. */
#include <stddef.h>
#include <stdint.h>

#include "fuzzutil.h"
#include "verifier/core/csr.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fu_world();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    X509_REQ *req = NULL;
    char why[256];

    if (csr_parse(&req, data, size, why, sizeof(why)) != 0)
        return 0;
    csr_check_key(req, fu_world()->ldevid_key, why, sizeof(why));
    X509_REQ_free(req);
    return 0;
}
