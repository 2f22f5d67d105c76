/* Error codes shared by every devid module. */
#ifndef DEVID_COMMON_ERR_H
#define DEVID_COMMON_ERR_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Functions return 0 on success or one of these negative codes. Each code maps
 * to one wire reason (proto Reason) so that a refusal says which check failed.
 * Append only; the numbers appear in logs.
 */
enum {
    DEVID_OK = 0,
    DEVID_ERR_INTERNAL = -1,
    DEVID_ERR_ALLOC = -2,
    DEVID_ERR_INVALID_ARGUMENT = -3,
    DEVID_ERR_BAD_REQUEST = -4,
    DEVID_ERR_TOO_LARGE = -5,
    DEVID_ERR_IO = -6,
    DEVID_ERR_CONFIG = -7,
    DEVID_ERR_CRYPTO = -8,
    DEVID_ERR_NO_CLIENT_CERT = -9,
    DEVID_ERR_CHAIN_UNTRUSTED = -10,
    DEVID_ERR_CHAIN_EXPIRED = -11,
    DEVID_ERR_CHAIN_INVALID = -12,
    DEVID_ERR_CHAIN_REVOKED = -13,
    DEVID_ERR_IDENTITY = -14,
    DEVID_ERR_TOKEN_INVALID = -15,
    DEVID_ERR_TOKEN_EXPIRED = -16,
    DEVID_ERR_TOKEN_WRONG_CLIENT = -17,
    DEVID_ERR_CHALLENGE_SIG = -18,
    DEVID_ERR_ATTEST_MALFORMED = -19,
    DEVID_ERR_ATTEST_NONCE = -20,
    DEVID_ERR_ATTEST_NAME = -21,
    DEVID_ERR_ATTEST_ATTRIBUTES = -22,
    DEVID_ERR_ATTEST_SIGNATURE = -23,
    DEVID_ERR_CSR_KEY_MISMATCH = -24,
    DEVID_ERR_CSR_INVALID = -25,
    DEVID_ERR_POLICY_DENIED = -26,
    DEVID_ERR_NONCE_REPLAYED = -27,
    DEVID_ERR_OVERLOADED = -28,
    DEVID_ERR_LEDGER = -29,
    DEVID_ERR_TPM = -30,
    DEVID_ERR_NETWORK = -31,
    DEVID_ERR_TLS = -32,
    DEVID_ERR_PROTOCOL = -33,
    DEVID_ERR_REFUSED = -34,
    DEVID_ERR_NOT_FOUND = -35,
    DEVID_ERR_TOKEN_WRONG_CONNECTION = -36,
    DEVID_ERR_TLS_NO_EMS = -37,
    DEVID_ERR_REVOCATION_UNKNOWN = -38,
    DEVID_ERR_EK_CERT = -39,
    DEVID_ERR_EK_KEY = -40,
    DEVID_ERR_CREDENTIAL = -41,
    DEVID_ERR_CREDENTIAL_NAME = -42,
    DEVID_ERR_QUOTE_MALFORMED = -43,
    DEVID_ERR_QUOTE_NONCE = -44,
    DEVID_ERR_QUOTE_SELECTION = -45,
    DEVID_ERR_QUOTE_DIGEST = -46,
    DEVID_ERR_QUOTE_SIGNATURE = -47,
    DEVID_ERR_PCR_VALUE = -48,
    DEVID_ERR__LAST = -49,
};

/* devid_openssl_reason copies the reason of OpenSSL's most recent error
 * ("no OpenSSL reason" when there is none) into |buf| and clears OpenSSL's
 * error queue of this thread. Returns |buf|. */
const char *devid_openssl_reason(char *buf, size_t len);

/* devid_err_str returns a static, human-readable name for |r|. */
const char *devid_err_str(int r);

/* devid_why writes the reason (printf-style) to |why|, |why_len| bytes
 * (nothing when 0), and returns |code|: "say why, return the code" in one
 * call. */
int devid_why(int code, char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* devid_err_reason returns the wire Reason value (proto/devid/v1) for |r|. */
int devid_err_reason(int r);

/* devid_err_from_reason returns the DEVID_ERR_* code for wire Reason |reason|. */
int devid_err_from_reason(int reason);

/* devid_err_retryable returns true when a request refused with |r| may succeed
 * if repeated from the challenge on. */
bool devid_err_retryable(int r);

/* devid_err_http_status returns the HTTP status the verifier answers |r| with. */
int devid_err_http_status(int r);

#endif
