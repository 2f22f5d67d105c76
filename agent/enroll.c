#include "agent/enroll.h"

#include <errno.h>
#include <signal.h>
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

#include "agent/core/backoff.h"
#include "agent/core/csr.h"
#include "agent/http.h"
#include "agent/core/renew.h"
#include "common/io/store.h"
#include "agent/tpm.h"
#include "agent/core/tss2pem.h"
#include "agent/core/wire.h"
#include "common/err.h"
#include "common/io/log.h"
#include "common/tpmkey.h"
#include "common/transcript.h"
#include "devid/v1/enroll.pb-c.h"

#define CERT_FILE ENROLL_CERT_FILE
#define CHAIN_FILE ENROLL_CHAIN_FILE
#define KEY_FILE ENROLL_KEY_FILE
#define MARKER_FILE RENEW_MARKER_FILE
#define FILE_MAX (64 * 1024)
#define CHAIN_MAX 8
#define TOKEN_MAX 1024
#define SERIAL_MAX 64
/* The environment variable of the crash test hook (see crash_point). */
#define CRASH_ENV "DEVID_AGENT_CRASH_AT"

/* What one attempt hands back to enroll_run. */
struct outcome {
    X509 *cert;
    STACK_OF(X509) *chain;
    char *key_pem;
    size_t key_pem_len;
    struct tpm_key *ldevid; /* freed by try_once, before its TPM connection */
    bool retryable;
    unsigned retry_after;
    int reason;
    enum http_fail http_fail;
    bool enroll_sent; /* POST /v1/enroll went out: a certificate may have been issued */
    bool enroll_4xx;  /* ... and the verifier refused it with a 4xx: none was */
};

static void outcome_cleanup(struct outcome *o)
{
    tpm_key_free(o->ldevid);
    X509_free(o->cert);
    sk_X509_pop_free(o->chain, X509_free);
    OPENSSL_free(o->key_pem);
    memset(o, 0, sizeof(*o));
}

/*
 * crash_point is a test hook, compiled in every build: when the environment
 * variable DEVID_AGENT_CRASH_AT names |point|, the agent kills itself with
 * SIGKILL there, as a power cut would. The integration tests use it to show
 * that every interrupted run is repaired by the next one. Points, in order:
 * key-created, response, write, commit, renew-evict (renew only), persist.
 */
static void crash_point(const char *point)
{
    const char *want = getenv(CRASH_ENV);

    if (want == NULL || strcmp(want, point) != 0)
        return;
    log_warn("test hook %s=%s: killing the agent here", CRASH_ENV, point);
    raise(SIGKILL);
}

/* read_file is store_read that logs why, except for a missing file, which
 * the caller reports in its own words. */
static int read_file(uint8_t **out, size_t *len, const char *path, size_t max)
{
    char why[PATH_MAX + 128];
    int r = store_read(out, len, path, max, why, sizeof(why));

    if (r != 0 && r != DEVID_ERR_NOT_FOUND)
        log_err("cannot read %s", why);
    return r;
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
                devid_openssl_reason(reason, sizeof(reason)));
        return DEVID_ERR_CONFIG;
    }
    *out = x;
    return 0;
}

/* read_cert reads |what|'s certificate (the IDevID's or the IAK's) from
 * |file| when set, else from NV index |nv|. */
static int read_cert(X509 **out, struct tpm *t, const char *file, uint32_t nv, const char *what,
                     const char *nv_key)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char source[64];
    int r = DEVID_ERR_INTERNAL;

    *out = NULL;
    if (file != NULL) {
        if ((r = read_file(&buf, &len, file, FILE_MAX)) != 0) {
            if (r == DEVID_ERR_NOT_FOUND)
                log_err("the %s certificate file %s does not exist", what, file);
            r = r == DEVID_ERR_NOT_FOUND ? DEVID_ERR_CONFIG : r;
            goto out;
        }
        r = parse_cert(out, buf, len, file, false);
        goto out;
    }
    if ((r = tpm_nv_read(t, &buf, &len, nv)) != 0) {
        if (r == DEVID_ERR_NOT_FOUND || r == DEVID_ERR_TOO_LARGE) {
            log_err(
                "no %s certificate in NV index 0x%08x: check that the device was provisioned, "
                "and %s (or the certificate file option) in the configuration",
                what, nv, nv_key);
            r = DEVID_ERR_TPM;
        }
        goto out;
    }
    snprintf(source, sizeof(source), "the contents of NV index 0x%08x", nv);
    r = parse_cert(out, buf, len, source, true);
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

    if ((r = read_file(&buf, &len, path, FILE_MAX)) != 0) {
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
                devid_openssl_reason(reason, sizeof(reason)));
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
                    devid_openssl_reason(reason, sizeof(reason)));
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

static int read_chain(STACK_OF(X509) **out, struct tpm *t, const struct agent_config *cfg)
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

/* load_blob loads the TSS2 key file |kbuf| (read from |key_path|) under the
 * parent it names and sets |*out| to the transient key. Returns 0,
 * DEVID_ERR_NOT_FOUND when it does not load in this TPM (logged), or a
 * transient TPM error. */
