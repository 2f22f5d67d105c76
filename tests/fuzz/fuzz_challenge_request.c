/* ChallengeRequest from the network: the protobuf parser, then
 * challenge_decide against the fixed world (IDevID as the TLS client), as
 * the server calls it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzzutil.h"
#include "verifier/core/challenge.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fu_world();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct fu_world *w = fu_world();
    const struct enroll_config cfg = {w->store, w->policy, w->token_key, NULL, w->ek_store};
    Devid__V1__ChallengeRequest *req;
    struct challenge_input in;
    struct challenge_verdict v;
    uint8_t nonce[TOKEN_NONCE_LEN];

    if ((req = devid__v1__challenge_request__unpack(NULL, size, data)) == NULL)
        return 0;
    memset(nonce, 0x5a, sizeof(nonce));
    in = (struct challenge_input){req, fu_tls(), nonce, FU_NOW, 120};
    challenge_decide(&v, &cfg, &in);
    devid__v1__challenge_request__free_unpacked(req, NULL);
    return 0;
}
