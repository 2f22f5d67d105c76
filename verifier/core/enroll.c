#include "verifier/core/enroll.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/tls1.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/tpmkey.h"
#include "verifier/core/credential.h"
#include "verifier/core/csr.h"

void enroll_verdict_cleanup(struct enroll_verdict *v)
{
    if (v == NULL)
        return;
    X509_PUBKEY_free(v->csr_spki);
    OPENSSL_cleanse(v, sizeof(*v));
}

int enroll_cert_hash(uint8_t out[32], X509 *cert)
{
    unsigned int len = 0;

    if (out == NULL || cert == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (X509_digest(cert, EVP_sha256(), out, &len) != 1 || len != 32)
        return DEVID_ERR_CRYPTO;
    return 0;
}

/* Parses |b| as exactly one DER certificate of at most CHAIN_MAX_CERT_DER
 * bytes, as received; NULL otherwise. */
static X509 *one_der_cert(const ProtobufCBinaryData *b)
{
    return chain_der_cert(b->data, b->len, CHAIN_MAX_CERT_DER);
}

int enroll_check_tls(const struct enroll_tls *tls, char *why, size_t why_len)
{
    if (tls == NULL || tls->client_cert == NULL) {
        snprintf(why, why_len, "no TLS client certificate (the IDevID) was presented");
        return DEVID_ERR_NO_CLIENT_CERT;
    }
    if (tls->version < TLS1_3_VERSION && !tls->ems) {
        snprintf(why, why_len,
                 "TLS 1.2 without the Extended Master Secret (RFC 7627): tls-exporter does not "
                 "bind such a connection; use TLS 1.3, or TLS 1.2 with EMS");
        return DEVID_ERR_TLS_NO_EMS;
    }
    return 0;
}

int enroll_device_chain(STACK_OF(X509) **out, STACK_OF(X509) *tls_chain, struct chain_memo *memo,
                        const ProtobufCBinaryData *der, size_t n, char *why, size_t why_len)
{
    STACK_OF(X509) *sk = NULL;
    X509 *x = NULL;
    size_t i;
    int j;
    int r = DEVID_ERR_INTERNAL;

    *out = NULL;
    if (n > DEVID_MAX_INTERMEDIATES) {
        snprintf(why, why_len, "request carries %zu intermediates, at most %d allowed", n,
                 DEVID_MAX_INTERMEDIATES);
        r = DEVID_ERR_BAD_REQUEST;
        goto out;
    }
    if ((sk = sk_X509_new_null()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    for (j = 0; tls_chain != NULL && j < sk_X509_num(tls_chain); j++) {
        x = sk_X509_value(tls_chain, j);
        if (X509_up_ref(x) != 1) {
            x = NULL;
            goto out;
        }
        if (sk_X509_push(sk, x) <= 0) {
            r = DEVID_ERR_ALLOC;
            goto out;
        }
        x = NULL;
    }
    for (i = 0; i < n; i++) {
        if ((x = chain_memo_der_cert(memo, tls_chain, der[i].data, der[i].len,
                                     CHAIN_MAX_CERT_DER)) == NULL) {
            snprintf(why, why_len, "intermediates[%zu] is not exactly one DER certificate", i);
            r = DEVID_ERR_CHAIN_INVALID;
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

static int check_challenge(X509 *client_cert, const Devid__V1__EnrollRequest *req,
                           const uint8_t transcript[TRANSCRIPT_LEN], char *why, size_t why_len)
{
    TPMT_SIGNATURE sig;
    EVP_PKEY *pk;

    if (req->challenge_signature.data == NULL ||
        tpmkey_unmarshal_signature(&sig, req->challenge_signature.data,
                                   req->challenge_signature.len) != 0) {
        snprintf(why, why_len, "challenge_signature is not a TPMT_SIGNATURE");
        return DEVID_ERR_CHALLENGE_SIG;
    }
    if ((pk = X509_get0_pubkey(client_cert)) == NULL) {
        snprintf(why, why_len, "IDevID public key does not decode");
        return DEVID_ERR_CHALLENGE_SIG;
    }
    if (tpmkey_verify_digest(pk, &sig, transcript, TRANSCRIPT_LEN) != 0) {
        snprintf(why, why_len,
                 "challenge_signature does not verify over the transcript with the IDevID key "
                 "(SHA-256 schemes only)");
        return DEVID_ERR_CHALLENGE_SIG;
    }
    return 0;
}

/* check_credential_name checks, when the token sealed a credential, that
 * the certified new key |ev->ldevid_public| has the Name the credential was
 * made for. */
static int check_credential_name(const struct enroll_verdict *v, const Devid__V1__TpmEvidence *ev,
                                 char *why, size_t why_len)
{
    uint8_t name[TPMKEY_NAME_MAX], h[TOKEN_EK_HASH_LEN];
    size_t name_len = 0;
    unsigned int hlen = 0;
    int r;

    if (!token_ek_present(&v->ek))
        return 0;
    if (tpmkey_name_from_bytes(name, &name_len, ev->ldevid_public.data, ev->ldevid_public.len) !=
            0 ||
        EVP_Digest(name, name_len, h, &hlen, EVP_sha256(), NULL) != 1 || hlen != sizeof(h)) {
        snprintf(why, why_len, "the Name of evidence.ldevid_public cannot be computed");
        return DEVID_ERR_ATTEST_MALFORMED;
    }
    r = CRYPTO_memcmp(h, v->ek.name_hash, sizeof(h)) == 0 ? 0 : DEVID_ERR_CREDENTIAL_NAME;
    if (r != 0)
        snprintf(why, why_len,
                 "the certified new key is not the key the EK credential was made for "
                 "(ChallengeRequest.ldevid_public): a key created in another TPM?");
    return r;
}

/* check_credential checks EnrollRequest.activated_secret against the
 * credential the challenge made (credential_derive over what the token
 * sealed, under the key that opened it), in constant time; without a sealed
 * EK it must be empty. */
static int check_credential(struct enroll_verdict *v, const struct enroll_config *cfg,
                            const Devid__V1__EnrollRequest *req, char *why, size_t why_len)
{
    uint8_t cv[CREDENTIAL_SECRET_LEN];
    int r;

    if (!token_ek_present(&v->ek)) {
        if (req->activated_secret.len == 0)
            return 0;
        snprintf(why, why_len, "activated_secret is set but the challenge made no credential");
        return DEVID_ERR_CREDENTIAL;
    }
    if ((r = credential_derive(
             cv, v->token_key == TOKEN_KEY_ACCEPT ? cfg->token_accept_key : cfg->token_key,
             v->nonce, v->ek.ek_cert_hash, v->ek.name_hash)) != 0) {
        snprintf(why, why_len, "deriving the credential failed");
        return r;
    }
    if (req->activated_secret.len != sizeof(cv) || req->activated_secret.data == NULL ||
        CRYPTO_memcmp(cv, req->activated_secret.data, sizeof(cv)) != 0) {
        snprintf(why, why_len,
                 "activated_secret (%zu bytes) is not the credential made for this challenge: "
                 "the TPM holding the EK of the challenge did not activate it (another TPM, or "
                 "an answer to an earlier challenge)",
                 req->activated_secret.len);
        r = DEVID_ERR_CREDENTIAL;
    } else {
        v->credential_ok = true;
    }
    OPENSSL_cleanse(cv, sizeof(cv));
    return r;
}

/* Parses and checks the IAK certificate: chains to the same manufacturer as
 * the IDevID and names the same device serial. */
static int check_iak_cert(X509 **out, const struct enroll_config *cfg,
                          const struct enroll_verdict *v, const Devid__V1__TpmEvidence *ev,
                          X509 *idevid, STACK_OF(X509) *chain, time_t now, char *why,
                          size_t why_len)
{
    struct chain_verdict iak_chain;
    X509 *iak = NULL;
    char serial[sizeof(v->id.serial)], sub[512];
    int r = DEVID_ERR_ATTEST_SIGNATURE;

    *out = NULL;
    memset(&iak_chain, 0, sizeof(iak_chain));
    if ((iak = one_der_cert(&ev->iak_certificate)) == NULL) {
        snprintf(why, why_len, "iak_certificate: not exactly one DER certificate");
        r = DEVID_ERR_ATTEST_MALFORMED;
        goto out;
    }
    if (chain_verify(cfg->store, &iak_chain, iak, chain, now, sub, sizeof(sub)) != 0) {
        snprintf(why, why_len, "iak_certificate: %.480s", sub);
        goto out;
    }
    if (strcmp(iak_chain.manufacturer, v->id.manufacturer) != 0) {
        snprintf(why, why_len,
                 "iak_certificate: chains to manufacturer \"%s\", the IDevID to \"%s\"",
                 iak_chain.manufacturer, v->id.manufacturer);
        goto out;
    }
    if (identity_extract_serial(serial, sizeof(serial), iak, "IAK certificate", sub, sizeof(sub)) !=
        0) {
        snprintf(why, why_len, "iak_certificate: %.480s", sub);
        goto out;
    }
    if (strcmp(serial, v->id.serial) != 0) {
        snprintf(why, why_len,
                 "iak_certificate: device serial \"%s\" is not the IDevID's serial \"%s\"", serial,
                 v->id.serial);
        goto out;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(iak), X509_get0_pubkey(idevid)) == 1) {
        snprintf(why, why_len,
                 "iak_certificate: certifies the IDevID's own key, which is not a restricted "
                 "attestation key");
        goto out;
    }
    *out = iak;
    iak = NULL;
    r = 0;
out:
    chain_verdict_cleanup(&iak_chain);
    X509_free(iak);
    return r;
}

/* request_pcrs copies the PCR values |req| reports into |v| (none when it
 * carries no quote). Returns 0 or DEVID_ERR_QUOTE_MALFORMED. */
static int request_pcrs(struct enroll_verdict *v, const Devid__V1__EnrollRequest *req, char *why,
                        size_t why_len)
{
    const Devid__V1__PcrQuote *q = req->quote;
    size_t i;

    v->n_pcrs = 0;
    if (q == NULL)
        return 0;
    if (q->n_pcrs > QUOTE_MAX_PCRS)
        return devid_why(DEVID_ERR_QUOTE_MALFORMED, why, why_len,
                         "quote.pcrs: %zu PCR values, at most %d", q->n_pcrs, QUOTE_MAX_PCRS);
    for (i = 0; i < q->n_pcrs; i++) {
        if (q->pcrs[i] == NULL || q->pcrs[i]->sha256.len != QUOTE_PCR_LEN)
            return devid_why(DEVID_ERR_QUOTE_MALFORMED, why, why_len,
                             "quote.pcrs[%zu]: the SHA-256 value is not %d bytes", i,
                             QUOTE_PCR_LEN);
        v->pcrs[i].index = q->pcrs[i]->index;
        memcpy(v->pcrs[i].sha256, q->pcrs[i]->sha256.data, QUOTE_PCR_LEN);
    }
    v->n_pcrs = q->n_pcrs;
    return 0;
}

/* check_ak checks the AK of a quote on a device without an IAK: the
 * challenge made an EK credential (the token sealed the EK), the quote
 * names an AK (quote.ak_public) and carries the secret only the TPM holding
 * the EK and an AK of that Name recovers (quote.ak_activated_secret,
 * DEVID_ERR_CREDENTIAL): the value is recomputed from the Name, so another
 * AK than the challenge's has another value. Sets |*out| to the AK's key,
 * owned by the caller. */
static int check_ak(EVP_PKEY **out, struct enroll_verdict *v, const struct enroll_config *cfg,
                    const Devid__V1__PcrQuote *q, const char *rule, const char *pcrs, char *why,
                    size_t why_len)
{
    TPMT_PUBLIC ak;
    uint8_t name[TPMKEY_NAME_MAX], h[32], cv[CREDENTIAL_SECRET_LEN];
    size_t name_len = 0;
    unsigned int hlen = 0;
    int r = DEVID_ERR_INTERNAL;

    *out = NULL;
    if (!token_ek_present(&v->ek) || !v->credential_ok || q == NULL || q->ak_public.len == 0)
        return devid_why(DEVID_ERR_QUOTE_SIGNATURE, why, why_len,
                         "%s requires a TPM2_Quote of SHA-256 PCRs %s signed by a restricted key "
                         "shown in this exchange: an IAK, or an AK bound by the EK credential "
                         "activation (ChallengeRequest.ak_public with the EK; devid-agent: [tpm] "
                         "ak = auto); this device certified its new key without an IAK and sent "
                         "no AK, and a quote by the unrestricted IDevID proves nothing",
                         rule, pcrs);
    if (tpmkey_name_from_bytes(name, &name_len, q->ak_public.data, q->ak_public.len) != 0 ||
        tpmkey_unmarshal_public(&ak, q->ak_public.data, q->ak_public.len) != 0 ||
        EVP_Digest(name, name_len, h, &hlen, EVP_sha256(), NULL) != 1 || hlen != sizeof(h))
        return devid_why(DEVID_ERR_QUOTE_MALFORMED, why, why_len,
                         "quote.ak_public is not a TPMT_PUBLIC with a supported nameAlg");
    /* The challenge made a credential only for an AK that passed this. */
    if ((r = credential_check_ak(&ak, why, why_len)) != 0)
        return r;
    if ((r = credential_derive_ak(
             cv, v->token_key == TOKEN_KEY_ACCEPT ? cfg->token_accept_key : cfg->token_key,
             v->nonce, v->ek.ek_cert_hash, h)) != 0) {
        snprintf(why, why_len, "deriving the AK credential failed");
        goto out;
    }
    if (q->ak_activated_secret.len != sizeof(cv) || q->ak_activated_secret.data == NULL ||
        CRYPTO_memcmp(cv, q->ak_activated_secret.data, sizeof(cv)) != 0) {
        r = devid_why(DEVID_ERR_CREDENTIAL, why, why_len,
                      "quote.ak_activated_secret (%zu bytes) is not the credential this "
                      "challenge made for quote.ak_public: the TPM holding the EK did not "
                      "activate it for that AK (another TPM, another AK than "
                      "ChallengeRequest.ak_public, or an answer to an earlier challenge)",
                      q->ak_activated_secret.len);
        goto out;
    }
    if (tpmkey_public_to_pkey(out, &ak) != 0) {
        r = devid_why(DEVID_ERR_QUOTE_MALFORMED, why, why_len,
                      "quote.ak_public: its key does not decode");
        goto out;
    }
    r = 0;
out:
    OPENSSL_cleanse(cv, sizeof(cv));
    return r;
}

/* check_quote checks the boot-state gate's quote when the policy asks for
 * PCRs of this device: signed by |iak|, or with none (NULL) by the AK the EK
 * credential activation bound (check_ak), over T, of exactly those PCRs,
 * with the reported values. Fills v->pcrs. */
static int check_quote(struct enroll_verdict *v, const struct enroll_config *cfg,
                       const Devid__V1__EnrollRequest *req, EVP_PKEY *iak, char *why,
                       size_t why_len)
{
    const Devid__V1__PcrQuote *q = req->quote;
    char rule[600], pcrs[80];
    struct quote_input in;
    EVP_PKEY *ak = NULL;
    uint32_t sel;
    int r = DEVID_ERR_INTERNAL;

    v->n_pcrs = 0;
    if ((sel = policy_pcr_selection(cfg->policy, &v->id, rule, sizeof(rule))) == 0)
        return 0;
    quote_selection_str(pcrs, sizeof(pcrs), sel);
    if (iak == NULL && q == NULL)
        return check_ak(&ak, v, cfg, q, rule, pcrs, why, why_len);
    if (q == NULL)
        return devid_why(DEVID_ERR_QUOTE_MALFORMED, why, why_len,
                         "%s requires a TPM2_Quote of SHA-256 PCRs %s and the request carries "
                         "none",
                         rule, pcrs);
    if (iak == NULL && (r = check_ak(&ak, v, cfg, q, rule, pcrs, why, why_len)) != 0)
        goto out;
    if ((r = request_pcrs(v, req, why, why_len)) != 0)
        goto out;
    memset(&in, 0, sizeof(in));
    in.info = q->quote_info.data;
    in.info_len = q->quote_info.len;
    in.sig = q->quote_signature.data;
    in.sig_len = q->quote_signature.len;
    in.signer = iak != NULL ? iak : ak;
    in.qualifying = v->transcript;
    in.qualifying_len = TRANSCRIPT_LEN;
    in.selection = sel;
    in.pcrs = v->pcrs;
    in.n_pcrs = v->n_pcrs;
    if ((r = quote_check(&in, why, why_len)) != 0)
        goto out;
    v->quote_by_ak = ak != NULL;
    r = 0;
out:
    if (r != 0)
        v->n_pcrs = 0;
    EVP_PKEY_free(ak);
    return r;
}

static int check_evidence(struct attest_result *res, struct enroll_verdict *v,
                          const struct enroll_config *cfg, X509 *client_cert,
                          const Devid__V1__EnrollRequest *req, STACK_OF(X509) *chain, time_t now,
                          char *why, size_t why_len)
{
    const Devid__V1__TpmEvidence *ev = req->evidence;
    struct attest_input in;
    X509 *iak = NULL;
    int r = DEVID_ERR_INTERNAL;

    if (ev == NULL) {
        snprintf(why, why_len, "request carries no TPM certify evidence");
        return DEVID_ERR_ATTEST_MALFORMED;
    }
    memset(&in, 0, sizeof(in));
    if (ev->signer == DEVID__V1__SIGNER_KIND__SIGNER_KIND_IAK) {
        if ((r = check_iak_cert(&iak, cfg, v, ev, client_cert, chain, now, why, why_len)) != 0)
            goto out;
        in.signer = X509_get0_pubkey(iak);
        in.signer_is_iak = true;
    } else if (ev->signer == DEVID__V1__SIGNER_KIND__SIGNER_KIND_IDEVID) {
        in.signer = X509_get0_pubkey(client_cert);
    } else {
        snprintf(why, why_len, "evidence signer kind %d is neither IDEVID nor IAK",
                 (int)ev->signer);
        r = DEVID_ERR_ATTEST_SIGNATURE;
        goto out;
    }
    if (in.signer == NULL) {
        snprintf(why, why_len, "%s public key does not decode",
                 in.signer_is_iak ? "IAK" : "IDevID");
        r = DEVID_ERR_ATTEST_SIGNATURE;
        goto out;
    }
    in.info = ev->certify_info.data;
    in.info_len = ev->certify_info.len;
    in.sig = ev->certify_signature.data;
    in.sig_len = ev->certify_signature.len;
    in.pub = ev->ldevid_public.data;
    in.pub_len = ev->ldevid_public.len;
    in.signer_public = ev->signer_public.data;
    in.signer_public_len = ev->signer_public.len;
    in.qualifying = v->transcript;
    in.qualifying_len = TRANSCRIPT_LEN;
    if ((r = attest_check_certify(res, &in, why, why_len)) != 0 ||
        (r = check_credential_name(v, ev, why, why_len)) != 0)
        goto out;
    v->signer_kind = (int)ev->signer;
    v->signer = in.signer_is_iak         ? ATTEST_SIGNER_IAK_RESTRICTED
                : res->signer_restricted ? ATTEST_SIGNER_IDEVID_RESTRICTED
                                         : ATTEST_SIGNER_IDEVID_UNRESTRICTED;
    /* Only the IAK's certificate vouches for a restricted signer: the
     * IDevID's signer_public is the device's own claim. */
    v->assurance = v->signer == ATTEST_SIGNER_IAK_RESTRICTED ? ASSURANCE_IAK
                   : v->credential_ok                        ? ASSURANCE_EK
                                                             : ASSURANCE_NONE;
    v->assurance_known = true;
    if ((r = check_quote(v, cfg, req, in.signer_is_iak ? in.signer : NULL, why, why_len)) != 0)
        goto out;
    r = 0;
out:
    X509_free(iak);
    return r;
}

static int why_token(int r, char *why, size_t why_len)
{
    switch (r) {
        case DEVID_ERR_TOKEN_INVALID:
            snprintf(why, why_len, "token is malformed or its MAC does not verify");
            break;
        case DEVID_ERR_TOKEN_EXPIRED:
            snprintf(why, why_len, "token has expired; request a new challenge");
            break;
        case DEVID_ERR_TOKEN_WRONG_CLIENT:
            snprintf(why, why_len, "token was issued to another client certificate");
            break;
        default:
            snprintf(why, why_len, "token check failed: %s", devid_err_str(r));
            break;
    }
    return r;
}

/* Drops what an issuance would need: the CSR, the key and the secrets. */
static void drop_issuance(struct enroll_verdict *v)
{
    X509_PUBKEY_free(v->csr_spki);
    v->csr_spki = NULL;
    OPENSSL_cleanse(v->nonce, sizeof(v->nonce));
    OPENSSL_cleanse(v->conn_hash, sizeof(v->conn_hash));
    OPENSSL_cleanse(v->transcript, sizeof(v->transcript));
}

/* Turns |v| into a refusal with |r|; keeps what was learned for the logs. */
static int refuse(struct enroll_verdict *v, int r)
{
    drop_issuance(v);
    v->action = ENROLL_REFUSE;
    v->reason = r;
    if (v->why[0] == '\0')
        snprintf(v->why, sizeof(v->why), "%s", devid_err_str(r));
    return r;
}

/* identify runs the checks of enroll_peek into |v|: TLS, the chain, the
 * identity and the token, which yields the nonce and the connection hash. */
static int identify(struct enroll_verdict *v, const struct enroll_config *cfg,
                    const Devid__V1__EnrollRequest *req, const struct enroll_tls *tls, time_t now)
{
    STACK_OF(X509) *chain = NULL;
    struct chain_verdict verdict;
    int r = DEVID_ERR_INTERNAL;

    memset(&verdict, 0, sizeof(verdict));
    if (cfg == NULL || cfg->store == NULL || cfg->policy == NULL || cfg->token_key == NULL ||
        req == NULL || tls == NULL) {
        snprintf(v->why, sizeof(v->why), "enroll_decide called without configuration or request");
        r = DEVID_ERR_INVALID_ARGUMENT;
        goto out;
    }
    if ((r = enroll_check_tls(tls, v->why, sizeof(v->why))) != 0)
        goto out;
    if ((r = enroll_device_chain(&chain, tls->chain, tls->memo, req->intermediates,
                                 req->n_intermediates, v->why, sizeof(v->why))) != 0 ||
        (r = chain_memo_verify(tls->memo, cfg->store, &verdict, tls->client_cert, chain, now,
                               v->why, sizeof(v->why))) != 0)
        goto out;
    v->revocation = verdict.revocation;
    snprintf(v->revocation_detail, sizeof(v->revocation_detail), "%s", verdict.revocation_detail);
    if ((r = identity_extract(&v->id, tls->client_cert, verdict.manufacturer, v->why,
                              sizeof(v->why))) != 0 ||
        (r = enroll_cert_hash(v->idevid_sha256, tls->client_cert)) != 0)
        goto out;
    if ((r = token_open_either(v->nonce, v->conn_hash, &v->ek, &v->token_key, cfg->token_key,
                               cfg->token_accept_key, req->token.data, req->token.len, (int64_t)now,
                               v->idevid_sha256)) != 0)
        why_token(r, v->why, sizeof(v->why));
out:
    chain_verdict_cleanup(&verdict);
    sk_X509_pop_free(chain, X509_free);
    return r;
}

int enroll_peek(struct enroll_ledger_query *out, const struct enroll_config *cfg,
                const Devid__V1__EnrollRequest *req, const struct enroll_tls *tls, time_t now)
{
    struct enroll_verdict v;
    int r;

    if (out == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof(*out));
    memset(&v, 0, sizeof(v));
    if ((r = identify(&v, cfg, req, tls, now)) == 0) {
        memcpy(out->nonce, v.nonce, sizeof(out->nonce));
        memcpy(out->idevid_sha256, v.idevid_sha256, sizeof(out->idevid_sha256));
        snprintf(out->manufacturer, sizeof(out->manufacturer), "%s", v.id.manufacturer);
        snprintf(out->device_serial, sizeof(out->device_serial), "%s", v.id.serial);
    }
    enroll_verdict_cleanup(&v);
    return r;
}

/* recorded_pcrs holds a retry to the PCR values recorded with its
 * certificate when the policy now checks PCRs of the device: the values the
 * request reports count only if they are those (which a verified quote
 * showed); a certificate recorded without them is refused as unquoted. */
static int recorded_pcrs(struct enroll_verdict *v, const struct enroll_config *cfg,
                         const struct enroll_ledger_facts *f)
{
    char reported[QUOTE_PCRS_STR_LEN];
    const char *recorded = f->nonce_pcr_values != NULL ? f->nonce_pcr_values : "";

    if (policy_pcr_selection(cfg->policy, &v->id, NULL, 0) == 0)
        return 0;
    quote_pcrs_str(reported, sizeof(reported), v->pcrs, v->n_pcrs);
    if (strcmp(reported, recorded) == 0)
        return 0;
    v->n_pcrs = 0;
    return devid_why(DEVID_ERR_PCR_VALUE, v->why, sizeof(v->why),
                     "certificate %s was recorded with PCR values \"%.300s\", not those of this "
                     "request, and the policy now checks PCRs of this device; ask for a new "
                     "challenge",
                     f->nonce_cert_serial != NULL ? f->nonce_cert_serial : "(unknown)", recorded);
}

/* What the ledger's answer for the nonce means: 0 to go on (unused), 1 for
 * the stored answer (which the policy must allow again: a device revoked or
 * deny-listed since gets nothing back), or DEVID_ERR_NONCE_REPLAYED or
 * DEVID_ERR_POLICY_DENIED. */
static int nonce_answer(struct enroll_verdict *v, const struct enroll_config *cfg,
                        const struct enroll_ledger_facts *f)
{
    int r;

    if (f->nonce == ENROLL_NONCE_UNUSED)
        return 0;
    if (f->nonce == ENROLL_NONCE_SAME_REQUEST) {
        v->assurance = f->nonce_assurance;
        v->assurance_known = true;
        if ((r = policy_check(cfg->policy, &v->id, v->why, sizeof(v->why))) != 0 ||
            (r = policy_check_assurance(cfg->policy, &v->id, f->nonce_assurance, v->why,
                                        sizeof(v->why))) != 0 ||
            (r = recorded_pcrs(v, cfg, f)) != 0 ||
            (r = policy_check_pcrs(cfg->policy, &v->id, v->pcrs, v->n_pcrs, v->why,
                                   sizeof(v->why))) != 0)
            return r;
        drop_issuance(v);
        v->action = ENROLL_RETURN_STORED;
        return 1;
    }
    snprintf(v->why, sizeof(v->why),
             "the challenge nonce was already used for certificate %s; ask for a new challenge",
             f->nonce_cert_serial != NULL ? f->nonce_cert_serial : "(unknown)");
    return DEVID_ERR_NONCE_REPLAYED;
}

/* check_nonce checks that |f| answers for the request in |v|, then applies
 * nonce_answer. */
static int check_nonce(struct enroll_verdict *v, const struct enroll_config *cfg,
                       const Devid__V1__EnrollRequest *req, const struct enroll_ledger_facts *f)
{
    int r;

    if (f == NULL || f->nonce == ENROLL_NONCE_UNKNOWN) {
        snprintf(v->why, sizeof(v->why), "the ledger was not asked about this request's nonce");
        return DEVID_ERR_INTERNAL;
    }
    if (CRYPTO_memcmp(f->asked.nonce, v->nonce, sizeof(v->nonce)) != 0 ||
        CRYPTO_memcmp(f->asked.idevid_sha256, v->idevid_sha256, sizeof(v->idevid_sha256)) != 0 ||
        strcmp(f->asked.manufacturer, v->id.manufacturer) != 0 ||
        strcmp(f->asked.device_serial, v->id.serial) != 0) {
        snprintf(v->why, sizeof(v->why), "the ledger's answers are about another request");
        return DEVID_ERR_INTERNAL;
    }
    /* The same request again reports the PCR values its quote showed. */
    if (f->nonce == ENROLL_NONCE_SAME_REQUEST &&
        (r = request_pcrs(v, req, v->why, sizeof(v->why))) != 0)
        return r;
    return nonce_answer(v, cfg, f);
}

/* check_connection checks that the token was sealed on the connection whose
 * tls-exporter value is |exporter|. */
static int check_connection(struct enroll_verdict *v, const uint8_t *exporter)
{
    uint8_t h[TOKEN_CONN_HASH_LEN];
    int r;

    if (exporter == NULL) {
        snprintf(v->why, sizeof(v->why), "TLS exporter unavailable on this connection");
        return DEVID_ERR_TLS;
    }
    if ((r = token_conn_hash(h, exporter, TRANSCRIPT_EXPORTER_LEN)) != 0) {
        snprintf(v->why, sizeof(v->why), "hashing the TLS exporter failed");
        return r;
    }
    r = CRYPTO_memcmp(h, v->conn_hash, sizeof(h)) == 0 ? 0 : DEVID_ERR_TOKEN_WRONG_CONNECTION;
    if (r != 0)
        snprintf(v->why, sizeof(v->why),
                 "token was issued on another TLS connection: send POST /v1/enroll on the "
                 "connection that answered the challenge");
    OPENSSL_cleanse(h, sizeof(h));
    return r;
}

/* check_request runs the checks over the evidence, after the nonce: the
 * challenge signature, the certify evidence, the CSR and policy. */
static int check_request(struct enroll_verdict *v, const struct enroll_config *cfg,
                         const struct enroll_input *in, struct attest_result *ares)
{
    const Devid__V1__EnrollRequest *req = in->req;
    STACK_OF(X509) *chain = NULL;
    char *why = v->why;
    size_t why_len = sizeof(v->why);
    unsigned int dlen = 0;
    int r = DEVID_ERR_INTERNAL;

    if (req->csr.data == NULL || req->csr.len == 0 || req->csr.len > CSR_MAX_LEN) {
        snprintf(why, why_len, "CSR is empty or longer than %d bytes", CSR_MAX_LEN);
        r = DEVID_ERR_CSR_INVALID;
        goto out;
    }
    if ((r = transcript_compute(v->transcript, v->nonce, sizeof(v->nonce), in->tls.exporter,
                                TRANSCRIPT_EXPORTER_LEN, req->csr.data, req->csr.len)) != 0) {
        snprintf(why, why_len, "transcript computation failed");
        goto out;
    }
    if ((r = check_challenge(in->tls.client_cert, req, v->transcript, why, why_len)) != 0 ||
        (r = check_credential(v, cfg, req, why, why_len)) != 0 ||
        (r = enroll_device_chain(&chain, in->tls.chain, in->tls.memo, req->intermediates,
                                 req->n_intermediates, why, why_len)) != 0 ||
        (r = check_evidence(ares, v, cfg, in->tls.client_cert, req, chain, in->now, why,
                            why_len)) != 0 ||
        (r = csr_check(&v->csr_spki, req->csr.data, req->csr.len, ares->key, why, why_len)) != 0 ||
        (r = policy_check(cfg->policy, &v->id, why, why_len)) != 0 ||
        (r = policy_check_assurance(cfg->policy, &v->id, v->assurance, why, why_len)) != 0 ||
        (r = policy_check_pcrs(cfg->policy, &v->id, v->pcrs, v->n_pcrs, why, why_len)) != 0 ||
        (r = policy_check_reenroll(cfg->policy, &v->id, in->ledger->device_active, why, why_len)) !=
            0)
        goto out;
    if (EVP_Digest(req->csr.data, req->csr.len, v->csr_sha256, &dlen, EVP_sha256(), NULL) != 1 ||
        dlen != sizeof(v->csr_sha256)) {
        snprintf(why, why_len, "hashing the CSR failed");
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    r = 0;
out:
    sk_X509_pop_free(chain, X509_free);
    return r;
}

int enroll_decide(struct enroll_verdict *out, const struct enroll_config *cfg,
                  const struct enroll_input *in)
{
    struct attest_result ares;
    int r;

    if (out == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof(*out));
    memset(&ares, 0, sizeof(ares));
    if (in == NULL) {
        snprintf(out->why, sizeof(out->why), "enroll_decide called without its input");
        return refuse(out, DEVID_ERR_INVALID_ARGUMENT);
    }
    if ((r = identify(out, cfg, in->req, &in->tls, in->now)) != 0 ||
        (r = check_nonce(out, cfg, in->req, in->ledger)) < 0)
        return refuse(out, r);
    if (r == 1)
        return 0;
    if ((r = check_connection(out, in->tls.exporter)) != 0)
        return refuse(out, r);
    r = check_request(out, cfg, in, &ares);
    attest_result_cleanup(&ares);
    if (r != 0)
        return refuse(out, r);
    out->action = ENROLL_ISSUE;
    return 0;
}

int enroll_decide_conflict(struct enroll_verdict *v, const struct enroll_config *cfg,
                           const struct enroll_ledger_facts *facts)
{
    int r;

    if (v == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (v->action != ENROLL_ISSUE || cfg == NULL || facts == NULL) {
        snprintf(v->why, sizeof(v->why), "enroll_decide_conflict called without an issuance");
        return refuse(v, DEVID_ERR_INVALID_ARGUMENT);
    }
    if (facts->nonce == ENROLL_NONCE_UNUSED && facts->device_active) {
        r = policy_check_reenroll(cfg->policy, &v->id, true, v->why, sizeof(v->why));
        if (r == 0) {
            snprintf(v->why, sizeof(v->why),
                     "the ledger refused a re-enrollment that the policy allows");
            r = DEVID_ERR_INTERNAL;
        } else {
            snprintf(v->why + strlen(v->why), sizeof(v->why) - strlen(v->why),
                     " (certificate %s was recorded for it meanwhile)",
                     facts->nonce_cert_serial != NULL ? facts->nonce_cert_serial : "(unknown)");
        }
        return refuse(v, r);
    }
    if (facts->nonce == ENROLL_NONCE_UNUSED || facts->nonce == ENROLL_NONCE_UNKNOWN) {
        snprintf(v->why, sizeof(v->why), "the challenge nonce was already used");
        return refuse(v, DEVID_ERR_NONCE_REPLAYED);
    }
    if ((r = nonce_answer(v, cfg, facts)) < 0)
        return refuse(v, r);
    return 0;
}

void enroll_idevid_report_cleanup(struct enroll_idevid_report *rep)
{
    if (rep == NULL)
        return;
    chain_verdict_cleanup(&rep->chain);
    memset(rep, 0, sizeof(*rep));
}

int enroll_check_idevid(struct enroll_idevid_report *rep, const struct chain_store *store,
                        const struct policy *policy, X509 *leaf, STACK_OF(X509) *device_chain,
                        time_t now, struct chain_memo *memo)
{
    int r;

    if (rep == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(rep, 0, sizeof(*rep));
    if (store == NULL || policy == NULL || leaf == NULL) {
        snprintf(rep->why, sizeof(rep->why), "enroll_check_idevid called without its inputs");
        return DEVID_ERR_INVALID_ARGUMENT;
    }
    if ((r = chain_memo_verify(memo, store, &rep->chain, leaf, device_chain, now, rep->why,
                               sizeof(rep->why))) != 0)
        return r;
    rep->chain_ok = 1;
    if ((r = identity_extract(&rep->id, leaf, rep->chain.manufacturer, rep->why,
                              sizeof(rep->why))) != 0)
        return r;
    rep->identity_ok = 1;
    rep->minimum = policy_minimum(policy, &rep->id, rep->minimum_rule, sizeof(rep->minimum_rule));
    rep->pcrs = policy_pcr_selection(policy, &rep->id, rep->pcr_rule, sizeof(rep->pcr_rule));
    if ((r = policy_check(policy, &rep->id, rep->why, sizeof(rep->why))) != 0)
        return r;
    rep->policy_ok = 1;
    return 0;
}
