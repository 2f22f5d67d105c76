#include "agent/enroll.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "agent/csr.h"
#include "agent/store.h"
#include "agent/tpm.h"
#include "agent/tss2pem.h"
#include "common/err.h"
#include "common/log.h"
#include "common/tpmkey.h"
#include "common/transcript.h"
#include "devid/v1/enroll.pb-c.h"

#define CERT_FILE "cert.pem"
#define CHAIN_FILE "chain.pem"
#define KEY_FILE "key.tss2.pem"
#define FILE_MAX (64 * 1024)
#define CHAIN_MAX 8
#define TOKEN_MAX 1024
#define SERIAL_MAX 64
#define BACKOFF_MAX 60

/* What one attempt hands back to enroll_run. */
struct outcome {
    X509 *cert;
    STACK_OF(X509) *chain;
    char *key_pem;
    size_t key_pem_len;
    bool retryable;
    unsigned retry_after;
    int reason;
};

static void outcome_cleanup(struct outcome *o)
{
    X509_free(o->cert);
    sk_X509_pop_free(o->chain, X509_free);
    OPENSSL_free(o->key_pem);
    memset(o, 0, sizeof(*o));
}

/* parse_cert reads one PEM or DER certificate. With |allow_padding|, DER may be
 * followed by 0x00 or 0xff bytes (an NV index larger than its contents). */
static int parse_cert(X509 **out, const uint8_t *buf, size_t len, const char *what,
                      bool allow_padding)
{
    const unsigned char *p = buf;
    BIO *bio = NULL;
    X509 *x = NULL;
    char reason[256];

    *out = NULL;
    if (len > 0 && buf[0] == 0x30) {
        x = d2i_X509(NULL, &p, (long)len);
        while (x != NULL && allow_padding && p < buf + len && (*p == 0x00 || *p == 0xff))
            p++;
        if (x != NULL && p != buf + len) {
            X509_free(x);
            x = NULL;
        }
    } else if ((bio = BIO_new_mem_buf(buf, (int)len)) != NULL) {
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }
    if (x == NULL) {
        log_err("%s is not a DER or PEM certificate: %s", what,
                log_openssl_reason(reason, sizeof(reason)));
        return DEVID_ERR_CONFIG;
    }
    *out = x;
    return 0;
}

static int read_idevid_cert(X509 **out, struct tpm *t, const struct enroll_config *cfg)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char what[64];
    int r = DEVID_ERR_INTERNAL;

    *out = NULL;
    if (cfg->idevid_cert_file != NULL) {
        if ((r = store_read(&buf, &len, cfg->idevid_cert_file, FILE_MAX)) != 0) {
            if (r == DEVID_ERR_NOT_FOUND)
                log_err("IDevID certificate file %s does not exist", cfg->idevid_cert_file);
            r = r == DEVID_ERR_NOT_FOUND ? DEVID_ERR_CONFIG : r;
            goto out;
        }
        r = parse_cert(out, buf, len, cfg->idevid_cert_file, false);
        goto out;
    }
    if ((r = tpm_nv_read(t, &buf, &len, cfg->idevid_nv)) != 0) {
        if (r == DEVID_ERR_NOT_FOUND || r == DEVID_ERR_TOO_LARGE)
            r = DEVID_ERR_TPM;
        goto out;
    }
    snprintf(what, sizeof(what), "the contents of NV index 0x%08x", cfg->idevid_nv);
    r = parse_cert(out, buf, len, what, true);
    if (r != 0)
        r = DEVID_ERR_TPM;
out:
    free(buf);
    return r;
}

static int push_cert(STACK_OF(X509) *sk, X509 *x, const char *source)
{
    if (sk_X509_num(sk) >= CHAIN_MAX) {
        log_err("%s: more than %d intermediate certificates", source, CHAIN_MAX);
        return DEVID_ERR_CONFIG;
    }
    if (sk_X509_push(sk, x) <= 0)
        return DEVID_ERR_ALLOC;
    return 0;
}

