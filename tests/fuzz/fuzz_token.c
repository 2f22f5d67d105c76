/* Challenge tokens: token_open under the fixed key, clock and IDevID hash. */
#include <stddef.h>
#include <stdint.h>

#include "fuzzutil.h"
#include "verifier/core/token.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fu_world();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct fu_world *w = fu_world();
    uint8_t nonce[TOKEN_NONCE_LEN], conn[TOKEN_CONN_HASH_LEN];

    token_open(nonce, conn, w->token_key, data, size, (int64_t)FU_NOW, w->idevid_sha256);
    return 0;
}
