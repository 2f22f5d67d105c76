/* Assurance levels: how an enrollment showed that the new key lives in the
 * device's TPM. Every verdict, ledger record, log line and operational
 * certificate names one. Pure. */
#ifndef DEVID_VERIFIER_CORE_ASSURANCE_H
#define DEVID_VERIFIER_CORE_ASSURANCE_H

#include <stddef.h>

/* Ordered from weakest to strongest: a policy minimum of level L accepts L
 * and every level after it. */
enum assurance {
    /* TPM2_Certify signed by the IDevID, an unrestricted signing key. It
     * proves possession of the IDevID, not where the new key lives:
     * TPM2_Sign with the IDevID signs any digest, including that of a
     * TPMS_ATTEST that software made up for a key outside the TPM. */
    ASSURANCE_NONE = 0,
    /* TPM2_Certify signed by the IDevID, and the credential the verifier
     * made for the certified key's Name, wrapped to an EK whose certificate
     * chains to a configured TPM vendor, activated (docs/protocol.md 6.1):
     * the new key is in a TPM holding that EK. */
    ASSURANCE_EK = 1,
    /* TPM2_Certify signed by a restricted IAK whose certificate chains to
     * the IDevID's manufacturer and names the same device serial: the TPM
     * itself made the TPMS_ATTEST, so the new key is in that TPM. */
    ASSURANCE_IAK = 2,
};

/* Number of levels, for tables. */
#define ASSURANCE_LEVELS 3

/* The default OID arc of the certificatePolicies the operational
 * certificate carries: 2.25 (ITU-T X.667, an OID from a UUID, no
 * registration) with UUID 75309353-c873-47e4-9afc-9f3a2202fe94. Level L is
 * ARC.(L + 1): none .1, ek .2, iak .3. */
#define ASSURANCE_DEFAULT_ARC "2.25.155771893908230422273977835285324693140"

/* Longest arc accepted (characters), so that ARC.N fits ASSURANCE_OID_LEN. */
#define ASSURANCE_ARC_MAX 100
#define ASSURANCE_OID_LEN (ASSURANCE_ARC_MAX + 4)

/* assurance_str returns "none", "ek" or "iak" (static); "unknown" for a
 * value out of range. */
const char *assurance_str(enum assurance a);

/* assurance_parse sets |*out| from "none", "ek" or "iak". Returns 0 or
 * DEVID_ERR_CONFIG. */
int assurance_parse(enum assurance *out, const char *s);

/* assurance_arc_valid returns 1 when |arc| is a dotted-decimal OID of at
 * least two arcs (first 0, 1 or 2; no leading zeros) of at most
 * ASSURANCE_ARC_MAX characters, else 0. */
int assurance_arc_valid(const char *arc);

/* assurance_policy_oid writes the certificatePolicies OID of level |a|
 * under |arc| ("ARC.N") to |buf| (ASSURANCE_OID_LEN bytes suffice).
 * Returns 0, or DEVID_ERR_INVALID_ARGUMENT for an invalid arc or level. */
int assurance_policy_oid(char *buf, size_t len, const char *arc, enum assurance a);

#endif
