/* Unit tests for agent/core/wire.c: the agent's requests as the verifier
 * decodes them, and the verifier's answers (ChallengeResponse,
 * EnrollResponse, Error) accepted or refused. The answers are encoded here
 * with the protoc-c code of the schema, as the verifier encodes them, and
 * then broken one field at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "agent/core/wire.h"
#include "common/err.h"
#include "devid/v1/enroll.pb-c.h"
#include "testutil.h"

struct fixture {
    EVP_PKEY *ldevid, *other, *ca_key;
    X509 *ca, *cert, *cert_other;
};

static int setup(void **state)
{
    struct tu_cert_spec ca = {.o = "Lab", .cn = "Lab CA", .ca = 1};
    struct tu_cert_spec leaf = {.o = "Acme", .cn = "Gateway X1", .serial = "SN-1"};
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    ca.not_before = leaf.not_before = TU_NOW - TU_DAY;
    ca.not_after = leaf.not_after = TU_NOW + 365 * TU_DAY;
    f->ldevid = tu_ec_key();
    f->other = tu_ec_key();
    f->ca_key = tu_ec_key();
    f->ca = tu_cert(&ca, f->ca_key, NULL, f->ca_key);
    f->cert = tu_cert(&leaf, f->ldevid, f->ca, f->ca_key);
    f->cert_other = tu_cert(&leaf, f->other, f->ca, f->ca_key);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    X509_free(f->cert_other);
    X509_free(f->cert);
    X509_free(f->ca);
    EVP_PKEY_free(f->ca_key);
    EVP_PKEY_free(f->other);
    EVP_PKEY_free(f->ldevid);
    free(f);
    return 0;
}

/* der returns the DER of |x| (OPENSSL_malloc) in |*bin|. */
static void der(ProtobufCBinaryData *bin, X509 *x)
{
    int n;

    bin->data = NULL;
    assert_true((n = i2d_X509(x, &bin->data)) > 0);
    bin->len = (size_t)n;
}

/* packed encodes |msg| (malloc). */
static uint8_t *packed(size_t *len, const ProtobufCMessage *msg)
{
    uint8_t *buf;

    *len = protobuf_c_message_get_packed_size(msg);
    assert_non_null(buf = malloc(*len + 1));
    assert_int_equal(protobuf_c_message_pack(msg, buf), *len);
    return buf;
}

/* ---- ChallengeRequest and ChallengeResponse ---- */

static void challenge_request_decodes(void **state)
{
    struct fixture *f = *state;
    Devid__V1__ChallengeRequest *req;
    STACK_OF(X509) *chain = sk_X509_new_null();
    uint8_t *buf = NULL, *want = NULL;
    size_t len = 0;
    int i, n;

    assert_int_equal(wire_challenge_request(&buf, &len, NULL), 0);
    assert_non_null(req = devid__v1__challenge_request__unpack(NULL, len, buf));
    assert_int_equal(req->protocol_version, WIRE_PROTOCOL_VERSION);
    assert_string_equal(req->agent_version, "devid-agent/" DEVID_VERSION);
    assert_int_equal(req->n_intermediates, 0);
    devid__v1__challenge_request__free_unpacked(req, NULL);
    free(buf);
    assert_int_equal(wire_challenge_request(NULL, &len, NULL), DEVID_ERR_INVALID_ARGUMENT);

    /* The device's chain goes along, in order, as DER. */
    assert_non_null(chain);
    assert_true(sk_X509_push(chain, f->ca) > 0);
    assert_true(sk_X509_push(chain, f->cert) > 0);
    assert_int_equal(wire_challenge_request(&buf, &len, chain), 0);
    assert_non_null(req = devid__v1__challenge_request__unpack(NULL, len, buf));
    assert_int_equal(req->n_intermediates, 2);
    for (i = 0; i < 2; i++) {
        assert_true((n = i2d_X509(sk_X509_value(chain, i), &want)) > 0);
        assert_int_equal(req->intermediates[i].len, n);
        assert_memory_equal(req->intermediates[i].data, want, (size_t)n);
        OPENSSL_free(want);
        want = NULL;
    }
    devid__v1__challenge_request__free_unpacked(req, NULL);
    free(buf);

    /* More than the schema allows is refused, not cut. */
    while (sk_X509_num(chain) <= WIRE_CHAIN_MAX)
        assert_true(sk_X509_push(chain, f->ca) > 0);
    buf = NULL;
    assert_int_equal(wire_challenge_request(&buf, &len, chain), DEVID_ERR_INVALID_ARGUMENT);
    assert_null(buf);
    sk_X509_free(chain);
}

/* challenge packs a ChallengeResponse with a nonce of |nonce_len| bytes and
 * a token of |token_len| bytes. */
