#include "agent/enroll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "agent/core/csr.h"
#include "agent/core/tss2pem.h"
#include "agent/core/wire.h"
#include "agent/crash.h"
#include "agent/device.h"
#include "agent/ek.h"
#include "agent/fileset.h"
#include "agent/http.h"
#include "common/err.h"
#include "common/io/log.h"
#include "common/tpmkey.h"
#include "common/transcript.h"

/* Everything one enrollment holds between its steps. */
struct flow {
    struct enroll_attempt *a;
    struct tpm *tpm;
    const struct agent_config *cfg;
    struct device dev;
    struct ek ek;
    uint8_t activated[64]; /* what TPM2_ActivateCredential recovered */
    size_t activated_len;
    struct http_config http_cfg;
    struct http *http;
    struct wire_challenge challenge;
    uint8_t exporter[TRANSCRIPT_EXPORTER_LEN];
    struct tpm_key *key; /* the new key */
    EVP_PKEY *key_pub;   /* its public half */
    char *key_pem;       /* its TSS2 key file */
    size_t key_pem_len;
    uint8_t *csr;
    size_t csr_len;
    uint8_t transcript[TRANSCRIPT_LEN];
    TPMT_SIGNATURE transcript_sig;
    uint8_t *certify_info;
    size_t certify_info_len;
    TPMT_SIGNATURE certify_sig;
    uint8_t *quote_info; /* the boot-state gate's TPM2_Quote, when asked for */
    size_t quote_info_len;
    TPMT_SIGNATURE quote_sig;
    struct wire_pcr pcrs[WIRE_PCR_MAX];
    size_t n_pcrs;
    /* The boot-state gate's AK on a device without an IAK ([tpm] ak), and
     * what TPM2_ActivateCredential recovered for it. */
    struct tpm_key *ak;
    uint8_t ak_activated[64];
    size_t ak_activated_len;
    struct wire_enrolled issued;
};

static void flow_cleanup(struct flow *f)
{
    http_free(f->http);
    tpm_key_free(f->key);
    tpm_key_free(f->ak);
    OPENSSL_cleanse(f->ak_activated, sizeof(f->ak_activated));
    EVP_PKEY_free(f->key_pub);
    OPENSSL_clear_free(f->key_pem, f->key_pem_len);
    OPENSSL_free(f->csr);
    OPENSSL_free(f->certify_info);
    OPENSSL_free(f->quote_info);
    OPENSSL_cleanse(f->activated, sizeof(f->activated));
    wire_enrolled_cleanup(&f->issued);
    ek_cleanup(&f->ek);
    device_cleanup(&f->dev);
    OPENSSL_cleanse(f, sizeof(*f));
}

/* failed names the step that failed for the attempt's log line and returns
 * |r|. */
static int failed(struct flow *f, int r, const char *step)
{
    snprintf(f->a->why, sizeof(f->a->why), "%s", step);
    return r;
}

/* connect_verifier opens the TLS client whose key is the IDevID in the TPM and starts
 * a session: the challenge opens a fresh connection. */
static int connect_verifier(struct flow *f, long timeout)
{
    struct http_config *c = &f->http_cfg;
    int r;

    c->url = f->cfg->url;
    c->ca_bundle = f->cfg->ca_bundle;
    c->key = f->dev.idevid;
    c->key_handle = f->cfg->idevid_handle;
    c->cert = f->dev.idevid_cert;
    c->chain = f->dev.chain;
    c->tls_version = f->cfg->tls_version;
    c->timeout = timeout;
    c->proxy = f->cfg->proxy;
    c->body_max = WIRE_ANSWER_MAX;
    if ((r = http_new(&f->http, c)) != 0)
        return failed(f, r, "the TLS client key in the TPM cannot be used");
    http_session_begin(f->http);
    return 0;
}

/* key_file encodes the new key's blob as the TSS2 key file. */
static int key_file(struct flow *f)
{
    const TPM2B_PUBLIC *pub;
    const TPM2B_PRIVATE *priv;
    int r;

    if ((r = tpm_key_get0_blob(f->key, &pub, &priv)) == 0 &&
        (r = tss2pem_encode_blob(&f->key_pem, &f->key_pem_len, f->cfg->srk_handle, pub, priv)) != 0)
        log_err("cannot encode the TSS2 key file: %s", devid_err_str(r));
    return r;
}

