/* The agent's parsers of the verifier's answers (agent/core/wire.h): the
 * first byte picks ChallengeResponse (0), EnrollResponse (1) or Error (2),
 * the rest is the body as it would arrive over HTTPS. An EnrollResponse
 * must certify the key below, the public half of fu_ec_key("devid fuzz
 * ldevid") (tests/fuzz/fuzzutil.c), which the seeds from fuzz_make_seeds
 * certify, so the key comparison is reached too. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "agent/core/wire.h"

static const char ldevid_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEhrXl39eoEHipFUpAxh8F1E3euGQS\n"
    "Bs4wOf+ATEEcK7goB3kIOvKkra89Hr3aRjxJgZ8FQ+8QuwXhjHlC8BH8rA==\n"
    "-----END PUBLIC KEY-----\n";

static EVP_PKEY *ldevid_key(void)
{
    static EVP_PKEY *key;
    BIO *bio;

    if (key != NULL)
        return key;
    if ((bio = BIO_new_mem_buf(ldevid_pem, -1)) == NULL ||
        (key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) == NULL)
        abort();
    BIO_free(bio);
    return key;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_challenge c;
    struct wire_enrolled e;
    struct wire_error err;
    char why[512];

    if (size < 1)
        return 0;
    switch (data[0] % 3) {
        case 0:
            if (wire_challenge_parse(&c, data + 1, size - 1, why, sizeof(why)) == 0 &&
                (c.token_len == 0 || c.token_len > WIRE_TOKEN_MAX))
                abort();
            break;
        case 1:
            if (wire_enroll_response_parse(&e, data + 1, size - 1, ldevid_key(), why,
                                           sizeof(why)) == 0 &&
                (e.cert == NULL || e.chain == NULL || sk_X509_num(e.chain) > WIRE_CHAIN_MAX))
                abort();
            wire_enrolled_cleanup(&e);
            break;
        default:
            if (wire_error_parse(&err, data + 1, size - 1, why, sizeof(why)) == 0 &&
                strlen(err.message) >= WIRE_MESSAGE_MAX)
                abort();
            break;
    }
    return 0;
}
