/* The verifier's enrollment decision: every check of step 5 in
 * docs/architecture.md ("Enrollment, step by step"), in order, in one call over a decoded request
 * and what the shells know (the TLS facts, the ledger's answers, the time). Pure: no socket, file,
 * clock or ledger; the shell does what the verdict says. */
#ifndef DEVID_VERIFIER_CORE_ENROLL_H
#define DEVID_VERIFIER_CORE_ENROLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "common/transcript.h"
#include "devid/v1/enroll.pb-c.h"
#include "verifier/core/assurance.h"
#include "verifier/core/attest.h"
#include "verifier/core/chain.h"
#include "verifier/core/chain_memo.h"
#include "verifier/core/identity.h"
#include "verifier/core/policy.h"
#include "verifier/core/quote.h"
#include "verifier/core/token.h"

struct enroll_config {
    const struct chain_store *store;
    const struct policy *policy;
    /* TOKEN_KEY_LEN bytes: the token key, which seals and opens. */
    const uint8_t *token_key;
    /* TOKEN_KEY_LEN bytes that open tokens (and the credentials they seal)
     * but never seal one, during a token key change ([token]
     * accept_key_file); NULL: none. */
    const uint8_t *token_accept_key;
    /* The TPM vendors (CHAIN_LEAF_EK rules) that EK certificates must chain
     * to; NULL: none configured, and a challenge with an EK is refused. */
    const struct chain_store *ek_store;
};

/* What the shell asks the ledger about one request (enroll_peek). */
struct enroll_ledger_query {
    /* The challenge nonce sealed in the request's token. */
    uint8_t nonce[TOKEN_NONCE_LEN];
    /* The device: its manufacturer (from the chain) and serial. */
    char manufacturer[IDENTITY_NAME_LEN];
    char device_serial[IDENTITY_NAME_LEN];
    /* SHA-256 of the IDevID certificate's DER. */
    uint8_t idevid_sha256[32];
};

/* What the ledger holds for the request's nonce. */
enum enroll_nonce_use {
    /* The ledger was not asked (enroll_peek refused the request). */
    ENROLL_NONCE_UNKNOWN = 0,
    /* No issuance used the nonce. */
    ENROLL_NONCE_UNUSED,
    /* This device's byte-identical request was recorded with it: a retry
     * after a lost answer. */
    ENROLL_NONCE_SAME_REQUEST,
    /* Another request used it. */
    ENROLL_NONCE_OTHER_REQUEST,
};

/* The ledger's answers for one request, as the shell read them. */
struct enroll_ledger_facts {
    /* What was asked: the request's enroll_peek output. */
    struct enroll_ledger_query asked;
    enum enroll_nonce_use nonce;
    /* SAME_REQUEST or OTHER_REQUEST: the serial of the certificate recorded
     * with the nonce (borrowed). */
    const char *nonce_cert_serial;
    /* SAME_REQUEST: the assurance recorded with that certificate, which the
     * policy judges again before it is returned. */
    enum assurance nonce_assurance;
    /* SAME_REQUEST: the PCR values recorded with that certificate, as
     * quote_pcrs_str writes them ("" or NULL: none), borrowed. Only values
     * a verified quote showed are recorded, so a retry whose reported values
     * are these was verified; the PCR rules of now judge them again. */
    const char *nonce_pcr_values;
    /* The device holds a certificate neither revoked nor expired (read
     * only when the nonce is unused). */
    bool device_active;
};

/* What the shell read from the TLS connection a request arrived on; every
 * pointer is borrowed. */
struct enroll_tls {
    /* SSL_version() of the connection: TLS1_3_VERSION or TLS1_2_VERSION;
     * anything below TLS 1.3 needs |ems|. */
    int version;
    /* TLS 1.2 only: the handshake negotiated the Extended Master Secret
     * (RFC 7627), without which tls-exporter does not bind (RFC 9266 §3). */
    bool ems;
    /* The TLS client certificate (the IDevID) and the chain it sent. */
    X509 *client_cert;
    STACK_OF(X509) *chain;
    /* The verifier's own RFC 9266 tls-exporter value of the connection
     * (TRANSCRIPT_EXPORTER_LEN bytes), or NULL when TLS had none. */
    const uint8_t *exporter;
    /* The chain verdict kept with the connection (chain_memo.h), so its
     * challenge and enroll verify the chain once; NULL: none kept. */
    struct chain_memo *memo;
};

/* Everything enroll_decide judges; every pointer is borrowed. */
struct enroll_input {
    const Devid__V1__EnrollRequest *req;
    struct enroll_tls tls;
    const struct enroll_ledger_facts *ledger;
    time_t now;
};

/* What the shell is to do. */
enum enroll_action {
    /* Answer the refusal in |reason| and |why|. */
    ENROLL_REFUSE = 0,
    /* Build, sign and record a certificate for |csr_spki| and |id|, then
     * answer it. */
    ENROLL_ISSUE,
    /* Answer the certificate the ledger recorded with the nonce again. */
    ENROLL_RETURN_STORED,
};