/* create_key creates the new key under the storage root key, with its public
 * half and its key file. */
static int create_key(struct flow *f)
{
    struct tpm_key *srk = NULL;
    int r;

    if ((r = tpm_key_srk(&srk, f->tpm, f->cfg->srk_handle)) == 0)
        r = tpm_key_create_ldevid(&f->key, srk);
    tpm_key_free(srk);
    if (r != 0)
        return failed(f, r, "the TPM could not create the new key");
    if (tpmkey_public_to_pkey(&f->key_pub, tpm_key_get0_public(f->key)) != 0) {
        log_err("cannot convert the LDevID public key from the TPM");
        return failed(f, DEVID_ERR_TPM, "the new key is of an unexpected type");
    }
    if ((r = key_file(f)) != 0)
        return failed(f, r, "the new key's file could not be encoded");
    return 0;
}

/* create_ak creates the boot-state gate's AK under the storage root key,
 * with [tpm] ak = auto on a device with an EK and without an IAK: the
 * verifier binds it to this TPM with a second credential. */
static int create_ak(struct flow *f)
{
    struct tpm_key *srk = NULL;
    int r;

    if (f->cfg->ak != CONFIG_AK_AUTO || f->ek.key == NULL)
        return 0;
    if (f->dev.iak != NULL) {
        log_debug("[tpm] ak = auto: this device has an IAK, which signs the quotes");
        return 0;
    }
    if ((r = tpm_key_srk(&srk, f->tpm, f->cfg->srk_handle)) == 0)
        r = tpm_key_create_ak(&f->ak, srk);
    tpm_key_free(srk);
    return r != 0 ? failed(f, r, "the TPM could not create the AK") : 0;
}

static int sign_with_key(void *arg, TPMT_SIGNATURE *sig,
                         const uint8_t digest[TPM2_SHA256_DIGEST_SIZE])
{
    return tpm_sign_sha256(arg, sig, digest);
}

/* build_csr builds the CSR of the new key, signed by it in the TPM. */
static int build_csr(struct flow *f)
{
    char why[512];
    int r;

    if ((r = csr_build(&f->csr, &f->csr_len, f->key_pub, f->dev.serial, sign_with_key, f->key, why,
                       sizeof(why))) != 0) {
        log_err("%s", why);
        return failed(f, r, "the CSR of the new key could not be built");
    }
    return 0;
}

/* compute_transcript computes T over the nonce, the channel binding and the
 * CSR. */
static int compute_transcript(struct flow *f)
{
    int r = transcript_compute(f->transcript, f->challenge.nonce, TRANSCRIPT_NONCE_LEN, f->exporter,
                               TRANSCRIPT_EXPORTER_LEN, f->csr, f->csr_len);

    if (r != 0) {
        log_err("cannot compute the transcript: %s", devid_err_str(r));
        return failed(f, r, "the transcript could not be computed");
    }
    return 0;
}

/* sign_transcript has the IDevID sign T (TPM2_Sign). */
static int sign_transcript(struct flow *f)
{
    int r = tpm_sign_sha256(f->dev.idevid, &f->transcript_sig, f->transcript);

    return r != 0 ? failed(f, r, "the TPM could not sign the transcript with the IDevID") : 0;
}

/* certify_key has the IAK or the IDevID certify the new key with T as
 * qualifyingData (TPM2_Certify): the new key's last use, unless it is to be
 * persisted after the commit, so it leaves the TPM's object slots here. */
static int certify_key(struct flow *f)
{
    int r = tpm_certify(&f->certify_info, &f->certify_info_len, &f->certify_sig, f->key,
                        device_get0_signer(&f->dev), f->transcript, sizeof(f->transcript));

    if (r != 0)
        return failed(f, r, "the TPM could not certify the new key");
    if (f->cfg->persist_handle == 0)
        tpm_key_unload(f->key);
    return 0;
}

/* quote_pcrs reads the PCRs the verifier asked for (TPM2_PCR_Read) and has
 * the IAK quote them with T as qualifyingData (TPM2_Quote): the boot-state
 * gate. A device without an IAK sends no quote, and the verifier says why
 * it cannot pass. */
