/* Unit tests for verifier/core/enroll: a whole request built in the test as the
 * agent would build it (software keys stand in for the TPM's). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/tls1.h>
#include <tss2/tss2_mu.h>

#include "common/err.h"
#include "testutil.h"
#include "verifier/core/credential.h"
#include "verifier/core/enroll.h"

struct fx {
    struct tu_pki pki;
    EVP_PKEY *ldev_key, *csr_key, *iak_key;
    X509 *iak;
    int use_iak;
    uint8_t spub[1024], *iak_der;
    size_t spub_len, iak_der_len;
    struct policy *policy;
    uint8_t token_key[TOKEN_KEY_LEN];
    uint8_t nonce[TOKEN_NONCE_LEN];
    uint8_t exporter[32];       /* the verifier's value */
    uint8_t agent_exporter[32]; /* what the agent used */
    uint8_t token_exporter[32]; /* the challenge's connection */
    int tls_version;
    bool ems;
    uint8_t token[TOKEN_LEN];
    uint8_t *csr;
    size_t csr_len;
    uint8_t sig[512], info[2048], cert_sig[512], pub[1024];
    size_t sig_len, info_len, cert_sig_len, pub_len;
    ProtobufCBinaryData intermediates[CHAIN_MAX_DEPTH + 1];
    Devid__V1__TpmEvidence ev;
    Devid__V1__EnrollRequest req;
    struct enroll_config cfg;
    /* The ledger's answers the shell would pass to enroll_decide. */
    enum enroll_nonce_use nonce_use;
    enum assurance nonce_assurance;
    const char *nonce_pcr_values;
    bool device_active;
    /* EK credential activation: the challenge sealed an EK (use_ek) for
     * the new key's Name, or for another Name (ek_other_name); the
     * activated secret sent. */
    int use_ek, ek_other_name;
    struct token_ek ek;
    uint8_t secret[CREDENTIAL_SECRET_LEN];
    /* The boot-state gate's quote of PCR 7 (add_quote). */
    Devid__V1__PcrQuote quote;
    Devid__V1__PcrValue pcr, *pcrp;
    uint8_t pcr7[32], quote_info[1024], quote_sig[512];
    size_t quote_info_len, quote_sig_len;
};

/* Recomputes the agent's side from the fixture's current inputs. */
static void build(struct fx *f)
{
    uint8_t t[TRANSCRIPT_LEN], d[32], hash[32], conn[TOKEN_CONN_HASH_LEN];
    TPMT_PUBLIC pub;
    TPM2B_NAME name;
    int len;
    unsigned char *p;

    assert_int_equal(enroll_cert_hash(hash, f->pki.idevid), 0);
    assert_int_equal(token_conn_hash(conn, f->token_exporter, sizeof(f->token_exporter)), 0);
    assert_int_equal(token_seal(f->token, f->token_key, f->nonce, TU_NOW + 60, hash, conn), 0);
    free(f->csr);
    f->csr = tu_csr_der(&f->csr_len, f->csr_key, f->csr_key);
    assert_int_equal(transcript_compute(t, f->nonce, 32, f->agent_exporter, 32, f->csr, f->csr_len),
                     0);
    f->sig_len = sizeof(f->sig);
    tu_tpm_sign(f->sig, &f->sig_len, f->pki.idev_key, t);
    f->pub_len = sizeof(f->pub);
    tu_tpm_public(&pub, f->pub, &f->pub_len, f->ldev_key, TU_LDEVID_ATTRS);
    tu_tpm_name(&name, f->pub, f->pub_len);
    f->info_len = sizeof(f->info);
    tu_certify_info(f->info, &f->info_len, &name, t, sizeof(t));
    tu_sha256(d, f->info, f->info_len);
    f->cert_sig_len = sizeof(f->cert_sig);
    tu_tpm_sign(f->cert_sig, &f->cert_sig_len, f->use_iak ? f->iak_key : f->pki.idev_key, d);
    f->spub_len = sizeof(f->spub);
    tu_tpm_public(&pub, f->spub, &f->spub_len, f->use_iak ? f->iak_key : f->pki.idev_key,
                  f->use_iak ? TU_LDEVID_ATTRS | TPMA_OBJECT_RESTRICTED : TU_LDEVID_ATTRS);
    free(f->iak_der);
    f->iak_der = NULL;
    if (f->iak != NULL) {
        len = i2d_X509(f->iak, NULL);
        assert_true(len > 0);
        f->iak_der = malloc((size_t)len);
        p = f->iak_der;
        assert_int_equal(i2d_X509(f->iak, &p), len);
        f->iak_der_len = (size_t)len;
    }

    devid__v1__tpm_evidence__init(&f->ev);
    f->ev.certify_info.data = f->info;
    f->ev.certify_info.len = f->info_len;
    f->ev.certify_signature.data = f->cert_sig;
    f->ev.certify_signature.len = f->cert_sig_len;
    f->ev.ldevid_public.data = f->pub;
    f->ev.ldevid_public.len = f->pub_len;
    f->ev.signer = f->use_iak ? DEVID__V1__SIGNER_KIND__SIGNER_KIND_IAK
                              : DEVID__V1__SIGNER_KIND__SIGNER_KIND_IDEVID;
    f->ev.signer_public.data = f->spub;
    f->ev.signer_public.len = f->spub_len;
    if (f->use_iak && f->iak_der != NULL) {
        f->ev.iak_certificate.data = f->iak_der;
        f->ev.iak_certificate.len = f->iak_der_len;
    }
    devid__v1__enroll_request__init(&f->req);
    f->req.token.data = f->token;
    f->req.token.len = sizeof(f->token);
    f->req.csr.data = f->csr;
    f->req.csr.len = f->csr_len;
    f->req.challenge_signature.data = f->sig;
    f->req.challenge_signature.len = f->sig_len;
    f->req.evidence = &f->ev;
    f->intermediates[0].data = f->pki.int_der;
    f->intermediates[0].len = f->pki.int_der_len;
    f->req.intermediates = f->intermediates;
    f->req.n_intermediates = 1;
    if (f->use_ek) {
        memset(f->ek.ek_cert_hash, 0x5A, sizeof(f->ek.ek_cert_hash));
        tu_sha256(f->ek.name_hash, name.name, name.size);
        f->ek.name_hash[0] ^= (uint8_t)f->ek_other_name;
        assert_int_equal(
            token_seal_ek(f->token, f->token_key, f->nonce, TU_NOW + 60, hash, conn, &f->ek), 0);
        assert_int_equal(credential_derive(f->secret, f->token_key, f->nonce, f->ek.ek_cert_hash,
                                           f->ek.name_hash),
                         0);
        f->req.activated_secret = (ProtobufCBinaryData){sizeof(f->secret), f->secret};
    }
}