/* The verdict on one request. Every pointer is owned by the verdict. On a
 * refusal |csr_spki|, the nonce and the transcript are cleared,
 * while |why|, |id|, |revocation|, |signer| and |token_key| keep what was
 * learned (for logs and metrics). */
struct enroll_verdict {
    enum enroll_action action;
    /* 0, or the refusal's DEVID_ERR_* code. */
    int reason;
    /* Why it was refused: names the certificate, the check and the field. */
    char why[512];
    struct device_identity id;
    /* The checked CSR's SubjectPublicKeyInfo (csr_check), whose key is the
     * one the TPM certified: the issued certificate's key, copied as
     * encoded. */
    X509_PUBKEY *csr_spki;
    uint8_t nonce[TOKEN_NONCE_LEN];
    /* What the token sealed of the connection its challenge was answered on. */
    uint8_t conn_hash[TOKEN_CONN_HASH_LEN];
    uint8_t transcript[TRANSCRIPT_LEN];
    /* SHA-256 of the IDevID DER and of the CSR DER. */
    uint8_t idevid_sha256[32];
    uint8_t csr_sha256[32];
    /* Devid__V1__SignerKind of the certify signer, and which kind of key it
     * was. */
    int signer_kind;
    enum attest_signer signer;
    /* How residency of the new key was shown: from the evidence (ENROLL_ISSUE,
     * and refusals after the evidence was checked, with |assurance_known|
     * set), or as recorded with the stored certificate
     * (ENROLL_RETURN_STORED). */
    enum assurance assurance;
    bool assurance_known;
    /* What the token sealed of an EK credential activation (all zero: the
     * challenge had no EK), and whether the activated secret matched. */
    struct token_ek ek;
    bool credential_ok;
    /* The boot-state gate: the PCR values the quote showed (quote_check
     * passed), ascending; n_pcrs 0 when the policy asked for none. For
     * ENROLL_RETURN_STORED, the values the same request reported. */
    struct quote_pcr pcrs[QUOTE_MAX_PCRS];
    size_t n_pcrs;
    /* The quote was signed by the AK the EK credential activation bound
     * (no IAK), rather than by the IAK. */
    bool quote_by_ak;
    /* Which key opened the token (TOKEN_KEY_NONE: it did not open); the
     * credential is recomputed under that key. */
    enum token_key_role token_key;
    /* Revocation status of the IDevID, and what was seen. */
    enum chain_revocation revocation;
    char revocation_detail[512];
};

/* enroll_verdict_cleanup frees what |v| owns and zeroes it; NULL is a no-op. */
void enroll_verdict_cleanup(struct enroll_verdict *v);

/*
 * enroll_cert_hash writes SHA-256 of |cert|'s DER encoding (as received) to
 * |out|. Returns 0 or a DEVID_ERR_* code.
 */
int enroll_cert_hash(uint8_t out[32], X509 *cert);

/*
 * enroll_check_tls checks what |tls| says of the connection, the first check
 * of both requests: a client certificate (DEVID_ERR_NO_CLIENT_CERT), and TLS
 * 1.3 or TLS 1.2 with the Extended Master Secret (DEVID_ERR_TLS_NO_EMS).
 * Returns 0 or that code with |why|.
 */
int enroll_check_tls(const struct enroll_tls *tls, char *why, size_t why_len);

/*
 * enroll_device_chain sets |*out| to a new stack of the untrusted
 * certificates a device sent: those of |tls_chain| (may be NULL), then the
 * |n| DER certificates of a request's intermediates field |der|, each parsed
 * once per connection with |memo| (chain_memo_der_cert; may be NULL). The stack
 * holds a reference to each (free with sk_X509_pop_free). Returns 0;
 * DEVID_ERR_BAD_REQUEST for more than DEVID_MAX_INTERMEDIATES;
 * DEVID_ERR_CHAIN_INVALID for one that is not exactly one DER certificate,
 * with |why| naming it; or DEVID_ERR_ALLOC.
 */
int enroll_device_chain(STACK_OF(X509) **out, STACK_OF(X509) *tls_chain, struct chain_memo *memo,
                        const ProtobufCBinaryData *der, size_t n, char *why, size_t why_len);

/*
 * enroll_peek runs the checks that identify a request, the first of
 * enroll_decide's: the TLS facts (enroll_check_tls), the chain of
 * tls->client_cert with tls->chain and req->intermediates to a root of
 * cfg->store (with revocation), identity extraction and the token (MAC
 * under cfg->token_key or cfg->token_accept_key, expiry, bound to the client
 * certificate). Fills |out| with what the shell
 * then asks the ledger. Returns 0, or the failing check's DEVID_ERR_* code;
 * enroll_decide on the same inputs refuses with that code and its reason, so
 * the shell asks the ledger nothing and passes ENROLL_NONCE_UNKNOWN.
 */
