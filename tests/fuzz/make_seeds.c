/* Writes the seed corpora under DIR/<target>/ from the fixed world in
 * fuzzutil.c: valid inputs first (checked against the core here, so a seed
 * that stops passing is caught when it is regenerated), then near misses.
 *   fuzz_make_seeds tests/fuzz/corpus */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <tss2/tss2_mu.h>

#include "agent/core/wire.h"
#include "common/err.h"
#include "common/nvcert.h"
#include "fuzzutil.h"
#include "verifier/core/attest.h"
#include "verifier/core/quote.h"
#include "verifier/core/challenge.h"
#include "verifier/core/credential.h"
#include "verifier/core/chain.h"
#include "verifier/core/csr.h"
#include "verifier/core/enroll.h"
#include "verifier/core/identity.h"
#include "verifier/core/profile.h"
#include "verifier/core/signcheck.h"
#include "verifier/core/signreq.h"
#include "verifier/core/tlog.h"
#include "verifier/core/merkle.h"

static const char *outdir;

static void put(const char *target, const char *name, const uint8_t *buf, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", outdir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        fu_fail(path);
    snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
    if (len >= 4096)
        fu_fail("seed under 4 KiB");
    if ((f = fopen(path, "wb")) == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
        fu_fail(path);
}

static void expect(int got, int want, const char *what)
{
    if (got != want) {
        fprintf(stderr, "seed %s: got %s, want %s\n", what, devid_err_str(got),
                devid_err_str(want));
        abort();
    }
}

/* ---- EnrollRequest ---- */

struct req_opts {
    int64_t expires;       /* token expiry relative to FU_NOW */
    int csr_key_is_idevid; /* CSR for the wrong key */
    int no_intermediates;
    int signer;
    TPMA_OBJECT attrs;
    int other_connection; /* token sealed on another connection */
    /* EK credential: 1 the token seals an EK and activated_secret is the
     * credential, 2 ... is not, 3 activated_secret without an EK. */
    int ek;
    /* The boot-state gate's AK (with ek 1): 1 the quote of PCR 7 it signed
     * carries its public area and secret, 2 a wrong secret. */
    int ak;
};

/* ak_quote fills |q| with a quote of PCR 7 (FU_PCR7 bytes) over |t|, signed
 * by the AK |ak| whose public area is |ak_pub|, with |secret|; the buffers
 * are the caller's. */
static void ak_quote(Devid__V1__PcrQuote *q, Devid__V1__PcrValue *pcr, Devid__V1__PcrValue **pcrp,
                     uint8_t info[1024], uint8_t sig[256], uint8_t value[32], EVP_PKEY *ak,
                     const uint8_t t[TRANSCRIPT_LEN], uint8_t *ak_pub, size_t ak_pub_len,
                     uint8_t secret[CREDENTIAL_SECRET_LEN])
{
    uint8_t digest[32];
    size_t info_len = 0, sig_len = 256;
    TPMS_ATTEST att;

    memset(&att, 0, sizeof(att));
    memset(value, FU_PCR7, 32);
    att.magic = TPM2_GENERATED_VALUE;
    att.type = TPM2_ST_ATTEST_QUOTE;
    memcpy(att.extraData.buffer, t, TRANSCRIPT_LEN);
    att.extraData.size = TRANSCRIPT_LEN;
    att.attested.quote.pcrSelect.count = 1;
    att.attested.quote.pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA256;
    att.attested.quote.pcrSelect.pcrSelections[0].sizeofSelect = 3;
    att.attested.quote.pcrSelect.pcrSelections[0].pcrSelect[0] = 0x80;
    fu_sha256(att.attested.quote.pcrDigest.buffer, value, 32);
    att.attested.quote.pcrDigest.size = 32;
    if (Tss2_MU_TPMS_ATTEST_Marshal(&att, info, 1024, &info_len) != TSS2_RC_SUCCESS)
        fu_fail("marshalling the AK quote");
    fu_sha256(digest, info, info_len);
    fu_tpm_sign(sig, &sig_len, ak, digest);
    devid__v1__pcr_value__init(pcr);
    pcr->index = 7;
    pcr->sha256 = (ProtobufCBinaryData){32, value};
    *pcrp = pcr;
    devid__v1__pcr_quote__init(q);
    q->quote_info = (ProtobufCBinaryData){info_len, info};
    q->quote_signature = (ProtobufCBinaryData){sig_len, sig};
    q->n_pcrs = 1;
    q->pcrs = pcrp;
    q->ak_public = (ProtobufCBinaryData){ak_pub_len, ak_pub};
    q->ak_activated_secret = (ProtobufCBinaryData){CREDENTIAL_SECRET_LEN, secret};
}

static uint8_t *pack_request(size_t *len, const struct req_opts *o)
{
    const struct fu_world *w = fu_world();
    Devid__V1__EnrollRequest req = DEVID__V1__ENROLL_REQUEST__INIT;
    Devid__V1__TpmEvidence ev = DEVID__V1__TPM_EVIDENCE__INIT;
    ProtobufCBinaryData inter;
    uint8_t nonce[TOKEN_NONCE_LEN], token[TOKEN_LEN], t[TRANSCRIPT_LEN], digest[32];
    uint8_t chal[256], pub[512], info[1024], sig[256], spub[512];
    size_t chal_len = sizeof(chal), pub_len = sizeof(pub), info_len = sizeof(info);
    size_t spub_len = sizeof(spub);
    size_t sig_len = sizeof(sig), csr_len, inter_len;
    uint8_t *csr, *inter_der, *out;
    TPM2B_NAME name;
    struct token_ek ek;
    uint8_t secret[CREDENTIAL_SECRET_LEN], ak_secret[CREDENTIAL_SECRET_LEN];
    uint8_t ak_pub[512], q_info[1024], q_sig[256], q_value[32];
    size_t ak_pub_len = sizeof(ak_pub);
    Devid__V1__PcrQuote quote;
    Devid__V1__PcrValue pcr, *pcrp;
    EVP_PKEY *ak = NULL;
    TPM2B_NAME ak_name;
    uint8_t ak_name_hash[32];

    memset(nonce, 0x5a, sizeof(nonce));
    memset(&ek, 0, sizeof(ek));
    memset(secret, 0x3c, sizeof(secret));
    fu_tpm_public(pub, &pub_len, w->ldevid_key, o->attrs);
    fu_tpm_name(&name, pub, pub_len);
    if (o->ek == 1 || o->ek == 2) {
        fu_sha256(ek.ek_cert_hash, (const uint8_t *)"an EK certificate", 17);
        fu_sha256(ek.name_hash, name.name, name.size);
        if (credential_derive(secret, w->token_key, nonce, ek.ek_cert_hash, ek.name_hash))
            fu_fail("credential_derive");
        secret[0] ^= (uint8_t)(o->ek == 2);
    }
    if (o->ak != 0) {
        ak = fu_ec_key("devid fuzz ak");
        fu_tpm_public(ak_pub, &ak_pub_len, ak, FU_LDEVID_ATTRS | TPMA_OBJECT_RESTRICTED);
        fu_tpm_name(&ak_name, ak_pub, ak_pub_len);
        fu_sha256(ak_name_hash, ak_name.name, ak_name.size);
        if (credential_derive_ak(ak_secret, w->token_key, nonce, ek.ek_cert_hash, ak_name_hash))
            fu_fail("credential_derive_ak");
        ak_secret[0] ^= (uint8_t)(o->ak == 2);
    }
    if (token_seal_ek(token, w->token_key, nonce, (int64_t)FU_NOW + o->expires, w->idevid_sha256,
                      o->other_connection ? w->idevid_sha256 : w->conn_hash, &ek))
        fu_fail("token_seal");
    csr = fu_csr_der(&csr_len, o->csr_key_is_idevid ? w->idevid_key : w->ldevid_key,
                     o->csr_key_is_idevid ? w->idevid_key : w->ldevid_key);
    if (transcript_compute(t, nonce, sizeof(nonce), w->exporter, sizeof(w->exporter), csr, csr_len))
        fu_fail("transcript_compute");
    fu_tpm_sign(chal, &chal_len, w->idevid_key, t);
    fu_certify_info(info, &info_len, &name, t, sizeof(t));
    fu_sha256(digest, info, info_len);
    fu_tpm_sign(sig, &sig_len, w->idevid_key, digest);
    fu_tpm_public(spub, &spub_len, w->idevid_key, FU_LDEVID_ATTRS);
    inter_der = fu_der(&inter_len, w->inter);
    if (ak != NULL)
        ak_quote(&quote, &pcr, &pcrp, q_info, q_sig, q_value, ak, t, ak_pub, ak_pub_len, ak_secret);

    ev.certify_info = (ProtobufCBinaryData){info_len, info};
    ev.certify_signature = (ProtobufCBinaryData){sig_len, sig};
    ev.ldevid_public = (ProtobufCBinaryData){pub_len, pub};
    ev.signer = o->signer;
    ev.signer_public = (ProtobufCBinaryData){spub_len, spub};
    if (o->signer == DEVID__V1__SIGNER_KIND__SIGNER_KIND_IAK)
        ev.iak_certificate = (ProtobufCBinaryData){inter_len, inter_der};
    req.token = (ProtobufCBinaryData){sizeof(token), token};
    req.csr = (ProtobufCBinaryData){csr_len, csr};
    req.challenge_signature = (ProtobufCBinaryData){chal_len, chal};
    req.evidence = &ev;
    if (o->ek != 0)
        req.activated_secret = (ProtobufCBinaryData){sizeof(secret), secret};
    if (ak != NULL)
        req.quote = &quote;
    inter = (ProtobufCBinaryData){inter_len, inter_der};
    if (!o->no_intermediates) {
        req.n_intermediates = 1;
        req.intermediates = &inter;
    }
    *len = devid__v1__enroll_request__get_packed_size(&req);
    if ((out = malloc(*len)) == NULL)
        fu_fail("malloc");
    devid__v1__enroll_request__pack(&req, out);
    free(csr);
    free(inter_der);
    EVP_PKEY_free(ak);
    return out;
}

/* check_request judges seed |buf| as fuzz_enroll_request does, under
 * |policy|. */
static int check_request(const uint8_t *buf, size_t len, struct policy *policy)
{
    const struct fu_world *w = fu_world();
    const struct enroll_config cfg = {w->store, policy, w->token_key, NULL, w->ek_store};
    Devid__V1__EnrollRequest *req = devid__v1__enroll_request__unpack(NULL, len, buf);
    struct enroll_ledger_facts facts;
    struct enroll_input in;
    struct enroll_verdict out;
    int r;

    if (req == NULL)
        fu_fail("unpack seed");
    memset(&facts, 0, sizeof(facts));
    in = (struct enroll_input){req, fu_tls(), &facts, FU_NOW};
    if (enroll_peek(&facts.asked, &cfg, req, &in.tls, FU_NOW) == 0)
        facts.nonce = ENROLL_NONCE_UNUSED;
    r = enroll_decide(&out, &cfg, &in);
    if (r != 0)
        fprintf(stderr, "  (%s)\n", out.why);
    enroll_verdict_cleanup(&out);
    devid__v1__enroll_request__free_unpacked(req, NULL);
    return r;
}

static void enroll_seeds(void)
{
    static const struct {
        const char *name;
        struct req_opts o;
        int want;
    } cases[] = {
        {"valid", {300, 0, 0, 1, FU_LDEVID_ATTRS, 0, 0, 0}, 0},
        {"token_expired", {-1, 0, 0, 1, FU_LDEVID_ATTRS, 0, 0, 0}, DEVID_ERR_TOKEN_EXPIRED},
        {"csr_wrong_key", {300, 1, 0, 1, FU_LDEVID_ATTRS, 0, 0, 0}, DEVID_ERR_CSR_KEY_MISMATCH},
        {"no_intermediates", {300, 0, 1, 1, FU_LDEVID_ATTRS, 0, 0, 0}, DEVID_ERR_CHAIN_UNTRUSTED},
        {"signer_iak", {300, 0, 0, 2, FU_LDEVID_ATTRS, 0, 0, 0}, DEVID_ERR_ATTEST_SIGNATURE},
        {"attrs_decrypt",
         {300, 0, 0, 1, FU_LDEVID_ATTRS | TPMA_OBJECT_DECRYPT, 0, 0, 0},
         DEVID_ERR_ATTEST_ATTRIBUTES},
        {"token_other_connection",
         {300, 0, 0, 1, FU_LDEVID_ATTRS, 1, 0, 0},
         DEVID_ERR_TOKEN_WRONG_CONNECTION},
        {"ek_activated", {300, 0, 0, 1, FU_LDEVID_ATTRS, 0, 1, 0}, 0},
        {"ek_wrong_secret", {300, 0, 0, 1, FU_LDEVID_ATTRS, 0, 2, 0}, DEVID_ERR_CREDENTIAL},
        {"activated_without_ek", {300, 0, 0, 1, FU_LDEVID_ATTRS, 0, 3, 0}, DEVID_ERR_CREDENTIAL},
        {"ak_quote", {300, 0, 0, 1, FU_LDEVID_ATTRS, 0, 1, 1}, 0},
        {"ak_wrong_secret", {300, 0, 0, 1, FU_LDEVID_ATTRS, 0, 1, 2}, DEVID_ERR_CREDENTIAL},
    };
    size_t i, len;
    uint8_t *buf, *msg;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf = pack_request(&len, &cases[i].o);
        /* A request with a quote: ignored without the gate, judged with it. */
        if (cases[i].o.ak != 0)
            expect(check_request(buf, len, fu_world()->policy), 0, cases[i].name);
        expect(check_request(buf, len,
                             cases[i].o.ak != 0 ? fu_world()->policy_pcr : fu_world()->policy),
               cases[i].want, cases[i].name);
        put("fuzz_enroll_request", cases[i].name, buf, len);
        if (i == 0) {
            if ((msg = malloc(len + 1)) == NULL)
                fu_fail("malloc");
            msg[0] = 4;
            memcpy(msg + 1, buf, len);
            put("fuzz_messages", "enroll_request", msg, len + 1);
            free(msg);
        }
        free(buf);
    }
}

