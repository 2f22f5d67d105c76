#include "verifier/core/challenge.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "common/transcript.h"

/* Chain, identity and policy of the client certificate; fills |out->id|. */
static int check_device(struct challenge_verdict *out, const struct enroll_config *cfg,
                        const struct challenge_input *in)
{
    struct enroll_idevid_report rep;
    STACK_OF(X509) *chain = NULL;
    int r;

    memset(&rep, 0, sizeof(rep));
    if ((r = enroll_device_chain(&chain, in->tls.chain, in->req->intermediates,
                                 in->req->n_intermediates, out->why, sizeof(out->why))) != 0)
        return r;
    r = enroll_check_idevid(&rep, cfg->store, cfg->policy, in->tls.client_cert, chain, in->now,
                            in->tls.memo);
    if (rep.identity_ok)
        out->id = rep.id;
    else if (rep.chain_ok)
        snprintf(out->id.manufacturer, sizeof(out->id.manufacturer), "%s", rep.chain.manufacturer);
    if (r != 0)
        snprintf(out->why, sizeof(out->why), "%s", rep.why);
    enroll_idevid_report_cleanup(&rep);
    sk_X509_pop_free(chain, X509_free);
    return r;
}

/* Seals the token of a challenge that passed every check. */
static int seal(struct challenge_verdict *out, const struct enroll_config *cfg,
                const struct challenge_input *in)
{
    uint8_t cert_hash[TOKEN_CERT_HASH_LEN], conn_hash[TOKEN_CONN_HASH_LEN];
    int r;

    if (in->tls.exporter == NULL) {
        snprintf(out->why, sizeof(out->why), "TLS exporter unavailable on this connection");
        return DEVID_ERR_TLS;
    }
    out->expires_at = (int64_t)in->now + in->ttl_seconds;
    if ((r = enroll_cert_hash(cert_hash, in->tls.client_cert)) != 0 ||
        (r = token_conn_hash(conn_hash, in->tls.exporter, TRANSCRIPT_EXPORTER_LEN)) != 0 ||
        (r = token_seal(out->token, cfg->token_key, in->nonce, out->expires_at, cert_hash,
                        conn_hash)) != 0)
        snprintf(out->why, sizeof(out->why), "sealing the token failed");
    OPENSSL_cleanse(conn_hash, sizeof(conn_hash));
    return r;
}

int challenge_decide(struct challenge_verdict *out, const struct enroll_config *cfg,
                     const struct challenge_input *in)
{
    int r = DEVID_ERR_INVALID_ARGUMENT;

    if (out == NULL)
        return r;
    memset(out, 0, sizeof(*out));
    if (cfg == NULL || cfg->store == NULL || cfg->policy == NULL || cfg->token_key == NULL ||
        in == NULL || in->req == NULL || in->nonce == NULL) {
        snprintf(out->why, sizeof(out->why), "challenge_decide called without its inputs");
        goto out;
    }
    if ((r = enroll_check_tls(&in->tls, out->why, sizeof(out->why))) != 0)
        goto out;
    if (in->req->protocol_version != CHALLENGE_PROTOCOL_VERSION) {
        snprintf(out->why, sizeof(out->why),
                 "protocol_version %u is not supported (this verifier speaks %d)",
                 in->req->protocol_version, CHALLENGE_PROTOCOL_VERSION);
        r = DEVID_ERR_BAD_REQUEST;
        goto out;
    }
    if ((r = check_device(out, cfg, in)) == 0)
        r = seal(out, cfg, in);
out:
    if (r != 0)
        OPENSSL_cleanse(out->token, sizeof(out->token));
    out->reason = r;
    return r;
}