static int load_blob(struct tpm_key **out, struct tpm *t, const char *key_path, const uint8_t *kbuf,
                     size_t klen)
{
    struct tpm_key *srk = NULL, *key = NULL;
    uint8_t *priv = NULL;
    size_t priv_len = 0;
    TPMT_PUBLIC pub;
    uint32_t parent = 0;
    int r = DEVID_ERR_NOT_FOUND;

    *out = NULL;
    if (tss2pem_decode(&parent, &pub, &priv, &priv_len, (const char *)kbuf, klen) != 0)
        goto out;
    if ((r = tpm_key_persistent(&srk, t, parent)) != 0) {
        if (r == DEVID_ERR_NOT_FOUND)
            log_warn("%s names parent 0x%08x, but no key is there (TPM cleared?): enrolling again",
                     key_path, parent);
        else if (!tpm_last_error_transient())
            r = DEVID_ERR_NOT_FOUND;
        goto out;
    }
    if ((r = tpm_key_load(&key, srk, &pub, priv, priv_len)) != 0) {
        if (r != DEVID_ERR_TPM || !tpm_last_error_transient()) {
            log_warn("%s does not load in this TPM under 0x%08x: enrolling again", key_path,
                     parent);
            r = DEVID_ERR_NOT_FOUND;
        }
        goto out;
    }
    *out = key;
    key = NULL;
    r = 0;
out:
    tpm_key_free(key);
    tpm_key_free(srk);
    OPENSSL_clear_free(priv, priv_len);
    return r;
}

/* key_matches_tpm returns 0 when the key blob |kbuf| loads in this TPM
 * under the SRK (and, with a persist_handle, the key there is |want|),
 * DEVID_ERR_NOT_FOUND when it does not, or a transient TPM error. */
static int key_matches_tpm(struct tpm *t, const struct agent_config *cfg, const char *key_path,
                           const uint8_t *kbuf, size_t klen, EVP_PKEY *want)
{
    struct tpm_key *key = NULL, *persisted = NULL;
    EVP_PKEY *pkey = NULL;
    int r = DEVID_ERR_NOT_FOUND;

    if ((r = load_blob(&key, t, key_path, kbuf, klen)) != 0)
        goto out;
    if (cfg->persist_handle != 0) {
        r = tpm_key_persistent(&persisted, t, cfg->persist_handle);
        if (r != 0 && r != DEVID_ERR_NOT_FOUND && tpm_last_error_transient())
            goto out;
        if (r != 0 || tpmkey_public_to_pkey(&pkey, tpm_key_get0_public(persisted)) != 0 ||
            EVP_PKEY_eq(pkey, want) != 1) {
            log_warn(
                "the key at persistent handle 0x%08x is not the certificate's key: "
                "enrolling again",
                cfg->persist_handle);
            r = DEVID_ERR_NOT_FOUND;
            goto out;
        }
    }
    r = 0;
out:
    EVP_PKEY_free(pkey);
    tpm_key_free(persisted);
    tpm_key_free(key);
    return r;
}

/* check_enrolled returns 0 when |cfg->out_dir| holds a complete, currently
 * valid enrollment that agrees with the TPM |t|, DEVID_ERR_NOT_FOUND when it
 * does not, or a transient TPM error. */
static int check_enrolled(struct enroll_result *res, const struct agent_config *cfg, struct tpm *t)
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
    if (read_file(&cbuf, &clen, cert_path, FILE_MAX) != 0)
        goto out;
    if (parse_cert(&cert, cbuf, clen, cert_path, false) != 0) {
        log_warn("%s is unreadable: enrolling again", cert_path);
        goto out;
    }
    if (!cert_valid_now(cert)) {
        log_info("%s is expired or not yet valid: enrolling again", cert_path);
        goto out;
    }
    if (read_file(&kbuf, &klen, key_path, FILE_MAX) != 0 ||
        tss2pem_decode(&parent, &pub, NULL, NULL, (const char *)kbuf, klen) != 0 ||
        tpmkey_public_to_pkey(&key, &pub) != 0) {
        log_warn("%s is missing or not a TSS2 key: enrolling again", key_path);
        goto out;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1) {
        log_warn("%s is not the key of %s: enrolling again", key_path, cert_path);
        goto out;
    }
    if (t != NULL && (r = key_matches_tpm(t, cfg, key_path, kbuf, klen, key)) != 0)
        goto out;
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

/* check_key_cert checks that |cert| (|what|'s certificate, from |file| or NV
 * index |nv|) is for the TPM key |key| at |handle|. */