/* ---- the other messages ---- */

/* put_kind writes the seed |name| of |target|: the byte |kind|, then |m|. */
static void put_kind(const char *target, const char *name, uint8_t kind, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len + 1);

    if (buf == NULL)
        fu_fail("malloc");
    buf[0] = kind;
    protobuf_c_message_pack(m, buf + 1);
    put(target, name, buf, len + 1);
    free(buf);
}

static void put_message(const char *name, uint8_t kind, const ProtobufCMessage *m)
{
    put_kind("fuzz_messages", name, kind, m);
}

static void message_seeds(void)
{
    const struct fu_world *w = fu_world();
    Devid__V1__ChallengeRequest creq = DEVID__V1__CHALLENGE_REQUEST__INIT;
    Devid__V1__ChallengeResponse cresp = DEVID__V1__CHALLENGE_RESPONSE__INIT;
    Devid__V1__EnrollResponse eresp = DEVID__V1__ENROLL_RESPONSE__INIT;
    Devid__V1__Error err = DEVID__V1__ERROR__INIT;
    uint8_t nonce[TOKEN_NONCE_LEN], token[TOKEN_LEN];
    ProtobufCBinaryData chain;
    uint8_t *leaf, *inter;
    size_t leaf_len, inter_len;

    creq.protocol_version = 1;
    creq.agent_version = "devid-agent/0.1";
    put_message("challenge_request", 0, &creq.base);

    memset(nonce, 0x5a, sizeof(nonce));
    if (token_seal(token, w->token_key, nonce, (int64_t)FU_NOW + 300, w->idevid_sha256,
                   w->conn_hash))
        fu_fail("token_seal");
    cresp.nonce = (ProtobufCBinaryData){sizeof(nonce), nonce};
    cresp.token = (ProtobufCBinaryData){sizeof(token), token};
    cresp.expires_at = (int64_t)FU_NOW + 300;
    put_message("challenge_response", 1, &cresp.base);

    leaf = fu_der(&leaf_len, w->idevid);
    inter = fu_der(&inter_len, w->inter);
    eresp.certificate = (ProtobufCBinaryData){leaf_len, leaf};
    chain = (ProtobufCBinaryData){inter_len, inter};
    eresp.n_chain = 1;
    eresp.chain = &chain;
    eresp.serial = "4a1f00c2d3e4f5061728394a5b6c7d8e";
    put_message("enroll_response", 2, &eresp.base);
    free(leaf);
    free(inter);

    err.reason = DEVID__V1__REASON__REASON_TOKEN_EXPIRED;
    err.message = "token has expired; request a new challenge";
    err.retryable = 1;
    put_message("error_retryable", 3, &err.base);
    err.reason = DEVID__V1__REASON__REASON_OVERLOADED;
    err.message = "verifier overloaded";
    err.retry_after_seconds = 30;
    put_message("error_overloaded", 3, &err.base);
}