static int chain_from_file(STACK_OF(X509) *sk, const char *path)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    X509 *x = NULL;
    char reason[256];
    int n = 0;
    int r = DEVID_ERR_INTERNAL;

    if ((r = store_read(&buf, &len, path, FILE_MAX)) != 0) {
        if (r == DEVID_ERR_NOT_FOUND)
            log_err("chain file %s does not exist", path);
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if ((r = push_cert(sk, x, path)) != 0)
            goto out;
        x = NULL;
        n++;
    }
    ERR_clear_error();
    if (n == 0) {
        log_err("chain file %s holds no PEM certificate: %s", path,
                log_openssl_reason(reason, sizeof(reason)));
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    r = 0;
out:
    X509_free(x);
    BIO_free(bio);
    free(buf);
    return r;
}

/* chain_from_nv appends the DER certificates stored back to back in NV index
 * |index|. */
static int chain_from_nv(STACK_OF(X509) *sk, struct tpm *t, uint32_t index)
{
    uint8_t *buf = NULL;
    const unsigned char *p, *end;
    size_t len = 0;
    X509 *x = NULL;
    char source[48], reason[256];
    int r = DEVID_ERR_INTERNAL;

    snprintf(source, sizeof(source), "NV index 0x%08x", index);
    if ((r = tpm_nv_read(t, &buf, &len, index)) != 0) {
        r = r == DEVID_ERR_ALLOC ? r : DEVID_ERR_TPM;
        goto out;
    }
    p = buf;
    end = buf + len;
    while (p < end && *p == 0x30) {
        if ((x = d2i_X509(NULL, &p, end - p)) == NULL) {
            log_err("%s holds a malformed DER certificate: %s", source,
                    log_openssl_reason(reason, sizeof(reason)));
            r = DEVID_ERR_TPM;
            goto out;
        }
        if ((r = push_cert(sk, x, source)) != 0)
            goto out;
        x = NULL;
    }
    /* An NV index may be larger than its contents: the rest must be padding. */
    for (; p < end; p++) {
        if (*p != 0x00 && *p != 0xff) {
            log_err("%s holds bytes after its DER certificates", source);
            r = DEVID_ERR_TPM;
            goto out;
        }
    }
    r = 0;
out:
    X509_free(x);
    free(buf);
    return r;
}

static int read_chain(STACK_OF(X509) **out, struct tpm *t, const struct enroll_config *cfg)
{
    STACK_OF(X509) *sk = NULL;
    int r = DEVID_ERR_INTERNAL;

    *out = NULL;
    if ((sk = sk_X509_new_null()) == NULL)
        return DEVID_ERR_ALLOC;
    if (cfg->chain_nv != 0 && (r = chain_from_nv(sk, t, cfg->chain_nv)) != 0)
        goto out;
    if (cfg->chain_file != NULL && (r = chain_from_file(sk, cfg->chain_file)) != 0)
        goto out;
    *out = sk;
    sk = NULL;
    r = 0;
out:
    sk_X509_pop_free(sk, X509_free);
    return r;
}

static int cert_valid_now(X509 *cert)
{
    return X509_cmp_current_time(X509_get0_notBefore(cert)) < 0 &&
           X509_cmp_current_time(X509_get0_notAfter(cert)) > 0;
}

/* check_enrolled returns 0 when |cfg->out_dir| holds a complete, currently
 * valid enrollment, DEVID_ERR_NOT_FOUND otherwise. */