static int check_key_cert(X509 *cert, struct tpm_key *key, const char *what, const char *file,
                          uint32_t nv, uint32_t handle)
{
    EVP_PKEY *pkey = NULL;
    char source[PATH_MAX + 32];
    int r = DEVID_ERR_INTERNAL;

    if (file != NULL)
        snprintf(source, sizeof(source), "file %s", file);
    else
        snprintf(source, sizeof(source), "NV index 0x%08x", nv);
    if (tpmkey_public_to_pkey(&pkey, tpm_key_get0_public(key)) != 0) {
        log_err("the %s key at handle 0x%08x is of an unsupported type", what, handle);
        r = DEVID_ERR_TPM;
        goto out;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(cert), pkey) != 1) {
        log_err(
            "the %s certificate from %s does not match the key at handle 0x%08x: check that "
            "the handle and the certificate source belong together (another device's "
            "certificate? a re-provisioned TPM?)",
            what, source, handle);
        r = DEVID_ERR_TPM;
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

    e = len > 0 ? devid__v1__error__unpack(NULL, len, body) : NULL;
    if (e != NULL && e->reason == DEVID__V1__REASON__REASON_UNSPECIFIED && e->message[0] == '\0') {
        devid__v1__error__free_unpacked(e, NULL);
        e = NULL;
    }
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

static int csr_sign_tpm(void *arg, TPMT_SIGNATURE *sig,
                        const uint8_t digest[TPM2_SHA256_DIGEST_SIZE])
{
    return tpm_sign_sha256(arg, sig, digest);
}

/* What one try reads from the TPM: the IDevID (and IAK) keys and certificates. */
struct device {
    struct tpm_key *idevid;
    struct tpm_key *iak; /* NULL: certify with the IDevID */
    X509 *idevid_cert;
    X509 *iak_cert;
    STACK_OF(X509) *chain;
};

static void device_cleanup(struct device *d)
{
    tpm_key_free(d->iak);
    tpm_key_free(d->idevid);
    X509_free(d->idevid_cert);
    X509_free(d->iak_cert);
    sk_X509_pop_free(d->chain, X509_free);
    memset(d, 0, sizeof(*d));
}

/* The pieces of an EnrollRequest, owned here and pointed to by the protobuf. */
struct request_parts {
    uint8_t *csr;
    size_t csr_len;
    uint8_t sig[sizeof(TPMT_SIGNATURE)];
    size_t sig_len;
    uint8_t *attest;
    size_t attest_len;
    uint8_t attest_sig[sizeof(TPMT_SIGNATURE)];
    size_t attest_sig_len;
    uint8_t pub[sizeof(TPMT_PUBLIC)];
    size_t pub_len;
    uint8_t signer_pub[sizeof(TPMT_PUBLIC)];
    size_t signer_pub_len;
    uint8_t *iak_der;
    size_t iak_der_len;
    ProtobufCBinaryData inter[CHAIN_MAX];
    uint8_t *inter_der[CHAIN_MAX];
    size_t n_inter;
};

static void request_parts_cleanup(struct request_parts *p)
{
    size_t i;

    OPENSSL_free(p->csr);
    OPENSSL_free(p->attest);
    OPENSSL_free(p->iak_der);
    for (i = 0; i < p->n_inter; i++)
        OPENSSL_free(p->inter_der[i]);
    memset(p, 0, sizeof(*p));
}

static int build_parts(struct request_parts *p, const struct device *dev, struct tpm_key *ldevid,
                       const uint8_t nonce[TRANSCRIPT_NONCE_LEN], const uint8_t *exporter)
{
    struct tpm_key *signer = dev->iak != NULL ? dev->iak : dev->idevid;
    STACK_OF(X509) *chain = dev->chain;
    uint8_t t[TRANSCRIPT_LEN];
    TPMT_SIGNATURE sig, certify_sig;
    EVP_PKEY *ldevid_pkey = NULL;
    char cn[SERIAL_MAX + 1], why[512];
    int i, n;
    int r = DEVID_ERR_INTERNAL;

    subject_serial(cn, sizeof(cn), dev->idevid_cert);
    if ((r = tpmkey_public_to_pkey(&ldevid_pkey, tpm_key_get0_public(ldevid))) != 0) {
        log_err("cannot convert the LDevID public key from the TPM");
        r = DEVID_ERR_TPM;
        goto out;
    }
    if ((r = csr_build(&p->csr, &p->csr_len, ldevid_pkey, cn, csr_sign_tpm, ldevid, why,
                       sizeof(why))) != 0) {
        log_err("%s", why);
        goto out;
    }
    if ((r = transcript_compute(t, nonce, TRANSCRIPT_NONCE_LEN, exporter, TRANSCRIPT_EXPORTER_LEN,
                                p->csr, p->csr_len)) != 0) {
        log_err("cannot compute the transcript: %s", devid_err_str(r));
        goto out;
    }
    if ((r = tpm_sign_sha256(dev->idevid, &sig, t)) != 0)
        goto out;
    if (Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, p->sig, sizeof(p->sig), &p->sig_len) !=
        TSS2_RC_SUCCESS) {
        log_err("cannot marshal the challenge signature");
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    if ((r = tpm_certify(&p->attest, &p->attest_len, &certify_sig, ldevid, signer, t, sizeof(t))) !=
        0)
        goto out;
    if (Tss2_MU_TPMT_SIGNATURE_Marshal(&certify_sig, p->attest_sig, sizeof(p->attest_sig),
                                       &p->attest_sig_len) != TSS2_RC_SUCCESS) {
        log_err("cannot marshal the TPM2_Certify signature");
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    if (Tss2_MU_TPMT_PUBLIC_Marshal(tpm_key_get0_public(signer), p->signer_pub,
                                    sizeof(p->signer_pub), &p->signer_pub_len) != TSS2_RC_SUCCESS) {
        log_err("cannot marshal the certify signer's public area");
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    if (dev->iak_cert != NULL) {
        if ((n = i2d_X509(dev->iak_cert, &p->iak_der)) <= 0) {
            r = DEVID_ERR_ALLOC;
            goto out;
        }
        p->iak_der_len = (size_t)n;
    }
    if (Tss2_MU_TPMT_PUBLIC_Marshal(tpm_key_get0_public(ldevid), p->pub, sizeof(p->pub),
                                    &p->pub_len) != TSS2_RC_SUCCESS) {
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
    if (tpmkey_public_to_pkey(&pkey, tpm_key_get0_public(ldevid)) != 0 ||
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
    const TPM2B_PUBLIC *pub;
    const TPM2B_PRIVATE *priv;
    int r;

    if ((r = tpm_key_get0_blob(ldevid, &pub, &priv)) == 0 &&
        (r = tss2pem_encode_blob(&o->key_pem, &o->key_pem_len, srk_handle, pub, priv)) != 0)
        log_err("cannot encode the TSS2 key file: %s", devid_err_str(r));
    return r;
}

/* attempt runs one challenge and enroll exchange on a fresh TLS connection.
 * On success the new key stays loaded in |o->ldevid|. */
static int attempt(struct outcome *o, struct http *h, struct tpm *t, const struct device *dev,
                   const struct agent_config *cfg)
{
    Devid__V1__EnrollRequest req = DEVID__V1__ENROLL_REQUEST__INIT;
    Devid__V1__TpmEvidence ev = DEVID__V1__TPM_EVIDENCE__INIT;
    struct request_parts parts;
    struct tpm_key *srk = NULL;
    uint8_t nonce[TRANSCRIPT_NONCE_LEN], exporter[TRANSCRIPT_EXPORTER_LEN];
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
        (r = tpm_key_create_ldevid(&o->ldevid, srk)) != 0)
        goto out;
    crash_point("key-created");
    if ((r = build_parts(&parts, dev, o->ldevid, nonce, exporter)) != 0)
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
    ev.signer = dev->iak != NULL ? DEVID__V1__SIGNER_KIND__SIGNER_KIND_IAK
                                 : DEVID__V1__SIGNER_KIND__SIGNER_KIND_IDEVID;
    ev.signer_public.data = parts.signer_pub;
    ev.signer_public.len = parts.signer_pub_len;
    ev.iak_certificate.data = parts.iak_der;
    ev.iak_certificate.len = parts.iak_der_len;
    req.evidence = &ev;
    req.n_intermediates = parts.n_inter;
    req.intermediates = parts.n_inter > 0 ? parts.inter : NULL;
    len = devid__v1__enroll_request__get_packed_size(&req);
    if ((buf = malloc(len + 1)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    devid__v1__enroll_request__pack(&req, buf);
    o->enroll_sent = true;
    if ((r = http_post(h, &status, &body, &body_len, "/v1/enroll", buf, len)) != 0)
        goto out;
    if (status != 200) {
        o->enroll_4xx = status >= 400 && status < 500;
        r = refusal(o, status, body, body_len, "POST /v1/enroll");
        goto out;
    }
    if ((r = parse_enroll_response(o, body, body_len, o->ldevid)) != 0)
        goto out;
    crash_point("response");
    if ((r = make_key_pem(o, o->ldevid, cfg->srk_handle)) != 0)
        goto out;
    r = 0;
out:
    OPENSSL_cleanse(exporter, sizeof(exporter));
    request_parts_cleanup(&parts);
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

/* out_paths fills the paths of the files of one enrollment, in the order
 * they are staged and committed: the certificate last, as the commit mark. */
static int out_paths(char paths[3][PATH_MAX], const struct agent_config *cfg)
{
    int r;

    if ((r = store_path(paths[0], PATH_MAX, cfg->out_dir, KEY_FILE)) != 0 ||
        (r = store_path(paths[1], PATH_MAX, cfg->out_dir, CHAIN_FILE)) != 0 ||
        (r = store_path(paths[2], PATH_MAX, cfg->out_dir, CERT_FILE)) != 0)
        return r;
    return 0;
}

/* write_files replaces key, chain and certificate together: all three are
 * staged (written and fsynced as NAME.new), then renamed in order. A crash
 * before the certificate is staged leaves the old set (store_recover removes
 * the staged files); after, the new one (store_recover finishes the renames). */
static int write_files(struct enroll_result *res, struct outcome *o, const struct agent_config *cfg)
{
    char paths[3][PATH_MAX];
    char *chain_pem = NULL, *cert_pem = NULL;
    size_t chain_len = 0, cert_len = 0;
    int i, r = DEVID_ERR_INTERNAL;

    if ((r = out_paths(paths, cfg)) != 0)
        goto out;
    if ((r = pem_certs(&chain_pem, &chain_len, NULL, o->chain)) != 0 ||
        (r = pem_certs(&cert_pem, &cert_len, o->cert, NULL)) != 0)
        goto out;
    if ((r = store_stage(paths[0], (const uint8_t *)o->key_pem, o->key_pem_len, 0600)) != 0)
        goto out;
    crash_point("write");
    if ((r = store_stage(paths[1], (const uint8_t *)chain_pem, chain_len, 0644)) != 0 ||
        (r = store_stage(paths[2], (const uint8_t *)cert_pem, cert_len, 0644)) != 0)
        goto out;
    for (i = 0; i < 3; i++) {
        if ((r = store_commit(paths[i])) != 0)
            goto out;
        if (i == 0)
            crash_point("commit");
    }
    snprintf(res->cert_path, sizeof(res->cert_path), "%s", paths[2]);
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

/* read_device reads the IDevID (and IAK) keys and certificates and the chain,
 * and checks that each certificate is for its key. */
static int read_device(struct device *dev, struct tpm *t, const struct agent_config *cfg)
{
    int r;

    memset(dev, 0, sizeof(*dev));
    if ((r = tpm_key_persistent(&dev->idevid, t, cfg->idevid_handle)) != 0) {
        if (r == DEVID_ERR_NOT_FOUND) {
            log_err(
                "no IDevID key at persistent handle 0x%08x: check that the device was "
                "provisioned and idevid_handle in the configuration",
                cfg->idevid_handle);
            r = DEVID_ERR_TPM;
        }
        return r;
    }
    if ((r = read_cert(&dev->idevid_cert, t, cfg->idevid_cert_file, cfg->idevid_nv, "IDevID",
                       "idevid_cert_nv")) != 0 ||
        (r = read_chain(&dev->chain, t, cfg)) != 0)
        return r;
    if ((r = check_key_cert(dev->idevid_cert, dev->idevid, "IDevID", cfg->idevid_cert_file,
                            cfg->idevid_nv, cfg->idevid_handle)) != 0)
        return r;
    if (cfg->iak_handle == 0)
        return 0;
    if ((r = tpm_key_persistent(&dev->iak, t, cfg->iak_handle)) != 0) {
        if (r == DEVID_ERR_NOT_FOUND) {
            log_err(
                "no IAK at persistent handle 0x%08x: check iak_handle in the "
                "configuration (set it to none on a device without an IAK)",
                cfg->iak_handle);
            r = DEVID_ERR_TPM;
        }
        return r;
    }
    if ((r = read_cert(&dev->iak_cert, t, cfg->iak_cert_file, cfg->iak_nv, "IAK", "iak_cert_nv")) !=
        0)
        return r;
    return check_key_cert(dev->iak_cert, dev->iak, "IAK", cfg->iak_cert_file, cfg->iak_nv,
                          cfg->iak_handle);
}

/*
 * What a run does besides enrolling, decided before it starts (plan_run) from
 * the renewal marker. A renewal writes the marker (the serial of the
 * certificate it replaces) before it creates the new key, and removes it only
 * after the old key is out of the TPM. The order, and what the next run does
 * when the agent stops in between:
 *   1. marker written                 crash: marker names the serial in cert.pem
 *   2. new key, challenge, enroll       -> the verifier may already have issued
 *      (the verifier stores the new        a successor and revoked the old
 *      certificate, then revokes the       certificate, so it is not trusted:
 *      old one as superseded)              enroll again with a new key (fresh)
 *   3. key, chain, cert staged, then
 *      committed (write_files)
 *   4. persist_handle: the old key     crash: cert.pem is no longer the one the
 *      there is evicted and the new        marker names, so the new set is in
 *      one persisted (tpm_key_persist)     place: load key.tss2.pem and persist it
 *                                          at the handle, evicting the old key
 *                                          (finish_evict); no new enrollment
 *   5. marker removed
 * Without a persist_handle the old key was never in the TPM (a blob, replaced
 * in step 3), so step 4 is empty. A renewal that fails (not crashes) before any
 * POST /v1/enroll could have been answered with a certificate removes the
 * marker it wrote: the old certificate is still good, nothing was revoked.
 */
struct run_plan {
    bool fresh;        /* enroll with a new key even over a valid enrollment */
    bool finish_evict; /* step 4 of an interrupted renewal is still to do */
    bool marker;       /* a renewal marker is in place: remove it when done */
    bool started;      /* this run wrote the marker (step 1) */
};

static int marker_path(char *out, size_t size, const struct agent_config *cfg)
{
    return store_path(out, size, cfg->out_dir, MARKER_FILE);
}

/* marker_remove ends a renewal: the old key is out of the TPM. */
static int marker_remove(struct run_plan *plan, const struct agent_config *cfg)
{
    char path[PATH_MAX];
    int r;

    if ((r = marker_path(path, sizeof(path), cfg)) != 0 || (r = store_remove(path)) != 0)
        return r;
    plan->marker = false;
    return 0;
}

/* finish_evict does step 4 of a renewal whose new files are committed: the key
 * at persist_handle becomes the one in key.tss2.pem, evicting the old key. A
 * blob that no longer loads is left to check_enrolled, which enrolls again. */
static int finish_evict(struct tpm *t, const struct agent_config *cfg)
{
    char key_path[PATH_MAX];
    struct tpm_key *key = NULL, *held = NULL;
    EVP_PKEY *want = NULL, *have = NULL;
    uint8_t *kbuf = NULL;
    size_t klen = 0;
    int r = DEVID_ERR_INTERNAL;

    if (cfg->persist_handle == 0)
        return 0;
    if ((r = store_path(key_path, sizeof(key_path), cfg->out_dir, KEY_FILE)) != 0)
        goto out;
    if (read_file(&kbuf, &klen, key_path, FILE_MAX) != 0) {
        r = 0;
        goto out;
    }
    if ((r = load_blob(&key, t, key_path, kbuf, klen)) != 0) {
        r = r == DEVID_ERR_NOT_FOUND ? 0 : r;
        goto out;
    }
    r = tpm_key_persistent(&held, t, cfg->persist_handle);
    if (r != 0 && r != DEVID_ERR_NOT_FOUND)
        goto out;
    if (r == 0 && tpmkey_public_to_pkey(&want, tpm_key_get0_public(key)) == 0 &&
        tpmkey_public_to_pkey(&have, tpm_key_get0_public(held)) == 0 &&
        EVP_PKEY_eq(want, have) == 1) {
        log_info("the new key is already at persistent handle 0x%08x", cfg->persist_handle);
        r = 0;
        goto out;
    }
    tpm_key_free(held);
    held = NULL;
    log_info(
        "finishing an interrupted renewal: the new key goes to persistent handle 0x%08x, "
        "the old one is evicted",
        cfg->persist_handle);
    r = tpm_key_persist(key, cfg->persist_handle);
out:
    EVP_PKEY_free(want);
    EVP_PKEY_free(have);
    tpm_key_free(held);
    tpm_key_free(key);
    if (kbuf != NULL)
        OPENSSL_cleanse(kbuf, klen);
    free(kbuf);
    return r;
}

/* try_once opens the TPM, returns at once when the device is already
 * enrolled (unless |plan| asks for a fresh key), or runs one enrollment and
 * stores its result. |timeout| bounds each request. */
static int try_once(struct enroll_result *res, struct outcome *o, const struct agent_config *cfg,
                    struct run_plan *plan, long timeout)
{
    struct http_config hcfg;
    struct device dev;
    struct tpm *t = NULL;
    struct http *h = NULL;
    int r = DEVID_ERR_INTERNAL;

    memset(&dev, 0, sizeof(dev));
    if ((r = tpm_open(&t, cfg->tcti)) != 0)
        goto out;
    if (plan->finish_evict) {
        if ((r = finish_evict(t, cfg)) != 0 || (r = marker_remove(plan, cfg)) != 0)
            goto out;
        plan->finish_evict = false;
    }
    if (!plan->fresh && (r = check_enrolled(res, cfg, t)) != DEVID_ERR_NOT_FOUND)
        goto out;
    if ((r = read_device(&dev, t, cfg)) != 0)
        goto out;
    memset(&hcfg, 0, sizeof(hcfg));
    hcfg.url = cfg->url;
    hcfg.ca_bundle = cfg->ca_bundle;
    hcfg.key = dev.idevid;
    hcfg.key_handle = cfg->idevid_handle;
    hcfg.cert = dev.idevid_cert;
    hcfg.chain = dev.chain;
    hcfg.tls_version = cfg->tls_version;
    hcfg.timeout = timeout;
    hcfg.proxy = cfg->proxy;
    hcfg.body_max = WIRE_ANSWER_MAX;
    if ((r = http_new(&h, &hcfg)) != 0)
        goto out;
    r = attempt(o, h, t, &dev, cfg);
    o->http_fail = http_last_fail(h);
    if (o->retry_after == 0)
        o->retry_after = http_retry_after(h);
    if (r != 0)
        goto out;
    if ((r = write_files(res, o, cfg)) != 0)
        goto out;
    /* Only now, with the new set committed, does the old key leave the TPM
     * (see struct run_plan). */
    if (plan->marker)
        crash_point("renew-evict");
    if (cfg->persist_handle != 0) {
        crash_point("persist");
        if ((r = tpm_key_persist(o->ldevid, cfg->persist_handle)) != 0)
            goto out;
    }
    if (plan->marker && (r = marker_remove(plan, cfg)) != 0)
        goto out;
    res->cert = o->cert;
    o->cert = NULL;
    r = 0;
out:
    http_free(h);
    tpm_key_free(o->ldevid);
    o->ldevid = NULL;
    device_cleanup(&dev);
    tpm_free(t);
    return r;
}

/* retryable says whether the failure |r| of a try may pass by itself, and
 * names it for the log. */
static bool retryable(const char **why, int r, const struct outcome *o)
{
    *why = devid_err_str(r);
    switch (r) {
        case DEVID_ERR_NETWORK:
            *why = o->retry_after > 0 ? "verifier busy (HTTP 503)" : "network";
            return true;
        case DEVID_ERR_TLS:
            if (o->http_fail == HTTP_FAIL_PEER_UNTRUSTED) {
                *why = "the verifier's certificate is not trusted";
                return false;
            }
            *why = "TLS handshake";
            return o->http_fail == HTTP_FAIL_TLS;
        case DEVID_ERR_REFUSED:
            *why = o->retryable ? "verifier asks to retry" : "refused by the verifier";
            return o->retryable;
        case DEVID_ERR_TPM:
            *why = "TPM busy or unreachable";
            return tpm_last_error_transient() != 0;
        default:
            return false;
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int cert_serial_hex(char *out, size_t size, X509 *cert)
{
    BIGNUM *bn = NULL;
    char *hex = NULL, *p;
    int r = DEVID_ERR_ALLOC;

    if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL)) == NULL ||
        (hex = BN_bn2hex(bn)) == NULL)
        goto out;
    for (p = hex; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    }
    r = snprintf(out, size, "%s", hex) < (int)size ? 0 : DEVID_ERR_TOO_LARGE;
out:
    OPENSSL_free(hex);
    BN_free(bn);
    return r;
}

/* current_serial sets |serial| to the serial of the certificate in
 * |cfg->out_dir|, or to "" when there is none that parses. */
static void current_serial(char *serial, size_t size, const struct agent_config *cfg)
{
    char path[PATH_MAX];
    uint8_t *buf = NULL;
    size_t len = 0;
    X509 *cert = NULL;

    serial[0] = '\0';
    if (store_path(path, sizeof(path), cfg->out_dir, CERT_FILE) == 0 &&
        read_file(&buf, &len, path, FILE_MAX) == 0 &&
        parse_cert(&cert, buf, len, path, false) == 0 && cert_serial_hex(serial, size, cert) != 0)
        serial[0] = '\0';
    X509_free(cert);
    free(buf);
}

/* plan_run finishes or undoes an interrupted write of the files and fills
 * |plan| from the renewal marker, if one is there (see struct run_plan). */
static int plan_run(struct run_plan *plan, const struct agent_config *cfg)
{
    char paths[3][PATH_MAX], mpath[PATH_MAX];
    const char *const order[3] = {paths[0], paths[1], paths[2]};
    char old[RENEW_SERIAL_HEX_MAX + 1], now[SERIAL_MAX + 1];
    uint8_t *buf = NULL;
    size_t len = 0;
    int r;

    memset(plan, 0, sizeof(*plan));
    if ((r = ensure_dir(cfg->out_dir)) != 0 || (r = out_paths(paths, cfg)) != 0 ||
        (r = store_recover(order, 3)) != 0 || (r = marker_path(mpath, sizeof(mpath), cfg)) != 0)
        return r;
    if ((r = read_file(&buf, &len, mpath, 256)) == DEVID_ERR_NOT_FOUND)
        return 0;
    if (r != 0)
        return r;
    plan->marker = true;
    current_serial(now, sizeof(now), cfg);
    if (renew_marker_parse(old, sizeof(old), buf, len) != 0) {
        log_warn("%s is malformed: treating it as a renewal interrupted before its end", mpath);
        old[0] = '\0';
    }
    free(buf);
    if (old[0] == '\0' || now[0] == '\0' || strcmp(old, now) == 0) {
        log_warn(
            "a renewal of certificate %s was interrupted before its successor was stored; the "
            "verifier may already have revoked it: enrolling again with a new key",
            old[0] != '\0' ? old : "(unknown)");
        plan->fresh = true;
    } else {
        log_info("a renewal was interrupted after certificate %s replaced %s: finishing it", now,
                 old);
        plan->finish_evict = true;
    }
    return 0;
}

/* run enrolls as |plan| says, retrying what may pass by itself until the
 * deadline (see enroll_run). */
static int run(struct enroll_result *res, const struct agent_config *cfg, struct run_plan *plan)
{
    struct backoff_policy policy;
    struct outcome o;
    uint64_t start, elapsed, delay;
    uint32_t rnd;
    const char *why = "";
    long left_s, timeout;
    bool maybe_issued = false;
    unsigned n;
    int r = DEVID_ERR_INTERNAL;

    memset(&o, 0, sizeof(o));
    policy.initial_ms = (uint64_t)cfg->backoff_initial_ms;
    policy.max_ms = (uint64_t)cfg->backoff_max_ms;
    policy.deadline_ms = (uint64_t)cfg->deadline * 1000u;
    start = now_ms();
    for (n = 0;; n++) {
        outcome_cleanup(&o);
        elapsed = now_ms() - start;
        left_s = cfg->deadline - (long)(elapsed / 1000);
        timeout = left_s < cfg->timeout ? (left_s > 0 ? left_s : 1) : cfg->timeout;
        log_info("attempt %u: enrolling with %s", n + 1, cfg->url);
        res->attempts = n + 1;
        r = try_once(res, &o, cfg, plan, timeout);
        if (o.enroll_sent && !o.enroll_4xx)
            maybe_issued = true;
        if (r == 0)
            break;
        if (!retryable(&why, r, &o))
            break;
        if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1)
            rnd = 0x80000000u;
        elapsed = now_ms() - start;
        if (backoff_next(&delay, &policy, n, (uint64_t)o.retry_after * 1000u, elapsed, rnd) != 0) {
            if (o.retry_after > 0 && elapsed < policy.deadline_ms)
                log_err(
                    "attempt %u failed (%s); the verifier asks to wait %u s, past the "
                    "deadline of %ld s: giving up",
                    n + 1, why, o.retry_after, cfg->deadline);
            else
                log_err(
                    "attempt %u failed (%s); deadline of %ld s reached after %u attempts: "
                    "giving up",
                    n + 1, why, cfg->deadline, n + 1);
            res->gave_up = true;
            break;
        }
        log_info(
            "attempt %u failed (%s); retrying in %llu.%03llu s (backoff ceiling %llu ms%s, "
            "%llu s left)",
            n + 1, why, (unsigned long long)(delay / 1000), (unsigned long long)(delay % 1000),
            (unsigned long long)backoff_ceiling_ms(&policy, n),
            o.retry_after > 0 ? ", Retry-After honoured" : "",
            (unsigned long long)((policy.deadline_ms - elapsed) / 1000));
        sleep_ms(delay);
    }
    if (r != 0) {
        res->reason = o.reason;
        res->peer_untrusted = r == DEVID_ERR_TLS && o.http_fail == HTTP_FAIL_PEER_UNTRUSTED;
        if (r == DEVID_ERR_TLS && o.http_fail == HTTP_FAIL_LOCAL)
            r = DEVID_ERR_CONFIG;
        if (!res->gave_up && !res->peer_untrusted && r != DEVID_ERR_REFUSED)
            log_err("attempt %u failed (%s): not retryable", n + 1, why);
        if (plan->started && plan->marker && !maybe_issued && marker_remove(plan, cfg) == 0)
            log_info(
                "the renewal failed before the verifier issued a certificate: the current "
                "one stays; the next run tries again when due");
    } else if (res->already) {
        log_info("already enrolled: %s is valid and matches %s/%s and the TPM", res->cert_path,
                 cfg->out_dir, KEY_FILE);
    }
    outcome_cleanup(&o);
    return r;
}

static bool args_ok(const struct enroll_result *res, const struct agent_config *cfg)
{
    return res != NULL && cfg != NULL && cfg->url != NULL && cfg->ca_bundle != NULL &&
           cfg->tcti != NULL && cfg->out_dir != NULL;
}

int enroll_run(struct enroll_result *res, const struct agent_config *cfg)
{
    struct run_plan plan;
    int r;

    if (!args_ok(res, cfg))
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(res, 0, sizeof(*res));
    if ((r = plan_run(&plan, cfg)) != 0)
        return r;
    return run(res, cfg, &plan);
}

static int cert_times(int64_t *not_before, int64_t *not_after, X509 *cert)
{
    struct tm tm;
    time_t t;

    if (ASN1_TIME_to_tm(X509_get0_notBefore(cert), &tm) != 1 || (t = timegm(&tm)) == (time_t)-1)
        return DEVID_ERR_INVALID_ARGUMENT;
    *not_before = (int64_t)t;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1 || (t = timegm(&tm)) == (time_t)-1)
        return DEVID_ERR_INVALID_ARGUMENT;
    *not_after = (int64_t)t;
    return 0;
}

static void fmt_utc(char *out, size_t size, int64_t when)
{
    time_t t = (time_t)when;
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(out, size, "%lld (seconds since the epoch)", (long long)when);
}

/* start_renewal writes the marker naming the certificate |cert| that this
 * renewal replaces (step 1 of struct run_plan). */
static int start_renewal(struct run_plan *plan, const struct agent_config *cfg, X509 *cert)
{
    char serial[SERIAL_MAX + 1], mpath[PATH_MAX], marker[RENEW_SERIAL_HEX_MAX + 32];
    size_t len = 0;
    int r;

    if ((r = cert_serial_hex(serial, sizeof(serial), cert)) != 0 ||
        (r = renew_marker_format(marker, sizeof(marker), &len, serial)) != 0) {
        log_err("cannot note the serial of the certificate being renewed: %s", devid_err_str(r));
        return r == DEVID_ERR_ALLOC ? r : DEVID_ERR_INTERNAL;
    }
    if ((r = marker_path(mpath, sizeof(mpath), cfg)) != 0 ||
        (r = store_write_atomic(mpath, (const uint8_t *)marker, len, 0644)) != 0)
        return r;
    plan->marker = true;
    plan->fresh = true;
    plan->started = true;
    return 0;
}

int enroll_renew(struct enroll_result *res, const struct agent_config *cfg, bool force)
{
    struct run_plan plan;
    char when[64], serial[SERIAL_MAX + 1];
    int64_t nb = 0, na = 0, now;
    bool due = false;
    int r;

    if (!args_ok(res, cfg))
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(res, 0, sizeof(*res));
    if ((r = plan_run(&plan, cfg)) != 0)
        return r;
    if (plan.marker)
        goto enroll;
    /* Files only: a renewal that is not due touches neither TPM nor network. */
    if ((r = check_enrolled(res, cfg, NULL)) == DEVID_ERR_NOT_FOUND) {
        log_info("no valid certificate in %s: enrolling instead of renewing", cfg->out_dir);
        goto enroll;
    }
    if (r != 0)
        return r;
    now = (int64_t)time(NULL);
    if (cert_times(&nb, &na, res->cert) != 0 ||
        renew_schedule(&due, &res->due_at, nb, na, now, cfg->renew_at) != 0) {
        log_err("%s has unusable validity dates: remove it and enroll again", res->cert_path);
        return DEVID_ERR_INVALID_ARGUMENT;
    }
    fmt_utc(when, sizeof(when), res->due_at);
    if (cert_serial_hex(serial, sizeof(serial), res->cert) != 0)
        snprintf(serial, sizeof(serial), "(unknown)");
    if (!due && !force) {
        res->not_due = true;
        log_info("renewal not due until %s (%g of the lifetime of certificate %s)", when,
                 cfg->renew_at, serial);
        return 0;
    }
    if (due)
        log_info("renewing certificate %s: due since %s (renew_at %g)", serial, when,
                 cfg->renew_at);
    else
        log_info("renewing certificate %s now (--force; due at %s)", serial, when);
    if ((r = start_renewal(&plan, cfg, res->cert)) != 0)
        return r;
    enroll_result_cleanup(res);
enroll:
    r = run(res, cfg, &plan);
    if (r == 0 && !res->already)
        res->renewed = plan.fresh;
    return r;
}

static void print_name(BIO *bio, const char *label, const X509_NAME *name)
{
    BIO_printf(bio, "%s: ", label);
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
    BIO_printf(bio, "\n");
}

static void print_entry(BIO *bio, const char *label, const X509_NAME *name, int nid)
{
    const ASN1_STRING *s;
    unsigned char *utf8 = NULL;
    int i, n;

    if ((i = X509_NAME_get_index_by_NID(name, nid, -1)) < 0) {
        BIO_printf(bio, "%s: (none)\n", label);
        return;
    }
    s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    if ((n = ASN1_STRING_to_UTF8(&utf8, s)) >= 0)
        BIO_printf(bio, "%s: %.*s\n", label, n, (const char *)utf8);
    OPENSSL_free(utf8);
}

static void print_serial(BIO *bio, const char *label, X509 *cert)
{
    char hex[SERIAL_MAX + 1];

    if (cert_serial_hex(hex, sizeof(hex), cert) == 0)
        BIO_printf(bio, "%s: %s\n", label, hex);
}

int enroll_status(const struct agent_config *cfg)
{
    struct enroll_result res;
    struct tpm *t = NULL;
    X509 *idevid = NULL;
    BIO *bio = NULL;
    int r = DEVID_ERR_INTERNAL, rt;

    memset(&res, 0, sizeof(res));
    if ((bio = BIO_new_fp(stdout, BIO_NOCLOSE)) == NULL)
        return DEVID_ERR_ALLOC;
    rt = tpm_open(&t, cfg->tcti);
    if (rt == 0)
        rt = read_cert(&idevid, t, cfg->idevid_cert_file, cfg->idevid_nv, "IDevID",
                       "idevid_cert_nv");
    else if (cfg->idevid_cert_file != NULL)
        rt = read_cert(&idevid, NULL, cfg->idevid_cert_file, 0, "IDevID", "idevid_cert_nv");
    if (idevid != NULL) {
        BIO_printf(bio, "device:\n");
        print_entry(bio, "  serial", X509_get_subject_name(idevid), NID_serialNumber);
        print_entry(bio, "  model", X509_get_subject_name(idevid), NID_commonName);
        print_entry(bio, "  manufacturer", X509_get_subject_name(idevid), NID_organizationName);
    } else {
        BIO_printf(bio, "device: unknown (the IDevID certificate could not be read)\n");
    }
    r = check_enrolled(&res, cfg, t);
    if (r != 0) {
        BIO_printf(bio, "operational certificate: none valid in %s\n", cfg->out_dir);
        goto out;
    }
    BIO_printf(bio, "operational certificate: %s\n", res.cert_path);
    print_name(bio, "  subject", X509_get_subject_name(res.cert));
    print_name(bio, "  issuer", X509_get_issuer_name(res.cert));
    print_serial(bio, "  serial", res.cert);
    BIO_printf(bio, "  not after: ");
    ASN1_TIME_print(bio, X509_get0_notAfter(res.cert));
    BIO_printf(bio, "\nkey:\n  blob: %s/%s\n", cfg->out_dir, KEY_FILE);
    if (cfg->persist_handle != 0)
        BIO_printf(bio, "  persistent handle: 0x%08x\n", cfg->persist_handle);
    else
        BIO_printf(bio, "  persistent handle: none\n");
    r = 0;
out:
    (void)BIO_flush(bio);
    BIO_free(bio);
    enroll_result_cleanup(&res);
    X509_free(idevid);
    tpm_free(t);
    return r;
}

void enroll_result_cleanup(struct enroll_result *res)
{
    if (res == NULL)
        return;
    X509_free(res->cert);
    memset(res, 0, sizeof(*res));
}