/* ---- the verifier's answers, as the agent parses them ---- */

/* check_answer runs the agent's parser |kind| (fuzz_agent_response.c) over
 * the seed |m| and checks its verdict. */
static void check_answer(const char *name, uint8_t kind, const ProtobufCMessage *m, int want)
{
    const struct fu_world *w = fu_world();
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    struct wire_challenge c;
    struct wire_enrolled e;
    struct wire_error err;
    char why[512];
    int r;

    if (buf == NULL)
        fu_fail("malloc");
    protobuf_c_message_pack(m, buf);
    if (kind == 0)
        r = wire_challenge_parse(&c, buf, len, why, sizeof(why));
    else if (kind == 1)
        r = wire_enroll_response_parse(&e, buf, len, w->ldevid_key, why, sizeof(why));
    else
        r = wire_error_parse(&err, buf, len, why, sizeof(why));
    if (kind == 1)
        wire_enrolled_cleanup(&e);
    expect(r, want, name);
    free(buf);
    put_kind("fuzz_agent_response", name, kind, m);
}

static void answer_seeds(void)
{
    const struct fu_world *w = fu_world();
    struct fu_cert_spec spec = {.o = "devid lab",
                                .cn = "Gateway X1",
                                .serial = "SN-FUZZ-0001",
                                .serial_number = 0x4a1f,
                                .not_before = FU_NOW - 300,
                                .not_after = FU_NOW + 365 * 86400};
    Devid__V1__ChallengeResponse cresp = DEVID__V1__CHALLENGE_RESPONSE__INIT;
    Devid__V1__EnrollResponse eresp = DEVID__V1__ENROLL_RESPONSE__INIT;
    Devid__V1__Error err = DEVID__V1__ERROR__INIT;
    uint8_t nonce[TRANSCRIPT_NONCE_LEN], token[TOKEN_LEN], *leaf, *inter, *other;
    uint8_t blob[70], secret[2 + 256];
    uint32_t quote_pcrs[3] = {7, 11, 0};
    size_t leaf_len, inter_len, other_len;
    ProtobufCBinaryData chain;
    X509 *ldevid;

    memset(nonce, 0x5a, sizeof(nonce));
    memset(token, 0x7e, sizeof(token));
    cresp.nonce = (ProtobufCBinaryData){sizeof(nonce), nonce};
    cresp.token = (ProtobufCBinaryData){sizeof(token), token};
    cresp.expires_at = (int64_t)FU_NOW + 300;
    check_answer("challenge", 0, &cresp.base, 0);
    memset(blob, 0xb1, sizeof(blob));
    memset(secret, 0x5e, sizeof(secret));
    cresp.credential_blob = (ProtobufCBinaryData){sizeof(blob), blob};
    cresp.encrypted_secret = (ProtobufCBinaryData){sizeof(secret), secret};
    check_answer("challenge_credential", 0, &cresp.base, 0);
    cresp.ak_credential_blob = (ProtobufCBinaryData){sizeof(blob), blob};
    cresp.ak_encrypted_secret = (ProtobufCBinaryData){sizeof(secret), secret};
    check_answer("challenge_ak_credential", 0, &cresp.base, 0);
    cresp.ak_credential_blob.len = 0;
    cresp.ak_encrypted_secret.len = 0;
    cresp.encrypted_secret.len = 0;
    check_answer("challenge_credential_half", 0, &cresp.base, DEVID_ERR_PROTOCOL);
    cresp.credential_blob.len = 0;
    cresp.quote_pcrs = quote_pcrs;
    cresp.n_quote_pcrs = 2;
    check_answer("challenge_quote_pcrs", 0, &cresp.base, 0);
    cresp.n_quote_pcrs = 3;
    check_answer("challenge_quote_pcrs_unordered", 0, &cresp.base, DEVID_ERR_PROTOCOL);
    cresp.n_quote_pcrs = 0;
    cresp.credential_blob.len = sizeof(blob);
    cresp.credential_blob.len = 0;
    cresp.nonce.len = sizeof(nonce) - 1;
    check_answer("challenge_short_nonce", 0, &cresp.base, DEVID_ERR_PROTOCOL);

    if ((ldevid = fu_cert(&spec, w->ldevid_key, w->inter, w->inter_key)) == NULL)
        fu_fail("fu_cert");
    leaf = fu_der(&leaf_len, ldevid);
    inter = fu_der(&inter_len, w->inter);
    other = fu_der(&other_len, w->idevid);
    eresp.certificate = (ProtobufCBinaryData){leaf_len, leaf};
    chain = (ProtobufCBinaryData){inter_len, inter};
    eresp.n_chain = 1;
    eresp.chain = &chain;
    eresp.serial = "4a1f";
    check_answer("enroll_response", 1, &eresp.base, 0);
    eresp.certificate = (ProtobufCBinaryData){other_len, other};
    check_answer("enroll_response_other_key", 1, &eresp.base, DEVID_ERR_PROTOCOL);
    free(leaf);
    free(inter);
    free(other);
    X509_free(ldevid);

    err.reason = DEVID__V1__REASON__REASON_POLICY_DENIED;
    err.message = "device SN-FUZZ-0001 is denied by policy";
    check_answer("error_policy", 2, &err.base, 0);
    err.reason = DEVID__V1__REASON__REASON_OVERLOADED;
    err.message = "verifier overloaded";
    err.retryable = 1;
    err.retry_after_seconds = 30;
    check_answer("error_overloaded", 2, &err.base, 0);
}

