/* EnrollRequest from the network: the protobuf parser, then every check of
 * enroll_check against the fixed world (IDevID as the TLS client). */
#include <stddef.h>
#include <stdint.h>

#include "fuzzutil.h"
#include "verifier/core/enroll.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fu_world();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct fu_world *w = fu_world();
    const struct enroll_config cfg = {w->store, w->policy, w->token_key};
    Devid__V1__EnrollRequest *req;
    struct enroll_outcome out;

    if ((req = devid__v1__enroll_request__unpack(NULL, size, data)) == NULL)
        return 0;
    enroll_check(&out, &cfg, req, w->idevid, NULL, w->exporter, FU_NOW);
    enroll_outcome_cleanup(&out);
    devid__v1__enroll_request__free_unpacked(req, NULL);
    return 0;
}
