/* Enrollment policy: which manufacturers, models and serials may enroll.
 * Pure. */
#ifndef DEVID_VERIFIER_POLICY_H
#define DEVID_VERIFIER_POLICY_H

#include <stddef.h>

#include "verifier/identity.h"

struct policy;

/* policy_new returns an empty policy that allows every device of a trusted
 * manufacturer, or NULL. Free with policy_free. */
struct policy *policy_new(void);

/* policy_free frees |p|; NULL is a no-op. */
void policy_free(struct policy *p);

/* The lists policy_add matches against. */
enum policy_list {
    POLICY_ALLOW_MODEL,
    POLICY_DENY_MODEL,
    /* Serial patterns are fnmatch(3) globs. */
    POLICY_ALLOW_SERIAL,
    POLICY_DENY_SERIAL,
};

/* policy_add appends |value| (copied) to |list|. Returns 0 or a DEVID_ERR_*. */
int policy_add(struct policy *p, enum policy_list list, const char *value);

/*
 * policy_check returns 0 when |id| may enroll: not on a deny list, and on each
 * non-empty allow list. Otherwise DEVID_ERR_POLICY_DENIED with |why| naming the
 * field, the value and the rule.
 */
int policy_check(const struct policy *p, const struct device_identity *id, char *why,
                 size_t why_len);

#endif