/* ---- attest ---- */

static void attest_seed(const char *name, EVP_PKEY *certified, TPMA_OBJECT attrs,
                        const uint8_t *extra, EVP_PKEY *signer, int want)
{
    const struct fu_world *w = fu_world();
    uint8_t buf[4096], digest[32];
    size_t info_len = 1024, sig_len = 256, pub_len = 512;
    uint8_t *info = buf + 4;
    uint8_t pub[512], sig[256];
    struct attest_input in;
    struct attest_result res;
    TPM2B_NAME tname;
    char why[256];
    int r;

    memset(&in, 0, sizeof(in));
    fu_tpm_public(pub, &pub_len, certified, attrs);
    fu_tpm_name(&tname, pub, pub_len);
    fu_certify_info(info, &info_len, &tname, extra, 32);
    fu_sha256(digest, info, info_len);
    fu_tpm_sign(sig, &sig_len, signer, digest);
    memcpy(info + info_len, sig, sig_len);
    memcpy(info + info_len + sig_len, pub, pub_len);
    buf[0] = (uint8_t)(info_len >> 8);
    buf[1] = (uint8_t)info_len;
    buf[2] = (uint8_t)(sig_len >> 8);
    buf[3] = (uint8_t)sig_len;
    in.info = info;
    in.info_len = info_len;
    in.sig = info + info_len;
    in.sig_len = sig_len;
    in.pub = info + info_len + sig_len;
    in.pub_len = pub_len;
    in.signer = w->idevid_key;
    in.qualifying = w->qualifying;
    in.qualifying_len = sizeof(w->qualifying);
    r = attest_check_certify(&res, &in, why, sizeof(why));
    if (r == 0)
        attest_result_cleanup(&res);
    expect(r, want, name);
    put("fuzz_attest", name, buf, 4 + info_len + sig_len + pub_len);
}

static void attest_seeds(void)
{
    const struct fu_world *w = fu_world();
    uint8_t other[32];

    memset(other, 0xee, sizeof(other));
    attest_seed("valid", w->ldevid_key, FU_LDEVID_ATTRS, w->qualifying, w->idevid_key, 0);
    attest_seed("wrong_nonce", w->ldevid_key, FU_LDEVID_ATTRS, other, w->idevid_key,
                DEVID_ERR_ATTEST_NONCE);
    attest_seed("restricted", w->ldevid_key, FU_LDEVID_ATTRS | TPMA_OBJECT_RESTRICTED,
                w->qualifying, w->idevid_key, DEVID_ERR_ATTEST_ATTRIBUTES);
    attest_seed("wrong_signer", w->ldevid_key, FU_LDEVID_ATTRS, w->qualifying, w->ldevid_key,
                DEVID_ERR_ATTEST_SIGNATURE);
}

/* ---- quote ---- */

/* A quote seed of PCR 7 (value 0x77 bytes) over |extra|, signed by |signer|;
 * |digest_ok| 0 makes the quote's pcrDigest that of another value. */
static void quote_seed(const char *name, const uint8_t *extra, EVP_PKEY *signer, int digest_ok,
                       int want)
{
    const struct fu_world *w = fu_world();
    uint8_t buf[4096], digest[32], sig[256];
    size_t info_len = 0, sig_len = sizeof(sig), off = 7;
    struct quote_pcr pcr;
    struct quote_input in;
    TPMS_ATTEST att;
    char why[256];

    memset(&att, 0, sizeof(att));
    memset(&in, 0, sizeof(in));
    pcr.index = 7;
    memset(pcr.sha256, 0x77, sizeof(pcr.sha256));
    att.magic = TPM2_GENERATED_VALUE;
    att.type = TPM2_ST_ATTEST_QUOTE;
    att.qualifiedSigner.size = 4;
    memcpy(att.qualifiedSigner.name, "\x00\x0b\x01\x02", 4);
    memcpy(att.extraData.buffer, extra, 32);
    att.extraData.size = 32;
    att.clockInfo.clock = 123456;
    att.clockInfo.safe = 1;
    att.attested.quote.pcrSelect.count = 1;
    att.attested.quote.pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA256;
    att.attested.quote.pcrSelect.pcrSelections[0].sizeofSelect = 3;
    att.attested.quote.pcrSelect.pcrSelections[0].pcrSelect[0] = 0x80;
    fu_sha256(att.attested.quote.pcrDigest.buffer, pcr.sha256, sizeof(pcr.sha256));
    att.attested.quote.pcrDigest.buffer[0] ^= digest_ok ? 0 : 1;
    att.attested.quote.pcrDigest.size = 32;
    if (Tss2_MU_TPMS_ATTEST_Marshal(&att, buf + off, 1024, &info_len) != TSS2_RC_SUCCESS)
        fu_fail("marshalling the quote seed");
    fu_sha256(digest, buf + off, info_len);
    fu_tpm_sign(sig, &sig_len, signer, digest);
    memcpy(buf + off + info_len, sig, sig_len);
    buf[0] = 0;
    buf[1] = 0;
    buf[2] = 0x80;
    buf[3] = (uint8_t)(info_len >> 8);
    buf[4] = (uint8_t)info_len;
    buf[5] = (uint8_t)(sig_len >> 8);
    buf[6] = (uint8_t)sig_len;
    off += info_len + sig_len;
    buf[off] = 7;
    memcpy(buf + off + 1, pcr.sha256, sizeof(pcr.sha256));
    in.info = buf + 7;
    in.info_len = info_len;
    in.sig = buf + 7 + info_len;
    in.sig_len = sig_len;
    in.signer = w->idevid_key;
    in.qualifying = w->qualifying;
    in.qualifying_len = sizeof(w->qualifying);
    in.selection = 1u << 7;
    in.pcrs = &pcr;
    in.n_pcrs = 1;
    expect(quote_check(&in, why, sizeof(why)), want, name);
    put("fuzz_quote", name, buf, off + 1 + sizeof(pcr.sha256));
}