static int setup(void **state)
{
    struct fx *f = test_calloc(1, sizeof(*f));
    size_t i;

    tu_pki_init(&f->pki);
    f->ldev_key = tu_ec_key();
    f->csr_key = f->ldev_key;
    assert_non_null(f->policy = policy_new());
    for (i = 0; i < 32; i++) {
        f->token_key[i] = (uint8_t)i;
        f->nonce[i] = (uint8_t)(0x55 ^ i);
        f->exporter[i] = (uint8_t)(0xa0 + i);
    }
    memcpy(f->agent_exporter, f->exporter, 32);
    memcpy(f->token_exporter, f->exporter, 32);
    f->tls_version = TLS1_3_VERSION;
    f->cfg.store = f->pki.store;
    f->cfg.policy = f->policy;
    f->cfg.token_key = f->token_key;
    f->nonce_use = ENROLL_NONCE_UNUSED;
    build(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    free(f->csr);
    free(f->iak_der);
    X509_free(f->iak);
    EVP_PKEY_free(f->iak_key);
    policy_free(f->policy);
    if (f->csr_key != f->ldev_key)
        EVP_PKEY_free(f->csr_key);
    EVP_PKEY_free(f->ldev_key);
    tu_pki_cleanup(&f->pki);
    test_free(f);
    return 0;
}

/* decide does what the server does: enroll_peek, the ledger's answers from
 * the fixture (only when the peek passed), then enroll_decide. */
static int decide(struct fx *f, struct enroll_verdict *o, X509 *client, STACK_OF(X509) *chain,
                  const uint8_t *exporter, time_t now)
{
    struct enroll_ledger_facts facts;
    struct enroll_input in;

    memset(&facts, 0, sizeof(facts));
    in.req = &f->req;
    in.tls = (struct enroll_tls){f->tls_version, f->ems, client, chain, exporter, NULL};
    if (enroll_peek(&facts.asked, &f->cfg, &f->req, &in.tls, now) == 0) {
        facts.nonce = f->nonce_use;
        facts.nonce_cert_serial = "0a1b2c";
        facts.nonce_assurance = f->nonce_assurance;
        facts.nonce_pcr_values = f->nonce_pcr_values;
        facts.device_active = f->device_active;
    }
    in.ledger = &facts;
    in.now = now;
    return enroll_decide(o, &f->cfg, &in);
}

/* Whether |spki| holds |key| (parsed again: csr_check copies the key as
 * encoded, without a decoded key). */
static int spki_is(X509_PUBKEY *spki, EVP_PKEY *key)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    EVP_PKEY *k = NULL;
    int n = i2d_X509_PUBKEY(spki, &der), same;

    p = der;
    same = n > 0 && (k = d2i_PUBKEY(NULL, &p, n)) != NULL && EVP_PKEY_eq(k, key) == 1;
    EVP_PKEY_free(k);
    OPENSSL_free(der);
    return same;
}

static int run(struct fx *f, X509 *client, time_t now, struct enroll_verdict *o)
{
    int r = decide(f, o, client, NULL, f->exporter, now);

    if (r != 0) {
        assert_true(o->why[0] != '\0');
        assert_null(o->csr_spki);
    }
    return r;
}

static int run_simple(struct fx *f)
{
    struct enroll_verdict o;
    int r = run(f, f->pki.idevid, TU_NOW, &o);

    enroll_verdict_cleanup(&o);
    return r;
}

static void test_good(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;
    uint8_t h[32];

    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_string_equal(o.id.manufacturer, "Acme Devices");
    assert_string_equal(o.id.model, "Widget 3000");
    assert_string_equal(o.id.serial, "SN0001");
    assert_non_null(o.csr_spki);
    assert_true(spki_is(o.csr_spki, f->ldev_key));
    assert_memory_equal(o.nonce, f->nonce, 32);
    tu_sha256(h, f->csr, f->csr_len);
    assert_memory_equal(o.csr_sha256, h, 32);
    assert_int_equal(enroll_cert_hash(h, f->pki.idevid), 0);
    assert_memory_equal(o.idevid_sha256, h, 32);
    assert_int_equal(o.signer_kind, DEVID__V1__SIGNER_KIND__SIGNER_KIND_IDEVID);
    enroll_verdict_cleanup(&o);
    enroll_verdict_cleanup(NULL);
}

static void test_no_client_cert(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    assert_int_equal(run(f, NULL, TU_NOW, &o), DEVID_ERR_NO_CLIENT_CERT);
    enroll_verdict_cleanup(&o);
}

static void test_missing_intermediate(void **state)
{
    struct fx *f = *state;

    f->req.n_intermediates = 0;
    assert_int_equal(run_simple(f), DEVID_ERR_CHAIN_UNTRUSTED);
}

static void test_intermediate_from_tls_chain(void **state)
{
    struct fx *f = *state;
    STACK_OF(X509) *sk = sk_X509_new_null();
    struct enroll_verdict o;

    f->req.n_intermediates = 0;
    sk_X509_push(sk, f->pki.intermediate);
    assert_int_equal(decide(f, &o, f->pki.idevid, sk, f->exporter, TU_NOW), 0);
    enroll_verdict_cleanup(&o);
    sk_X509_free(sk);
}

static void test_bad_intermediates(void **state)
{
    struct fx *f = *state;
    size_t i;

    f->intermediates[0].len -= 1;
    assert_int_equal(run_simple(f), DEVID_ERR_CHAIN_INVALID);
    f->intermediates[0].len += 1;
    for (i = 0; i <= CHAIN_MAX_DEPTH; i++)
        f->intermediates[i] = f->intermediates[0];
    f->req.n_intermediates = CHAIN_MAX_DEPTH + 1;
    assert_int_equal(run_simple(f), DEVID_ERR_BAD_REQUEST);
}

static void test_chain_expired(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    assert_int_equal(run(f, f->pki.idevid, TU_NOW + 3651 * TU_DAY, &o), DEVID_ERR_CHAIN_EXPIRED);
    enroll_verdict_cleanup(&o);
}

static void test_token_expired(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    assert_int_equal(run(f, f->pki.idevid, TU_NOW + 61, &o), DEVID_ERR_TOKEN_EXPIRED);
    enroll_verdict_cleanup(&o);
}

