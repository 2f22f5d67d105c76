/* The agent's half of the devid.v1 protocol (proto/devid/v1/enroll.proto):
 * the two requests built from their inputs, and the verifier's answers
 * (ChallengeResponse, EnrollResponse, Error) parsed and checked into agent
 * structs, with every length and count bounded. Pure: bytes in, bytes or
 * structs out, the reason of a refusal in a why buffer. */
#ifndef DEVID_AGENT_CORE_WIRE_H
#define DEVID_AGENT_CORE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <tss2/tss2_tpm2_types.h>

#include "common/limits.h"
#include "common/transcript.h"

/* ChallengeRequest.protocol_version: the version this agent speaks. */
#define WIRE_PROTOCOL_VERSION 1
/* Largest answer accepted from the verifier (the HTTP body limit). */
#define WIRE_ANSWER_MAX (64 * 1024)
/* Most certificates in a chain either way: the device's intermediates and
 * EnrollResponse.chain (common/limits.h). */
#define WIRE_CHAIN_MAX DEVID_MAX_INTERMEDIATES
/* Longest ChallengeResponse.token accepted. */
#define WIRE_TOKEN_MAX 1024
/* Longest CSR sent. */
#define WIRE_CSR_MAX 4096
/* Room for Error.message, NUL included; a longer message is cut. */
#define WIRE_MESSAGE_MAX 1024

/* A ChallengeResponse that passed wire_challenge_parse. */
struct wire_challenge {
    uint8_t nonce[TRANSCRIPT_NONCE_LEN];
    uint8_t token[WIRE_TOKEN_MAX];
    size_t token_len; /* 1 to WIRE_TOKEN_MAX */
    int64_t expires_at;
    /* The credential to activate, when the request carried an EK: the
     * marshalled TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET; lengths 0
     * otherwise. */
    uint8_t credential_blob[sizeof(TPM2B_ID_OBJECT)];
    size_t credential_blob_len;
    uint8_t encrypted_secret[sizeof(TPM2B_ENCRYPTED_SECRET)];
    size_t encrypted_secret_len;
    /* The PCRs of the SHA-256 bank to quote (bit i: PCR i), from
     * ChallengeResponse.quote_pcrs; 0: no quote. */
    uint32_t quote_pcrs;
    /* The boot-state gate's AK credential (docs/protocol.md section 6.2),
     * when the request carried an AK and quote_pcrs is set: as
     * credential_blob and encrypted_secret, for the AK; lengths 0
     * otherwise. */
    uint8_t ak_credential_blob[sizeof(TPM2B_ID_OBJECT)];
    size_t ak_credential_blob_len;
    uint8_t ak_encrypted_secret[sizeof(TPM2B_ENCRYPTED_SECRET)];
    size_t ak_encrypted_secret_len;
};

/* PCRs a ChallengeResponse may name: 0 to WIRE_PCR_COUNT - 1, at most
 * WIRE_PCR_MAX of them. */
#define WIRE_PCR_COUNT 24
#define WIRE_PCR_MAX 8

/* One PCR value of the SHA-256 bank, as TPM2_PCR_Read returned it. */
struct wire_pcr {
    uint32_t index;
    uint8_t sha256[TPM2_SHA256_DIGEST_SIZE];
};

/* Longest EK certificate sent (ChallengeRequest.ek_certificate). */
#define WIRE_EK_CERT_MAX 4096

/* What a ChallengeRequest carries for EK credential activation, borrowed. */
struct wire_ek {
    const uint8_t *cert; /* the EK certificate's bytes as in NV */
    size_t cert_len;     /* 1 to WIRE_EK_CERT_MAX */
    const TPMT_PUBLIC *ek_public;
    const TPMT_PUBLIC *ldevid_public; /* the new key, created before the challenge */
    const TPMT_PUBLIC *ak_public;     /* the boot-state gate's AK; NULL: none */
    STACK_OF(X509) *chain; /* the EK's chain from NV, at most WIRE_CHAIN_MAX; may be NULL */
};

/* The inputs of an EnrollRequest, all borrowed. */
struct wire_enroll_request {
    const uint8_t *token; /* wire_challenge.token */
    size_t token_len;
    const uint8_t *csr; /* DER PKCS#10 of the new key */
    size_t csr_len;
    const TPMT_SIGNATURE *challenge_signature; /* TPM2_Sign by the IDevID over T */
    const uint8_t *certify_info;               /* TPMS_ATTEST from TPM2_Certify */
    size_t certify_info_len;
    const TPMT_SIGNATURE *certify_signature;
    const TPMT_PUBLIC *ldevid_public; /* the new key */
    const TPMT_PUBLIC *signer_public; /* the key that signed certify_info */
    X509 *iak_cert;                   /* the IAK's certificate when it signed; NULL: the IDevID */
    STACK_OF(X509) *intermediates;    /* the device's chain, at most WIRE_CHAIN_MAX; may be NULL */
    const uint8_t *activated_secret;  /* TPM2_ActivateCredential's output; NULL: none */
    size_t activated_secret_len;
    /* The boot-state gate's TPM2_Quote (TPMS_ATTEST and signature) and the
     * PCR values it covers, ascending; quote_info NULL: no quote. */
    const uint8_t *quote_info;
    size_t quote_info_len;
    const TPMT_SIGNATURE *quote_signature;
    const struct wire_pcr *pcrs;
    size_t n_pcrs; /* at most WIRE_PCR_MAX */
    /* Without an IAK: the AK that signed the quote and what
     * TPM2_ActivateCredential returned for its credential; NULL: none. */
    const TPMT_PUBLIC *ak_public;
    const uint8_t *ak_activated_secret;
    size_t ak_activated_secret_len;
};

