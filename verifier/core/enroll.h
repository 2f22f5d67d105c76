/* The verifier's enrollment decision: every check of DESIGN.md step 5, in
 * order, over a decoded request. Pure: no socket, file, clock or ledger. */
#ifndef DEVID_VERIFIER_CORE_ENROLL_H
#define DEVID_VERIFIER_CORE_ENROLL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "common/transcript.h"
#include "devid/v1/enroll.pb-c.h"
#include "verifier/core/attest.h"
#include "verifier/core/chain.h"
#include "verifier/core/identity.h"
#include "verifier/core/policy.h"
#include "verifier/core/token.h"

/* Most intermediates a request may carry in EnrollRequest.intermediates. */
#define ENROLL_MAX_INTERMEDIATES 8

struct enroll_config {
    const struct chain_store *store;
    const struct policy *policy;
    const uint8_t *token_key; /* TOKEN_KEY_LEN bytes */
};

/* What enroll_check learned; every pointer is owned by the outcome. On a
 * refusal the owned objects, the nonce and the transcript are cleared, while
 * |why|, |id|, |revocation| and |signer| keep what was learned (for logs). */
struct enroll_outcome {
    /* Human-readable reason when the check failed: names the certificate,
     * the check and the field. */
    char why[512];
    struct device_identity id;
    X509_REQ *csr;
    EVP_PKEY *ldevid_key;
    uint8_t nonce[TOKEN_NONCE_LEN];
    uint8_t transcript[TRANSCRIPT_LEN];
    /* SHA-256 of the IDevID DER and of the CSR DER. */
    uint8_t idevid_sha256[32];
    uint8_t csr_sha256[32];
    /* Devid__V1__SignerKind of the certify signer. */
    int signer_kind;
    /* Which kind of signer vouched for the LDevID key (stage 2). */
    enum attest_signer signer;
    /* Revocation status of the IDevID (stage 1), and what was seen. */
    enum chain_revocation revocation;
    char revocation_detail[512];
    /* Input to stage 2: set by the caller between the stages from its ledger
     * (the device already holds an issued certificate). */
    bool already_enrolled;
    /* Internal: 1 after a successful enroll_check_client. */
    int stage;
};

/* enroll_outcome_cleanup frees what |o| owns and zeroes it. */
void enroll_outcome_cleanup(struct enroll_outcome *o);

/*
 * enroll_cert_hash writes SHA-256 of |cert|'s DER encoding (as received) to
 * |out|. Returns 0 or a DEVID_ERR_* code.
 */
int enroll_cert_hash(uint8_t out[32], X509 *cert);

/*
 * enroll_check_client is stage 1, everything that needs no evidence: the
 * chain of |client_cert| with |tls_chain| and req->intermediates to a root of
 * cfg->store (with revocation), identity extraction, and the token (MAC,
 * expiry, bound to |client_cert|), which yields the nonce. Returns 0 and
 * fills out->id, out->nonce, out->idevid_sha256 and out->revocation, or the
 * failing check's DEVID_ERR_* code with out->why set.
 */
int enroll_check_client(struct enroll_outcome *out, const struct enroll_config *cfg,
                        const Devid__V1__EnrollRequest *req, X509 *client_cert,
                        STACK_OF(X509) *tls_chain, time_t now);

/*
 * enroll_check_evidence is stage 2, on |out| from a successful
 * enroll_check_client (same |req|, |client_cert| and |tls_chain|): the
 * challenge signature over T (recomputed with |exporter|), the certify
 * evidence (by the IDevID, or by an IAK whose certificate chains to the same
 * manufacturer and names the same device serial), the CSR and its key,
 * policy (manufacturer, model, serial, deny list), require_iak, and the
 * re-enrollment rule with out->already_enrolled. Returns 0 and completes
 * |out|, or the failing check's DEVID_ERR_* code with out->why set.
 */
int enroll_check_evidence(struct enroll_outcome *out, const struct enroll_config *cfg,
                          const Devid__V1__EnrollRequest *req, X509 *client_cert,
                          STACK_OF(X509) *tls_chain,
                          const uint8_t exporter[TRANSCRIPT_EXPORTER_LEN], time_t now);

/*
 * enroll_check runs enroll_check_client then enroll_check_evidence (with
 * already_enrolled false), in order: the chain of |client_cert| with |tls_chain|
 * and req->intermediates to a root of cfg->store; identity extraction; the
 * token (MAC, expiry, bound to |client_cert|); the challenge signature over T
 * (recomputed with |exporter|, the verifier's own RFC 9266 value) by the
 * IDevID key; the certify evidence (signed by the IDevID); the CSR (parsed
 * and its self-signature checked by csr_parse, so a CSR that does not parse or
 * verify is DEVID_ERR_CSR_INVALID before its key is compared); the CSR key
 * equals the certified key; policy. Nonce single use is the
 * caller's (it needs the ledger). Returns 0 and fills |out|, or the first
 * failing check's DEVID_ERR_* code with out->why set.
 */
int enroll_check(struct enroll_outcome *out, const struct enroll_config *cfg,
                 const Devid__V1__EnrollRequest *req, X509 *client_cert, STACK_OF(X509) *tls_chain,
                 const uint8_t exporter[TRANSCRIPT_EXPORTER_LEN], time_t now);

/* What enroll_check_idevid found, stage by stage. */
struct enroll_idevid_report {
    /* Filled when the chain verified (chain_ok); owned by the report. */
    struct chain_verdict chain;
    /* Filled when the identity was extracted (identity_ok). */
    struct device_identity id;
    int chain_ok, identity_ok, policy_ok;
    /* Why the first failing stage refused. */
    char why[512];
};

/* enroll_idevid_report_cleanup frees what |rep| owns and zeroes it. */
void enroll_idevid_report_cleanup(struct enroll_idevid_report *rep);

/*
 * enroll_check_idevid runs the checks an IDevID faces before any evidence:
 * chain_verify (with revocation) of |leaf| with |device_chain| against
 * |store| at |now|, identity_extract, and policy_check against |policy|.
 * Fills |rep| stage by stage (the caller cleans it up, also on failure) and
 * returns 0, or the first failing stage's DEVID_ERR_* code with rep->why set.
 */
int enroll_check_idevid(struct enroll_idevid_report *rep, const struct chain_store *store,
                        const struct policy *policy, X509 *leaf, STACK_OF(X509) *device_chain,
                        time_t now);

#endif
