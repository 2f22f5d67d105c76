#include "verifier/core/challenge.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "common/err.h"
#include "common/tpmkey.h"
#include "common/transcript.h"
#include "verifier/core/chain.h"

/* Chain, identity and policy of the client certificate; fills |out->id|. */
static int check_device(struct challenge_verdict *out, const struct enroll_config *cfg,
                        const struct challenge_input *in)
{
    struct enroll_idevid_report rep;
    STACK_OF(X509) *chain = NULL;
    int r;

    memset(&rep, 0, sizeof(rep));
    if ((r = enroll_device_chain(&chain, in->tls.chain, in->tls.memo, in->req->intermediates,
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
    else
        out->quote_pcrs = rep.pcrs;
    enroll_idevid_report_cleanup(&rep);
    sk_X509_pop_free(chain, X509_free);
    return r;
}

static int sha256(uint8_t out[32], const uint8_t *in, size_t len)
{
    unsigned int n = 0;

    return EVP_Digest(in, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32 ? 0 : DEVID_ERR_CRYPTO;
}

/* check_ek_key checks ChallengeRequest.ek_public into |ek|: it parses, can
 * protect a credential, and holds the key of the EK certificate |cert|. */
static int check_ek_key(TPMT_PUBLIC *ek, X509 *cert, const ProtobufCBinaryData *pub, char *why,
                        size_t why_len)
{
    EVP_PKEY *pk = NULL;
    int r;

    if (tpmkey_unmarshal_public(ek, pub->data, pub->len) != 0) {
        snprintf(why, why_len, "ek_public is not a TPMT_PUBLIC");
        return DEVID_ERR_EK_KEY;
    }
    if ((r = credential_check_ek(ek, why, why_len)) != 0)
        return r;
    if (tpmkey_public_to_pkey(&pk, ek) != 0 || EVP_PKEY_eq(pk, X509_get0_pubkey(cert)) != 1) {
        snprintf(why, why_len, "ek_public does not hold the EK certificate's key");
        r = DEVID_ERR_EK_KEY;
    }
    EVP_PKEY_free(pk);
    return r;
}

/* make_ak_credential checks the request's AK and makes the credential for
 * its Name, wrapped to |ek_pub|, into out->ak_credential. The token seals
 * nothing of it: the enrollment recomputes the value from the AK the quote
 * names, and only a credential made here for that Name answers it. */
static int make_ak_credential(struct challenge_verdict *out, const struct token_ek *ek,
                              const struct enroll_config *cfg, const struct challenge_input *in,
                              const TPMT_PUBLIC *ek_pub)
{
    const ProtobufCBinaryData *pub = &in->req->ak_public;
    TPMT_PUBLIC ak;
    uint8_t name[TPMKEY_NAME_MAX], name_hash[32], secret[CREDENTIAL_SECRET_LEN];
    size_t name_len = 0;
    int r = DEVID_ERR_INTERNAL;

    if (tpmkey_unmarshal_public(&ak, pub->data, pub->len) != 0 ||
        tpmkey_name_from_bytes(name, &name_len, pub->data, pub->len) != 0)
        return devid_why(DEVID_ERR_ATTEST_MALFORMED, out->why, sizeof(out->why),
                         "ak_public is not a TPMT_PUBLIC with a supported nameAlg");
    if ((r = credential_check_ak(&ak, out->why, sizeof(out->why))) != 0)
        return r;
    if ((r = sha256(name_hash, name, name_len)) != 0 ||
        (r = credential_derive_ak(secret, cfg->token_key, in->nonce, ek->ek_cert_hash,
                                  name_hash)) != 0) {
        snprintf(out->why, sizeof(out->why), "deriving the AK credential failed");
        goto out;
    }
    if ((r = credential_make(&out->ak_credential, ek_pub, name, name_len, secret, sizeof(secret),
                             out->why, sizeof(out->why))) != 0)
        goto out;
    out->has_ak_credential = true;
    r = 0;
out:
    OPENSSL_cleanse(secret, sizeof(secret));
    return r;
}

/* ek_chain sets |*out| to a new stack of the request's ek_intermediates,
 * untrusted certificates for the EK certificate's chain: at most
 * CHALLENGE_EK_INTERMEDIATES_MAX (DEVID_ERR_BAD_REQUEST), each exactly one
 * certificate of at most CHALLENGE_EK_CERT_MAX bytes (DEVID_ERR_EK_CERT). */
static int ek_chain(STACK_OF(X509) **out, const Devid__V1__ChallengeRequest *req, char *why,
                    size_t why_len)
{
    STACK_OF(X509) *sk = NULL;
    X509 *x = NULL;
    size_t i;
    int r = DEVID_ERR_INTERNAL;

    *out = NULL;
    if (req->n_ek_intermediates > CHALLENGE_EK_INTERMEDIATES_MAX) {
        snprintf(why, why_len, "ek_intermediates carries %zu certificates, at most %d allowed",
                 req->n_ek_intermediates, CHALLENGE_EK_INTERMEDIATES_MAX);
        r = DEVID_ERR_BAD_REQUEST;
        goto out;
    }
    if ((sk = sk_X509_new_null()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    for (i = 0; i < req->n_ek_intermediates; i++) {
        const ProtobufCBinaryData *d = &req->ek_intermediates[i];

        if ((x = chain_der_cert(d->data, d->len, CHALLENGE_EK_CERT_MAX)) == NULL) {
            snprintf(why, why_len,
                     "ek_intermediates[%zu] is not exactly one certificate of at most %d bytes", i,
                     CHALLENGE_EK_CERT_MAX);
            r = DEVID_ERR_EK_CERT;
            goto out;
        }
        if (sk_X509_push(sk, x) <= 0) {
            r = DEVID_ERR_ALLOC;
            goto out;
        }
        x = NULL;
    }
    *out = sk;
    sk = NULL;
    r = 0;
out:
    X509_free(x);
    sk_X509_pop_free(sk, X509_free);
    return r;
}

/* make_credential verifies the request's EK and makes the credential for
 * its new key, filling out->credential and |ek| (what the token seals); and
 * the AK's credential when the request carries an AK and the policy gates
 * the device on PCRs. */
static int make_credential(struct challenge_verdict *out, struct token_ek *ek,
                           const struct enroll_config *cfg, const struct challenge_input *in)
{
    const Devid__V1__ChallengeRequest *req = in->req;
    struct chain_verdict cv;
    TPMT_PUBLIC ek_pub, ld_pub;
    uint8_t name[TPMKEY_NAME_MAX], secret[CREDENTIAL_SECRET_LEN];
    size_t name_len = 0;
    STACK_OF(X509) *chain = NULL;
    X509 *cert = NULL;
    char *why = out->why;
    size_t why_len = sizeof(out->why);
    int r = DEVID_ERR_INTERNAL;

    memset(&cv, 0, sizeof(cv));
    if (req->ek_certificate.len == 0 || req->ek_public.len == 0 || req->ldevid_public.len == 0) {
        snprintf(why, why_len,
                 "ek_certificate, ek_public and ldevid_public go together: "
                 "send all three or none%s",
                 req->ak_public.len > 0        ? " (ak_public needs all three)"
                 : req->n_ek_intermediates > 0 ? " (ek_intermediates needs all three)"
                                               : "");
        r = DEVID_ERR_BAD_REQUEST;
        goto out;
    }
    if (req->ek_certificate.len > CHALLENGE_EK_CERT_MAX) {
        snprintf(why, why_len, "ek_certificate is longer than %d bytes", CHALLENGE_EK_CERT_MAX);
        r = DEVID_ERR_EK_CERT;
        goto out;
    }
    if ((r = ek_chain(&chain, req, why, why_len)) != 0)
        goto out;
    if (cfg->ek_store == NULL) {
        snprintf(why, why_len, "EK certificate: no TPM vendor is configured ([tpm_vendor])");
        r = DEVID_ERR_EK_CERT;
        goto out;
    }
    if ((r = ekcert_decode(&cert, req->ek_certificate.data, req->ek_certificate.len, why,
                           why_len)) != 0 ||
        (r = ekcert_verify(&cv, &out->tpm, cfg->ek_store, cert, chain, in->now, why, why_len)) != 0)
        goto out;
    snprintf(out->tpm_vendor, sizeof(out->tpm_vendor), "%s", cv.manufacturer);
    if ((r = check_ek_key(&ek_pub, cert, &req->ek_public, why, why_len)) != 0)
        goto out;
    if (tpmkey_unmarshal_public(&ld_pub, req->ldevid_public.data, req->ldevid_public.len) != 0 ||
        tpmkey_name_from_bytes(name, &name_len, req->ldevid_public.data, req->ldevid_public.len) !=
            0) {
        snprintf(why, why_len, "ldevid_public is not a TPMT_PUBLIC with a supported nameAlg");
        r = DEVID_ERR_ATTEST_MALFORMED;
        goto out;
    }
    if ((r = sha256(ek->ek_cert_hash, req->ek_certificate.data, req->ek_certificate.len)) != 0 ||
        (r = sha256(ek->name_hash, name, name_len)) != 0 ||
        (r = credential_derive(secret, cfg->token_key, in->nonce, ek->ek_cert_hash,
                               ek->name_hash)) != 0) {
        snprintf(why, why_len, "deriving the credential failed");
        goto out;
    }
    if ((r = credential_make(&out->credential, &ek_pub, name, name_len, secret, sizeof(secret), why,
                             why_len)) != 0)
        goto out;
    out->has_credential = true;
    if (req->ak_public.len > 0 && out->quote_pcrs != 0 &&
        (r = make_ak_credential(out, ek, cfg, in, &ek_pub)) != 0)
        goto out;
    r = 0;
out:
    OPENSSL_cleanse(secret, sizeof(secret));
    chain_verdict_cleanup(&cv);
    sk_X509_pop_free(chain, X509_free);
    X509_free(cert);
    return r;
}

/* Seals the token of a challenge that passed every check. */
static int seal(struct challenge_verdict *out, const struct enroll_config *cfg,
                const struct challenge_input *in)
{
    uint8_t cert_hash[TOKEN_CERT_HASH_LEN], conn_hash[TOKEN_CONN_HASH_LEN];
    struct token_ek ek;
    int r;

    memset(&ek, 0, sizeof(ek));
    if (in->tls.exporter == NULL) {
        snprintf(out->why, sizeof(out->why), "TLS exporter unavailable on this connection");
        return DEVID_ERR_TLS;
    }
    if ((in->req->ek_certificate.len > 0 || in->req->ek_public.len > 0 ||
         in->req->ldevid_public.len > 0 || in->req->ak_public.len > 0 ||
         in->req->n_ek_intermediates > 0) &&
        (r = make_credential(out, &ek, cfg, in)) != 0)
        return r;
    out->expires_at = (int64_t)in->now + in->ttl_seconds;
    if ((r = enroll_cert_hash(cert_hash, in->tls.client_cert)) != 0 ||
        (r = token_conn_hash(conn_hash, in->tls.exporter, TRANSCRIPT_EXPORTER_LEN)) != 0 ||
        (r = token_seal_ek(out->token, cfg->token_key, in->nonce, out->expires_at, cert_hash,
                           conn_hash, &ek)) != 0)
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
    if (r != 0) {
        OPENSSL_cleanse(out->token, sizeof(out->token));
        OPENSSL_cleanse(&out->credential, sizeof(out->credential));
        out->has_credential = false;
        OPENSSL_cleanse(&out->ak_credential, sizeof(out->ak_credential));
        out->has_ak_credential = false;
    }
    out->reason = r;
    return r;
}
