#include "common/err.h"

#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>

#include <openssl/err.h>

#include "devid/v1/enroll.pb-c.h"

struct err_info {
    const char *str;
    int reason;
    int http;
    bool retryable;
};

static const struct err_info errs[] = {
    [0] = {"success", DEVID__V1__REASON__REASON_UNSPECIFIED, 200, false},
    [1] = {"internal error", DEVID__V1__REASON__REASON_INTERNAL, 500, true},
    [2] = {"out of memory", DEVID__V1__REASON__REASON_INTERNAL, 500, true},
    [3] = {"invalid argument", DEVID__V1__REASON__REASON_INTERNAL, 500, false},
    [4] = {"bad request", DEVID__V1__REASON__REASON_BAD_REQUEST, 400, false},
    [5] = {"too large", DEVID__V1__REASON__REASON_BAD_REQUEST, 413, false},
    [6] = {"I/O error", DEVID__V1__REASON__REASON_INTERNAL, 500, true},
    [7] = {"configuration error", DEVID__V1__REASON__REASON_INTERNAL, 500, false},
    [8] = {"cryptographic failure", DEVID__V1__REASON__REASON_INTERNAL, 500, false},
    [9] = {"no client certificate", DEVID__V1__REASON__REASON_NO_CLIENT_CERTIFICATE, 401, false},
    [10] = {"chain not trusted", DEVID__V1__REASON__REASON_CHAIN_UNTRUSTED, 403, false},
    [11] = {"certificate expired or not yet valid", DEVID__V1__REASON__REASON_CHAIN_EXPIRED, 403,
            false},
    [12] = {"chain invalid", DEVID__V1__REASON__REASON_CHAIN_INVALID, 403, false},
    [13] = {"certificate revoked", DEVID__V1__REASON__REASON_CHAIN_REVOKED, 403, false},
    [14] = {"device identity invalid", DEVID__V1__REASON__REASON_IDENTITY_INVALID, 403, false},
    [15] = {"token invalid", DEVID__V1__REASON__REASON_TOKEN_INVALID, 400, false},
    [16] = {"token expired", DEVID__V1__REASON__REASON_TOKEN_EXPIRED, 400, true},
    [17] = {"token bound to another client", DEVID__V1__REASON__REASON_TOKEN_WRONG_CLIENT, 403,
            false},
    [18] = {"challenge signature invalid", DEVID__V1__REASON__REASON_CHALLENGE_SIGNATURE, 403,
            false},
    [19] = {"attestation malformed", DEVID__V1__REASON__REASON_ATTEST_MALFORMED, 400, false},
    [20] = {"attestation nonce mismatch", DEVID__V1__REASON__REASON_ATTEST_NONCE, 403, false},
    [21] = {"attestation name mismatch", DEVID__V1__REASON__REASON_ATTEST_NAME, 403, false},
    [22] = {"attested key attributes refused", DEVID__V1__REASON__REASON_ATTEST_ATTRIBUTES, 403,
            false},
    [23] = {"attestation signature invalid", DEVID__V1__REASON__REASON_ATTEST_SIGNATURE, 403,
            false},
    [24] = {"CSR key is not the attested key", DEVID__V1__REASON__REASON_CSR_KEY_MISMATCH, 403,
            false},
    [25] = {"CSR invalid", DEVID__V1__REASON__REASON_CSR_INVALID, 400, false},
    [26] = {"denied by policy", DEVID__V1__REASON__REASON_POLICY_DENIED, 403, false},
    [27] = {"nonce already used", DEVID__V1__REASON__REASON_NONCE_REPLAYED, 403, false},
    [28] = {"overloaded", DEVID__V1__REASON__REASON_OVERLOADED, 503, true},
    [29] = {"ledger error", DEVID__V1__REASON__REASON_LEDGER, 503, true},
    [30] = {"TPM error", DEVID__V1__REASON__REASON_INTERNAL, 500, false},
    [31] = {"network error", DEVID__V1__REASON__REASON_INTERNAL, 503, true},
    [32] = {"TLS error", DEVID__V1__REASON__REASON_INTERNAL, 500, false},
    [33] = {"protocol error", DEVID__V1__REASON__REASON_BAD_REQUEST, 400, false},
    [34] = {"refused by verifier", DEVID__V1__REASON__REASON_UNSPECIFIED, 403, false},
    [35] = {"not found", DEVID__V1__REASON__REASON_BAD_REQUEST, 404, false},
    [36] = {"token bound to another connection", DEVID__V1__REASON__REASON_TOKEN_WRONG_CONNECTION,
            403, false},
    [37] = {"TLS 1.2 without Extended Master Secret", DEVID__V1__REASON__REASON_TLS_NO_EMS, 403,
            false},
    [38] = {"revocation status unknown", DEVID__V1__REASON__REASON_REVOCATION_UNKNOWN, 503, true},
    [39] = {"EK certificate not trusted", DEVID__V1__REASON__REASON_EK_CERTIFICATE, 403, false},
    [40] = {"EK public area refused", DEVID__V1__REASON__REASON_EK_KEY, 403, false},
    [41] = {"credential not activated", DEVID__V1__REASON__REASON_CREDENTIAL, 403, false},
    [42] = {"key is not the credential's", DEVID__V1__REASON__REASON_CREDENTIAL_NAME, 403, false},
    [43] = {"PCR quote malformed", DEVID__V1__REASON__REASON_QUOTE_MALFORMED, 400, false},
    [44] = {"PCR quote qualifyingData mismatch", DEVID__V1__REASON__REASON_QUOTE_NONCE, 403, false},
    [45] = {"PCR quote selection mismatch", DEVID__V1__REASON__REASON_QUOTE_SELECTION, 403, true},
    [46] = {"PCR quote digest mismatch", DEVID__V1__REASON__REASON_QUOTE_DIGEST, 403, true},
    [47] = {"PCR quote signature invalid", DEVID__V1__REASON__REASON_QUOTE_SIGNATURE, 403, false},
    [48] = {"PCR value not allowed", DEVID__V1__REASON__REASON_PCR_VALUE, 403, false},
};

_Static_assert(sizeof(errs) / sizeof(errs[0]) == -DEVID_ERR__LAST, "error table incomplete");

static const struct err_info *lookup(int r)
{
    if (r > 0 || r <= DEVID_ERR__LAST)
        return &errs[1];
    return &errs[-r];
}

const char *devid_err_str(int r)
{
    if (r > 0 || r <= DEVID_ERR__LAST)
        return "unknown error";
    return lookup(r)->str;
}

int devid_err_reason(int r)
{
    return lookup(r)->reason;
}

int devid_err_from_reason(int reason)
{
    size_t i;

    if (reason == DEVID__V1__REASON__REASON_UNSPECIFIED)
        return DEVID_ERR_REFUSED;
    for (i = 1; i < sizeof(errs) / sizeof(errs[0]); i++) {
        if (errs[i].reason == reason)
            return -(int)i;
    }
    return DEVID_ERR_REFUSED;
}

bool devid_err_retryable(int r)
{
    return lookup(r)->retryable;
}

int devid_err_http_status(int r)
{
    return lookup(r)->http;
}

int devid_why(int code, char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && why_len > 0) {
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *devid_openssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();

    if (len == 0)
        return buf;
    if (e == 0)
        snprintf(buf, len, "no OpenSSL reason");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}
