#include "verifier/core/enroll.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/err.h"
#include "common/tpmkey.h"
#include "verifier/core/csr.h"

void enroll_outcome_cleanup(struct enroll_outcome *o)
{
    if (o == NULL)
        return;
    X509_REQ_free(o->csr);
    EVP_PKEY_free(o->ldevid_key);
    OPENSSL_cleanse(o, sizeof(*o));
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

/* Builds the untrusted chain from the TLS chain and the request's DER
 * intermediates. The stack owns a reference to each certificate. */
static int device_chain(STACK_OF(X509) **out, STACK_OF(X509) *tls_chain,
                        const Devid__V1__EnrollRequest *req, char *why, size_t why_len)
{
    STACK_OF(X509) *sk = NULL;
    X509 *x = NULL;
    const unsigned char *p;
    size_t i;
    int j;
    int r = DEVID_ERR_INTERNAL;

    *out = NULL;
    if (req->n_intermediates > ENROLL_MAX_INTERMEDIATES) {
        snprintf(why, why_len, "request carries %zu intermediates, at most %d allowed",
                 req->n_intermediates, ENROLL_MAX_INTERMEDIATES);
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
    for (i = 0; i < req->n_intermediates; i++) {
        const ProtobufCBinaryData *b = &req->intermediates[i];
        p = b->data;
        if (b->len == 0 || b->len > 65536 || b->data == NULL ||
            (x = d2i_X509(NULL, &p, (long)b->len)) == NULL || p != b->data + b->len) {
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
                           const uint8_t t[TRANSCRIPT_LEN], char *why, size_t why_len)
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
    if (tpmkey_verify_digest(pk, &sig, t, TRANSCRIPT_LEN) != 0) {
        snprintf(why, why_len,
                 "challenge_signature does not verify over the transcript with the IDevID key "
                 "(SHA-256 schemes only)");
        return DEVID_ERR_CHALLENGE_SIG;
    }
    return 0;
}

/* Parses and checks the IAK certificate: chains to the same manufacturer as
 * the IDevID and names the same device serial. */
static int check_iak_cert(X509 **out, const struct enroll_config *cfg,
                          const struct enroll_outcome *o, const Devid__V1__TpmEvidence *ev,
                          STACK_OF(X509) *chain, time_t now, char *why, size_t why_len)
{
    struct chain_verdict v;
    X509 *iak = NULL;
    const unsigned char *p = ev->iak_certificate.data;
    char serial[sizeof(o->id.serial)], sub[512];
    int r = DEVID_ERR_ATTEST_SIGNATURE;

    *out = NULL;
    memset(&v, 0, sizeof(v));
    if (p == NULL || ev->iak_certificate.len == 0 || ev->iak_certificate.len > 65536 ||
        (iak = d2i_X509(NULL, &p, (long)ev->iak_certificate.len)) == NULL ||
        p != ev->iak_certificate.data + ev->iak_certificate.len) {
        snprintf(why, why_len, "iak_certificate: not exactly one DER certificate");
        r = DEVID_ERR_ATTEST_MALFORMED;
        goto out;
    }
    if (chain_verify(cfg->store, &v, iak, chain, now, sub, sizeof(sub)) != 0) {
        snprintf(why, why_len, "iak_certificate: %.480s", sub);
        goto out;
    }
    if (strcmp(v.manufacturer, o->id.manufacturer) != 0) {
        snprintf(why, why_len,
                 "iak_certificate: chains to manufacturer \"%s\", the IDevID to \"%s\"",
                 v.manufacturer, o->id.manufacturer);
        goto out;
    }
    if (identity_extract_serial(serial, sizeof(serial), iak, "IAK certificate", sub, sizeof(sub)) !=
        0) {
        snprintf(why, why_len, "iak_certificate: %.480s", sub);
        goto out;
    }
    if (strcmp(serial, o->id.serial) != 0) {
        snprintf(why, why_len,
                 "iak_certificate: device serial \"%s\" is not the IDevID's serial \"%s\"", serial,
                 o->id.serial);
        goto out;
    }
    *out = iak;
    iak = NULL;
    r = 0;
out:
    chain_verdict_cleanup(&v);
    X509_free(iak);
    return r;
}

static int check_evidence(struct attest_result *res, struct enroll_outcome *o,
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
        if ((r = check_iak_cert(&iak, cfg, o, ev, chain, now, why, why_len)) != 0)
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
    in.qualifying = o->transcript;
    in.qualifying_len = TRANSCRIPT_LEN;
    if ((r = attest_check_certify(res, &in, why, why_len)) != 0)
        goto out;
    o->signer_kind = (int)ev->signer;
    o->signer = in.signer_is_iak         ? ATTEST_SIGNER_IAK_RESTRICTED
                : res->signer_restricted ? ATTEST_SIGNER_IDEVID_RESTRICTED
                                         : ATTEST_SIGNER_IDEVID_UNRESTRICTED;
    r = 0;
out:
    X509_free(iak);
    return r;
}

static int token_why(int r, char *why, size_t why_len)
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

/* On a refusal: frees what |o| owns and clears the secrets, keeps the rest. */
static void refused(struct enroll_outcome *o, int r)
{
    X509_REQ_free(o->csr);
    o->csr = NULL;
    EVP_PKEY_free(o->ldevid_key);
    o->ldevid_key = NULL;
    OPENSSL_cleanse(o->nonce, sizeof(o->nonce));
    OPENSSL_cleanse(o->transcript, sizeof(o->transcript));
    o->stage = 0;
    if (o->why[0] == '\0')
        snprintf(o->why, sizeof(o->why), "%s", devid_err_str(r));
}

int enroll_check_client(struct enroll_outcome *out, const struct enroll_config *cfg,
                        const Devid__V1__EnrollRequest *req, X509 *client_cert,
                        STACK_OF(X509) *tls_chain, time_t now)
{
    STACK_OF(X509) *chain = NULL;
    struct chain_verdict verdict;
    char *why;
    size_t why_len;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof(*out));
    memset(&verdict, 0, sizeof(verdict));
    why = out->why;
    why_len = sizeof(out->why);
    if (cfg == NULL || cfg->store == NULL || cfg->policy == NULL || cfg->token_key == NULL ||
        req == NULL) {
        snprintf(why, why_len, "enroll_check called without configuration or request");
        r = DEVID_ERR_INVALID_ARGUMENT;
        goto out;
    }
    if (client_cert == NULL) {
        snprintf(why, why_len, "no TLS client certificate (the IDevID) was presented");
        r = DEVID_ERR_NO_CLIENT_CERT;
        goto out;
    }
    if ((r = device_chain(&chain, tls_chain, req, why, why_len)) != 0)
        goto out;
    if ((r = chain_verify(cfg->store, &verdict, client_cert, chain, now, why, why_len)) != 0)
        goto out;
    out->revocation = verdict.revocation;
    snprintf(out->revocation_detail, sizeof(out->revocation_detail), "%s",
             verdict.revocation_detail);
    if ((r = identity_extract(&out->id, client_cert, verdict.manufacturer, why, why_len)) != 0)
        goto out;
    if ((r = enroll_cert_hash(out->idevid_sha256, client_cert)) != 0)
        goto out;
    if ((r = token_open(out->nonce, cfg->token_key, req->token.data, req->token.len, (int64_t)now,
                        out->idevid_sha256)) != 0) {
        token_why(r, why, why_len);
        goto out;
    }
    out->stage = 1;
    r = 0;
out:
    if (r != 0 && out != NULL)
        refused(out, r);
    chain_verdict_cleanup(&verdict);
    sk_X509_pop_free(chain, X509_free);
    return r;
}

int enroll_check_evidence(struct enroll_outcome *out, const struct enroll_config *cfg,
                          const Devid__V1__EnrollRequest *req, X509 *client_cert,
                          STACK_OF(X509) *tls_chain,
                          const uint8_t exporter[TRANSCRIPT_EXPORTER_LEN], time_t now)
{
    STACK_OF(X509) *chain = NULL;
    struct attest_result ares;
    X509_REQ *csr = NULL;
    char *why;
    size_t why_len;
    unsigned int dlen = 0;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(&ares, 0, sizeof(ares));
    why = out->why;
    why_len = sizeof(out->why);
    if (out->stage != 1 || cfg == NULL || cfg->store == NULL || cfg->policy == NULL ||
        req == NULL || client_cert == NULL || exporter == NULL) {
        snprintf(why, why_len, "enroll_check_evidence called without a passed stage 1");
        r = DEVID_ERR_INVALID_ARGUMENT;
        goto out;
    }
    if (req->csr.data == NULL || req->csr.len == 0 || req->csr.len > CSR_MAX_LEN) {
        snprintf(why, why_len, "CSR is empty or longer than %d bytes", CSR_MAX_LEN);
        r = DEVID_ERR_CSR_INVALID;
        goto out;
    }
    if ((r = transcript_compute(out->transcript, out->nonce, sizeof(out->nonce), exporter,
                                TRANSCRIPT_EXPORTER_LEN, req->csr.data, req->csr.len)) != 0) {
        snprintf(why, why_len, "transcript computation failed");
        goto out;
    }
    if ((r = check_challenge(client_cert, req, out->transcript, why, why_len)) != 0)
        goto out;
    if ((r = device_chain(&chain, tls_chain, req, why, why_len)) != 0)
        goto out;
    if ((r = check_evidence(&ares, out, cfg, client_cert, req, chain, now, why, why_len)) != 0)
        goto out;
    if ((r = csr_parse(&csr, req->csr.data, req->csr.len, why, why_len)) != 0)
        goto out;
    if ((r = csr_check_key(csr, ares.key, why, why_len)) != 0)
        goto out;
    if ((r = policy_check(cfg->policy, &out->id, why, why_len)) != 0)
        goto out;
    if ((r = policy_check_signer(cfg->policy, out->signer == ATTEST_SIGNER_IAK_RESTRICTED, why,
                                 why_len)) != 0)
        goto out;
    if ((r = policy_check_reenroll(cfg->policy, &out->id, out->already_enrolled, why, why_len)) !=
        0)
        goto out;
    if (EVP_Digest(req->csr.data, req->csr.len, out->csr_sha256, &dlen, EVP_sha256(), NULL) != 1 ||
        dlen != sizeof(out->csr_sha256)) {
        snprintf(why, why_len, "hashing the CSR failed");
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    out->csr = csr;
    csr = NULL;
    out->ldevid_key = ares.key;
    ares.key = NULL;
    out->stage = 2;
    r = 0;
out:
    if (r != 0)
        refused(out, r);
    X509_REQ_free(csr);
    attest_result_cleanup(&ares);
    sk_X509_pop_free(chain, X509_free);
    return r;
}

int enroll_check(struct enroll_outcome *out, const struct enroll_config *cfg,
                 const Devid__V1__EnrollRequest *req, X509 *client_cert, STACK_OF(X509) *tls_chain,
                 const uint8_t exporter[TRANSCRIPT_EXPORTER_LEN], time_t now)
{
    int r;

    if ((r = enroll_check_client(out, cfg, req, client_cert, tls_chain, now)) != 0)
        return r;
    if (exporter == NULL) {
        snprintf(out->why, sizeof(out->why), "enroll_check called without an exporter value");
        refused(out, DEVID_ERR_INVALID_ARGUMENT);
        return DEVID_ERR_INVALID_ARGUMENT;
    }
    return enroll_check_evidence(out, cfg, req, client_cert, tls_chain, exporter, now);
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
                        time_t now)
{
    int r;

    if (rep == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(rep, 0, sizeof(*rep));
    if (store == NULL || policy == NULL || leaf == NULL) {
        snprintf(rep->why, sizeof(rep->why), "enroll_check_idevid called without its inputs");
        return DEVID_ERR_INVALID_ARGUMENT;
    }
    if ((r = chain_verify(store, &rep->chain, leaf, device_chain, now, rep->why,
                          sizeof(rep->why))) != 0)
        return r;
    rep->chain_ok = 1;
    if ((r = identity_extract(&rep->id, leaf, rep->chain.manufacturer, rep->why,
                              sizeof(rep->why))) != 0)
        return r;
    rep->identity_ok = 1;
    if ((r = policy_check(policy, &rep->id, rep->why, sizeof(rep->why))) != 0)
        return r;
    rep->policy_ok = 1;
    return 0;
}
