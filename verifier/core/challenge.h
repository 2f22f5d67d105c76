/* The verifier's answer to POST /v1/challenge: the checks of
 * docs/protocol.md section 8 (TLS, the chain with the request's
 * intermediates, identity, policy), so that a device the enrollment would
 * refuse learns why before it spends TPM work, and the token it is to return.
 * Pure: the shell brings the fresh nonce and the time. */
#ifndef DEVID_VERIFIER_CORE_CHALLENGE_H
#define DEVID_VERIFIER_CORE_CHALLENGE_H

#include <stdint.h>
#include <time.h>

#include "devid/v1/enroll.pb-c.h"
#include "verifier/core/credential.h"
#include "verifier/core/ekcert.h"
#include "verifier/core/enroll.h"
#include "verifier/core/identity.h"
#include "verifier/core/token.h"

/* The protocol_version a ChallengeRequest must carry. */
#define CHALLENGE_PROTOCOL_VERSION 1

/* Everything challenge_decide judges; every pointer is borrowed. */
struct challenge_input {
    const Devid__V1__ChallengeRequest *req;
    struct enroll_tls tls;
    /* TOKEN_NONCE_LEN fresh random bytes: the challenge. */
    const uint8_t *nonce;
    time_t now;
    /* How long the token is valid, in seconds. */
    long ttl_seconds;
};

/* The verdict on one challenge request. */
struct challenge_verdict {
    /* 0, or the refusal's DEVID_ERR_* code, with |why|. */
    int reason;
    char why[512];
    /* The device, as far as it was learned (for logs); the manufacturer is
     * set once the chain verified. */
    struct device_identity id;
    /* On success: the token sealing the nonce, its expiry, the client
     * certificate and the connection, and the expiry. */
    uint8_t token[TOKEN_LEN];
    int64_t expires_at;
    /* When the request carried an EK: the credential for its new key, and
     * the TPM vendor and TPM its certificate names (for logs). */
    bool has_credential;
    struct credential_blob credential;
    char tpm_vendor[IDENTITY_NAME_LEN];
    struct ekcert_tpm tpm;
    /* The PCRs (bit i: PCR i of the SHA-256 bank) the policy checks for the
     * device's model, which the agent is to quote (policy_pcr_selection);
     * 0: none. */
    uint32_t quote_pcrs;
    /* When the request carried ak_public, an EK and the policy gates the
     * device on PCRs: the credential for the AK's Name, wrapped to the same
     * EK (docs/protocol.md section 6.2). */
    bool has_ak_credential;
    struct credential_blob ak_credential;
};

/* Longest ChallengeRequest.ek_certificate accepted. */
#define CHALLENGE_EK_CERT_MAX 4096

/* Most ChallengeRequest.ek_intermediates accepted (each at most
 * CHALLENGE_EK_CERT_MAX bytes). */
#define CHALLENGE_EK_INTERMEDIATES_MAX 8

/*
 * challenge_decide judges |in| under |cfg| and fills |out|. In order:
 * enroll_check_tls (a client certificate; TLS 1.3 or 1.2 with EMS);
 * protocol_version (DEVID_ERR_BAD_REQUEST); the chain of the client
 * certificate with the handshake's chain and req->intermediates (at most
 * DEVID_MAX_INTERMEDIATES), with revocation; the identity and policy
 * (enroll_check_idevid); the exporter (DEVID_ERR_TLS when absent); then,
 * when the request carries an EK (ek_certificate, ek_public, ldevid_public:
 * all or none, else DEVID_ERR_BAD_REQUEST), the EK certificate to a TPM
 * vendor of cfg->ek_store with req->ek_intermediates as untrusted
 * certificates, never anchors (more than CHALLENGE_EK_INTERMEDIATES_MAX:
 * DEVID_ERR_BAD_REQUEST; one that is not exactly one certificate:
 * DEVID_ERR_EK_CERT; then ekcert_verify; DEVID_ERR_EK_CERT), the EK public
 * area (credential_check_ek, and its key is the certificate's:
 * DEVID_ERR_EK_KEY) and the new key's public area (DEVID_ERR_ATTEST_MALFORMED),
 * and makes the credential (credential_derive, credential_make) for the new
 * key's Name. It sets out->quote_pcrs to the PCRs the policy checks for
 * the device (policy_pcr_selection). With req->ak_public (only with an EK,
 * else DEVID_ERR_BAD_REQUEST) and quote_pcrs set, it checks the AK
 * (DEVID_ERR_ATTEST_MALFORMED when it does not parse, credential_check_ak)
 * and makes a second credential (credential_derive_ak) for its Name, to the
 * same EK; without quote_pcrs ak_public is ignored. Then it seals the token (token_seal_ek, under
 * cfg->token_key: never the accept-only key) with in->nonce, in->now + in->ttl_seconds, SHA-256 of
 * the client certificate, token_conn_hash of the exporter and the EK hashes. Returns 0, or the
 * first failing check's DEVID_ERR_* code (also in out->reason, with out->why).
 */
int challenge_decide(struct challenge_verdict *out, const struct enroll_config *cfg,
                     const struct challenge_input *in);

#endif