int enroll_peek(struct enroll_ledger_query *out, const struct enroll_config *cfg,
                const Devid__V1__EnrollRequest *req, const struct enroll_tls *tls, time_t now);

/*
 * enroll_decide judges |in| and fills |out|. In order (docs/protocol.md
 * section 8): the checks of enroll_peek; that in->ledger answers for this
 * request (else DEVID_ERR_INTERNAL); the nonce (the same request again is
 * ENROLL_RETURN_STORED, on whatever connection it arrives, once the policy
 * (manufacturer, model, serial, deny lists) and the minimum assurance
 * against ledger->nonce_assurance allow it again, the chain and its
 * revocation having been checked at this |now| already; any other use
 * DEVID_ERR_NONCE_REPLAYED); the TLS exporter (DEVID_ERR_TLS when absent)
 * and that the token was sealed on this connection
 * (DEVID_ERR_TOKEN_WRONG_CONNECTION); the challenge signature over T
 * (recomputed with the exporter) by the IDevID key; the certify evidence (by
 * the IDevID, which gives assurance none, or by an IAK whose certificate
 * chains to the same manufacturer, names the same device serial and
 * certifies another key than the IDevID's, which gives assurance iak); when
 * the policy gates the device on PCRs (policy_pcr_selection), the quote
 * (quote_check, signed by that IAK, or without one by the AK
 * quote.ak_public whose credential the challenge made, which
 * quote.ak_activated_secret answers (credential_check_ak again, then
 * credential_derive_ak over the AK's Name, else DEVID_ERR_CREDENTIAL); a
 * device with neither is
 * DEVID_ERR_QUOTE_SIGNATURE); the CSR (parsed and its
 * self-signature checked, so a CSR that does not parse or verify is
 * DEVID_ERR_CSR_INVALID before its key is compared) and that its key is the
 * certified key; policy (manufacturer, model, serial, deny list), the
 * minimum assurance (policy_check_assurance), the quoted PCR values (policy_check_pcrs) and the
 * re-enrollment rule with ledger->device_active.
 * The first failing check refuses. Returns 0 for ENROLL_ISSUE and ENROLL_RETURN_STORED, else the
 * refusal's DEVID_ERR_* code (also in out->reason, with out->why).
 */
int enroll_decide(struct enroll_verdict *out, const struct enroll_config *cfg,
                  const struct enroll_input *in);

/*
 * enroll_decide_conflict decides again on |v|, an ENROLL_ISSUE verdict, once
 * the ledger refused to record it because of what another enrollment
 * (another worker or replica) recorded meanwhile: |facts| is the ledger's
 * answer from inside its transaction. The same request is
 * ENROLL_RETURN_STORED once the policy allows it again, as in
 * enroll_decide; another use of the nonce is refused with
 * DEVID_ERR_NONCE_REPLAYED; an unused nonce with facts->device_active (the
 * device's certificate in facts->nonce_cert_serial) is judged by
 * cfg->policy's re-enrollment rule again: DEVID_ERR_POLICY_DENIED. Returns
 * as enroll_decide.
 */
int enroll_decide_conflict(struct enroll_verdict *v, const struct enroll_config *cfg,
                           const struct enroll_ledger_facts *facts);

/* What enroll_check_idevid found, stage by stage. */
struct enroll_idevid_report {
    /* Filled when the chain verified (chain_ok); owned by the report. */
    struct chain_verdict chain;
    /* Filled when the identity was extracted (identity_ok). */
    struct device_identity id;
    /* The minimum assurance the policy requires of the device, and the rule
     * that says so (filled with |id|). */
    enum assurance minimum;
    char minimum_rule[600];
    /* The PCRs the policy gates the device on (bit i: PCR i; 0: none), and
     * the section that says so (filled with |id|). */
    uint32_t pcrs;
    char pcr_rule[600];
    int chain_ok, identity_ok, policy_ok;
    /* Why the first failing stage refused. */
    char why[512];
};

/* enroll_idevid_report_cleanup frees what |rep| owns and zeroes it. */
void enroll_idevid_report_cleanup(struct enroll_idevid_report *rep);

/*
 * enroll_check_idevid runs the checks an IDevID faces before any evidence:
 * chain_verify (with revocation) of |leaf| with |device_chain| against
 * |store| at |now| (through |memo|, the connection's kept verdict, when not
 * NULL: chain_memo.h), identity_extract, and policy_check against |policy|.
 * Fills |rep| stage by stage (the caller cleans it up, also on failure) and
 * returns 0, or the first failing stage's DEVID_ERR_* code with rep->why set.
 */
int enroll_check_idevid(struct enroll_idevid_report *rep, const struct chain_store *store,
                        const struct policy *policy, X509 *leaf, STACK_OF(X509) *device_chain,
                        time_t now, struct chain_memo *memo);

#endif