static void test_token_other_client(void **state)
{
    struct fx *f = *state;
    X509 *other = tu_cert(&tu_leaf_spec, f->pki.idev_key, f->pki.intermediate, f->pki.int_key);
    struct enroll_verdict o;

    /* Same key and names, another certificate: the token is bound to the DER. */
    assert_int_equal(run(f, other, TU_NOW, &o), DEVID_ERR_TOKEN_WRONG_CLIENT);
    enroll_verdict_cleanup(&o);
    X509_free(other);
}

static void test_token_tampered(void **state)
{
    struct fx *f = *state;

    f->token[5] ^= 1;
    assert_int_equal(run_simple(f), DEVID_ERR_TOKEN_INVALID);
}

static void test_other_channel(void **state)
{
    struct fx *f = *state;

    f->agent_exporter[0] ^= 1;
    build(f);
    assert_int_equal(run_simple(f), DEVID_ERR_CHALLENGE_SIG);
}

/* A token from another connection: refused once the ledger knows the nonce
 * is unused, but a recorded request sent again on any connection gets its
 * certificate back. */
static void test_token_other_connection(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    f->token_exporter[31] ^= 1;
    build(f);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_TOKEN_WRONG_CONNECTION);
    assert_non_null(strstr(o.why, "another TLS connection"));
    enroll_verdict_cleanup(&o);
    f->nonce_use = ENROLL_NONCE_SAME_REQUEST;
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(o.action, ENROLL_RETURN_STORED);
    enroll_verdict_cleanup(&o);
    f->nonce_use = ENROLL_NONCE_OTHER_REQUEST;
    assert_int_equal(run_simple(f), DEVID_ERR_NONCE_REPLAYED);
}

/* TLS 1.2 binds only with the Extended Master Secret; the check comes
 * first, before a stored answer. */
static void test_tls12_ems(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    f->tls_version = TLS1_2_VERSION;
    f->ems = true;
    assert_int_equal(run_simple(f), 0);
    f->ems = false;
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_TLS_NO_EMS);
    assert_non_null(strstr(o.why, "Extended Master Secret"));
    enroll_verdict_cleanup(&o);
    f->nonce_use = ENROLL_NONCE_SAME_REQUEST;
    assert_int_equal(run_simple(f), DEVID_ERR_TLS_NO_EMS);
    f->tls_version = 0;
    f->ems = true;
    assert_int_equal(run_simple(f), 0);
    f->ems = false;
    assert_int_equal(run_simple(f), DEVID_ERR_TLS_NO_EMS);
}

static void test_challenge_sig_garbage(void **state)
{
    struct fx *f = *state;

    f->req.challenge_signature.len = 3;
    assert_int_equal(run_simple(f), DEVID_ERR_CHALLENGE_SIG);
}

static void test_no_evidence(void **state)
{
    struct fx *f = *state;

    f->req.evidence = NULL;
    assert_int_equal(run_simple(f), DEVID_ERR_ATTEST_MALFORMED);
}

/* Switches the fixture to IAK evidence with an IAK certificate for serial
 * |serial| issued by the fixture's intermediate. */
static void use_iak(struct fx *f, const char *serial)
{
    struct tu_cert_spec s = tu_leaf_spec;

    s.cn = "Widget 3000 IAK";
    s.serial = serial;
    s.hw_serial = serial;
    f->iak_key = tu_ec_key();
    f->iak = tu_cert(&s, f->iak_key, f->pki.intermediate, f->pki.int_key);
    f->use_iak = 1;
    build(f);
}

/* add_quote attaches a quote of PCR 7 holding |value| (32 bytes), made as a
 * TPM would over T and signed by |by|. */
static void add_quote(struct fx *f, const uint8_t *value, EVP_PKEY *by)
{
    uint8_t t[TRANSCRIPT_LEN], d[32];
    TPMS_ATTEST att;
    size_t off = 0;

    assert_int_equal(transcript_compute(t, f->nonce, 32, f->agent_exporter, 32, f->csr, f->csr_len),
                     0);
    memcpy(f->pcr7, value, 32);
    memset(&att, 0, sizeof(att));
    att.magic = TPM2_GENERATED_VALUE;
    att.type = TPM2_ST_ATTEST_QUOTE;
    memcpy(att.extraData.buffer, t, sizeof(t));
    att.extraData.size = sizeof(t);
    att.attested.quote.pcrSelect.count = 1;
    att.attested.quote.pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA256;
    att.attested.quote.pcrSelect.pcrSelections[0].sizeofSelect = 3;
    att.attested.quote.pcrSelect.pcrSelections[0].pcrSelect[0] = 0x80;
    tu_sha256(att.attested.quote.pcrDigest.buffer, f->pcr7, 32);
    att.attested.quote.pcrDigest.size = 32;
    assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(&att, f->quote_info, sizeof(f->quote_info), &off),
                     TSS2_RC_SUCCESS);
    f->quote_info_len = off;
    tu_sha256(d, f->quote_info, f->quote_info_len);
    f->quote_sig_len = sizeof(f->quote_sig);
    tu_tpm_sign(f->quote_sig, &f->quote_sig_len, by, d);
    devid__v1__pcr_value__init(&f->pcr);
    f->pcr.index = 7;
    f->pcr.sha256 = (ProtobufCBinaryData){32, f->pcr7};
    f->pcrp = &f->pcr;
    devid__v1__pcr_quote__init(&f->quote);
    f->quote.quote_info = (ProtobufCBinaryData){f->quote_info_len, f->quote_info};
    f->quote.quote_signature = (ProtobufCBinaryData){f->quote_sig_len, f->quote_sig};
    f->quote.n_pcrs = 1;
    f->quote.pcrs = &f->pcrp;
    f->req.quote = &f->quote;
}

/* The policy of the boot-state gate: PCR 7 of "Widget 3000" must hold
 * 0x77... or 0x78... */
static void gate_pcr7(struct fx *f)
{
    uint8_t v[32];

    memset(v, 0x77, sizeof(v));
    assert_int_equal(policy_add_pcr(f->policy, "Acme Devices", "Widget 3000", 7, v), 0);
    memset(v, 0x78, sizeof(v));
    assert_int_equal(policy_add_pcr(f->policy, "Acme Devices", "Widget 3000", 7, v), 0);
}