static void quote_seeds(void)
{
    const struct fu_world *w = fu_world();
    uint8_t other[32];

    memset(other, 0xee, sizeof(other));
    quote_seed("valid", w->qualifying, w->idevid_key, 1, 0);
    quote_seed("wrong_nonce", other, w->idevid_key, 1, DEVID_ERR_QUOTE_NONCE);
    quote_seed("wrong_signer", w->qualifying, w->ldevid_key, 1, DEVID_ERR_QUOTE_SIGNATURE);
    quote_seed("wrong_digest", w->qualifying, w->idevid_key, 0, DEVID_ERR_QUOTE_DIGEST);
}

/* ---- CSR ---- */

static void csr_seed(const char *name, EVP_PKEY *key, int want_parse, int want_key)
{
    X509_REQ *req = NULL;
    char why[256];
    size_t len;
    uint8_t *der = fu_csr_der(&len, key, key);

    expect(csr_parse(&req, der, len, why, sizeof(why)), want_parse, name);
    if (req != NULL)
        expect(csr_check_key(req, fu_world()->ldevid_key, why, sizeof(why)), want_key, name);
    X509_REQ_free(req);
    put("fuzz_csr", name, der, len);
    free(der);
}

static void csr_seeds(void)
{
    const struct fu_world *w = fu_world();

    csr_seed("ec_ldevid", w->ldevid_key, 0, 0);
    csr_seed("ec_other", w->idevid_key, 0, DEVID_ERR_CSR_KEY_MISMATCH);
    csr_seed("ed25519", w->root_key, 0, DEVID_ERR_CSR_KEY_MISMATCH);
}

/* ---- chain ---- */

static void chain_seed(const char *name, X509 *leaf, X509 *inter, int want_chain, int want_id)
{
    const struct fu_world *w = fu_world();
    STACK_OF(X509) *sk = sk_X509_new_null();
    struct chain_verdict v;
    struct device_identity id;
    uint8_t buf[4096], *der;
    size_t len, n = 0;
    char why[512];
    int r;

    if (sk == NULL)
        fu_fail("sk_X509_new_null");
    der = fu_der(&len, leaf);
    memcpy(buf, der, len);
    n = len;
    free(der);
    if (inter != NULL) {
        der = fu_der(&len, inter);
        if (n + len > sizeof(buf))
            fu_fail("chain seed size");
        memcpy(buf + n, der, len);
        n += len;
        free(der);
        sk_X509_push(sk, inter);
    }
    r = chain_verify(w->store, &v, leaf, sk, FU_NOW, why, sizeof(why));
    expect(r, want_chain, name);
    expect(identity_extract(&id, leaf, r == 0 ? v.manufacturer : "Fuzz Manufacturer", why,
                            sizeof(why)),
           want_id, name);
    if (r == 0)
        chain_verdict_cleanup(&v);
    sk_X509_free(sk);
    put("fuzz_chain", name, buf, n);
}

static void chain_seeds(void)
{
    const struct fu_world *w = fu_world();
    const time_t nb = FU_NOW - 86400, na = FU_NOW + 3650 * (time_t)86400;
    const struct fu_cert_spec nosan = {NULL, "fuzz-model", "FZ0002", 0, 10, nb, na, NULL};
    const struct fu_cert_spec mismatch = {NULL, "fuzz-model", "FZ0003", 0, 11, nb, na, "FZ9999"};
    const struct fu_cert_spec expired = {NULL, "fuzz-model", "FZ0004", 0,
                                         12,   nb - 86400,   nb,       "FZ0004"};
    X509 *x;

    chain_seed("idevid_inter", w->idevid, w->inter, 0, 0);
    chain_seed("idevid_alone", w->idevid, NULL, DEVID_ERR_CHAIN_UNTRUSTED, 0);
    chain_seed("inter_root", w->inter, w->root, DEVID_ERR_CHAIN_INVALID, DEVID_ERR_IDENTITY);
    x = fu_cert(&nosan, w->idevid_key, w->inter, w->inter_key);
    chain_seed("no_san", x, w->inter, 0, 0);
    X509_free(x);
    x = fu_cert(&mismatch, w->idevid_key, w->inter, w->inter_key);
    chain_seed("san_mismatch", x, w->inter, 0, DEVID_ERR_IDENTITY);
    X509_free(x);
    x = fu_cert(&expired, w->idevid_key, w->inter, w->inter_key);
    chain_seed("expired", x, w->inter, DEVID_ERR_CHAIN_EXPIRED, 0);
    X509_free(x);
}

/* ---- token ---- */

static void token_seeds(void)
{
    const struct fu_world *w = fu_world();
    uint8_t nonce[TOKEN_NONCE_LEN], token[TOKEN_LEN], other[TOKEN_CERT_HASH_LEN];
    uint8_t conn[TOKEN_CONN_HASH_LEN];
    struct token_ek ek;

    memset(nonce, 0x5a, sizeof(nonce));
    memset(other, 0x11, sizeof(other));
    token_seal(token, w->token_key, nonce, (int64_t)FU_NOW + 300, w->idevid_sha256, w->conn_hash);
    expect(token_open(nonce, conn, w->token_key, token, sizeof(token), FU_NOW, w->idevid_sha256), 0,
           "token valid");
    put("fuzz_token", "valid", token, sizeof(token));
    token_seal(token, w->token_key, nonce, (int64_t)FU_NOW - 1, w->idevid_sha256, w->conn_hash);
    put("fuzz_token", "expired", token, sizeof(token));
    token_seal(token, w->token_key, nonce, (int64_t)FU_NOW + 300, other, w->conn_hash);
    put("fuzz_token", "wrong_client", token, sizeof(token));
    memset(&ek, 0x22, sizeof(ek));
    token_seal_ek(token, w->token_key, nonce, (int64_t)FU_NOW + 300, w->idevid_sha256, w->conn_hash,
                  &ek);
    put("fuzz_token", "with_ek", token, sizeof(token));
    token[0] = 2;
    put("fuzz_token", "version_2", token, sizeof(token));
    token[0] = 1;
    put("fuzz_token", "bad_version", token, sizeof(token));
}

/* ---- ChallengeRequest ---- */

/* challenge_seed writes |creq| as seed |name| after checking that
 * challenge_decide gives |want| for it. */
