/* The boot-state gate's TPM2_Quote: input = selection (3 bytes, big-endian
 * PCR mask) || info_len (2, big-endian) || sig_len (2) || info || sig ||
 * the reported PCR values (1 byte index || 32 bytes value each, at most
 * QUOTE_MAX_PCRS; a shorter tail is ignored), checked with the fixed IDevID
 * key standing in for the IAK and the fixed qualifyingData. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzzutil.h"
#include "verifier/core/quote.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fu_world();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct fu_world *w = fu_world();
    struct quote_pcr pcrs[QUOTE_MAX_PCRS];
    struct quote_input in;
    char why[256], s[QUOTE_PCRS_STR_LEN];
    size_t info_len, sig_len, n = 0;

    if (size < 7)
        return 0;
    memset(&in, 0, sizeof(in));
    in.selection = (uint32_t)data[0] << 16 | (uint32_t)data[1] << 8 | data[2];
    info_len = (size_t)data[3] << 8 | data[4];
    sig_len = (size_t)data[5] << 8 | data[6];
    data += 7;
    size -= 7;
    if (info_len > size || sig_len > size - info_len)
        return 0;
    in.info = data;
    in.info_len = info_len;
    in.sig = data + info_len;
    in.sig_len = sig_len;
    data += info_len + sig_len;
    size -= info_len + sig_len;
    for (; size >= 1 + QUOTE_PCR_LEN && n < QUOTE_MAX_PCRS; n++) {
        pcrs[n].index = data[0];
        memcpy(pcrs[n].sha256, data + 1, QUOTE_PCR_LEN);
        data += 1 + QUOTE_PCR_LEN;
        size -= 1 + QUOTE_PCR_LEN;
    }
    in.pcrs = pcrs;
    in.n_pcrs = n;
    in.signer = w->idevid_key;
    in.qualifying = w->qualifying;
    in.qualifying_len = sizeof(w->qualifying);
    if (quote_check(&in, why, sizeof(why)) == 0)
        quote_pcrs_str(s, sizeof(s), pcrs, n);
    quote_selection_str(why, sizeof(why), in.selection);
    return 0;
}