/* An EnrollResponse that passed wire_enroll_response_parse. */
struct wire_enrolled {
    X509 *cert;            /* the issued certificate (owned) */
    STACK_OF(X509) *chain; /* its issuing chain, issuer first (owned, may be empty) */
};

/* An Error that passed wire_error_parse. */
struct wire_error {
    int reason;              /* devid.v1.Reason */
    const char *reason_name; /* static: "REASON_POLICY_DENIED", or "unknown reason" */
    char message[WIRE_MESSAGE_MAX];
    bool retryable;
    uint32_t retry_after; /* seconds; 0: the client chooses */
};

/*
 * wire_challenge_request sets |*out| (malloc) to the encoded ChallengeRequest
 * of this agent (WIRE_PROTOCOL_VERSION, "devid-agent/VERSION", and the DER
 * of each of |intermediates|, the device's chain: may be NULL) and |*out_len|
 * to its length. Returns 0, DEVID_ERR_INVALID_ARGUMENT for more than
 * WIRE_CHAIN_MAX intermediates, or DEVID_ERR_ALLOC.
 */
int wire_challenge_request(uint8_t **out, size_t *out_len, STACK_OF(X509) *intermediates);

/*
 * wire_challenge_request_ek is wire_challenge_request that also carries
 * |ek| (NULL: none): ek_certificate, ek_public and ldevid_public (the TPM
 * structures marshalled, without size), ak_public when ek->ak_public is
 * set, and the DER of each of ek->chain as ek_intermediates. Returns as
 * wire_challenge_request, DEVID_ERR_INVALID_ARGUMENT also for an empty or
 * oversize certificate or more than WIRE_CHAIN_MAX in ek->chain.
 */
int wire_challenge_request_ek(uint8_t **out, size_t *out_len, STACK_OF(X509) *intermediates,
                              const struct wire_ek *ek);

/*
 * wire_challenge_parse decodes the ChallengeResponse |buf| (|len| bytes) into
 * |*out|: a nonce of TRANSCRIPT_NONCE_LEN bytes and a token of 1 to
 * WIRE_TOKEN_MAX bytes, and a credential (both of credential_blob and
 * encrypted_secret, each at most its TPM2B's size, or neither; the same for
 * ak_credential_blob and ak_encrypted_secret, which need the first), and at
 * most WIRE_PCR_MAX quote_pcrs, ascending, each below WIRE_PCR_COUNT. Returns 0, or
 * DEVID_ERR_PROTOCOL with the reason in |why| for anything else.
 */
int wire_challenge_parse(struct wire_challenge *out, const uint8_t *buf, size_t len, char *why,
                         size_t why_len);

/*
 * wire_enroll_request sets |*out| (malloc) to the encoded EnrollRequest of
 * |in| and |*out_len| to its length: the TPM structures marshalled (tss2-mu),
 * the certificates DER, the signer kind IAK when |in->iak_cert| is set.
 * Returns 0, DEVID_ERR_INVALID_ARGUMENT with the reason in |why| for a
 * missing, empty or oversize input, or DEVID_ERR_ALLOC.
 */
int wire_enroll_request(uint8_t **out, size_t *out_len, const struct wire_enroll_request *in,
                        char *why, size_t why_len);

/*
 * wire_enroll_response_parse decodes the EnrollResponse |buf| (|len| bytes)
 * into |*out|: a certificate (DER or PEM) whose key is |ldevid|, and at most
 * WIRE_CHAIN_MAX chain certificates. |*out| is zeroed first and filled only on
 * success; the caller releases it with wire_enrolled_cleanup. Returns 0,
 * DEVID_ERR_PROTOCOL with the reason in |why|, or DEVID_ERR_ALLOC.
 */
int wire_enroll_response_parse(struct wire_enrolled *out, const uint8_t *buf, size_t len,
                               EVP_PKEY *ldevid, char *why, size_t why_len);

/* wire_enrolled_cleanup frees what |e| holds and zeroes it. NULL does nothing. */
void wire_enrolled_cleanup(struct wire_enrolled *e);

/*
 * wire_error_parse decodes the Error |buf| (|len| bytes) of a refusal into
 * |*out|. The message is cut to WIRE_MESSAGE_MAX - 1 bytes and its control
 * characters are replaced with '?', so it can be logged as one line. Returns
 * 0, or DEVID_ERR_PROTOCOL with the reason in |why| when |buf| is empty, not
 * an Error, or an Error with neither a reason nor a message.
 */
int wire_error_parse(struct wire_error *out, const uint8_t *buf, size_t len, char *why,
                     size_t why_len);

#endif