static void challenge_seed(const char *name, const Devid__V1__ChallengeRequest *creq, int want)
{
    const struct fu_world *w = fu_world();
    const struct enroll_config cfg = {w->store, w->policy, w->token_key, NULL, w->ek_store};
    uint8_t nonce[TOKEN_NONCE_LEN], buf[2048];
    struct challenge_input in = {creq, fu_tls(), nonce, FU_NOW, 120};
    struct challenge_verdict v;
    size_t len = devid__v1__challenge_request__get_packed_size(creq);

    memset(nonce, 0x5a, sizeof(nonce));
    expect(challenge_decide(&v, &cfg, &in), want, name);
    if (len > sizeof(buf))
        fu_fail(name);
    devid__v1__challenge_request__pack(creq, buf);
    put("fuzz_challenge_request", name, buf, len);
}

static void challenge_seeds(void)
{
    const struct fu_world *w = fu_world();
    Devid__V1__ChallengeRequest creq = DEVID__V1__CHALLENGE_REQUEST__INIT;
    ProtobufCBinaryData inter, bad_inter, ek, ek_pub, ld_pub;
    uint8_t ek_pub_buf[512], ld_pub_buf[512];
    size_t len;

    inter.data = fu_der(&len, w->inter);
    inter.len = len;
    creq.protocol_version = 1;
    creq.agent_version = "devid-agent/0.1";
    creq.intermediates = &inter;
    creq.n_intermediates = 1;
    challenge_seed("valid", &creq, 0);
    creq.n_intermediates = 0;
    challenge_seed("no_intermediates", &creq, DEVID_ERR_CHAIN_UNTRUSTED);
    creq.protocol_version = 2;
    challenge_seed("version_2", &creq, DEVID_ERR_BAD_REQUEST);
    creq.protocol_version = 1;
    creq.n_intermediates = 1;
    /* EK fields: the IDevID's certificate stands for an EK certificate,
     * which the vendor's rules refuse (keyUsage digitalSignature only); and
     * the certificate alone. */
    ek.data = fu_der(&len, w->idevid);
    ek.len = len;
    ek_pub.len = sizeof(ek_pub_buf);
    fu_tpm_public(ek_pub_buf, &ek_pub.len, w->idevid_key, FU_LDEVID_ATTRS);
    ek_pub.data = ek_pub_buf;
    ld_pub.len = sizeof(ld_pub_buf);
    fu_tpm_public(ld_pub_buf, &ld_pub.len, w->ldevid_key, FU_LDEVID_ATTRS);
    ld_pub.data = ld_pub_buf;
    creq.ek_certificate = ek;
    creq.ek_public = ek_pub;
    creq.ldevid_public = ld_pub;
    challenge_seed("ek_cert_refused", &creq, DEVID_ERR_EK_CERT);
    /* The EK's chain from NV: one certificate that decodes, then one that
     * does not; both reach ek_intermediates' checks before the chain's. */
    creq.ek_intermediates = &inter;
    creq.n_ek_intermediates = 1;
    challenge_seed("ek_intermediates", &creq, DEVID_ERR_EK_CERT);
    bad_inter = (ProtobufCBinaryData){inter.len / 2, inter.data};
    creq.ek_intermediates = &bad_inter;
    challenge_seed("ek_intermediates_truncated", &creq, DEVID_ERR_EK_CERT);
    creq.ek_intermediates = NULL;
    creq.n_ek_intermediates = 0;
    creq.ek_public.len = 0;
    creq.ldevid_public.len = 0;
    challenge_seed("ek_fields_partial", &creq, DEVID_ERR_BAD_REQUEST);
    /* An AK without the EK fields. */
    creq.ek_certificate.len = 0;
    creq.ak_public = ld_pub;
    challenge_seed("ak_without_ek", &creq, DEVID_ERR_BAD_REQUEST);
    free(ek.data);
    free(inter.data);
}

/* ---- HTTP request heads ---- */

static void http_head_seeds(void)
{
    static const struct {
        const char *name, *head;
    } heads[] = {
        {"challenge",
         "POST /v1/challenge HTTP/1.1\r\nHost: v.example:8443\r\n"
         "Content-Type: application/x-protobuf\r\nContent-Length: 4\r\n\r\nbody"},
        {"crl", "GET /v1/crl?x=1 HTTP/1.1\r\nHost: v\r\nConnection: close\r\n\r\n"},
        {"enroll_continue",
         "POST /v1/enroll HTTP/1.0\r\ncontent-type: application/x-protobuf; a=b\r\n"
         "Content-Length: 65536\r\nExpect: 100-continue\r\n"
         "Connection: keep-alive\r\n\r\n"},
        {"chunked",
         "POST /v1/enroll HTTP/1.1\r\nHost: v\r\nTransfer-Encoding: chunked\r\n\r\n"
         "4\r\nbody\r\n0\r\n\r\n"},
        {"two_lengths",
         "POST /v1/enroll HTTP/1.1\r\nHost: v\r\nContent-Length: 1\r\n"
         "Content-Length: 2\r\n\r\nab"},
        {"put", "PUT /v1/enroll HTTP/1.1\r\nHost: v\r\n\r\n"},
        {"bare_lf", "GET /v1/crl HTTP/1.1\nHost: v\n\n"},
        {"folded", "GET /v1/crl HTTP/1.1\r\nHost: v\r\n x\r\n\r\n"},
        {"http2", "GET /v1/crl HTTP/2.0\r\nHost: v\r\n\r\n"},
    };
    static const char nul[] = "GET /v1/crl HTTP/1.1\r\nHost: v\0x\r\n\r\n";
    size_t i;

    for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++)
        put("fuzz_http_head", heads[i].name, (const uint8_t *)heads[i].head, strlen(heads[i].head));
    put("fuzz_http_head", "nul", (const uint8_t *)nul, sizeof(nul) - 1);
}

/* ---- tpmkey ---- */

