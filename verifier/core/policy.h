/* Enrollment policy: which manufacturers, models and serials may enroll, the
 * local deny list, re-enrollment and the kind of TPM evidence required.
 * Pure. The policy file format is documented in
 * deploy/config/policy.conf.example. */
#ifndef DEVID_VERIFIER_CORE_POLICY_H
#define DEVID_VERIFIER_CORE_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "verifier/core/assurance.h"
#include "verifier/core/identity.h"
#include "verifier/core/quote.h"

struct policy;

/* The default minimum assurance (docs/verifier.md, "Assurance levels", explains the choice). */
#define POLICY_DEFAULT_MINIMUM ASSURANCE_NONE

/* Most [assurance "MFR"] and [assurance "MFR" "MODEL"] rules. */
#define POLICY_MAX_MINIMUMS 4096

/* policy_new returns an empty policy that allows every device of every
 * trusted manufacturer (the command-line form), allows re-enrollment and
 * requires POLICY_DEFAULT_MINIMUM assurance; or NULL. Free with
 * policy_free. */
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

/*
 * policy_set_minimum sets the minimum assurance |level|: for every device
 * when |manufacturer| is NULL; for the devices of |manufacturer| when
 * |model| is NULL; for model |model| of |manufacturer| otherwise. The most
 * specific rule that matches a device decides (model, then manufacturer,
 * then the default); setting a rule again replaces it. Returns 0,
 * DEVID_ERR_CONFIG for an empty or too long name or a model without a
 * manufacturer, DEVID_ERR_TOO_LARGE past POLICY_MAX_MINIMUMS, or
 * DEVID_ERR_ALLOC.
 */
int policy_set_minimum(struct policy *p, const char *manufacturer, const char *model,
                       enum assurance level);

/*
 * policy_minimum returns the minimum assurance |p| requires of |id| and
 * writes the rule that set it to |rule| (for messages: "[assurance]",
 * "[assurance \"MFR\"]", "[assurance \"MFR\" \"MODEL\"]", or "the
 * default" when no rule matched).
 */
enum assurance policy_minimum(const struct policy *p, const struct device_identity *id, char *rule,
                              size_t rule_len);

/* Most pcr.N rules, and most values one rule allows. */
#define POLICY_MAX_PCR_RULES 4096
#define POLICY_MAX_PCR_VALUES 16

/*
 * policy_add_pcr allows |value| (QUOTE_PCR_LEN bytes, a SHA-256 PCR value)
 * for PCR |index| of the devices of |manufacturer| (|model| NULL) or of its
 * model |model|: the boot-state gate. The rules of the most specific
 * section that has any decide: the model's, else the manufacturer's. A PCR
 * that has rules must hold one of its allowed values. Returns 0,
 * DEVID_ERR_CONFIG for an empty or too long name, an index of
 * QUOTE_PCR_COUNT or more, or a section past QUOTE_MAX_PCRS PCRs,
 * DEVID_ERR_TOO_LARGE past POLICY_MAX_PCR_RULES or POLICY_MAX_PCR_VALUES,
 * or DEVID_ERR_ALLOC.
 */
int policy_add_pcr(struct policy *p, const char *manufacturer, const char *model, unsigned index,
                   const uint8_t value[QUOTE_PCR_LEN]);

/*
 * policy_pcr_selection returns the PCRs (bit i: PCR i) the policy checks for
 * |id|, 0 for none, and writes the section whose rules apply to |rule|
 * ("[assurance \"MFR\" \"MODEL\"]" or "[assurance \"MFR\"]"; "" for none).
 */
uint32_t policy_pcr_selection(const struct policy *p, const struct device_identity *id, char *rule,
                              size_t rule_len);

/*
 * policy_check_pcrs returns 0 when each PCR policy_pcr_selection names for
 * |id| is among |pcrs| (|n| values, as quote_check verified them) and holds
 * an allowed value; else DEVID_ERR_PCR_VALUE with |why| naming the PCR, its
 * value, the allowed values and the rule.
 */
int policy_check_pcrs(const struct policy *p, const struct device_identity *id,
                      const struct quote_pcr *pcrs, size_t n, char *why, size_t why_len);

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
 * policy_check_assurance returns 0 when evidence of assurance |level| meets
 * the minimum policy_minimum gives for |id|, else DEVID_ERR_POLICY_DENIED
 * with |why| naming both levels, the rule and what the level means.
 */
int policy_check_assurance(const struct policy *p, const struct device_identity *id,
                           enum assurance level, char *why, size_t why_len);

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