static uint8_t *challenge(size_t *len, size_t nonce_len, size_t token_len)
{
    Devid__V1__ChallengeResponse resp = DEVID__V1__CHALLENGE_RESPONSE__INIT;
    static uint8_t nonce[64], token[WIRE_TOKEN_MAX + 2];

    memset(nonce, 0x5a, sizeof(nonce));
    memset(token, 0x7e, sizeof(token));
    resp.nonce.data = nonce;
    resp.nonce.len = nonce_len;
    resp.token.data = token;
    resp.token.len = token_len;
    resp.expires_at = 1735689660;
    return packed(len, &resp.base);
}

static void challenge_good(void **state)
{
    struct wire_challenge c;
    uint8_t *buf;
    size_t len;
    char why[128];

    (void)state;
    buf = challenge(&len, TRANSCRIPT_NONCE_LEN, 64);
    assert_int_equal(wire_challenge_parse(&c, buf, len, why, sizeof(why)), 0);
    assert_int_equal(c.nonce[0], 0x5a);
    assert_int_equal(c.nonce[TRANSCRIPT_NONCE_LEN - 1], 0x5a);
    assert_int_equal(c.token_len, 64);
    assert_int_equal(c.token[63], 0x7e);
    assert_int_equal(c.expires_at, 1735689660);
    free(buf);
    /* The longest token accepted. */
    buf = challenge(&len, TRANSCRIPT_NONCE_LEN, WIRE_TOKEN_MAX);
    assert_int_equal(wire_challenge_parse(&c, buf, len, why, sizeof(why)), 0);
    assert_int_equal(c.token_len, WIRE_TOKEN_MAX);
    free(buf);
}