static int check_enrolled(struct enroll_result *res, const struct enroll_config *cfg)
{
    char cert_path[PATH_MAX], key_path[PATH_MAX];
    uint8_t *cbuf = NULL, *kbuf = NULL;
    size_t clen = 0, klen = 0;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    TPMT_PUBLIC pub;
    uint32_t parent = 0;
    int r = DEVID_ERR_NOT_FOUND;

    if (store_path(cert_path, sizeof(cert_path), cfg->out_dir, CERT_FILE) != 0 ||
        store_path(key_path, sizeof(key_path), cfg->out_dir, KEY_FILE) != 0)
        return DEVID_ERR_CONFIG;
    if (store_read(&cbuf, &clen, cert_path, FILE_MAX) != 0)
        goto out;
    if (parse_cert(&cert, cbuf, clen, cert_path, false) != 0) {
        log_warn("%s is unreadable: enrolling again", cert_path);
        goto out;
    }
    if (!cert_valid_now(cert)) {
        log_info("%s is expired or not yet valid: enrolling again", cert_path);
        goto out;
    }
    if (store_read(&kbuf, &klen, key_path, FILE_MAX) != 0 ||
        tss2pem_decode(&parent, &pub, NULL, NULL, (const char *)kbuf, klen) != 0 ||
        tpmkey_public_to_pkey(&key, &pub) != 0) {
        log_warn("%s is missing or not a TSS2 key: enrolling again", key_path);
        goto out;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1) {
        log_warn("%s is not the key of %s: enrolling again", key_path, cert_path);
        goto out;
    }
    snprintf(res->cert_path, sizeof(res->cert_path), "%s", cert_path);
    res->cert = cert;
    res->already = true;
    cert = NULL;
    r = 0;
out:
    free(cbuf);
    if (kbuf != NULL)
        OPENSSL_cleanse(kbuf, klen);
    free(kbuf);
    X509_free(cert);
    EVP_PKEY_free(key);
    return r;
}

static int check_idevid_key(X509 *cert, struct tpm_key *key, const struct enroll_config *cfg)
{
    EVP_PKEY *pkey = NULL;
    char source[PATH_MAX + 32];
    int r = DEVID_ERR_INTERNAL;

    if (cfg->idevid_cert_file != NULL)
        snprintf(source, sizeof(source), "file %s", cfg->idevid_cert_file);
    else
        snprintf(source, sizeof(source), "NV index 0x%08x", cfg->idevid_nv);
    if (tpmkey_public_to_pkey(&pkey, tpm_key_public(key)) != 0) {
        log_err("the key at handle 0x%08x is of an unsupported type", cfg->idevid_handle);
        r = DEVID_ERR_TPM;
        goto out;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(cert), pkey) != 1) {
        log_err("the IDevID certificate from %s does not match the key at handle 0x%08x", source,
                cfg->idevid_handle);
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    r = 0;
out:
    EVP_PKEY_free(pkey);
    return r;
}

static void subject_serial(char *out, size_t size, X509 *cert)
{
    const X509_NAME *name = X509_get_subject_name(cert);
    const ASN1_STRING *s;
    unsigned char *utf8 = NULL;
    int i, n;

    snprintf(out, size, "devid");
    if ((i = X509_NAME_get_index_by_NID(name, NID_serialNumber, -1)) < 0)
        return;
    s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    if ((n = ASN1_STRING_to_UTF8(&utf8, s)) > 0 && n < SERIAL_MAX && (size_t)n < size &&
        memchr(utf8, '\0', (size_t)n) == NULL)
        snprintf(out, size, "%.*s", n, (const char *)utf8);
    OPENSSL_free(utf8);
}

/* refusal decodes the devid.v1.Error of a non-2xx answer and logs it. */
static int refusal(struct outcome *o, long status, const uint8_t *body, size_t len,
                   const char *what)
{
    Devid__V1__Error *e;
    const ProtobufCEnumValue *v;

    e = devid__v1__error__unpack(NULL, len, body);
    if (e == NULL) {
        log_err("%s: the verifier answered HTTP %ld without a devid.v1.Error body", what, status);
        o->retryable = status == 503;
        return status >= 500 ? DEVID_ERR_NETWORK : DEVID_ERR_PROTOCOL;
    }
    v = protobuf_c_enum_descriptor_get_value(&devid__v1__reason__descriptor, (int)e->reason);
    log_err("%s: the verifier refused (HTTP %ld, %s%s): %s", what, status,
            v != NULL ? v->name : "unknown reason", e->retryable ? ", retryable" : "", e->message);
    o->reason = (int)e->reason;
    o->retryable = e->retryable;
    o->retry_after = e->retry_after_seconds;
    devid__v1__error__free_unpacked(e, NULL);
    return DEVID_ERR_REFUSED;
}

