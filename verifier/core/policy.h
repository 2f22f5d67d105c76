/* Enrollment policy: which manufacturers, models and serials may enroll, the
 * local deny list, re-enrollment and the kind of TPM evidence required.
 * Pure. The policy file format is documented in
 * deploy/config/policy.conf.example. */
#ifndef DEVID_VERIFIER_CORE_POLICY_H
#define DEVID_VERIFIER_CORE_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "verifier/core/identity.h"

struct policy;

/* policy_new returns an empty policy that allows every device of every
 * trusted manufacturer (the command-line form), allows re-enrollment and
 * accepts IDevID-signed evidence; or NULL. Free with policy_free. */
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
    /* Manufacturer names (exact). Adding to POLICY_ALLOW_MANUFACTURER turns
     * off "every trusted manufacturer": only listed ones may enroll. */
    POLICY_ALLOW_MANUFACTURER,
    POLICY_DENY_MANUFACTURER,
    /* The local deny list: exact device serials, and SHA-256 fingerprints of
     * IDevID certificates (64 hex digits, colons allowed, any case). */
    POLICY_DENYLIST_SERIAL,
    POLICY_DENYLIST_FINGERPRINT,
};

/* policy_add appends |value| (copied) to |list|. Returns 0, DEVID_ERR_CONFIG
 * for an empty, too long or malformed value, or another DEVID_ERR_*. */
int policy_add(struct policy *p, enum policy_list list, const char *value);

/* policy_set_require_iak sets whether only evidence certified by a restricted
 * IAK is enough (default false: an unrestricted IDevID signer is accepted). */
void policy_set_require_iak(struct policy *p, bool require_iak);

/* policy_require_iak returns the require_iak setting. */
bool policy_require_iak(const struct policy *p);

/* policy_set_reenroll sets whether an already enrolled device may enroll
 * again (default true). */
void policy_set_reenroll(struct policy *p, bool allow);

/* policy_reenroll returns the reenroll setting. */
bool policy_reenroll(const struct policy *p);

/*
 * policy_check returns 0 when |id| may enroll: its manufacturer is allowed
 * (listed, when the policy lists manufacturers; a policy from a file always
 * does) and not denied, its model and serial are on no deny list and on each
 * non-empty allow list, and neither its serial nor its fingerprint is on the
 * local deny list. Otherwise DEVID_ERR_POLICY_DENIED with |why| naming the
 * field, the value and the rule.
 */
int policy_check(const struct policy *p, const struct device_identity *id, char *why,
                 size_t why_len);

/*
 * policy_check_signer returns 0 when evidence from a signer that is
 * (|iak_restricted| true) or is not a restricted IAK satisfies require_iak,
 * else DEVID_ERR_POLICY_DENIED with the reason in |why|.
 */
int policy_check_signer(const struct policy *p, bool iak_restricted, char *why, size_t why_len);

/*
 * policy_check_reenroll returns 0 when |id| may enroll given that it is
 * (|already_enrolled|) or is not enrolled already, else
 * DEVID_ERR_POLICY_DENIED naming the serial.
 */
int policy_check_reenroll(const struct policy *p, const struct device_identity *id,
                          bool already_enrolled, char *why, size_t why_len);

/*
 * policy_parse sets |*out| to the policy described by the |len| bytes at
 * |buf| (an INI policy file; |file| names it in messages). Unlike policy_new,
 * only manufacturers the file allows may enroll. On failure |*out| stays NULL,
 * |why| gets "FILE:LINE: reason" and DEVID_ERR_CONFIG (or DEVID_ERR_ALLOC) is
 * returned. The caller owns |*out|.
 */
int policy_parse(struct policy **out, const char *buf, size_t len, const char *file, char *why,
                 size_t why_len);

/*
 * policy_get0_manufacturer returns the |i|th manufacturer name the policy
 * allows or denies (allow list first), or NULL past the end. Borrowed.
 */
const char *policy_get0_manufacturer(const struct policy *p, size_t i);

#endif
