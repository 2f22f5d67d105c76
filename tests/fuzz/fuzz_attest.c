/* TPM2_Certify evidence: input = info_len (2, big-endian) || sig_len (2) ||
 * info || sig || pub, checked with the fixed IDevID key as signer. */
#include <stddef.h>
#include <stdint.h>

#include "fuzzutil.h"
#include "verifier/core/attest.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fu_world();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct fu_world *w = fu_world();
    struct attest_input in = {0};
    struct attest_result res;
    char why[256];
    size_t info_len, sig_len;

    if (size < 4)
        return 0;
    info_len = (size_t)data[0] << 8 | data[1];
    sig_len = (size_t)data[2] << 8 | data[3];
    data += 4;
    size -= 4;
    if (info_len > size || sig_len > size - info_len)
        return 0;
    in.info = data;
    in.info_len = info_len;
    in.sig = data + info_len;
    in.sig_len = sig_len;
    in.pub = data + info_len + sig_len;
    in.pub_len = size - info_len - sig_len;
    in.signer = w->idevid_key;
    in.qualifying = w->qualifying;
    in.qualifying_len = sizeof(w->qualifying);
    if (attest_check_certify(&res, &in, why, sizeof(why)) == 0)
        attest_result_cleanup(&res);
    return 0;
}