static int challenge(struct http *h, struct outcome *o, uint8_t nonce[TRANSCRIPT_NONCE_LEN],
                     uint8_t **token, size_t *token_len)
{
    Devid__V1__ChallengeRequest req = DEVID__V1__CHALLENGE_REQUEST__INIT;
    Devid__V1__ChallengeResponse *resp = NULL;
    uint8_t *buf = NULL, *body = NULL;
    size_t len, body_len = 0;
    long status = 0;
    int r = DEVID_ERR_INTERNAL;

    *token = NULL;
    *token_len = 0;
    req.protocol_version = 1;
    req.agent_version = (char *)"devid-agent/" DEVID_VERSION;
    len = devid__v1__challenge_request__get_packed_size(&req);
    if ((buf = malloc(len + 1)) == NULL)
        return DEVID_ERR_ALLOC;
    devid__v1__challenge_request__pack(&req, buf);
    if ((r = http_post(h, &status, &body, &body_len, "/v1/challenge", buf, len)) != 0)
        goto out;
    if (status != 200) {
        r = refusal(o, status, body, body_len, "POST /v1/challenge");
        goto out;
    }
    r = DEVID_ERR_PROTOCOL;
    if ((resp = devid__v1__challenge_response__unpack(NULL, body_len, body)) == NULL) {
        log_err("POST /v1/challenge: the answer is not a devid.v1.ChallengeResponse");
        goto out;
    }
    if (resp->nonce.len != TRANSCRIPT_NONCE_LEN || resp->token.len == 0 ||
        resp->token.len > TOKEN_MAX) {
        log_err(
            "POST /v1/challenge: nonce of %zu bytes (want %d) or token of %zu bytes "
            "(want 1 to %d)",
            resp->nonce.len, TRANSCRIPT_NONCE_LEN, resp->token.len, TOKEN_MAX);
        goto out;
    }
    if ((*token = OPENSSL_memdup(resp->token.data, resp->token.len)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    *token_len = resp->token.len;
    memcpy(nonce, resp->nonce.data, TRANSCRIPT_NONCE_LEN);
    log_debug("challenge received, token valid until %lld", (long long)resp->expires_at);
    r = 0;
out:
    if (resp != NULL)
        devid__v1__challenge_response__free_unpacked(resp, NULL);
    free(buf);
    free(body);
    return r;
}

static int csr_sign_tpm(void *arg, TPMT_SIGNATURE *sig, const uint8_t digest[CSR_DIGEST_LEN])
{
    return tpm_sign(arg, sig, digest);
}

/* The pieces of an EnrollRequest, owned here and pointed to by the protobuf. */
struct request_parts {
    uint8_t *csr;
    size_t csr_len;
    uint8_t sig[sizeof(TPMT_SIGNATURE)];
    size_t sig_len;
    uint8_t *attest;
    size_t attest_len;
    uint8_t *attest_sig;
    size_t attest_sig_len;
    uint8_t pub[sizeof(TPMT_PUBLIC)];
    size_t pub_len;
    ProtobufCBinaryData inter[CHAIN_MAX];
    uint8_t *inter_der[CHAIN_MAX];
    size_t n_inter;
};

static void request_parts_cleanup(struct request_parts *p)
{
    size_t i;

    OPENSSL_free(p->csr);
    OPENSSL_free(p->attest);
    OPENSSL_free(p->attest_sig);
    for (i = 0; i < p->n_inter; i++)
        OPENSSL_free(p->inter_der[i]);
    memset(p, 0, sizeof(*p));
}

static int build_parts(struct request_parts *p, struct tpm_key *idevid, struct tpm_key *ldevid,
                       X509 *idevid_cert, STACK_OF(X509) *chain,
                       const uint8_t nonce[TRANSCRIPT_NONCE_LEN], const uint8_t *exporter)
{
    uint8_t t[TRANSCRIPT_LEN];
    TPMT_SIGNATURE sig;
    EVP_PKEY *ldevid_pkey = NULL;
    char cn[SERIAL_MAX + 1];
    int i, n;
    int r = DEVID_ERR_INTERNAL;

    subject_serial(cn, sizeof(cn), idevid_cert);
    if ((r = tpmkey_public_to_pkey(&ldevid_pkey, tpm_key_public(ldevid))) != 0) {
        log_err("cannot convert the LDevID public key from the TPM");
        r = DEVID_ERR_TPM;
        goto out;
    }
    if ((r = csr_build(&p->csr, &p->csr_len, ldevid_pkey, cn, csr_sign_tpm, ldevid)) != 0)
        goto out;
    if ((r = transcript_compute(t, nonce, TRANSCRIPT_NONCE_LEN, exporter, TRANSCRIPT_EXPORTER_LEN,
                                p->csr, p->csr_len)) != 0) {
        log_err("cannot compute the transcript: %s", devid_err_str(r));
        goto out;
    }
    if ((r = tpm_sign(idevid, &sig, t)) != 0)
        goto out;
    if (Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, p->sig, sizeof(p->sig), &p->sig_len) !=
        TSS2_RC_SUCCESS) {
        log_err("cannot marshal the challenge signature");
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    if ((r = tpm_certify(&p->attest, &p->attest_len, &p->attest_sig, &p->attest_sig_len, ldevid,
                         idevid, t, sizeof(t))) != 0)
        goto out;
    if (Tss2_MU_TPMT_PUBLIC_Marshal(tpm_key_public(ldevid), p->pub, sizeof(p->pub), &p->pub_len) !=
        TSS2_RC_SUCCESS) {
        log_err("cannot marshal the LDevID public area");
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    for (i = 0; chain != NULL && i < sk_X509_num(chain) && i < CHAIN_MAX; i++) {
        if ((n = i2d_X509(sk_X509_value(chain, i), &p->inter_der[i])) <= 0) {
            r = DEVID_ERR_ALLOC;
            goto out;
        }
        p->inter[i].data = p->inter_der[i];
        p->inter[i].len = (size_t)n;
        p->n_inter = (size_t)i + 1;
    }
    r = 0;
out:
    OPENSSL_cleanse(t, sizeof(t));
    EVP_PKEY_free(ldevid_pkey);
    return r;
}

static int parse_enroll_response(struct outcome *o, const uint8_t *body, size_t len,
                                 struct tpm_key *ldevid)
{
    Devid__V1__EnrollResponse *resp = NULL;
    EVP_PKEY *pkey = NULL;
    X509 *x = NULL;
    size_t i;
    int r = DEVID_ERR_PROTOCOL;

    if ((resp = devid__v1__enroll_response__unpack(NULL, len, body)) == NULL) {
        log_err("POST /v1/enroll: the answer is not a devid.v1.EnrollResponse");
        goto out;
    }
    if (resp->certificate.len == 0 || resp->n_chain > CHAIN_MAX) {
        log_err(
            "POST /v1/enroll: the answer has no certificate or more than %d chain "
            "certificates",
            CHAIN_MAX);
        goto out;
    }
    if (parse_cert(&o->cert, resp->certificate.data, resp->certificate.len,
                   "the issued certificate", false) != 0 ||
        o->cert == NULL)
        goto out;
    if ((o->chain = sk_X509_new_null()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    for (i = 0; i < resp->n_chain; i++) {
        if (parse_cert(&x, resp->chain[i].data, resp->chain[i].len,
                       "a certificate of the issued chain", false) != 0)
            goto out;
        if (sk_X509_push(o->chain, x) <= 0) {
            r = DEVID_ERR_ALLOC;
            goto out;
        }
        x = NULL;
    }
    if (tpmkey_public_to_pkey(&pkey, tpm_key_public(ldevid)) != 0 ||
        EVP_PKEY_eq(X509_get0_pubkey(o->cert), pkey) != 1) {
        log_err("POST /v1/enroll: the issued certificate is not for the new TPM key");
        goto out;
    }
    r = 0;
out:
    X509_free(x);
    EVP_PKEY_free(pkey);
    if (resp != NULL)
        devid__v1__enroll_response__free_unpacked(resp, NULL);
    return r;
}

static int make_key_pem(struct outcome *o, struct tpm_key *ldevid, uint32_t srk_handle)
{
    uint8_t *pub = NULL, *priv = NULL;
    size_t pub_len = 0, priv_len = 0;
    int r;

    if ((r = tpm_key_blob(&pub, &pub_len, &priv, &priv_len, ldevid)) != 0)
        goto out;
    if ((r = tss2pem_encode(&o->key_pem, &o->key_pem_len, srk_handle, pub, pub_len, priv,
                            priv_len)) != 0)
        log_err("cannot encode the TSS2 key file: %s", devid_err_str(r));
out:
    OPENSSL_free(pub);
    OPENSSL_clear_free(priv, priv_len);
    return r;
}

/* attempt runs one challenge and enroll exchange on a fresh TLS connection. */
static int attempt(struct outcome *o, struct http *h, struct tpm *t, struct tpm_key *idevid,
                   X509 *idevid_cert, STACK_OF(X509) *chain, const struct enroll_config *cfg)
{
    Devid__V1__EnrollRequest req = DEVID__V1__ENROLL_REQUEST__INIT;
    Devid__V1__TpmEvidence ev = DEVID__V1__TPM_EVIDENCE__INIT;
    struct request_parts parts;
    struct tpm_key *srk = NULL, *ldevid = NULL;
    uint8_t nonce[TRANSCRIPT_NONCE_LEN], exporter[HTTP_EXPORTER_LEN];
    uint8_t *token = NULL, *buf = NULL, *body = NULL;
    size_t token_len = 0, len, body_len = 0;
    long status = 0;
    int r = DEVID_ERR_INTERNAL;

    memset(&parts, 0, sizeof(parts));
    http_session_begin(h);
    if ((r = challenge(h, o, nonce, &token, &token_len)) != 0)
        goto out;
    if ((r = http_exporter(h, exporter)) != 0)
        goto out;
    if ((r = tpm_key_srk(&srk, t, cfg->srk_handle)) != 0 ||
        (r = tpm_key_create_ldevid(&ldevid, srk)) != 0)
        goto out;
    if ((r = build_parts(&parts, idevid, ldevid, idevid_cert, chain, nonce, exporter)) != 0)
        goto out;
    req.token.data = token;
    req.token.len = token_len;
    req.csr.data = parts.csr;
    req.csr.len = parts.csr_len;
    req.challenge_signature.data = parts.sig;
    req.challenge_signature.len = parts.sig_len;
    ev.certify_info.data = parts.attest;
    ev.certify_info.len = parts.attest_len;
    ev.certify_signature.data = parts.attest_sig;
    ev.certify_signature.len = parts.attest_sig_len;
    ev.ldevid_public.data = parts.pub;
    ev.ldevid_public.len = parts.pub_len;
    ev.signer = DEVID__V1__SIGNER_KIND__SIGNER_KIND_IDEVID;
    req.evidence = &ev;
    req.n_intermediates = parts.n_inter;
    req.intermediates = parts.n_inter > 0 ? parts.inter : NULL;
    len = devid__v1__enroll_request__get_packed_size(&req);
    if ((buf = malloc(len + 1)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    devid__v1__enroll_request__pack(&req, buf);
    if ((r = http_post(h, &status, &body, &body_len, "/v1/enroll", buf, len)) != 0)
        goto out;
    if (status != 200) {
        r = refusal(o, status, body, body_len, "POST /v1/enroll");
        goto out;
    }
    if ((r = parse_enroll_response(o, body, body_len, ldevid)) != 0)
        goto out;
    if ((r = make_key_pem(o, ldevid, cfg->srk_handle)) != 0)
        goto out;
    if (cfg->persist_handle != 0 && (r = tpm_key_persist(ldevid, cfg->persist_handle)) != 0)
        goto out;
    r = 0;
out:
    OPENSSL_cleanse(exporter, sizeof(exporter));
    request_parts_cleanup(&parts);
    tpm_key_free(ldevid);
    tpm_key_free(srk);
    OPENSSL_free(token);
    free(buf);
    free(body);
    return r;
}

static int pem_certs(char **out, size_t *out_len, X509 *first, STACK_OF(X509) *rest)
{
    BIO *bio = NULL;
    char *mem = NULL;
    long n;
    int i;
    int r = DEVID_ERR_ALLOC;

    *out = NULL;
    *out_len = 0;
    if ((bio = BIO_new(BIO_s_mem())) == NULL)
        goto out;
    if (first != NULL && PEM_write_bio_X509(bio, first) != 1)
        goto out;
    for (i = 0; rest != NULL && i < sk_X509_num(rest); i++) {
        if (PEM_write_bio_X509(bio, sk_X509_value(rest, i)) != 1)
            goto out;
    }
    n = BIO_get_mem_data(bio, &mem);
    if (n < 0 || (*out = malloc((size_t)n + 1)) == NULL)
        goto out;
    if (n > 0)
        memcpy(*out, mem, (size_t)n);
    *out_len = (size_t)n;
    r = 0;
out:
    BIO_free(bio);
    return r;
}

static int write_files(struct enroll_result *res, struct outcome *o,
                       const struct enroll_config *cfg)
{
    char key_path[PATH_MAX], chain_path[PATH_MAX], cert_path[PATH_MAX];
    char *chain_pem = NULL, *cert_pem = NULL;
    size_t chain_len = 0, cert_len = 0;
    int r = DEVID_ERR_INTERNAL;

    if ((r = store_path(key_path, sizeof(key_path), cfg->out_dir, KEY_FILE)) != 0 ||
        (r = store_path(chain_path, sizeof(chain_path), cfg->out_dir, CHAIN_FILE)) != 0 ||
        (r = store_path(cert_path, sizeof(cert_path), cfg->out_dir, CERT_FILE)) != 0)
        goto out;
    if ((r = pem_certs(&chain_pem, &chain_len, NULL, o->chain)) != 0 ||
        (r = pem_certs(&cert_pem, &cert_len, o->cert, NULL)) != 0)
        goto out;
    if ((r = store_write_atomic(key_path, (const uint8_t *)o->key_pem, o->key_pem_len, 0600)) !=
            0 ||
        (r = store_write_atomic(chain_path, (const uint8_t *)chain_pem, chain_len, 0644)) != 0 ||
        (r = store_write_atomic(cert_path, (const uint8_t *)cert_pem, cert_len, 0644)) != 0)
        goto out;
    snprintf(res->cert_path, sizeof(res->cert_path), "%s", cert_path);
    r = 0;
out:
    free(chain_pem);
    free(cert_pem);
    return r;
}

static int ensure_dir(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        log_err("cannot create output directory %s: %s", dir, strerror(errno));
        return DEVID_ERR_IO;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        log_err("output path %s is not a directory", dir);
        return DEVID_ERR_IO;
    }
    return 0;
}

static void backoff(unsigned n, unsigned retry_after)
{
    struct timespec ts;
    unsigned char jitter = 0;
    unsigned secs = retry_after;

    if (secs == 0)
        secs = 1u << (n < 6 ? n : 6);
    if (secs > BACKOFF_MAX)
        secs = BACKOFF_MAX;
    if (RAND_bytes(&jitter, 1) != 1)
        jitter = 0;
    ts.tv_sec = secs;
    ts.tv_nsec = (long)jitter * 3900000L; /* up to ~1 s */
    log_info("retrying in %u.%03ld s", secs, ts.tv_nsec / 1000000L);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int enroll_run(struct enroll_result *res, const struct enroll_config *cfg)
{
    struct http_config hcfg;
    struct outcome o;
    struct tpm *t = NULL;
    struct tpm_key *idevid = NULL;
    struct http *h = NULL;
    X509 *idevid_cert = NULL;
    STACK_OF(X509) *chain = NULL;
    unsigned n;
    int r = DEVID_ERR_INTERNAL;

    if (res == NULL || cfg == NULL || cfg->url == NULL || cfg->ca_bundle == NULL ||
        cfg->tcti == NULL || cfg->out_dir == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(res, 0, sizeof(*res));
    memset(&o, 0, sizeof(o));
    if ((r = check_enrolled(res, cfg)) == 0) {
        log_info("already enrolled: %s is valid and matches %s/%s", res->cert_path, cfg->out_dir,
                 KEY_FILE);
        return 0;
    }
    if (r != DEVID_ERR_NOT_FOUND)
        return r;
    if ((r = ensure_dir(cfg->out_dir)) != 0)
        goto out;
    if ((r = tpm_open(&t, cfg->tcti)) != 0)
        goto out;
    if ((r = read_idevid_cert(&idevid_cert, t, cfg)) != 0 || (r = read_chain(&chain, t, cfg)) != 0)
        goto out;
    if ((r = tpm_key_persistent(&idevid, t, cfg->idevid_handle)) != 0) {
        if (r == DEVID_ERR_NOT_FOUND) {
            log_err("no key at persistent handle 0x%08x: was the device provisioned?",
                    cfg->idevid_handle);
            r = DEVID_ERR_TPM;
        }
        goto out;
    }
    if ((r = check_idevid_key(idevid_cert, idevid, cfg)) != 0)
        goto out;
    memset(&hcfg, 0, sizeof(hcfg));
    hcfg.url = cfg->url;
    hcfg.ca_bundle = cfg->ca_bundle;
    hcfg.tcti = cfg->tcti;
    hcfg.key_handle = cfg->idevid_handle;
    hcfg.cert = idevid_cert;
    hcfg.chain = chain;
    hcfg.tls_version = cfg->tls_version;
    hcfg.timeout = cfg->timeout;
    if ((r = http_new(&h, &hcfg)) != 0)
        goto out;
    for (n = 0;; n++) {
        outcome_cleanup(&o);
        r = attempt(&o, h, t, idevid, idevid_cert, chain, cfg);
        if (r == 0)
            break;
        if (n >= ENROLL_MAX_RETRIES || !(r == DEVID_ERR_NETWORK || o.retryable))
            break;
        backoff(n, o.retry_after);
    }
    if (r != 0) {
        res->reason = o.reason;
        goto out;
    }
    if ((r = write_files(res, &o, cfg)) != 0)
        goto out;
    res->cert = o.cert;
    o.cert = NULL;
    r = 0;
out:
    outcome_cleanup(&o);
    http_free(h);
    tpm_key_free(idevid);
    tpm_free(t);
    X509_free(idevid_cert);
    sk_X509_pop_free(chain, X509_free);
    return r;
}

void enroll_result_cleanup(struct enroll_result *res)
{
    if (res == NULL)
        return;
    X509_free(res->cert);
    memset(res, 0, sizeof(*res));
}
