#include "agent/core/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <tss2/tss2_mu.h>

#include "common/err.h"
#include "common/pem.h"
#include "devid/v1/enroll.pb-c.h"

/* The parts of an EnrollRequest that are encoded here, pointed to by the
 * protobuf structs while it is packed. */
struct request_parts {
    uint8_t challenge_sig[sizeof(TPMT_SIGNATURE)];
    size_t challenge_sig_len;
    uint8_t certify_sig[sizeof(TPMT_SIGNATURE)];
    size_t certify_sig_len;
    uint8_t ldevid_pub[sizeof(TPMT_PUBLIC)];
    size_t ldevid_pub_len;
    uint8_t signer_pub[sizeof(TPMT_PUBLIC)];
    size_t signer_pub_len;
    uint8_t *iak_der;
    size_t iak_der_len;
    ProtobufCBinaryData inter[WIRE_CHAIN_MAX];
    size_t n_inter;
};

/* Frees the |n| DER certificates of |inter|. */
static void chain_der_free(ProtobufCBinaryData *inter, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        OPENSSL_free(inter[i].data);
}

static void request_parts_cleanup(struct request_parts *p)
{
    OPENSSL_free(p->iak_der);
    chain_der_free(p->inter, p->n_inter);
    memset(p, 0, sizeof(*p));
}

static int der(uint8_t **out, size_t *out_len, X509 *x)
{
    int n;

    *out = NULL;
    if ((n = i2d_X509(x, out)) <= 0)
        return DEVID_ERR_ALLOC;
    *out_len = (size_t)n;
    return 0;
}

/* chain_der encodes the certificates of |sk| (may be NULL) into |inter|,
 * counting them in |*n|; the caller frees them with chain_der_free. */
static int chain_der(ProtobufCBinaryData inter[WIRE_CHAIN_MAX], size_t *n, STACK_OF(X509) *sk)
{
    int i, r;

    *n = 0;
    if (sk != NULL && sk_X509_num(sk) > WIRE_CHAIN_MAX)
        return DEVID_ERR_INVALID_ARGUMENT;
    for (i = 0; sk != NULL && i < sk_X509_num(sk); i++) {
        if ((r = der(&inter[i].data, &inter[i].len, sk_X509_value(sk, i))) != 0)
            return r;
        *n = (size_t)i + 1;
    }
    return 0;
}

/* pack sets |*out| (malloc) to the encoding of |msg|. */
static int pack(uint8_t **out, size_t *out_len, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);

    if ((*out = malloc(len > 0 ? len : 1)) == NULL)
        return DEVID_ERR_ALLOC;
    *out_len = protobuf_c_message_pack(msg, *out);
    return 0;
}

int wire_challenge_request(uint8_t **out, size_t *out_len, STACK_OF(X509) *intermediates)
{
    return wire_challenge_request_ek(out, out_len, intermediates, NULL);
}