static void test_pcr_gate(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;
    uint8_t v[32];

    gate_pcr7(f);
    use_iak(f, "SN0001");
    memset(v, 0x78, sizeof(v));
    add_quote(f, v, f->iak_key);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(o.n_pcrs, 1);
    assert_int_equal(o.pcrs[0].index, 7);
    assert_memory_equal(o.pcrs[0].sha256, v, 32);
    enroll_verdict_cleanup(&o);
    /* A value outside the set: the policy names PCR, value and set. */
    memset(v, 0x33, sizeof(v));
    add_quote(f, v, f->iak_key);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_PCR_VALUE);
    assert_non_null(strstr(o.why,
                           "PCR 7 of model \"Widget 3000\" of \"Acme Devices\" holds "
                           "sha256:3333"));
    assert_non_null(strstr(o.why, "allowed: sha256:7777"));
    assert_non_null(strstr(o.why, ", sha256:7878"));
    enroll_verdict_cleanup(&o);
    /* A quote signed by the IDevID, an unrestricted key. */
    memset(v, 0x77, sizeof(v));
    add_quote(f, v, f->pki.idev_key);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_QUOTE_SIGNATURE);
    enroll_verdict_cleanup(&o);
    /* No quote at all. */
    f->req.quote = NULL;
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_QUOTE_MALFORMED);
    assert_non_null(strstr(o.why, "requires a TPM2_Quote of SHA-256 PCRs 7"));
    enroll_verdict_cleanup(&o);
    /* A model without PCR rules ignores the quote. */
    policy_free(f->policy);
    assert_non_null(f->policy = policy_new());
    f->cfg.policy = f->policy;
    memset(v, 0x33, sizeof(v));
    add_quote(f, v, f->pki.idev_key);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(o.n_pcrs, 0);
    enroll_verdict_cleanup(&o);
}

/* Without an IAK nothing restricted signs the quote: refused whatever the
 * values, with a reason that says so. */
static void test_pcr_gate_without_iak(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;
    uint8_t v[32];

    gate_pcr7(f);
    memset(v, 0x77, sizeof(v));
    add_quote(f, v, f->pki.idev_key);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_QUOTE_SIGNATURE);
    assert_non_null(strstr(o.why, "an IAK, or an AK bound by the EK credential activation"));
    enroll_verdict_cleanup(&o);
}

/* ak_fixture makes |f| a device without an IAK whose challenge made the EK
 * credential and the AK credential for |ak|: the quote of PCR 7 = 0x77...
 * is signed by |ak| and carries its public area and secret. */
static void ak_fixture(struct fx *f, EVP_PKEY *ak, uint8_t *ak_pub, size_t *ak_pub_len,
                       uint8_t ak_secret[CREDENTIAL_SECRET_LEN])
{
    TPMT_PUBLIC pub;
    TPM2B_NAME name;
    uint8_t v[32], h[32];

    tu_tpm_public(&pub, ak_pub, ak_pub_len, ak, TU_LDEVID_ATTRS | TPMA_OBJECT_RESTRICTED);
    tu_tpm_name(&name, ak_pub, *ak_pub_len);
    tu_sha256(h, name.name, name.size);
    f->use_ek = 1;
    build(f);
    assert_int_equal(credential_derive_ak(ak_secret, f->token_key, f->nonce, f->ek.ek_cert_hash, h),
                     0);
    memset(v, 0x77, sizeof(v));
    add_quote(f, v, ak);
    f->quote.ak_public = (ProtobufCBinaryData){*ak_pub_len, ak_pub};
    f->quote.ak_activated_secret = (ProtobufCBinaryData){CREDENTIAL_SECRET_LEN, ak_secret};
}

/* Without an IAK, the AK the EK credential activation bound signs the quote;
 * a wrong or replayed AK secret, another AK, or none is refused. */
static void test_pcr_gate_with_ak(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;
    EVP_PKEY *ak = tu_ec_key(), *other = tu_ec_key();
    uint8_t ak_pub[1024], other_pub[1024], secret[CREDENTIAL_SECRET_LEN];
    size_t ak_pub_len = sizeof(ak_pub), other_pub_len = sizeof(other_pub);
    TPMT_PUBLIC pub;

    gate_pcr7(f);
    ak_fixture(f, ak, ak_pub, &ak_pub_len, secret);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_true(o.quote_by_ak);
    assert_int_equal(o.assurance, ASSURANCE_EK);
    assert_int_equal(o.n_pcrs, 1);
    enroll_verdict_cleanup(&o);
    /* The AK secret of another challenge (a replay): REASON_CREDENTIAL. */
    secret[0] ^= 1;
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_CREDENTIAL);
    assert_non_null(strstr(o.why, "ak_activated_secret"));
    enroll_verdict_cleanup(&o);
    secret[0] ^= 1;
    f->quote.ak_activated_secret.len = 0;
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_CREDENTIAL);
    enroll_verdict_cleanup(&o);
    f->quote.ak_activated_secret.len = sizeof(secret);
    /* The LDevID's credential is no answer for the AK's. */
    f->quote.ak_activated_secret = (ProtobufCBinaryData){sizeof(f->secret), f->secret};
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_CREDENTIAL);
    enroll_verdict_cleanup(&o);
    f->quote.ak_activated_secret = (ProtobufCBinaryData){sizeof(secret), secret};
    /* Another AK signs and names itself: the secret is not its credential. */
    tu_tpm_public(&pub, other_pub, &other_pub_len, other, TU_LDEVID_ATTRS | TPMA_OBJECT_RESTRICTED);
    f->quote.ak_public = (ProtobufCBinaryData){other_pub_len, other_pub};
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_CREDENTIAL);
    enroll_verdict_cleanup(&o);
    f->quote.ak_public = (ProtobufCBinaryData){ak_pub_len, ak_pub};
    /* The right AK named, the quote signed by another key. */
    {
        uint8_t v[32];

        memset(v, 0x77, sizeof(v));
        add_quote(f, v, other);
        f->quote.ak_public = (ProtobufCBinaryData){ak_pub_len, ak_pub};
        f->quote.ak_activated_secret = (ProtobufCBinaryData){sizeof(secret), secret};
        assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_QUOTE_SIGNATURE);
        enroll_verdict_cleanup(&o);
    }
    /* An AK that is not restricted is refused by its attributes, whatever
     * the secret. */
    other_pub_len = sizeof(other_pub);
    tu_tpm_public(&pub, other_pub, &other_pub_len, ak, TU_LDEVID_ATTRS);
    f->quote.ak_public = (ProtobufCBinaryData){other_pub_len, other_pub};
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_ATTEST_ATTRIBUTES);
    assert_non_null(strstr(o.why, "restricted must be set"));
    enroll_verdict_cleanup(&o);
    /* quote.ak_public that does not parse. */
    f->quote.ak_public = (ProtobufCBinaryData){3, ak_pub};
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_QUOTE_MALFORMED);
    enroll_verdict_cleanup(&o);
    /* No AK in the quote: nothing restricted signed it. */
    f->quote.ak_public.len = 0;
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_QUOTE_SIGNATURE);
    assert_non_null(strstr(o.why, "sent no AK"));
    enroll_verdict_cleanup(&o);
    /* A challenge without an EK made no AK credential: the same AK and
     * secret are refused. */
    f->use_ek = 0;
    build(f);
    {
        uint8_t v[32];

        memset(v, 0x77, sizeof(v));
        add_quote(f, v, ak);
        f->quote.ak_public = (ProtobufCBinaryData){ak_pub_len, ak_pub};
        f->quote.ak_activated_secret = (ProtobufCBinaryData){sizeof(secret), secret};
    }
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_QUOTE_SIGNATURE);
    enroll_verdict_cleanup(&o);
    EVP_PKEY_free(ak);
    EVP_PKEY_free(other);
}