static int quote_pcrs(struct flow *f)
{
    uint8_t values[WIRE_PCR_MAX][TPM2_SHA256_DIGEST_SIZE];
    uint32_t mask = f->challenge.quote_pcrs;
    struct tpm_key *signer = f->dev.iak != NULL ? f->dev.iak : f->ak;
    size_t n = 0, k = 0;
    unsigned j;
    int r;

    if (mask == 0)
        return 0;
    if (signer == NULL) {
        log_warn(
            "the verifier asks for a quote of PCRs 0x%06x, which needs an IAK, or an EK and an "
            "AK; this device has neither ([tpm] iak_handle; [tpm] ek and ak = auto), so it "
            "sends no quote",
            (unsigned)mask);
        return 0;
    }
    if ((r = tpm_pcr_read(f->tpm, values, WIRE_PCR_MAX, &n, mask)) != 0)
        return failed(f, r, "the TPM could not read the PCRs the verifier asked for");
    for (j = 0; j < WIRE_PCR_COUNT && k < n; j++) {
        if ((mask & (1u << j)) == 0)
            continue;
        f->pcrs[k].index = j;
        memcpy(f->pcrs[k].sha256, values[k], sizeof(f->pcrs[k].sha256));
        k++;
    }
    f->n_pcrs = k;
    log_debug("quoting %zu SHA-256 PCRs (mask 0x%06x) with the %s", k, (unsigned)mask,
              f->dev.iak != NULL ? "IAK" : "AK");
    r = tpm_quote(&f->quote_info, &f->quote_info_len, &f->quote_sig, signer, mask, f->transcript,
                  sizeof(f->transcript));
    tpm_key_unload(f->ak);
    return r != 0 ? failed(f, r, "the TPM could not quote the PCRs") : 0;
}

/* enroll sends the EnrollRequest and receives the certificate. */
static int enroll(struct flow *f)
{
    struct wire_enroll_request in = {
        .token = f->challenge.token,
        .token_len = f->challenge.token_len,
        .csr = f->csr,
        .csr_len = f->csr_len,
        .challenge_signature = &f->transcript_sig,
        .certify_info = f->certify_info,
        .certify_info_len = f->certify_info_len,
        .certify_signature = &f->certify_sig,
        .ldevid_public = tpm_key_get0_public(f->key),
        .signer_public = tpm_key_get0_public(device_get0_signer(&f->dev)),
        .iak_cert = f->dev.iak_cert,
        .intermediates = f->dev.chain,
        .activated_secret = f->activated_len > 0 ? f->activated : NULL,
        .activated_secret_len = f->activated_len,
        .quote_info = f->quote_info,
        .quote_info_len = f->quote_info_len,
        .quote_signature = &f->quote_sig,
        .pcrs = f->pcrs,
        .n_pcrs = f->n_pcrs,
        .ak_public = f->dev.iak == NULL && f->ak != NULL ? tpm_key_get0_public(f->ak) : NULL,
        .ak_activated_secret = f->ak_activated_len > 0 ? f->ak_activated : NULL,
        .ak_activated_secret_len = f->ak_activated_len,
    };
    uint8_t *req = NULL;
    size_t req_len = 0;
    char why[256];
    int r;

    if ((r = wire_enroll_request(&req, &req_len, &in, why, sizeof(why))) != 0) {
        log_err("%s", why);
        return failed(f, r, "the EnrollRequest could not be encoded");
    }
    r = exchange_enroll(&f->issued, &f->a->refusal, f->http, req, req_len, f->key_pub);
    free(req);
    return r;
}

/* challenge asks for a nonce and a token, on a fresh TLS connection whose
 * channel binding it then reads; with an EK, for a credential for the new
 * key, created before. */
static int challenge(struct flow *f)
{
    struct wire_ek ek = {0};
    int r;

    if (f->ek.key != NULL) {
        ek.cert = f->ek.der;
        ek.cert_len = f->ek.der_len;
        ek.ek_public = tpm_key_get0_public(f->ek.key);
        ek.ldevid_public = tpm_key_get0_public(f->key);
        ek.ak_public = f->ak != NULL ? tpm_key_get0_public(f->ak) : NULL;
        ek.chain = f->ek.chain;
    }
    if ((r = exchange_challenge(&f->challenge, &f->a->refusal, f->http, f->dev.chain,
                                f->ek.key != NULL ? &ek : NULL)) != 0)
        return r;
    if (f->ek.key != NULL && f->challenge.credential_blob_len == 0) {
        log_err("the verifier answered the challenge without the credential for the EK");
        return failed(f, DEVID_ERR_PROTOCOL, "the challenge carried no credential");
    }
    if (f->ak != NULL && f->challenge.ak_credential_blob_len == 0) {
        if (f->challenge.quote_pcrs != 0)
            log_warn("the verifier asks for a PCR quote but made no credential for the AK");
        tpm_key_free(f->ak);
        f->ak = NULL;
    }
    return http_exporter(f->http, f->exporter);
}

