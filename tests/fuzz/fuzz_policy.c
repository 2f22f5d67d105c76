/* The config file parsers: the input is parsed as a policy file
 * (policy_parse) and as a manufacturers file (mfrconf_parse); a policy that
 * parses is applied to a fixed identity with each assurance level, the
 * re-enrollment rule and a fixed PCR 7 value. No fixture needed. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "verifier/core/mfrconf.h"
#include "verifier/core/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct device_identity id;
    struct policy *p = NULL;
    struct mfrconf *m = NULL;
    struct quote_pcr pcr;
    char why[512];

    memset(&id, 0, sizeof(id));
    memcpy(id.manufacturer, "Acme Devices", 13);
    memcpy(id.model, "Widget 3000", 12);
    memcpy(id.serial, "SN-0001", 8);
    memset(id.fingerprint, 'a', 64);
    pcr.index = 7;
    memset(pcr.sha256, 0x77, sizeof(pcr.sha256));
    if (policy_parse(&p, (const char *)data, size, "fuzz.conf", why, sizeof(why)) == 0) {
        policy_check(p, &id, why, sizeof(why));
        policy_check_assurance(p, &id, ASSURANCE_NONE, why, sizeof(why));
        policy_check_assurance(p, &id, ASSURANCE_IAK, why, sizeof(why));
        policy_minimum(p, &id, why, sizeof(why));
        policy_check_reenroll(p, &id, true, why, sizeof(why));
        policy_pcr_selection(p, &id, why, sizeof(why));
        policy_check_pcrs(p, &id, &pcr, 1, why, sizeof(why));
        policy_get0_manufacturer(p, 0);
        policy_free(p);
    }
    if (mfrconf_parse(&m, (const char *)data, size, "fuzz.conf", why, sizeof(why)) == 0)
        mfrconf_free(m);
    return 0;
}
