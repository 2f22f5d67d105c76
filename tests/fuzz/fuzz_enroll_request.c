/* EnrollRequest from the network: the protobuf parser, then enroll_peek and
 * enroll_decide against the fixed world (IDevID as the TLS client), as the
 * server calls them, with a ledger that has never seen the nonce; a request
 * with a quote is judged again under the policy that gates PCR 7, so the
 * quote and AK checks see it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzzutil.h"
#include "verifier/core/enroll.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fu_world();
    return 0;
}

static void decide(const Devid__V1__EnrollRequest *req, struct policy *policy)
{
    const struct fu_world *w = fu_world();
    const struct enroll_config cfg = {w->store, policy, w->token_key, NULL, w->ek_store};
    struct enroll_ledger_facts facts;
    struct enroll_input in;
    struct enroll_verdict out;

    memset(&facts, 0, sizeof(facts));
    in = (struct enroll_input){req, fu_tls(), &facts, FU_NOW};
    if (enroll_peek(&facts.asked, &cfg, req, &in.tls, FU_NOW) == 0)
        facts.nonce = ENROLL_NONCE_UNUSED;
    enroll_decide(&out, &cfg, &in);
    enroll_verdict_cleanup(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct fu_world *w = fu_world();
    Devid__V1__EnrollRequest *req;

    if ((req = devid__v1__enroll_request__unpack(NULL, size, data)) == NULL)
        return 0;
    decide(req, w->policy);
    if (req->quote != NULL)
        decide(req, w->policy_pcr);
    devid__v1__enroll_request__free_unpacked(req, NULL);
    return 0;
}