/* A retry of a recorded request is held to the PCR rules of now, against
 * the values recorded with its certificate. */
static void test_pcr_gate_replay(void **state)
{
    static const char v77[] =
        "7=sha256:7777777777777777777777777777777777777777777777777777777777777777";
    static const char v33[] =
        "7=sha256:3333333333333333333333333333333333333333333333333333333333333333";
    struct fx *f = *state;
    struct enroll_verdict o;
    uint8_t v[32];

    use_iak(f, "SN0001");
    memset(v, 0x33, sizeof(v));
    add_quote(f, v, f->iak_key);
    f->nonce_use = ENROLL_NONCE_SAME_REQUEST;
    f->nonce_assurance = ASSURANCE_IAK;
    /* Recorded without a PCR rule (no values): returned while none applies. */
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(o.action, ENROLL_RETURN_STORED);
    enroll_verdict_cleanup(&o);
    /* Under a rule, values never verified do not count... */
    gate_pcr7(f);
    memset(v, 0x77, sizeof(v));
    add_quote(f, v, f->iak_key);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_PCR_VALUE);
    assert_non_null(strstr(o.why, "recorded with PCR values \"\""));
    enroll_verdict_cleanup(&o);
    /* ... the recorded ones do, judged by the rule of now. */
    f->nonce_pcr_values = v77;
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(o.action, ENROLL_RETURN_STORED);
    enroll_verdict_cleanup(&o);
    memset(v, 0x33, sizeof(v));
    add_quote(f, v, f->iak_key);
    f->nonce_pcr_values = v33;
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_PCR_VALUE);
    assert_non_null(strstr(o.why, "holds sha256:3333"));
    enroll_verdict_cleanup(&o);
}

static void test_iak_accepted(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    use_iak(f, "SN0001");
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(o.signer, ATTEST_SIGNER_IAK_RESTRICTED);
    assert_int_equal(o.signer_kind, DEVID__V1__SIGNER_KIND__SIGNER_KIND_IAK);
    assert_int_equal(o.assurance, ASSURANCE_IAK);
    assert_true(o.assurance_known);
    enroll_verdict_cleanup(&o);
}

static void test_minimum_iak_with_iak(void **state)
{
    struct fx *f = *state;

    assert_int_equal(policy_set_minimum(f->policy, NULL, NULL, ASSURANCE_IAK), 0);
    use_iak(f, "SN0001");
    assert_int_equal(run_simple(f), 0);
}

static void test_minimum_iak_with_idevid(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(o.signer, ATTEST_SIGNER_IDEVID_UNRESTRICTED);
    assert_int_equal(o.assurance, ASSURANCE_NONE);
    enroll_verdict_cleanup(&o);
    assert_int_equal(policy_set_minimum(f->policy, NULL, NULL, ASSURANCE_IAK), 0);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_POLICY_DENIED);
    assert_non_null(strstr(o.why, "assurance none is below minimum iak"));
    assert_non_null(strstr(o.why, "not where the new key lives"));
    assert_string_equal(o.id.serial, "SN0001");
    /* The refusal still says what the evidence showed, for the log. */
    assert_true(o.assurance_known);
    assert_int_equal(o.assurance, ASSURANCE_NONE);
    enroll_verdict_cleanup(&o);
}

/* A minimum of ek is met by iak evidence, not by none. */
static void test_minimum_ek(void **state)
{
    struct fx *f = *state;

    assert_int_equal(policy_set_minimum(f->policy, NULL, NULL, ASSURANCE_EK), 0);
    assert_int_equal(run_simple(f), DEVID_ERR_POLICY_DENIED);
    use_iak(f, "SN0001");
    assert_int_equal(run_simple(f), 0);
}

/* The most specific rule decides: the model's over the manufacturer's. */
static void test_minimum_per_model(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;
    const char *mfr, *model;

    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    mfr = o.id.manufacturer;
    model = o.id.model;
    assert_int_equal(policy_set_minimum(f->policy, mfr, NULL, ASSURANCE_IAK), 0);
    assert_int_equal(policy_set_minimum(f->policy, mfr, "Some Other Model", ASSURANCE_NONE), 0);
    enroll_verdict_cleanup(&o);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_POLICY_DENIED);
    assert_non_null(strstr(o.why, "[assurance \""));
    mfr = o.id.manufacturer;
    model = o.id.model;
    assert_int_equal(policy_set_minimum(f->policy, mfr, model, ASSURANCE_NONE), 0);
    enroll_verdict_cleanup(&o);
    assert_int_equal(run_simple(f), 0);
}

/* An IAK that is a CA is refused, naming the IAK certificate and the
 * field. */
static void test_iak_is_ca(void **state)
{
    struct fx *f = *state;
    struct tu_cert_spec s = tu_leaf_spec;
    struct enroll_verdict o;

    use_iak(f, "SN0001");
    X509_free(f->iak);
    s.cn = "Widget 3000 IAK";
    s.ca = 1;
    f->iak = tu_cert(&s, f->iak_key, f->pki.intermediate, f->pki.int_key);
    build(f);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_ATTEST_SIGNATURE);
    assert_non_null(strstr(o.why, "iak_certificate: certificate \""));
    assert_non_null(strstr(o.why, "CN=Widget 3000 IAK"));
    assert_non_null(strstr(o.why, "basicConstraints cA is TRUE"));
    enroll_verdict_cleanup(&o);
}