static void put_public(const char *name, const TPMT_PUBLIC *pub)
{
    uint8_t buf[1024];
    size_t off = 0;

    if (Tss2_MU_TPMT_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
        fu_fail(name);
    put("fuzz_tpmkey", name, buf, off);
}

static void put_signature(const char *name, const TPMT_SIGNATURE *sig)
{
    uint8_t buf[1024];
    size_t off = 0;

    if (Tss2_MU_TPMT_SIGNATURE_Marshal(sig, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
        fu_fail(name);
    put("fuzz_tpmkey", name, buf, off);
}

static void tpmkey_seeds(void)
{
    const struct fu_world *w = fu_world();
    uint8_t buf[512], digest[32];
    size_t len = sizeof(buf), i;
    TPMT_PUBLIC pub;
    TPMT_SIGNATURE sig;

    fu_tpm_public(buf, &len, w->ldevid_key, FU_LDEVID_ATTRS);
    put("fuzz_tpmkey", "ecc_p256_public", buf, len);
    memset(digest, 0x42, sizeof(digest));
    len = sizeof(buf);
    fu_tpm_sign(buf, &len, w->idevid_key, digest);
    put("fuzz_tpmkey", "ecdsa_signature", buf, len);

    memset(&pub, 0, sizeof(pub));
    pub.type = TPM2_ALG_RSA;
    pub.nameAlg = TPM2_ALG_SHA384;
    pub.objectAttributes = FU_LDEVID_ATTRS;
    pub.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    pub.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
    pub.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
    pub.parameters.rsaDetail.keyBits = 2048;
    pub.unique.rsa.size = 256;
    for (i = 0; i < 256; i++)
        pub.unique.rsa.buffer[i] = (uint8_t)(0xc3 ^ (i * 37));
    pub.unique.rsa.buffer[0] |= 0x80;
    pub.unique.rsa.buffer[255] |= 1;
    put_public("rsa2048_public", &pub);

    memset(&pub, 0, sizeof(pub));
    pub.type = TPM2_ALG_ECC;
    pub.nameAlg = TPM2_ALG_SHA512;
    pub.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    pub.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P384;
    pub.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    pub.unique.ecc.x.size = 48;
    pub.unique.ecc.y.size = 48;
    put_public("ecc_p384_bad_point", &pub);

    memset(&sig, 0, sizeof(sig));
    sig.sigAlg = TPM2_ALG_RSASSA;
    sig.signature.rsassa.hash = TPM2_ALG_SHA256;
    sig.signature.rsassa.sig.size = 256;
    memset(sig.signature.rsassa.sig.buffer, 0x77, 256);
    put_signature("rsassa_signature", &sig);
    sig.sigAlg = TPM2_ALG_RSAPSS;
    put_signature("rsapss_signature", &sig);
}

/* ---- NV contents ---- */

/* nv_seed writes |pre|, the DER of |x| (and of |x2| when not NULL), then
 * |pad| bytes of |fill| as a seed, checked against nvcert_parse (|want|). */
static void nv_seed(const char *name, const uint8_t *pre, size_t pre_len, X509 *x, X509 *x2,
                    size_t pad, uint8_t fill, int want)
{
    STACK_OF(X509) *sk = NULL;
    uint8_t buf[4096], *der;
    size_t len, n = pre_len;
    char why[256];

    if (pre_len > 0)
        memcpy(buf, pre, pre_len);
    der = fu_der(&len, x);
    memcpy(buf + n, der, len);
    n += len;
    free(der);
    if (x2 != NULL) {
        der = fu_der(&len, x2);
        if (n + len > sizeof(buf))
            fu_fail("nv seed size");
        memcpy(buf + n, der, len);
        n += len;
        free(der);
    }
    if (n + pad > sizeof(buf) - 1)
        fu_fail("nv seed size");
    memset(buf + n, fill, pad);
    n += pad;
    expect(nvcert_parse(&sk, buf, n, 4, why, sizeof(why)), want, name);
    sk_X509_pop_free(sk, X509_free);
    put("fuzz_nvcert", name, buf, n);
}

static void nvcert_seeds(void)
{
    const struct fu_world *w = fu_world();
    uint8_t h[NVCERT_TCG_HEADER_LEN] = {0x10, 0x01, 0x00, 0, 0, 0x10, 0x02};
    uint8_t *der;
    size_t len;

    der = fu_der(&len, w->idevid);
    free(der);
    h[3] = (uint8_t)((len + 2) >> 8);
    h[4] = (uint8_t)(len + 2);
    nv_seed("der", NULL, 0, w->idevid, NULL, 0, 0, 0);
    nv_seed("der_ff_padded", NULL, 0, w->idevid, NULL, 300, 0xff, 0);
    nv_seed("der_zero_padded", NULL, 0, w->idevid, NULL, 40, 0x00, 0);
    nv_seed("tcg_header", h, sizeof(h), w->idevid, NULL, 0, 0, 0);
    nv_seed("tcg_header_ff_padded", h, sizeof(h), w->idevid, NULL, 64, 0xff, 0);
    nv_seed("two_der", NULL, 0, w->idevid, w->inter, 8, 0xff, 0);
    nv_seed("trailing_junk", NULL, 0, w->idevid, NULL, 3, 0x41, DEVID_ERR_CONFIG);
    h[4]++;
    nv_seed("tcg_bad_size", h, sizeof(h), w->idevid, NULL, 0, 0, DEVID_ERR_CONFIG);
}

/* ---- the signer's requests ---- */

/* sign_seed writes a request of |type| with |body| (|len| bytes, head's
 * length |claimed|). */
static void sign_seed(const char *name, uint8_t type, const uint8_t *body, size_t len,
                      size_t claimed)
{
    uint8_t buf[4096];

    if (len + SIGNREQ_HEAD_LEN > sizeof(buf) || signreq_head_write(buf, type, claimed) != 0)
        fu_fail("sign seed size");
    if (len > 0)
        memcpy(buf + SIGNREQ_HEAD_LEN, body, len);
    put("fuzz_signreq", name, buf, len + SIGNREQ_HEAD_LEN);
}

/* profile_cert returns a certificate profile_build makes under the fixture's
 * intermediate, valid for |days|, signed (as a placeholder) by it. */
static X509 *profile_cert(long days, uint8_t serial_fill)
{
    const struct fu_world *w = fu_world();
    struct device_identity id;
    struct profile_input in = {0};
    uint8_t serial[PROFILE_SERIAL_LEN];
    X509_PUBKEY *spki = NULL;
    const unsigned char *p;
    uint8_t *der;
    size_t len;
    X509 *x = NULL;

    memset(&id, 0, sizeof(id));
    snprintf(id.manufacturer, sizeof(id.manufacturer), "Acme Devices");
    snprintf(id.model, sizeof(id.model), "Gateway X1");
    snprintf(id.serial, sizeof(id.serial), "SN-0001");
    memset(serial, serial_fill, sizeof(serial));
    in.ca_cert = w->inter;
    if (X509_PUBKEY_set(&spki, w->ldevid_key) != 1)
        fu_fail("X509_PUBKEY_set");
    in.subject_key = spki;
    in.id = &id;
    in.idevid = w->idevid;
    in.serial = serial;
    in.serial_len = sizeof(serial);
    in.now = FU_NOW;
    in.validity_seconds = days * 86400;
    in.assurance_oid = "1.3.6.1.4.1.32473.1"; /* under cert_seed's arc */
    if (profile_build(&x, &in) != 0 || X509_sign(x, w->inter_key, NULL) <= 0)
        fu_fail("profile_build");
    X509_PUBKEY_free(spki);
    /* As the signer holds it: parsed from the request's DER. */
    der = fu_der(&len, x);
    p = der;
    X509_free(x);
    if ((x = d2i_X509(NULL, &p, (long)len)) == NULL)
        fu_fail("d2i_X509");
    free(der);
    return x;
}

static void cert_seed(const char *name, X509 *x, int want)
{
    const struct fu_world *w = fu_world();
    struct signcheck_rules rules = {w->inter, 365L * 86400, 86400, "1.3.6.1.4.1.32473"};
    char why[SIGNREQ_MAX_WHY];
    CERT_VIEW *v = NULL;
    uint8_t *der;
    size_t len;

    der = fu_der(&len, x);
    if (certview_parse(&v, der, len) != 0)
        fu_fail("certview_parse");
    expect(signcheck_cert(&rules, v, FU_NOW, why, sizeof(why)), want, name);
    certview_free(v);
    sign_seed(name, SIGNREQ_CERT, der, len, len);
    free(der);
    X509_free(x);
}

static void signreq_seeds(void)
{
    const struct fu_world *w = fu_world();
    const struct crl_entry entries[] = {{"0a1b2c3d4e5f60718293a4b5c6d7e8f9", FU_NOW - 60, 1},
                                        {"7f", FU_NOW - 30, 0}};
    struct signreq_crl crl = {6, FU_NOW, 86400, 2, (struct crl_entry *)entries, NULL};
    static struct signreq_tree_head th;
    uint8_t th_body[SIGNREQ_MAX_TREE_HEAD];
    struct fu_cert_spec ca = {"Acme Devices", "Rogue CA",     NULL, 1, 77,
                              FU_NOW - 60,    FU_NOW + 86400, NULL};
    uint8_t *body;
    size_t len;

    cert_seed("cert_good", profile_cert(365, 0x5a), 0);
    cert_seed("cert_long", profile_cert(400, 0x5b), DEVID_ERR_REFUSED);
    cert_seed("cert_ca_true", fu_cert(&ca, w->ldevid_key, w->inter, w->inter_key),
              DEVID_ERR_REFUSED);
    cert_seed("cert_other_issuer", X509_dup(w->inter), DEVID_ERR_REFUSED);
    if (signreq_crl_encode(&body, &len, &crl) != 0)
        fu_fail("signreq_crl_encode");
    sign_seed("crl_two", SIGNREQ_CRL, body, len, len);
    free(body);
    crl.n = 0;
    if (signreq_crl_encode(&body, &len, &crl) != 0)
        fu_fail("signreq_crl_encode");
    sign_seed("crl_empty", SIGNREQ_CRL, body, len, len);
    free(body);
    sign_seed("tree_head_short", SIGNREQ_TREE_HEAD, NULL, 0, 0);
    th.head.size = 9;
    th.head.timestamp = FU_NOW;
    th.proof_len = 2;
    memset(th.head.root, 0x11, sizeof(th.head.root));
    memset(th.proof, 0x22, sizeof(th.proof));
    if (signreq_tree_head_encode(th_body, &len, &th) != 0)
        fu_fail("signreq_tree_head_encode");
    sign_seed("tree_head", SIGNREQ_TREE_HEAD, th_body, len, len);
    sign_seed("unknown_type", 9, NULL, 0, 0);
    sign_seed("cert_too_long", SIGNREQ_CERT, NULL, 0, SIGNREQ_MAX_CERT + 1);
}

/* The log's bytes (fuzz_tlog): a leaf of each type, a signed tree head
 * with the fixture's Ed25519 intermediate key, and proofs from a tree of 7. */
static void tlog_seeds(void)
{
    const struct fu_world *w = fu_world();
    struct tlog_entry e = {TLOG_ISSUED,          FU_NOW,         0,        {0},
                           "5a0102030405060708", "Acme Devices", "SN-0001"};
    uint8_t buf[1 + TLOG_SIGNED_HEAD_MAX + 8 * MERKLE_MAX_PROOF * MERKLE_HASH_LEN];
    uint8_t leaves[7][MERKLE_HASH_LEN], tbs[TLOG_TBS_LEN], sig[TLOG_SIG_MAX], b;
    struct tlog_head h = {7, FU_NOW, {0}};
    size_t len, sig_len = sizeof(sig), i, n;
    EVP_MD_CTX *ctx;

    memset(e.cert_sha256, 0x33, sizeof(e.cert_sha256));
    buf[0] = 0;
    if (tlog_leaf_encode(buf + 1, &len, &e) != 0)
        fu_fail("tlog_leaf_encode");
    put("fuzz_tlog", "leaf_issued", buf, len + 1);
    e.type = TLOG_REVOKED;
    e.reason = 1;
    if (tlog_leaf_encode(buf + 1, &len, &e) != 0)
        fu_fail("tlog_leaf_encode");
    put("fuzz_tlog", "leaf_revoked", buf, len + 1);
    for (i = 0; i < 7; i++) {
        b = (uint8_t)i;
        if (merkle_leaf_hash(leaves[i], &b, 1) != 0)
            fu_fail("merkle_leaf_hash");
    }
    merkle_root(h.root, (const uint8_t(*)[MERKLE_HASH_LEN])leaves, 7);
    tlog_head_tbs(tbs, &h);
    if ((ctx = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestSignInit(ctx, NULL, NULL, NULL, w->inter_key) != 1 ||
        EVP_DigestSign(ctx, sig, &sig_len, tbs, sizeof(tbs)) != 1)
        fu_fail("signing a tree head");
    EVP_MD_CTX_free(ctx);
    buf[0] = 1;
    if (tlog_signed_head_encode(buf + 1, &len, &h, sig, sig_len) != 0)
        fu_fail("tlog_signed_head_encode");
    put("fuzz_tlog", "signed_head", buf, len + 1);
    buf[0] = 2;
    memset(buf + 1, 0, 16);
    buf[1 + 7] = 3;
    buf[1 + 15] = 7;
    memcpy(buf + 1 + 16, leaves[3], MERKLE_HASH_LEN);
    memcpy(buf + 1 + 16 + MERKLE_HASH_LEN, h.root, MERKLE_HASH_LEN);
    if (merkle_inclusion_proof((uint8_t(*)[MERKLE_HASH_LEN])(buf + 1 + 16 + 2 * MERKLE_HASH_LEN),
                               &n, (const uint8_t(*)[MERKLE_HASH_LEN])leaves, 7, 3) != 0)
        fu_fail("merkle_inclusion_proof");
    put("fuzz_tlog", "inclusion_3_of_7", buf, 1 + 16 + (2 + n) * MERKLE_HASH_LEN);
    /* Saved leaves: the two leaves above, as audit --save-leaves writes
     * them. */
    buf[0] = 3;
    tlog_leaves_header(buf + 1, 2);
    n = 1 + TLOG_LEAVES_HEADER_LEN;
    for (i = 0; i < 2; i++) {
        e.type = i == 0 ? TLOG_ISSUED : TLOG_REVOKED;
        e.reason = (uint8_t)i;
        if (tlog_leaf_encode(buf + n + 2, &len, &e) != 0)
            fu_fail("tlog_leaf_encode");
        tlog_leaves_frame(buf + n, len);
        n += 2 + len;
    }
    put("fuzz_tlog", "saved_leaves", buf, n);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST)
        fu_fail(outdir);
    enroll_seeds();
    message_seeds();
    answer_seeds();
    attest_seeds();
    quote_seeds();
    csr_seeds();
    chain_seeds();
    token_seeds();
    challenge_seeds();
    http_head_seeds();
    tpmkey_seeds();
    nvcert_seeds();
    signreq_seeds();
    tlog_seeds();
    return 0;
}
