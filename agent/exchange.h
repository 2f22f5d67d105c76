/* The two POSTs of an enrollment: the request encoded by the core
 * (agent/core/wire.h), sent over the session's TLS connection (agent/http.h),
 * and the answer decoded, or its Error turned into a refusal. Every outcome
 * is logged here, naming the endpoint. */
#ifndef DEVID_AGENT_EXCHANGE_H
#define DEVID_AGENT_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "agent/core/wire.h"
#include "agent/http.h"

/* What the last answer said beyond its body: the facts a retry needs. */
struct exchange_refusal {
    int reason;               /* devid.v1.Reason of a refusal, 0 otherwise */
    bool retryable;           /* the verifier (or a bare HTTP 503) says a retry may pass */
    unsigned retry_after;     /* seconds: Error.retry_after_seconds, else Retry-After */
    enum http_fail http_fail; /* the kind of transfer failure; HTTP_FAIL_NONE: an answer */
    bool enroll_sent;         /* POST /v1/enroll went out: a certificate may have been issued */
    bool enroll_refused;      /* ... and a 4xx refused it: none was */
};

/*
 * exchange_challenge POSTs a ChallengeRequest carrying the device's
 * |intermediates| (may be NULL) and |ek| (may be NULL; wire_challenge_request_ek) to /v1/challenge
 * on |h| and decodes the ChallengeResponse into |*out|. A refusal is described in
 * |*refusal|. Returns 0; DEVID_ERR_REFUSED for an Error answer; for a non-200
 * answer without one DEVID_ERR_NETWORK (5xx) or DEVID_ERR_PROTOCOL;
 * DEVID_ERR_PROTOCOL for a malformed answer; or the error of http_post.
 */
int exchange_challenge(struct wire_challenge *out, struct exchange_refusal *refusal, struct http *h,
                       STACK_OF(X509) *intermediates, const struct wire_ek *ek);

/*
 * exchange_enroll POSTs the encoded EnrollRequest |req| (|req_len| bytes) to
 * /v1/enroll on the same connection and decodes the EnrollResponse into
 * |*out|, whose certificate must be for |ldevid|; the caller releases |*out|
 * with wire_enrolled_cleanup. Returns as exchange_challenge.
 */
int exchange_enroll(struct wire_enrolled *out, struct exchange_refusal *refusal, struct http *h,
                    const uint8_t *req, size_t req_len, EVP_PKEY *ldevid);

#endif