static void challenge_refused(void **state)
{
    static const struct {
        size_t nonce, token;
    } bad[] = {
        {TRANSCRIPT_NONCE_LEN - 1, 16},
        {TRANSCRIPT_NONCE_LEN + 1, 16},
        {0, 16},
        {TRANSCRIPT_NONCE_LEN, 0},
        {TRANSCRIPT_NONCE_LEN, WIRE_TOKEN_MAX + 1},
    };
    /* Field 1 (nonce, bytes) sent as a varint: the wrong wire type. */
    static const uint8_t wrong_type[] = {0x08, 0x20, 0x12, 0x01, 0x41};
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff};
    struct wire_challenge c;
    uint8_t *buf, *big;
    size_t i, len;
    char why[128];

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf = challenge(&len, bad[i].nonce, bad[i].token);
        assert_int_equal(wire_challenge_parse(&c, buf, len, why, sizeof(why)), DEVID_ERR_PROTOCOL);
        assert_non_null(strstr(why, "nonce of"));
        free(buf);
    }
    assert_int_equal(wire_challenge_parse(&c, wrong_type, sizeof(wrong_type), why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "not a devid.v1.ChallengeResponse"));
    assert_int_equal(wire_challenge_parse(&c, garbage, sizeof(garbage), why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    /* An empty body is an empty message: no nonce. */
    assert_int_equal(wire_challenge_parse(&c, NULL, 0, why, sizeof(why)), DEVID_ERR_PROTOCOL);
    /* Larger than any answer the HTTP shell accepts. */
    assert_non_null(big = calloc(1, WIRE_ANSWER_MAX + 1));
    assert_int_equal(wire_challenge_parse(&c, big, WIRE_ANSWER_MAX + 1, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    free(big);
}

/* ---- EnrollRequest ---- */

struct request {
    uint8_t token[32];
    uint8_t *csr;
    size_t csr_len;
    uint8_t info[128];
    TPMT_SIGNATURE sig;
    TPMT_PUBLIC ldevid_pub, signer_pub;
    STACK_OF(X509) *chain;
    struct wire_enroll_request in;
};

static void request_init(struct request *q, const struct fixture *f)
{
    uint8_t buf[sizeof(TPMT_PUBLIC)];
    size_t len;

    memset(q, 0, sizeof(*q));
    memset(q->token, 0x11, sizeof(q->token));
    memset(q->info, 0x22, sizeof(q->info));
    q->csr = tu_csr_der(&q->csr_len, f->ldevid, f->ldevid);
    q->sig.sigAlg = TPM2_ALG_ECDSA;
    q->sig.signature.ecdsa.hash = TPM2_ALG_SHA256;
    q->sig.signature.ecdsa.signatureR.size = 32;
    q->sig.signature.ecdsa.signatureS.size = 32;
    len = sizeof(buf);
    tu_tpm_public(&q->ldevid_pub, buf, &len, f->ldevid, TU_LDEVID_ATTRS);
    len = sizeof(buf);
    tu_tpm_public(&q->signer_pub, buf, &len, f->other, TU_LDEVID_ATTRS);
    assert_non_null(q->chain = sk_X509_new_null());
    assert_int_equal(X509_up_ref(f->ca), 1);
    assert_true(sk_X509_push(q->chain, f->ca) > 0);
    q->in.token = q->token;
    q->in.token_len = sizeof(q->token);
    q->in.csr = q->csr;
    q->in.csr_len = q->csr_len;
    q->in.challenge_signature = &q->sig;
    q->in.certify_info = q->info;
    q->in.certify_info_len = sizeof(q->info);
    q->in.certify_signature = &q->sig;
    q->in.ldevid_public = &q->ldevid_pub;
    q->in.signer_public = &q->signer_pub;
    q->in.intermediates = q->chain;
}

static void request_cleanup(struct request *q)
{
    free(q->csr);
    sk_X509_pop_free(q->chain, X509_free);
}

static void enroll_request_decodes(void **state)
{
    struct fixture *f = *state;
    Devid__V1__EnrollRequest *req;
    struct request q;
    TPMT_PUBLIC pub;
    uint8_t *buf = NULL;
    size_t len = 0, off = 0;
    char why[128];

    request_init(&q, f);
    assert_int_equal(wire_enroll_request(&buf, &len, &q.in, why, sizeof(why)), 0);
    assert_non_null(req = devid__v1__enroll_request__unpack(NULL, len, buf));
    assert_memory_equal(req->token.data, q.token, sizeof(q.token));
    assert_int_equal(req->csr.len, q.csr_len);
    assert_non_null(req->evidence);
    assert_int_equal(req->evidence->signer, DEVID__V1__SIGNER_KIND__SIGNER_KIND_IDEVID);
    assert_int_equal(req->evidence->certify_info.len, sizeof(q.info));
    assert_int_equal(req->evidence->iak_certificate.len, 0);
    assert_int_equal(Tss2_MU_TPMT_PUBLIC_Unmarshal(req->evidence->ldevid_public.data,
                                                   req->evidence->ldevid_public.len, &off, &pub),
                     TSS2_RC_SUCCESS);
    assert_int_equal(off, req->evidence->ldevid_public.len);
    assert_memory_equal(&pub.unique.ecc, &q.ldevid_pub.unique.ecc, sizeof(pub.unique.ecc));
    assert_int_equal(req->n_intermediates, 1);
    devid__v1__enroll_request__free_unpacked(req, NULL);
    free(buf);

    /* With an IAK certificate the signer is the IAK. */
    q.in.iak_cert = f->cert_other;
    assert_int_equal(wire_enroll_request(&buf, &len, &q.in, why, sizeof(why)), 0);
    assert_non_null(req = devid__v1__enroll_request__unpack(NULL, len, buf));
    assert_int_equal(req->evidence->signer, DEVID__V1__SIGNER_KIND__SIGNER_KIND_IAK);
    assert_true(req->evidence->iak_certificate.len > 0);
    devid__v1__enroll_request__free_unpacked(req, NULL);
    free(buf);
    request_cleanup(&q);
}

static void enroll_request_refused(void **state)
{
    struct fixture *f = *state;
    struct request q;
    uint8_t *buf = NULL, big[WIRE_CSR_MAX + 1];
    size_t len = 0;
    char why[128];
    int i;

#define REFUSED(field, value, expect)                                              \
    do {                                                                           \
        request_init(&q, f);                                                       \
        q.in.field = value;                                                        \
        assert_int_equal(wire_enroll_request(&buf, &len, &q.in, why, sizeof(why)), \
                         DEVID_ERR_INVALID_ARGUMENT);                              \
        assert_null(buf);                                                          \
        assert_non_null(strstr(why, expect));                                      \
        request_cleanup(&q);                                                       \
    } while (0)
    REFUSED(token_len, 0, "token");
    REFUSED(token_len, WIRE_TOKEN_MAX + 1, "token");
    REFUSED(token, NULL, "token");
    REFUSED(csr, NULL, "CSR");
    REFUSED(csr_len, 0, "CSR");
    REFUSED(certify_info_len, 0, "TPM2_Certify");
    REFUSED(certify_info_len, sizeof(TPMS_ATTEST) + 1, "TPM2_Certify");
    REFUSED(challenge_signature, NULL, "signatures");
    REFUSED(certify_signature, NULL, "signatures");
    REFUSED(ldevid_public, NULL, "public areas");
    REFUSED(signer_public, NULL, "public areas");
#undef REFUSED
    /* A CSR larger than any this agent makes. */
    memset(big, 0x30, sizeof(big));
    request_init(&q, f);
    q.in.csr_len = sizeof(big);
    q.in.csr = big;
    assert_int_equal(wire_enroll_request(&buf, &len, &q.in, why, sizeof(why)),
                     DEVID_ERR_INVALID_ARGUMENT);
    /* More intermediates than the schema allows. */
    for (i = 1; i <= WIRE_CHAIN_MAX; i++) {
        assert_int_equal(X509_up_ref(f->ca), 1);
        assert_true(sk_X509_push(q.chain, f->ca) > 0);
    }
    q.in.csr = q.csr;
    q.in.csr_len = q.csr_len;
    assert_int_equal(wire_enroll_request(&buf, &len, &q.in, why, sizeof(why)),
                     DEVID_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(why, "intermediates"));
    /* Exactly WIRE_CHAIN_MAX is fine. */
    X509_free(sk_X509_pop(q.chain));
    assert_int_equal(wire_enroll_request(&buf, &len, &q.in, why, sizeof(why)), 0);
    free(buf);
    request_cleanup(&q);
}

/* ---- EnrollResponse ---- */

/* response packs an EnrollResponse with |cert| (NULL: none) and |n| copies
 * of |chain_cert| in its chain. */
static uint8_t *response(size_t *len, X509 *cert, X509 *chain_cert, size_t n)
{
    Devid__V1__EnrollResponse resp = DEVID__V1__ENROLL_RESPONSE__INIT;
    ProtobufCBinaryData chain[WIRE_CHAIN_MAX + 2];
    uint8_t *buf;
    size_t i;

    assert_true(n <= WIRE_CHAIN_MAX + 2);
    if (cert != NULL)
        der(&resp.certificate, cert);
    for (i = 0; i < n; i++)
        der(&chain[i], chain_cert);
    resp.n_chain = n;
    resp.chain = n > 0 ? chain : NULL;
    resp.serial = (char *)"01";
    buf = packed(len, &resp.base);
    OPENSSL_free(resp.certificate.data);
    for (i = 0; i < n; i++)
        OPENSSL_free(chain[i].data);
    return buf;
}

static void enroll_response_good(void **state)
{
    struct fixture *f = *state;
    struct wire_enrolled e;
    uint8_t *buf;
    size_t len;
    char why[256];

    buf = response(&len, f->cert, f->ca, 1);
    assert_int_equal(wire_enroll_response_parse(&e, buf, len, f->ldevid, why, sizeof(why)), 0);
    assert_int_equal(X509_cmp(e.cert, f->cert), 0);
    assert_int_equal(sk_X509_num(e.chain), 1);
    assert_int_equal(X509_cmp(sk_X509_value(e.chain, 0), f->ca), 0);
    wire_enrolled_cleanup(&e);
    wire_enrolled_cleanup(NULL);
    free(buf);
    /* No chain, and the longest one. */
    buf = response(&len, f->cert, f->ca, 0);
    assert_int_equal(wire_enroll_response_parse(&e, buf, len, f->ldevid, why, sizeof(why)), 0);
    assert_int_equal(sk_X509_num(e.chain), 0);
    wire_enrolled_cleanup(&e);
    free(buf);
    buf = response(&len, f->cert, f->ca, WIRE_CHAIN_MAX);
    assert_int_equal(wire_enroll_response_parse(&e, buf, len, f->ldevid, why, sizeof(why)), 0);
    assert_int_equal(sk_X509_num(e.chain), WIRE_CHAIN_MAX);
    wire_enrolled_cleanup(&e);
    free(buf);
}

static void expect_refused(const uint8_t *buf, size_t len, EVP_PKEY *key, const char *why_part)
{
    struct wire_enrolled e;
    char why[256];

    assert_int_equal(wire_enroll_response_parse(&e, buf, len, key, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_null(e.cert);
    assert_null(e.chain);
    assert_non_null(strstr(why, why_part));
}

static void enroll_response_refused(void **state)
{
    struct fixture *f = *state;
    Devid__V1__EnrollResponse resp = DEVID__V1__ENROLL_RESPONSE__INIT;
    /* Field 1 (certificate, bytes) sent as a varint. */
    static const uint8_t wrong_type[] = {0x08, 0x01};
    static const uint8_t junk_cert[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    ProtobufCBinaryData chain[1];
    uint8_t *buf;
    size_t len;

    buf = response(&len, f->cert, f->ca, 1);
    expect_refused(buf, len, f->other, "not for the new TPM key");
    free(buf);
    buf = response(&len, NULL, f->ca, 1);
    expect_refused(buf, len, f->ldevid, "no certificate");
    free(buf);
    buf = response(&len, f->cert, f->ca, WIRE_CHAIN_MAX + 1);
    expect_refused(buf, len, f->ldevid, "more than 8 chain certificates");
    free(buf);
    expect_refused(wrong_type, sizeof(wrong_type), f->ldevid, "not a devid.v1.EnrollResponse");
    expect_refused(junk_cert, sizeof(junk_cert), f->ldevid, "not a devid.v1.EnrollResponse");
    /* A certificate that does not parse, then a chain entry that does not. */
    resp.certificate.data = (uint8_t *)junk_cert;
    resp.certificate.len = sizeof(junk_cert);
    buf = packed(&len, &resp.base);
    expect_refused(buf, len, f->ldevid, "the issued certificate");
    free(buf);
    der(&resp.certificate, f->cert);
    chain[0].data = (uint8_t *)junk_cert;
    chain[0].len = sizeof(junk_cert);
    resp.chain = chain;
    resp.n_chain = 1;
    buf = packed(&len, &resp.base);
    expect_refused(buf, len, f->ldevid, "certificate 1 of the issued chain");
    free(buf);
    OPENSSL_free(resp.certificate.data);
}

/* ---- Error ---- */

static uint8_t *error_msg(size_t *len, int reason, const char *message, bool retryable,
                          uint32_t retry_after)
{
    Devid__V1__Error e = DEVID__V1__ERROR__INIT;

    e.reason = (Devid__V1__Reason)reason;
    e.message = (char *)message;
    e.retryable = retryable;
    e.retry_after_seconds = retry_after;
    return packed(len, &e.base);
}

static void error_good(void **state)
{
    struct wire_error e;
    char why[128], long_msg[WIRE_MESSAGE_MAX + 100];
    uint8_t *buf;
    size_t len;

    (void)state;
    buf = error_msg(&len, DEVID__V1__REASON__REASON_OVERLOADED, "busy", true, 7);
    assert_int_equal(wire_error_parse(&e, buf, len, why, sizeof(why)), 0);
    assert_int_equal(e.reason, DEVID__V1__REASON__REASON_OVERLOADED);
    assert_string_equal(e.reason_name, "REASON_OVERLOADED");
    assert_string_equal(e.message, "busy");
    assert_true(e.retryable);
    assert_int_equal(e.retry_after, 7);
    free(buf);
    /* A reason this agent does not know, and a message with control bytes. */
    buf = error_msg(&len, 999, "line\nbreak\x1b[31m", false, 0);
    assert_int_equal(wire_error_parse(&e, buf, len, why, sizeof(why)), 0);
    assert_string_equal(e.reason_name, "unknown reason");
    assert_string_equal(e.message, "line?break?[31m");
    free(buf);
    /* A reason without a message, and a message without a reason. */
    buf = error_msg(&len, DEVID__V1__REASON__REASON_POLICY_DENIED, "", false, 0);
    assert_int_equal(wire_error_parse(&e, buf, len, why, sizeof(why)), 0);
    assert_string_equal(e.message, "");
    free(buf);
    buf = error_msg(&len, 0, "something", false, 0);
    assert_int_equal(wire_error_parse(&e, buf, len, why, sizeof(why)), 0);
    free(buf);
    /* A long message is cut. */
    memset(long_msg, 'm', sizeof(long_msg) - 1);
    long_msg[sizeof(long_msg) - 1] = '\0';
    buf = error_msg(&len, 1, long_msg, false, 0);
    assert_int_equal(wire_error_parse(&e, buf, len, why, sizeof(why)), 0);
    assert_int_equal(strlen(e.message), WIRE_MESSAGE_MAX - 1);
    free(buf);
}

static void error_malformed(void **state)
{
    /* Field 2 (message, string) sent as a varint; field 1 (reason, enum) as
     * a length-delimited field. */
    static const uint8_t message_varint[] = {0x10, 0x05};
    static const uint8_t reason_bytes[] = {0x0a, 0x01, 0x13};
    static const uint8_t garbage[] = {0x0a, 0xff, 0xff};
    struct wire_error e;
    char why[128];
    uint8_t *buf;
    size_t len;

    (void)state;
    assert_int_equal(wire_error_parse(&e, NULL, 0, why, sizeof(why)), DEVID_ERR_PROTOCOL);
    assert_int_equal(wire_error_parse(&e, garbage, sizeof(garbage), why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_int_equal(wire_error_parse(&e, message_varint, sizeof(message_varint), why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_int_equal(wire_error_parse(&e, reason_bytes, sizeof(reason_bytes), why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "not a devid.v1.Error"));
    /* Neither a reason nor a message: not an Error worth the name. */
    buf = error_msg(&len, 0, "", true, 5);
    assert_int_equal(wire_error_parse(&e, buf, len, why, sizeof(why)), DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "neither a reason nor a message"));
    free(buf);
}

/* ---- EK credential activation ---- */

/* The EK fields travel as given: the certificate's bytes, both public
 * areas marshalled without size; an empty or oversize certificate is
 * refused. */
static void challenge_request_ek(void **state)
{
    struct fixture *f = *state;
    Devid__V1__ChallengeRequest *req;
    TPMT_PUBLIC ek_pub, ld_pub, got;
    uint8_t cert[100], pub[sizeof(TPMT_PUBLIC)], *buf = NULL;
    size_t len = 0, off = 0;
    struct wire_ek ek;

    memset(cert, 0x30, sizeof(cert));
    len = sizeof(pub);
    tu_tpm_public(&ek_pub, pub, &len, f->other, TU_LDEVID_ATTRS);
    len = sizeof(pub);
    tu_tpm_public(&ld_pub, pub, &len, f->ldevid, TU_LDEVID_ATTRS);
    ek = (struct wire_ek){cert, sizeof(cert), &ek_pub, &ld_pub, NULL, NULL};
    assert_int_equal(wire_challenge_request_ek(&buf, &len, NULL, &ek), 0);
    assert_non_null(req = devid__v1__challenge_request__unpack(NULL, len, buf));
    assert_int_equal(req->ek_certificate.len, sizeof(cert));
    assert_memory_equal(req->ek_certificate.data, cert, sizeof(cert));
    assert_int_equal(
        Tss2_MU_TPMT_PUBLIC_Unmarshal(req->ek_public.data, req->ek_public.len, &off, &got),
        TSS2_RC_SUCCESS);
    assert_int_equal(off, req->ek_public.len);
    assert_int_equal(got.unique.ecc.x.size, ek_pub.unique.ecc.x.size);
    assert_memory_equal(got.unique.ecc.x.buffer, ek_pub.unique.ecc.x.buffer, got.unique.ecc.x.size);
    off = 0;
    assert_int_equal(
        Tss2_MU_TPMT_PUBLIC_Unmarshal(req->ldevid_public.data, req->ldevid_public.len, &off, &got),
        TSS2_RC_SUCCESS);
    assert_int_equal(off, req->ldevid_public.len);
    assert_int_equal(got.unique.ecc.x.size, ld_pub.unique.ecc.x.size);
    assert_memory_equal(got.unique.ecc.x.buffer, ld_pub.unique.ecc.x.buffer, got.unique.ecc.x.size);
    assert_int_equal(req->ak_public.len, 0);
    assert_int_equal(req->n_ek_intermediates, 0);
    devid__v1__challenge_request__free_unpacked(req, NULL);
    free(buf);
    buf = NULL;
    /* The EK's chain from NV travels as ek_intermediates, each the DER of
     * its certificate, apart from the device's intermediates; more than
     * WIRE_CHAIN_MAX is refused. */
    {
        STACK_OF(X509) *chain = sk_X509_new_null(), *dev = sk_X509_new_null();
        uint8_t *want = NULL;
        int n, i;

        assert_non_null(chain);
        assert_non_null(dev);
        assert_true(sk_X509_push(chain, f->ca) > 0);
        assert_true(sk_X509_push(dev, f->cert) > 0);
        ek.chain = chain;
        assert_int_equal(wire_challenge_request_ek(&buf, &len, dev, &ek), 0);
        assert_non_null(req = devid__v1__challenge_request__unpack(NULL, len, buf));
        assert_int_equal(req->n_ek_intermediates, 1);
        assert_int_equal(req->n_intermediates, 1);
        assert_true((n = i2d_X509(f->ca, &want)) > 0);
        assert_int_equal(req->ek_intermediates[0].len, n);
        assert_memory_equal(req->ek_intermediates[0].data, want, (size_t)n);
        OPENSSL_free(want);
        devid__v1__challenge_request__free_unpacked(req, NULL);
        free(buf);
        buf = NULL;
        for (i = 0; i < WIRE_CHAIN_MAX; i++)
            assert_true(sk_X509_push(chain, f->ca) > 0);
        assert_int_equal(wire_challenge_request_ek(&buf, &len, NULL, &ek),
                         DEVID_ERR_INVALID_ARGUMENT);
        assert_null(buf);
        ek.chain = NULL;
        sk_X509_free(chain);
        sk_X509_free(dev);
    }
    /* With an AK, its public area travels too. */
    ek.ak_public = &ek_pub;
    assert_int_equal(wire_challenge_request_ek(&buf, &len, NULL, &ek), 0);
    assert_non_null(req = devid__v1__challenge_request__unpack(NULL, len, buf));
    off = 0;
    assert_int_equal(
        Tss2_MU_TPMT_PUBLIC_Unmarshal(req->ak_public.data, req->ak_public.len, &off, &got),
        TSS2_RC_SUCCESS);
    assert_int_equal(off, req->ak_public.len);
    assert_memory_equal(got.unique.ecc.x.buffer, ek_pub.unique.ecc.x.buffer, got.unique.ecc.x.size);
    devid__v1__challenge_request__free_unpacked(req, NULL);
    free(buf);
    buf = NULL;
    ek.cert_len = 0;
    assert_int_equal(wire_challenge_request_ek(&buf, &len, NULL, &ek), DEVID_ERR_INVALID_ARGUMENT);
    ek.cert_len = WIRE_EK_CERT_MAX + 1;
    assert_int_equal(wire_challenge_request_ek(&buf, &len, NULL, &ek), DEVID_ERR_INVALID_ARGUMENT);
    assert_null(buf);
}

/* A credential comes back byte for byte; one half of it, or an oversize
 * blob, is refused. */
static void challenge_credential(void **state)
{
    Devid__V1__ChallengeResponse resp = DEVID__V1__CHALLENGE_RESPONSE__INIT;
    static uint8_t nonce[32], token[16], blob[sizeof(TPM2B_ID_OBJECT) + 1], secret[258];
    struct wire_challenge c;
    uint8_t *buf;
    size_t len;
    char why[256];

    (void)state;
    memset(blob, 0xB1, sizeof(blob));
    memset(secret, 0x5E, sizeof(secret));
    resp.nonce = (ProtobufCBinaryData){sizeof(nonce), nonce};
    resp.token = (ProtobufCBinaryData){sizeof(token), token};
    resp.credential_blob = (ProtobufCBinaryData){70, blob};
    resp.encrypted_secret = (ProtobufCBinaryData){sizeof(secret), secret};
    buf = packed(&len, &resp.base);
    assert_int_equal(wire_challenge_parse(&c, buf, len, why, sizeof(why)), 0);
    assert_int_equal(c.credential_blob_len, 70);
    assert_memory_equal(c.credential_blob, blob, 70);
    assert_int_equal(c.encrypted_secret_len, sizeof(secret));
    assert_memory_equal(c.encrypted_secret, secret, sizeof(secret));
    free(buf);
    resp.encrypted_secret.len = 0;
    buf = packed(&len, &resp.base);
    assert_int_equal(wire_challenge_parse(&c, buf, len, why, sizeof(why)), DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "or neither"));
    free(buf);
    resp.encrypted_secret.len = sizeof(secret);
    resp.credential_blob.len = sizeof(blob);
    buf = packed(&len, &resp.base);
    assert_int_equal(wire_challenge_parse(&c, buf, len, why, sizeof(why)), DEVID_ERR_PROTOCOL);
    free(buf);
    /* The AK's credential comes back the same way, only beside the EK's. */
    resp.credential_blob.len = 70;
    resp.ak_credential_blob = (ProtobufCBinaryData){71, blob};
    resp.ak_encrypted_secret = (ProtobufCBinaryData){sizeof(secret), secret};
    buf = packed(&len, &resp.base);
    assert_int_equal(wire_challenge_parse(&c, buf, len, why, sizeof(why)), 0);
    assert_int_equal(c.ak_credential_blob_len, 71);
    assert_int_equal(c.ak_encrypted_secret_len, sizeof(secret));
    free(buf);
    resp.ak_encrypted_secret.len = 0;
    buf = packed(&len, &resp.base);
    assert_int_equal(wire_challenge_parse(&c, buf, len, why, sizeof(why)), DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "ak_credential_blob"));
    free(buf);
    resp.ak_encrypted_secret.len = sizeof(secret);
    resp.credential_blob.len = 0;
    resp.encrypted_secret.len = 0;
    buf = packed(&len, &resp.base);
    assert_int_equal(wire_challenge_parse(&c, buf, len, why, sizeof(why)), DEVID_ERR_PROTOCOL);
    free(buf);
}

/* quote_pcrs: at most 8 PCRs below 24, ascending without repeats. */
static void challenge_quote_pcrs(void **state)
{
    static const struct {
        uint32_t pcrs[9];
        size_t n;
        int want;
        uint32_t mask;
    } cases[] = {
        {{7}, 1, 0, 1u << 7},
        {{0, 7, 23}, 3, 0, 1u << 0 | 1u << 7 | 1u << 23},
        {{0}, 0, 0, 0},
        {{24}, 1, DEVID_ERR_PROTOCOL, 0},
        {{7, 7}, 2, DEVID_ERR_PROTOCOL, 0},
        {{11, 7}, 2, DEVID_ERR_PROTOCOL, 0},
        {{0, 1, 2, 3, 4, 5, 6, 7, 8}, 9, DEVID_ERR_PROTOCOL, 0},
    };
    Devid__V1__ChallengeResponse resp = DEVID__V1__CHALLENGE_RESPONSE__INIT;
    static uint8_t nonce[32], token[16];
    struct wire_challenge c;
    uint8_t *buf;
    size_t len, i;
    char why[256];

    (void)state;
    resp.nonce = (ProtobufCBinaryData){sizeof(nonce), nonce};
    resp.token = (ProtobufCBinaryData){sizeof(token), token};
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        resp.quote_pcrs = (uint32_t *)cases[i].pcrs;
        resp.n_quote_pcrs = cases[i].n;
        buf = packed(&len, &resp.base);
        assert_int_equal(wire_challenge_parse(&c, buf, len, why, sizeof(why)), cases[i].want);
        if (cases[i].want == 0)
            assert_int_equal(c.quote_pcrs, cases[i].mask);
        free(buf);
    }
}

/* The quote goes out as PcrQuote with the PCR values in order. */
static void enroll_request_quote(void **state)
{
    struct fixture *f = *state;
    Devid__V1__EnrollRequest *req;
    struct wire_pcr pcrs[2];
    struct request q;
    uint8_t *buf = NULL, quote[64];
    size_t len = 0;
    char why[128];

    request_init(&q, f);
    memset(quote, 0x51, sizeof(quote));
    pcrs[0].index = 7;
    memset(pcrs[0].sha256, 0x07, sizeof(pcrs[0].sha256));
    pcrs[1].index = 11;
    memset(pcrs[1].sha256, 0x0b, sizeof(pcrs[1].sha256));
    q.in.quote_info = quote;
    q.in.quote_info_len = sizeof(quote);
    q.in.quote_signature = &q.sig;
    q.in.pcrs = pcrs;
    q.in.n_pcrs = 2;
    assert_int_equal(wire_enroll_request(&buf, &len, &q.in, why, sizeof(why)), 0);
    assert_non_null(req = devid__v1__enroll_request__unpack(NULL, len, buf));
    assert_non_null(req->quote);
    assert_memory_equal(req->quote->quote_info.data, quote, sizeof(quote));
    assert_true(req->quote->quote_signature.len > 0);
    assert_int_equal(req->quote->n_pcrs, 2);
    assert_int_equal(req->quote->pcrs[0]->index, 7);
    assert_int_equal(req->quote->pcrs[1]->index, 11);
    assert_int_equal(req->quote->pcrs[1]->sha256.len, 32);
    assert_memory_equal(req->quote->pcrs[1]->sha256.data, pcrs[1].sha256, 32);
    assert_int_equal(req->quote->ak_public.len, 0);
    assert_int_equal(req->quote->ak_activated_secret.len, 0);
    devid__v1__enroll_request__free_unpacked(req, NULL);
    free(buf);
    /* With the AK: its public area and its activated secret in the quote. */
    {
        uint8_t secret[32];

        memset(secret, 0xA5, sizeof(secret));
        q.in.ak_public = q.in.ldevid_public;
        q.in.ak_activated_secret = secret;
        q.in.ak_activated_secret_len = sizeof(secret);
        assert_int_equal(wire_enroll_request(&buf, &len, &q.in, why, sizeof(why)), 0);
        assert_non_null(req = devid__v1__enroll_request__unpack(NULL, len, buf));
        assert_non_null(req->quote);
        assert_memory_equal(req->quote->ak_public.data, req->evidence->ldevid_public.data,
                            req->evidence->ldevid_public.len);
        assert_int_equal(req->quote->ak_activated_secret.len, sizeof(secret));
        assert_memory_equal(req->quote->ak_activated_secret.data, secret, sizeof(secret));
        devid__v1__enroll_request__free_unpacked(req, NULL);
        free(buf);
        q.in.ak_public = NULL;
        q.in.ak_activated_secret = NULL;
        q.in.ak_activated_secret_len = 0;
    }
    /* A quote without PCR values, or past WIRE_PCR_MAX, is not encoded. */
    q.in.n_pcrs = 0;
    assert_int_equal(wire_enroll_request(&buf, &len, &q.in, why, sizeof(why)),
                     DEVID_ERR_INVALID_ARGUMENT);
    q.in.n_pcrs = WIRE_PCR_MAX + 1;
    assert_int_equal(wire_enroll_request(&buf, &len, &q.in, why, sizeof(why)),
                     DEVID_ERR_INVALID_ARGUMENT);
    /* Without a quote, none is sent. */
    q.in.quote_info = NULL;
    assert_int_equal(wire_enroll_request(&buf, &len, &q.in, why, sizeof(why)), 0);
    assert_non_null(req = devid__v1__enroll_request__unpack(NULL, len, buf));
    assert_null(req->quote);
    devid__v1__enroll_request__free_unpacked(req, NULL);
    free(buf);
    request_cleanup(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(challenge_request_decodes), cmocka_unit_test(challenge_good),
        cmocka_unit_test(challenge_refused),         cmocka_unit_test(enroll_request_decodes),
        cmocka_unit_test(enroll_request_refused),    cmocka_unit_test(enroll_response_good),
        cmocka_unit_test(enroll_response_refused),   cmocka_unit_test(error_good),
        cmocka_unit_test(error_malformed),           cmocka_unit_test(challenge_request_ek),
        cmocka_unit_test(challenge_credential),      cmocka_unit_test(challenge_quote_pcrs),
        cmocka_unit_test(enroll_request_quote),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