/* activate recovers the credential with the EK and the new key
 * (TPM2_ActivateCredential): what only this TPM can answer. */
static int activate(struct flow *f)
{
    int r;

    if ((r = ek_reload(&f->ek, f->tpm)) != 0)
        return failed(f, r, "the TPM could not make the EK again from its template");
    r = tpm_activate_credential(f->activated, &f->activated_len, sizeof(f->activated), f->key,
                                f->ek.key, f->challenge.credential_blob,
                                f->challenge.credential_blob_len, f->challenge.encrypted_secret,
                                f->challenge.encrypted_secret_len);

    if (r != 0)
        return failed(f, r, "the TPM could not activate the credential with the EK");
    if (f->ak == NULL)
        return 0;
    r = tpm_activate_credential(
        f->ak_activated, &f->ak_activated_len, sizeof(f->ak_activated), f->ak, f->ek.key,
        f->challenge.ak_credential_blob, f->challenge.ak_credential_blob_len,
        f->challenge.ak_encrypted_secret, f->challenge.ak_encrypted_secret_len);
    if (r != 0)
        return failed(f, r, "the TPM could not activate the AK's credential with the EK");
    ek_unload(&f->ek);
    return 0;
}

/* write_files commits the new key file, the issued chain and certificate. */
static int write_files(struct flow *f)
{
    int r = fileset_write(f->a->cert_path, sizeof(f->a->cert_path), f->cfg, f->key_pem,
                          f->key_pem_len, f->issued.cert, f->issued.chain);

    return r != 0 ? failed(f, r, "the files could not be written") : 0;
}

int enroll_attempt(struct enroll_attempt *a, struct tpm *tpm, const struct agent_config *cfg,
                   long timeout)
{
    struct flow f;
    int r;

    memset(&f, 0, sizeof(f));
    f.a = a;
    f.tpm = tpm;
    f.cfg = cfg;
    if ((r = device_read(&f.dev, tpm, cfg, a->why, sizeof(a->why))) != 0)
        goto out;
    if ((r = ek_read(&f.ek, tpm, cfg->ek)) != 0) {
        snprintf(a->why, sizeof(a->why), "the EK could not be read");
        goto out;
    }
    /* An EK made from its template leaves its slot to the new key and the
     * AK until the activation (a TPM without resource manager has three). */
    if (cfg->ak == CONFIG_AK_AUTO && f.dev.iak == NULL)
        ek_unload(&f.ek);
    if ((r = connect_verifier(&f, timeout)) != 0)
        goto out;
    /* With an EK the challenge carries the new key's public area. */
    if (f.ek.key != NULL && ((r = create_key(&f)) != 0 || (r = create_ak(&f)) != 0))
        goto out;
    if ((r = challenge(&f)) != 0)
        goto out;
    if (f.ek.key == NULL && (r = create_key(&f)) != 0)
        goto out;
    crash_point("key-created");
    if (f.ek.key != NULL && (r = activate(&f)) != 0)
        goto out;
    if ((r = build_csr(&f)) != 0)
        goto out;
    if ((r = compute_transcript(&f)) != 0)
        goto out;
    if ((r = sign_transcript(&f)) != 0)
        goto out;
    if ((r = certify_key(&f)) != 0)
        goto out;
    if ((r = quote_pcrs(&f)) != 0)
        goto out;
    if ((r = enroll(&f)) != 0)
        goto out;
    crash_point("response");
    if ((r = write_files(&f)) != 0)
        goto out;
    a->cert = f.issued.cert;
    f.issued.cert = NULL;
    a->ldevid = f.key;
    f.key = NULL;
out:
    flow_cleanup(&f);
    return r;
}

void enroll_attempt_cleanup(struct enroll_attempt *a)
{
    tpm_key_free(a->ldevid);
    X509_free(a->cert);
    memset(a, 0, sizeof(*a));
}