int wire_challenge_request_ek(uint8_t **out, size_t *out_len, STACK_OF(X509) *intermediates,
                              const struct wire_ek *ek)
{
    Devid__V1__ChallengeRequest req = DEVID__V1__CHALLENGE_REQUEST__INIT;
    ProtobufCBinaryData inter[WIRE_CHAIN_MAX], ek_inter[WIRE_CHAIN_MAX];
    uint8_t ek_pub[sizeof(TPMT_PUBLIC)], ld_pub[sizeof(TPMT_PUBLIC)], ak_pub[sizeof(TPMT_PUBLIC)];
    size_t n = 0, n_ek = 0, ek_pub_len = 0, ld_pub_len = 0, ak_pub_len = 0;
    int r;

    if (out == NULL || out_len == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    *out_len = 0;
    req.protocol_version = WIRE_PROTOCOL_VERSION;
    req.agent_version = (char *)"devid-agent/" DEVID_VERSION;
    if (ek != NULL) {
        if (ek->cert == NULL || ek->cert_len == 0 || ek->cert_len > WIRE_EK_CERT_MAX ||
            ek->ek_public == NULL || ek->ldevid_public == NULL ||
            Tss2_MU_TPMT_PUBLIC_Marshal(ek->ek_public, ek_pub, sizeof(ek_pub), &ek_pub_len) !=
                TSS2_RC_SUCCESS ||
            Tss2_MU_TPMT_PUBLIC_Marshal(ek->ldevid_public, ld_pub, sizeof(ld_pub), &ld_pub_len) !=
                TSS2_RC_SUCCESS)
            return DEVID_ERR_INVALID_ARGUMENT;
        req.ek_certificate = (ProtobufCBinaryData){ek->cert_len, (uint8_t *)ek->cert};
        req.ek_public = (ProtobufCBinaryData){ek_pub_len, ek_pub};
        req.ldevid_public = (ProtobufCBinaryData){ld_pub_len, ld_pub};
        if (ek->ak_public != NULL) {
            if (Tss2_MU_TPMT_PUBLIC_Marshal(ek->ak_public, ak_pub, sizeof(ak_pub), &ak_pub_len) !=
                TSS2_RC_SUCCESS)
                return DEVID_ERR_INVALID_ARGUMENT;
            req.ak_public = (ProtobufCBinaryData){ak_pub_len, ak_pub};
        }
    }
    if ((r = chain_der(ek_inter, &n_ek, ek != NULL ? ek->chain : NULL)) == 0 &&
        (r = chain_der(inter, &n, intermediates)) == 0) {
        req.ek_intermediates = n_ek > 0 ? ek_inter : NULL;
        req.n_ek_intermediates = n_ek;
        req.intermediates = n > 0 ? inter : NULL;
        req.n_intermediates = n;
        r = pack(out, out_len, &req.base);
    }
    chain_der_free(inter, n);
    chain_der_free(ek_inter, n_ek);
    return r;
}

int wire_challenge_parse(struct wire_challenge *out, const uint8_t *buf, size_t len, char *why,
                         size_t why_len)
{
    Devid__V1__ChallengeResponse *resp = NULL;
    size_t i;
    int r = DEVID_ERR_PROTOCOL;

    if (out == NULL || (buf == NULL && len > 0) || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof(*out));
    why[0] = '\0';
    if (len > WIRE_ANSWER_MAX ||
        (resp = devid__v1__challenge_response__unpack(NULL, len, buf)) == NULL) {
        snprintf(why, why_len, "the answer is not a devid.v1.ChallengeResponse");
        goto out;
    }
    if (resp->nonce.len != TRANSCRIPT_NONCE_LEN || resp->token.len == 0 ||
        resp->token.len > WIRE_TOKEN_MAX) {
        snprintf(why, why_len, "nonce of %zu bytes (want %d) or token of %zu bytes (want 1 to %d)",
                 resp->nonce.len, TRANSCRIPT_NONCE_LEN, resp->token.len, WIRE_TOKEN_MAX);
        goto out;
    }
    if ((resp->credential_blob.len == 0) != (resp->encrypted_secret.len == 0) ||
        resp->credential_blob.len > sizeof(out->credential_blob) ||
        resp->encrypted_secret.len > sizeof(out->encrypted_secret)) {
        snprintf(why, why_len,
                 "credential_blob of %zu bytes and encrypted_secret of %zu bytes (want both, at "
                 "most %zu and %zu, or neither)",
                 resp->credential_blob.len, resp->encrypted_secret.len,
                 sizeof(out->credential_blob), sizeof(out->encrypted_secret));
        goto out;
    }
    if (resp->credential_blob.len > 0) {
        memcpy(out->credential_blob, resp->credential_blob.data, resp->credential_blob.len);
        out->credential_blob_len = resp->credential_blob.len;
        memcpy(out->encrypted_secret, resp->encrypted_secret.data, resp->encrypted_secret.len);
        out->encrypted_secret_len = resp->encrypted_secret.len;
    }
    if ((resp->ak_credential_blob.len == 0) != (resp->ak_encrypted_secret.len == 0) ||
        (resp->ak_credential_blob.len > 0 && resp->credential_blob.len == 0) ||
        resp->ak_credential_blob.len > sizeof(out->ak_credential_blob) ||
        resp->ak_encrypted_secret.len > sizeof(out->ak_encrypted_secret)) {
        snprintf(why, why_len,
                 "ak_credential_blob of %zu bytes and ak_encrypted_secret of %zu bytes (want "
                 "both, at most %zu and %zu, with the EK credential, or neither)",
                 resp->ak_credential_blob.len, resp->ak_encrypted_secret.len,
                 sizeof(out->ak_credential_blob), sizeof(out->ak_encrypted_secret));
        goto out;
    }
    if (resp->ak_credential_blob.len > 0) {
        memcpy(out->ak_credential_blob, resp->ak_credential_blob.data,
               resp->ak_credential_blob.len);
        out->ak_credential_blob_len = resp->ak_credential_blob.len;
        memcpy(out->ak_encrypted_secret, resp->ak_encrypted_secret.data,
               resp->ak_encrypted_secret.len);
        out->ak_encrypted_secret_len = resp->ak_encrypted_secret.len;
    }
    if (resp->n_quote_pcrs > WIRE_PCR_MAX) {
        snprintf(why, why_len, "quote_pcrs names %zu PCRs, at most %d", resp->n_quote_pcrs,
                 WIRE_PCR_MAX);
        goto out;
    }
    for (i = 0; i < resp->n_quote_pcrs; i++) {
        if (resp->quote_pcrs[i] >= WIRE_PCR_COUNT ||
            (out->quote_pcrs & ~((1u << resp->quote_pcrs[i]) - 1)) != 0) {
            snprintf(why, why_len,
                     "quote_pcrs: PCR %u is not below %d, or not in ascending order without "
                     "repeats",
                     (unsigned)resp->quote_pcrs[i], WIRE_PCR_COUNT);
            goto out;
        }
        out->quote_pcrs |= 1u << resp->quote_pcrs[i];
    }
    memcpy(out->nonce, resp->nonce.data, TRANSCRIPT_NONCE_LEN);
    memcpy(out->token, resp->token.data, resp->token.len);
    out->token_len = resp->token.len;
    out->expires_at = resp->expires_at;
    r = 0;
out:
    if (resp != NULL)
        devid__v1__challenge_response__free_unpacked(resp, NULL);
    return r;
}

/* check_request writes to |why| what is missing or too large in |in|, if
 * anything, and returns whether |in| can be encoded. */
static bool check_request(const struct wire_enroll_request *in, char *why, size_t why_len)
{
    if (in->token == NULL || in->token_len == 0 || in->token_len > WIRE_TOKEN_MAX)
        snprintf(why, why_len, "a token of 1 to %d bytes, not %zu", WIRE_TOKEN_MAX, in->token_len);
    else if (in->csr == NULL || in->csr_len == 0 || in->csr_len > WIRE_CSR_MAX)
        snprintf(why, why_len, "a CSR of 1 to %d bytes, not %zu", WIRE_CSR_MAX, in->csr_len);
    else if (in->certify_info == NULL || in->certify_info_len == 0 ||
             in->certify_info_len > sizeof(((TPM2B_ATTEST *)NULL)->attestationData))
        snprintf(why, why_len, "TPM2_Certify evidence of 1 to %zu bytes, not %zu",
                 sizeof(((TPM2B_ATTEST *)NULL)->attestationData), in->certify_info_len);
    else if (in->challenge_signature == NULL || in->certify_signature == NULL ||
             in->ldevid_public == NULL || in->signer_public == NULL)
        snprintf(why, why_len, "both signatures and both public areas");
    else if (in->quote_info != NULL &&
             (in->quote_info_len == 0 ||
              in->quote_info_len > sizeof(((TPM2B_ATTEST *)NULL)->attestationData) ||
              in->quote_signature == NULL || in->n_pcrs == 0 || in->n_pcrs > WIRE_PCR_MAX ||
              in->pcrs == NULL))
        snprintf(why, why_len, "a quote of 1 to %zu bytes with its signature and 1 to %d PCRs",
                 sizeof(((TPM2B_ATTEST *)NULL)->attestationData), WIRE_PCR_MAX);
    else if (in->intermediates != NULL && sk_X509_num(in->intermediates) > WIRE_CHAIN_MAX)
        snprintf(why, why_len, "at most %d intermediates, not %d", WIRE_CHAIN_MAX,
                 sk_X509_num(in->intermediates));
    else
        return true;
    return false;
}

/* encode_parts marshals the TPM structures and encodes the certificates. */
static int encode_parts(struct request_parts *p, const struct wire_enroll_request *in)
{
    int r;

    if (Tss2_MU_TPMT_SIGNATURE_Marshal(in->challenge_signature, p->challenge_sig,
                                       sizeof(p->challenge_sig),
                                       &p->challenge_sig_len) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPMT_SIGNATURE_Marshal(in->certify_signature, p->certify_sig,
                                       sizeof(p->certify_sig),
                                       &p->certify_sig_len) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPMT_PUBLIC_Marshal(in->ldevid_public, p->ldevid_pub, sizeof(p->ldevid_pub),
                                    &p->ldevid_pub_len) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPMT_PUBLIC_Marshal(in->signer_public, p->signer_pub, sizeof(p->signer_pub),
                                    &p->signer_pub_len) != TSS2_RC_SUCCESS)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (in->iak_cert != NULL && (r = der(&p->iak_der, &p->iak_der_len, in->iak_cert)) != 0)
        return r;
    return chain_der(p->inter, &p->n_inter, in->intermediates);
}

int wire_enroll_request(uint8_t **out, size_t *out_len, const struct wire_enroll_request *in,
                        char *why, size_t why_len)
{
    Devid__V1__EnrollRequest req = DEVID__V1__ENROLL_REQUEST__INIT;
    Devid__V1__TpmEvidence ev = DEVID__V1__TPM_EVIDENCE__INIT;
    Devid__V1__PcrQuote quote = DEVID__V1__PCR_QUOTE__INIT;
    Devid__V1__PcrValue pcr[WIRE_PCR_MAX];
    Devid__V1__PcrValue *pcrp[WIRE_PCR_MAX];
    uint8_t quote_sig[sizeof(TPMT_SIGNATURE)], ak_pub[sizeof(TPMT_PUBLIC)];
    size_t quote_sig_len = 0, ak_pub_len = 0, i;
    struct request_parts p;
    char missing[128];
    int r;

    if (out == NULL || out_len == NULL || in == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    *out_len = 0;
    why[0] = '\0';
    memset(&p, 0, sizeof(p));
    if (!check_request(in, missing, sizeof(missing))) {
        snprintf(why, why_len, "an EnrollRequest needs %s", missing);
        return DEVID_ERR_INVALID_ARGUMENT;
    }
    if ((r = encode_parts(&p, in)) != 0) {
        snprintf(why, why_len, "cannot encode the EnrollRequest: %s", devid_err_str(r));
        goto out;
    }
    req.token.data = (uint8_t *)in->token;
    req.token.len = in->token_len;
    req.csr.data = (uint8_t *)in->csr;
    req.csr.len = in->csr_len;
    req.challenge_signature.data = p.challenge_sig;
    req.challenge_signature.len = p.challenge_sig_len;
    ev.certify_info.data = (uint8_t *)in->certify_info;
    ev.certify_info.len = in->certify_info_len;
    ev.certify_signature.data = p.certify_sig;
    ev.certify_signature.len = p.certify_sig_len;
    ev.ldevid_public.data = p.ldevid_pub;
    ev.ldevid_public.len = p.ldevid_pub_len;
    ev.signer = in->iak_cert != NULL ? DEVID__V1__SIGNER_KIND__SIGNER_KIND_IAK
                                     : DEVID__V1__SIGNER_KIND__SIGNER_KIND_IDEVID;
    ev.signer_public.data = p.signer_pub;
    ev.signer_public.len = p.signer_pub_len;
    ev.iak_certificate.data = p.iak_der;
    ev.iak_certificate.len = p.iak_der_len;
    req.evidence = &ev;
    req.n_intermediates = p.n_inter;
    req.intermediates = p.n_inter > 0 ? p.inter : NULL;
    if (in->activated_secret != NULL)
        req.activated_secret =
            (ProtobufCBinaryData){in->activated_secret_len, (uint8_t *)in->activated_secret};
    if (in->quote_info != NULL) {
        if (Tss2_MU_TPMT_SIGNATURE_Marshal(in->quote_signature, quote_sig, sizeof(quote_sig),
                                           &quote_sig_len) != TSS2_RC_SUCCESS) {
            snprintf(why, why_len, "cannot encode the quote signature");
            r = DEVID_ERR_INVALID_ARGUMENT;
            goto out;
        }
        for (i = 0; i < in->n_pcrs; i++) {
            pcr[i] = (Devid__V1__PcrValue)DEVID__V1__PCR_VALUE__INIT;
            pcr[i].index = in->pcrs[i].index;
            pcr[i].sha256 =
                (ProtobufCBinaryData){sizeof(in->pcrs[i].sha256), (uint8_t *)in->pcrs[i].sha256};
            pcrp[i] = &pcr[i];
        }
        quote.quote_info = (ProtobufCBinaryData){in->quote_info_len, (uint8_t *)in->quote_info};
        quote.quote_signature = (ProtobufCBinaryData){quote_sig_len, quote_sig};
        quote.n_pcrs = in->n_pcrs;
        quote.pcrs = pcrp;
        if (in->ak_public != NULL) {
            if (Tss2_MU_TPMT_PUBLIC_Marshal(in->ak_public, ak_pub, sizeof(ak_pub), &ak_pub_len) !=
                TSS2_RC_SUCCESS) {
                snprintf(why, why_len, "cannot encode the AK's public area");
                r = DEVID_ERR_INVALID_ARGUMENT;
                goto out;
            }
            quote.ak_public = (ProtobufCBinaryData){ak_pub_len, ak_pub};
        }
        if (in->ak_activated_secret != NULL)
            quote.ak_activated_secret = (ProtobufCBinaryData){in->ak_activated_secret_len,
                                                              (uint8_t *)in->ak_activated_secret};
        req.quote = &quote;
    }
    r = pack(out, out_len, &req.base);
out:
    request_parts_cleanup(&p);
    return r;
}

/* parse_issued parses the certificates of |resp| into |out|. */
static int parse_issued(struct wire_enrolled *out, const Devid__V1__EnrollResponse *resp, char *why,
                        size_t why_len)
{
    char reason[256];
    X509 *x = NULL;
    size_t i;
    int r;

    if ((r = pem_parse_cert(&out->cert, resp->certificate.data, resp->certificate.len, 0, reason,
                            sizeof(reason))) != 0) {
        snprintf(why, why_len, "the issued certificate: %s", reason);
        return r == DEVID_ERR_ALLOC ? r : DEVID_ERR_PROTOCOL;
    }
    if ((out->chain = sk_X509_new_null()) == NULL)
        return DEVID_ERR_ALLOC;
    for (i = 0; i < resp->n_chain; i++) {
        if ((r = pem_parse_cert(&x, resp->chain[i].data, resp->chain[i].len, 0, reason,
                                sizeof(reason))) != 0) {
            snprintf(why, why_len, "certificate %zu of the issued chain: %s", i + 1, reason);
            return r == DEVID_ERR_ALLOC ? r : DEVID_ERR_PROTOCOL;
        }
        if (sk_X509_push(out->chain, x) <= 0) {
            X509_free(x);
            return DEVID_ERR_ALLOC;
        }
    }
    return 0;
}

int wire_enroll_response_parse(struct wire_enrolled *out, const uint8_t *buf, size_t len,
                               EVP_PKEY *ldevid, char *why, size_t why_len)
{
    Devid__V1__EnrollResponse *resp = NULL;
    struct wire_enrolled e = {NULL, NULL};
    int r = DEVID_ERR_PROTOCOL;

    if (out == NULL || (buf == NULL && len > 0) || ldevid == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof(*out));
    why[0] = '\0';
    if (len > WIRE_ANSWER_MAX ||
        (resp = devid__v1__enroll_response__unpack(NULL, len, buf)) == NULL) {
        snprintf(why, why_len, "the answer is not a devid.v1.EnrollResponse");
        goto out;
    }
    if (resp->certificate.len == 0 || resp->n_chain > WIRE_CHAIN_MAX) {
        snprintf(why, why_len, "the answer has no certificate or more than %d chain certificates",
                 WIRE_CHAIN_MAX);
        goto out;
    }
    if ((r = parse_issued(&e, resp, why, why_len)) != 0)
        goto out;
    if (EVP_PKEY_eq(X509_get0_pubkey(e.cert), ldevid) != 1) {
        snprintf(why, why_len, "the issued certificate is not for the new TPM key");
        r = DEVID_ERR_PROTOCOL;
        goto out;
    }
    *out = e;
    memset(&e, 0, sizeof(e));
    r = 0;
out:
    wire_enrolled_cleanup(&e);
    if (resp != NULL)
        devid__v1__enroll_response__free_unpacked(resp, NULL);
    return r;
}

void wire_enrolled_cleanup(struct wire_enrolled *e)
{
    if (e == NULL)
        return;
    X509_free(e->cert);
    sk_X509_pop_free(e->chain, X509_free);
    memset(e, 0, sizeof(*e));
}

/* copy_message copies |in| to |out| as one loggable line. */
static void copy_message(char out[WIRE_MESSAGE_MAX], const char *in)
{
    size_t i;

    for (i = 0; in != NULL && in[i] != '\0' && i < WIRE_MESSAGE_MAX - 1; i++)
        out[i] = (unsigned char)in[i] < 0x20 || in[i] == 0x7f ? '?' : in[i];
    out[i] = '\0';
}

int wire_error_parse(struct wire_error *out, const uint8_t *buf, size_t len, char *why,
                     size_t why_len)
{
    Devid__V1__Error *e = NULL;
    const ProtobufCEnumValue *v;
    int r = DEVID_ERR_PROTOCOL;

    if (out == NULL || (buf == NULL && len > 0) || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof(*out));
    why[0] = '\0';
    if (len == 0 || len > WIRE_ANSWER_MAX ||
        (e = devid__v1__error__unpack(NULL, len, buf)) == NULL) {
        snprintf(why, why_len, "the answer is not a devid.v1.Error");
        goto out;
    }
    if (e->reason == DEVID__V1__REASON__REASON_UNSPECIFIED &&
        (e->message == NULL || e->message[0] == '\0')) {
        snprintf(why, why_len, "the devid.v1.Error has neither a reason nor a message");
        goto out;
    }
    v = protobuf_c_enum_descriptor_get_value(&devid__v1__reason__descriptor, (int)e->reason);
    out->reason = (int)e->reason;
    out->reason_name = v != NULL ? v->name : "unknown reason";
    copy_message(out->message, e->message);
    out->retryable = e->retryable;
    out->retry_after = e->retry_after_seconds;
    r = 0;
out:
    if (e != NULL)
        devid__v1__error__free_unpacked(e, NULL);
    return r;
}
