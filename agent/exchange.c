#include "agent/exchange.h"

#include <stdlib.h>

#include "common/err.h"
#include "common/io/log.h"

#define CHALLENGE_PATH "/v1/challenge"
#define ENROLL_PATH "/v1/enroll"

/* refused describes the non-200 answer |body| to POST |path| in |refusal|
 * and logs it. */
static int refused(struct exchange_refusal *refusal, const char *path, long status,
                   const uint8_t *body, size_t len)
{
    struct wire_error e;
    char why[128];

    if (wire_error_parse(&e, body, len, why, sizeof(why)) != 0) {
        log_err("POST %s: the verifier answered HTTP %ld without a devid.v1.Error body", path,
                status);
        refusal->retryable = status == 503;
        return status >= 500 ? DEVID_ERR_NETWORK : DEVID_ERR_PROTOCOL;
    }
    log_err("POST %s: the verifier refused (HTTP %ld, %s%s): %s", path, status, e.reason_name,
            e.retryable ? ", retryable" : "", e.message);
    refusal->reason = e.reason;
    refusal->retryable = e.retryable;
    refusal->retry_after = e.retry_after;
    return DEVID_ERR_REFUSED;
}

/* post sends |req| to |path| and returns 0 with the body of a 200 answer,
 * or the failure, with the facts of a refusal in |refusal|. */
static int post(uint8_t **body, size_t *body_len, struct exchange_refusal *refusal, struct http *h,
                const char *path, const uint8_t *req, size_t req_len)
{
    long status = 0;
    int r;

    r = http_post(h, &status, body, body_len, path, req, req_len);
    refusal->http_fail = http_last_fail(h);
    if (r == 0 && status != 200) {
        if (status >= 400 && status < 500 && refusal->enroll_sent)
            refusal->enroll_refused = true;
        r = refused(refusal, path, status, *body, *body_len);
    }
    if (r != 0 && refusal->retry_after == 0)
        refusal->retry_after = http_retry_after(h);
    if (r != 0) {
        free(*body);
        *body = NULL;
        *body_len = 0;
    }
    return r;
}

int exchange_challenge(struct wire_challenge *out, struct exchange_refusal *refusal, struct http *h,
                       STACK_OF(X509) *intermediates, const struct wire_ek *ek)
{
    uint8_t *req = NULL, *body = NULL;
    size_t req_len = 0, body_len = 0;
    char why[256];
    int r;

    if ((r = wire_challenge_request_ek(&req, &req_len, intermediates, ek)) != 0)
        return r;
    if ((r = post(&body, &body_len, refusal, h, CHALLENGE_PATH, req, req_len)) != 0)
        goto out;
    if ((r = wire_challenge_parse(out, body, body_len, why, sizeof(why))) != 0) {
        log_err("POST %s: %s", CHALLENGE_PATH, why);
        goto out;
    }
    log_debug("challenge received, token valid until %lld", (long long)out->expires_at);
out:
    free(req);
    free(body);
    return r;
}

int exchange_enroll(struct wire_enrolled *out, struct exchange_refusal *refusal, struct http *h,
                    const uint8_t *req, size_t req_len, EVP_PKEY *ldevid)
{
    uint8_t *body = NULL;
    size_t body_len = 0;
    char why[512];
    int r;

    refusal->enroll_sent = true;
    if ((r = post(&body, &body_len, refusal, h, ENROLL_PATH, req, req_len)) != 0)
        return r;
    if ((r = wire_enroll_response_parse(out, body, body_len, ldevid, why, sizeof(why))) != 0)
        log_err("POST %s: %s", ENROLL_PATH, why);
    free(body);
    return r;
}