/* An IAK certificate for the IDevID's own key is no IAK: the IDevID signs
 * anything, so a TPMS_ATTEST it signed proves nothing of residency. */
static void test_iak_is_idevid_key(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    use_iak(f, "SN0001");
    EVP_PKEY_free(f->iak_key);
    X509_free(f->iak);
    f->iak_key = f->pki.idev_key;
    EVP_PKEY_up_ref(f->iak_key);
    f->iak = f->pki.idevid;
    X509_up_ref(f->iak);
    build(f);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_ATTEST_SIGNATURE);
    assert_non_null(strstr(o.why, "certifies the IDevID's own key"));
    enroll_verdict_cleanup(&o);
}

static void test_iak_other_serial(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    use_iak(f, "SN0002");
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_ATTEST_SIGNATURE);
    assert_non_null(strstr(o.why, "\"SN0002\" is not the IDevID's serial \"SN0001\""));
    enroll_verdict_cleanup(&o);
}

static void test_iak_untrusted(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = tu_ec_key();
    struct tu_cert_spec other_root_spec = {.o = "Acme Devices",
                                           .cn = "Acme Root CA",
                                           .ca = 1,
                                           .not_before = TU_NOW - 365 * TU_DAY,
                                           .not_after = TU_NOW + 3650 * TU_DAY};
    X509 *other_root = tu_cert(&other_root_spec, k, NULL, k);
    struct enroll_verdict o;

    use_iak(f, "SN0001");
    X509_free(f->iak);
    f->iak = tu_cert(&tu_leaf_spec, f->iak_key, other_root, k);
    build(f);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_ATTEST_SIGNATURE);
    assert_non_null(strstr(o.why, "iak_certificate"));
    enroll_verdict_cleanup(&o);
    X509_free(other_root);
    EVP_PKEY_free(k);
}

static void test_iak_missing_certificate(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    f->ev.signer = DEVID__V1__SIGNER_KIND__SIGNER_KIND_IAK;
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_ATTEST_MALFORMED);
    assert_non_null(strstr(o.why, "iak_certificate"));
    enroll_verdict_cleanup(&o);
}

static void test_reenroll_rule(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    f->device_active = true;
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(o.action, ENROLL_ISSUE);
    enroll_verdict_cleanup(&o);
    policy_set_reenroll(f->policy, false);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_POLICY_DENIED);
    assert_non_null(strstr(o.why, "already enrolled"));
    enroll_verdict_cleanup(&o);
    assert_int_equal(enroll_decide(&o, &f->cfg, NULL), DEVID_ERR_INVALID_ARGUMENT);
    enroll_verdict_cleanup(&o);
}

static void test_nonce_same_request(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    f->nonce_use = ENROLL_NONCE_SAME_REQUEST;
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(o.action, ENROLL_RETURN_STORED);
    assert_string_equal(o.id.serial, "SN0001");
    assert_null(o.csr_spki);
    enroll_verdict_cleanup(&o);
    /* A stored answer needs no exporter: a retry is answered before it. */
    assert_int_equal(decide(f, &o, f->pki.idevid, NULL, NULL, TU_NOW), 0);
    assert_int_equal(o.action, ENROLL_RETURN_STORED);
    enroll_verdict_cleanup(&o);
}

/* The replay path judges the policy again: a device deny-listed since its
 * certificate was recorded gets it back no more, with the same reason as a
 * first enrollment. */
static void test_replay_denylisted(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    f->nonce_use = ENROLL_NONCE_SAME_REQUEST;
    assert_int_equal(policy_add(f->policy, POLICY_DENYLIST_SERIAL, "SN0001"), 0);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_POLICY_DENIED);
    assert_int_equal(o.action, ENROLL_REFUSE);
    assert_non_null(strstr(o.why, "serial \"SN0001\" is on the local deny list"));
    enroll_verdict_cleanup(&o);
}

/* The stored certificate's assurance meets today's minimum, or it is not
 * returned; with it, it is, and the verdict names the stored level. */
static void test_replay_below_minimum(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    f->nonce_use = ENROLL_NONCE_SAME_REQUEST;
    f->nonce_assurance = ASSURANCE_NONE;
    assert_int_equal(policy_set_minimum(f->policy, NULL, NULL, ASSURANCE_IAK), 0);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_POLICY_DENIED);
    assert_non_null(strstr(o.why, "assurance none is below minimum iak"));
    enroll_verdict_cleanup(&o);
    f->nonce_assurance = ASSURANCE_IAK;
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(o.action, ENROLL_RETURN_STORED);
    assert_int_equal(o.assurance, ASSURANCE_IAK);
    enroll_verdict_cleanup(&o);
}

/* A revoked IDevID is refused on the replay path too: the chain, with
 * revocation, is checked before the ledger is asked. */
static void test_replay_revoked(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;
    X509_CRL *crl;

    struct chain_mfr_settings set;
    struct chain_store *store;
    X509_REVOKED *rev;
    ASN1_TIME *t;

    f->nonce_use = ENROLL_NONCE_SAME_REQUEST;
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(o.action, ENROLL_RETURN_STORED);
    enroll_verdict_cleanup(&o);
    assert_non_null(crl = X509_CRL_new());
    assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(f->pki.intermediate)), 1);
    assert_non_null(t = ASN1_TIME_set(NULL, TU_NOW - 3600));
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
    assert_non_null(ASN1_TIME_set(t, TU_NOW + 3600));
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
    assert_non_null(rev = X509_REVOKED_new());
    assert_int_equal(X509_REVOKED_set_serialNumber(rev, X509_get_serialNumber(f->pki.idevid)), 1);
    assert_int_equal(X509_REVOKED_set_revocationDate(rev, t), 1);
    assert_int_equal(X509_CRL_add0_revoked(crl, rev), 1);
    ASN1_TIME_free(t);
    assert_true(X509_CRL_sign(crl, f->pki.int_key, EVP_sha256()) > 0);
    chain_mfr_settings_default(&set);
    set.revocation = CHAIN_REVOCATION_HARD;
    assert_non_null(store = chain_store_new());
    assert_int_equal(chain_store_add_manufacturer(store, "Acme Devices", &set), 0);
    assert_int_equal(chain_store_add_mfr_root(store, "Acme Devices", f->pki.root), 0);
    assert_int_equal(chain_store_add_crl(store, "Acme Devices", crl), 0);
    X509_CRL_free(crl);
    f->cfg.store = store;
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_CHAIN_REVOKED);
    assert_int_equal(o.action, ENROLL_REFUSE);
    assert_non_null(strstr(o.why, "is listed in the CRL"));
    enroll_verdict_cleanup(&o);
    f->cfg.store = f->pki.store;
    chain_store_free(store);
}

static void test_nonce_other_request(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    f->nonce_use = ENROLL_NONCE_OTHER_REQUEST;
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_NONCE_REPLAYED);
    assert_int_equal(o.action, ENROLL_REFUSE);
    assert_non_null(strstr(o.why, "already used for certificate 0a1b2c"));
    enroll_verdict_cleanup(&o);
}

static void test_no_exporter(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    assert_int_equal(decide(f, &o, f->pki.idevid, NULL, NULL, TU_NOW), DEVID_ERR_TLS);
    enroll_verdict_cleanup(&o);
}

static void test_ledger_not_asked(void **state)
{
    struct fx *f = *state;
    struct enroll_ledger_facts facts;
    struct enroll_input in = {
        &f->req, {TLS1_3_VERSION, false, f->pki.idevid, NULL, f->exporter, NULL}, &facts, TU_NOW};
    struct enroll_verdict o;

    memset(&facts, 0, sizeof(facts));
    assert_int_equal(enroll_decide(&o, &f->cfg, &in), DEVID_ERR_INTERNAL);
    enroll_verdict_cleanup(&o);
    /* Answers about another nonce are not this request's. */
    assert_int_equal(enroll_peek(&facts.asked, &f->cfg, &f->req, &in.tls, TU_NOW), 0);
    facts.nonce = ENROLL_NONCE_UNUSED;
    facts.asked.nonce[0] ^= 1;
    assert_int_equal(enroll_decide(&o, &f->cfg, &in), DEVID_ERR_INTERNAL);
    enroll_verdict_cleanup(&o);
}

static void test_decide_conflict(void **state)
{
    struct fx *f = *state;
    struct enroll_ledger_facts facts;
    struct enroll_verdict o;

    memset(&facts, 0, sizeof(facts));
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    facts.nonce = ENROLL_NONCE_SAME_REQUEST;
    assert_int_equal(enroll_decide_conflict(&o, &f->cfg, &facts), 0);
    assert_int_equal(o.action, ENROLL_RETURN_STORED);
    assert_null(o.csr_spki);
    enroll_verdict_cleanup(&o);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    facts.nonce = ENROLL_NONCE_UNUSED;
    assert_int_equal(enroll_decide_conflict(&o, &f->cfg, &facts), DEVID_ERR_NONCE_REPLAYED);
    assert_int_equal(o.action, ENROLL_REFUSE);
    assert_null(o.csr_spki);
    assert_int_equal(enroll_decide_conflict(&o, &f->cfg, &facts), DEVID_ERR_INVALID_ARGUMENT);
    enroll_verdict_cleanup(&o);
    /* Another enrollment of the device was recorded meanwhile. */
    policy_set_reenroll(f->policy, false);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    facts.nonce = ENROLL_NONCE_UNUSED;
    facts.device_active = true;
    facts.nonce_cert_serial = "c0ffee";
    assert_int_equal(enroll_decide_conflict(&o, &f->cfg, &facts), DEVID_ERR_POLICY_DENIED);
    assert_int_equal(o.action, ENROLL_REFUSE);
    assert_null(o.csr_spki);
    assert_non_null(strstr(o.why, "already enrolled and reenroll = deny"));
    assert_non_null(strstr(o.why, "certificate c0ffee was recorded for it meanwhile"));
    enroll_verdict_cleanup(&o);
    /* The ledger refuses only under reenroll = deny: otherwise it is a bug. */
    policy_set_reenroll(f->policy, true);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(enroll_decide_conflict(&o, &f->cfg, &facts), DEVID_ERR_INTERNAL);
    enroll_verdict_cleanup(&o);
}

static void test_certify_nonce(void **state)
{
    struct fx *f = *state;

    f->info[20] ^= 1; /* magic 4, type 2, signer 2+4, size 2: T from 14 */
    assert_int_equal(run_simple(f), DEVID_ERR_ATTEST_NONCE);
}

static void test_csr_other_key(void **state)
{
    struct fx *f = *state;

    f->csr_key = tu_ec_key();
    build(f);
    assert_int_equal(run_simple(f), DEVID_ERR_CSR_KEY_MISMATCH);
}

static void test_policy_denied(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    assert_int_equal(policy_add(f->policy, POLICY_DENY_SERIAL, "SN00*"), 0);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_POLICY_DENIED);
    assert_non_null(strstr(o.why, "SN0001"));
    enroll_verdict_cleanup(&o);
}

/* The credential activated for the certified key lifts an IDevID-signed
 * enrollment to ek, which meets a minimum of ek. */
static void test_ek_credential(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    f->use_ek = 1;
    build(f);
    assert_int_equal(policy_set_minimum(f->policy, NULL, NULL, ASSURANCE_EK), 0);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(o.assurance, ASSURANCE_EK);
    assert_true(o.credential_ok);
    enroll_verdict_cleanup(&o);
}

/* A wrong answer, a missing one, one of another nonce (a replay under a
 * new challenge) and one without a credential are REASON_CREDENTIAL; a
 * certified key of another Name is REASON_CREDENTIAL_NAME. */
static void test_ek_credential_refusals(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;
    uint8_t old[CREDENTIAL_SECRET_LEN];

    f->use_ek = 1;
    build(f);
    f->secret[31] ^= 1;
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_CREDENTIAL);
    assert_non_null(strstr(o.why, "is not the credential made for this challenge"));
    enroll_verdict_cleanup(&o);
    f->req.activated_secret.len = 0;
    assert_int_equal(run_simple(f), DEVID_ERR_CREDENTIAL);

    build(f);
    memcpy(old, f->secret, sizeof(old));
    f->nonce[0] ^= 0xFF;
    build(f);
    memcpy(f->secret, old, sizeof(old));
    assert_int_equal(run_simple(f), DEVID_ERR_CREDENTIAL);
    f->nonce[0] ^= 0xFF;

    f->ek_other_name = 1;
    build(f);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_CREDENTIAL_NAME);
    assert_non_null(strstr(o.why, "not the key the EK credential was made for"));
    enroll_verdict_cleanup(&o);

    f->use_ek = 0;
    f->ek_other_name = 0;
    build(f);
    f->req.activated_secret = (ProtobufCBinaryData){sizeof(old), old};
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_CREDENTIAL);
    assert_non_null(strstr(o.why, "the challenge made no credential"));
    enroll_verdict_cleanup(&o);
}

/* Without the EK an IDevID-signed enrollment stays below a minimum of ek. */
static void test_minimum_ek_without(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;

    assert_int_equal(policy_set_minimum(f->policy, NULL, NULL, ASSURANCE_EK), 0);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_POLICY_DENIED);
    assert_non_null(strstr(o.why, "assurance none is below minimum ek"));
    enroll_verdict_cleanup(&o);
}

/* A token key change on the verifier: |key| becomes the current key and the
 * one that sealed the fixture's token becomes the accept-only key (NULL: it
 * is dropped). */
static void change_key(struct fx *f, uint8_t key[TOKEN_KEY_LEN], const uint8_t *accept)
{
    size_t i;

    for (i = 0; i < TOKEN_KEY_LEN; i++)
        key[i] = (uint8_t)(0xC3 ^ (7 * i));
    f->cfg.token_key = key;
    f->cfg.token_accept_key = accept;
}

/* A challenge answered under the old key enrolls under the new one while the
 * old key is the accept-only key, and the verdict says which key opened the
 * token; a token of the current key says so too. */
static void test_token_accept_key(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;
    uint8_t key[TOKEN_KEY_LEN];

    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(o.token_key, TOKEN_KEY_CURRENT);
    enroll_verdict_cleanup(&o);
    change_key(f, key, f->token_key);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(o.action, ENROLL_ISSUE);
    assert_int_equal(o.token_key, TOKEN_KEY_ACCEPT);
    assert_memory_equal(o.nonce, f->nonce, 32);
    enroll_verdict_cleanup(&o);
    /* The retry of a recorded request, on a replica that changed keys. */
    f->nonce_use = ENROLL_NONCE_SAME_REQUEST;
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(o.action, ENROLL_RETURN_STORED);
    assert_int_equal(o.token_key, TOKEN_KEY_ACCEPT);
    enroll_verdict_cleanup(&o);
}

/* The EK credential was derived under the key that sealed the token: it
 * verifies under the accept-only key that opened it. */
static void test_token_accept_key_credential(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;
    uint8_t key[TOKEN_KEY_LEN];

    f->use_ek = 1;
    build(f);
    change_key(f, key, f->token_key);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(o.token_key, TOKEN_KEY_ACCEPT);
    assert_true(o.credential_ok);
    assert_int_equal(o.assurance, ASSURANCE_EK);
    enroll_verdict_cleanup(&o);
    /* A credential of the current key is not the one the token's key made. */
    assert_int_equal(
        credential_derive(f->secret, key, f->nonce, f->ek.ek_cert_hash, f->ek.name_hash), 0);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_CREDENTIAL);
    enroll_verdict_cleanup(&o);
}

/* The AK credential too was derived under the key that sealed the token:
 * during a key change the AK's quote verifies under the accept-only key. */
static void test_token_accept_key_ak(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;
    EVP_PKEY *ak = tu_ec_key();
    uint8_t key[TOKEN_KEY_LEN], ak_pub[1024], secret[CREDENTIAL_SECRET_LEN];
    size_t ak_pub_len = sizeof(ak_pub);

    gate_pcr7(f);
    ak_fixture(f, ak, ak_pub, &ak_pub_len, secret);
    change_key(f, key, f->token_key);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), 0);
    assert_int_equal(o.token_key, TOKEN_KEY_ACCEPT);
    assert_true(o.quote_by_ak);
    enroll_verdict_cleanup(&o);
    EVP_PKEY_free(ak);
}

/* A token sealed with a key that is neither the current nor the accept-only
 * one, or with the old key after it was dropped, is refused with the usual
 * reason and message, before the ledger is asked. */
static void test_token_neither_key(void **state)
{
    struct fx *f = *state;
    struct enroll_verdict o;
    struct enroll_ledger_query q;
    struct enroll_tls tls = {TLS1_3_VERSION, false, f->pki.idevid, NULL, f->exporter, NULL};
    uint8_t key[TOKEN_KEY_LEN], other[TOKEN_KEY_LEN];

    memset(other, 0x77, sizeof(other));
    change_key(f, key, other);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_TOKEN_INVALID);
    assert_string_equal(o.why, "token is malformed or its MAC does not verify");
    assert_int_equal(o.token_key, TOKEN_KEY_NONE);
    enroll_verdict_cleanup(&o);
    assert_int_equal(enroll_peek(&q, &f->cfg, &f->req, &tls, TU_NOW), DEVID_ERR_TOKEN_INVALID);
    change_key(f, key, NULL);
    assert_int_equal(run(f, f->pki.idevid, TU_NOW, &o), DEVID_ERR_TOKEN_INVALID);
    assert_string_equal(o.why, "token is malformed or its MAC does not verify");
    enroll_verdict_cleanup(&o);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_good),
        T(test_no_client_cert),
        T(test_missing_intermediate),
        T(test_intermediate_from_tls_chain),
        T(test_bad_intermediates),
        T(test_chain_expired),
        T(test_token_expired),
        T(test_token_other_client),
        T(test_token_tampered),
        T(test_token_accept_key),
        T(test_token_accept_key_credential),
        T(test_token_accept_key_ak),
        T(test_token_neither_key),
        T(test_other_channel),
        T(test_token_other_connection),
        T(test_tls12_ems),
        T(test_challenge_sig_garbage),
        T(test_no_evidence),
        T(test_iak_accepted),
        T(test_minimum_iak_with_iak),
        T(test_minimum_iak_with_idevid),
        T(test_minimum_ek),
        T(test_minimum_per_model),
        T(test_iak_is_idevid_key),
        T(test_iak_is_ca),
        T(test_replay_denylisted),
        T(test_replay_below_minimum),
        T(test_replay_revoked),
        T(test_iak_other_serial),
        T(test_iak_untrusted),
        T(test_iak_missing_certificate),
        T(test_reenroll_rule),
        T(test_nonce_same_request),
        T(test_nonce_other_request),
        T(test_no_exporter),
        T(test_ledger_not_asked),
        T(test_decide_conflict),
        T(test_certify_nonce),
        T(test_csr_other_key),
        T(test_policy_denied),
        T(test_ek_credential),
        T(test_ek_credential_refusals),
        T(test_minimum_ek_without),
        T(test_pcr_gate),
        T(test_pcr_gate_without_iak),
        T(test_pcr_gate_with_ak),
        T(test_pcr_gate_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
