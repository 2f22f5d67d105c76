/* Unit tests for verifier/core/challenge: the checks of POST /v1/challenge
 * in their order and the token they seal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/tls1.h>

#include "common/err.h"
#include "testutil.h"
#include "common/limits.h"
#include "verifier/core/challenge.h"

struct fx {
    struct tu_pki pki;
    ProtobufCBinaryData inter[DEVID_MAX_INTERMEDIATES + 1];
    struct policy *policy;
    uint8_t token_key[TOKEN_KEY_LEN], nonce[TOKEN_NONCE_LEN], exporter[32];
    Devid__V1__ChallengeRequest req;
    struct enroll_config cfg;
    struct challenge_input in;
};

static int setup(void **state)
{
    struct fx *f = test_calloc(1, sizeof(*f));
    size_t i;

    tu_pki_init(&f->pki);
    for (i = 0; i <= DEVID_MAX_INTERMEDIATES; i++)
        f->inter[i] = (ProtobufCBinaryData){f->pki.int_der_len, f->pki.int_der};
    assert_non_null(f->policy = policy_new());
    for (i = 0; i < 32; i++) {
        f->token_key[i] = (uint8_t)(7 * i);
        f->nonce[i] = (uint8_t)(0x33 ^ i);
        f->exporter[i] = (uint8_t)(0x80 + i);
    }
    f->cfg = (struct enroll_config){f->pki.store, f->policy, f->token_key};
    devid__v1__challenge_request__init(&f->req);
    f->req.protocol_version = 1;
    f->req.intermediates = f->inter;
    f->req.n_intermediates = 1;
    f->in.req = &f->req;
    f->in.tls = (struct enroll_tls){TLS1_3_VERSION, false, f->pki.idevid, NULL, f->exporter, NULL};
    f->in.nonce = f->nonce;
    f->in.now = TU_NOW;
    f->in.ttl_seconds = 120;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    policy_free(f->policy);
    tu_pki_cleanup(&f->pki);
    test_free(f);
    return 0;
}

/* decide runs challenge_decide; a refusal leaves no token and says why. */
static int decide(struct fx *f, struct challenge_verdict *v)
{
    static const uint8_t zero[TOKEN_LEN];
    int r = challenge_decide(v, &f->cfg, &f->in);

    assert_int_equal(v->reason, r);
    if (r != 0) {
        assert_true(v->why[0] != '\0');
        assert_memory_equal(v->token, zero, TOKEN_LEN);
    }
    return r;
}

static void test_good(void **state)
{
    struct fx *f = *state;
    struct challenge_verdict v;
    uint8_t nonce[TOKEN_NONCE_LEN], conn[TOKEN_CONN_HASH_LEN], want[TOKEN_CONN_HASH_LEN];
    uint8_t cert_hash[32];

    assert_int_equal(decide(f, &v), 0);
    assert_int_equal(v.expires_at, TU_NOW + 120);
    assert_string_equal(v.id.serial, "SN0001");
    assert_string_equal(v.id.model, "Widget 3000");
    assert_string_equal(v.id.manufacturer, "Acme Devices");
    /* The token seals the nonce, the client certificate and this connection. */
    assert_int_equal(enroll_cert_hash(cert_hash, f->pki.idevid), 0);
    assert_int_equal(
        token_open(nonce, conn, f->token_key, v.token, TOKEN_LEN, TU_NOW + 120, cert_hash), 0);
    assert_memory_equal(nonce, f->nonce, sizeof(nonce));
    assert_int_equal(token_conn_hash(want, f->exporter, sizeof(f->exporter)), 0);
    assert_memory_equal(conn, want, sizeof(conn));
    assert_int_equal(
        token_open(nonce, conn, f->token_key, v.token, TOKEN_LEN, TU_NOW + 121, cert_hash),
        DEVID_ERR_TOKEN_EXPIRED);
}

/* The chain check uses ChallengeRequest.intermediates, the handshake's
 * chain, or both. */
static void test_intermediates(void **state)
{
    struct fx *f = *state;
    struct challenge_verdict v;
    STACK_OF(X509) *sk = sk_X509_new_null();

    f->req.n_intermediates = 0;
    assert_int_equal(decide(f, &v), DEVID_ERR_CHAIN_UNTRUSTED);
    assert_string_equal(v.id.serial, "");
    assert_non_null(sk);
    assert_true(sk_X509_push(sk, f->pki.intermediate) > 0);
    f->in.tls.chain = sk;
    assert_int_equal(decide(f, &v), 0);
    f->req.n_intermediates = 1;
    assert_int_equal(decide(f, &v), 0);
    sk_X509_free(sk);
    f->in.tls.chain = NULL;
    f->req.n_intermediates = DEVID_MAX_INTERMEDIATES + 1;
    assert_int_equal(decide(f, &v), DEVID_ERR_BAD_REQUEST);
    f->req.n_intermediates = 1;
    f->inter[0].len--;
    assert_int_equal(decide(f, &v), DEVID_ERR_CHAIN_INVALID);
}

static void test_tls(void **state)
{
    struct fx *f = *state;
    struct challenge_verdict v;

    f->in.tls.version = TLS1_2_VERSION;
    assert_int_equal(decide(f, &v), DEVID_ERR_TLS_NO_EMS);
    f->in.tls.ems = true;
    assert_int_equal(decide(f, &v), 0);
    f->in.tls.exporter = NULL;
    assert_int_equal(decide(f, &v), DEVID_ERR_TLS);
    f->in.tls.client_cert = NULL;
    assert_int_equal(decide(f, &v), DEVID_ERR_NO_CLIENT_CERT);
    /* TLS comes first: before the body and the chain. */
    f->in.tls.client_cert = f->pki.idevid;
    f->in.tls.ems = false;
    f->req.protocol_version = 2;
    f->req.n_intermediates = 0;
    assert_int_equal(decide(f, &v), DEVID_ERR_TLS_NO_EMS);
}

static void test_protocol_version(void **state)
{
    struct fx *f = *state;
    struct challenge_verdict v;

    f->req.protocol_version = 2;
    f->req.n_intermediates = 0;
    assert_int_equal(decide(f, &v), DEVID_ERR_BAD_REQUEST);
    assert_non_null(strstr(v.why, "protocol_version 2"));
}

/* A device the enrollment's policy would refuse learns it at the challenge;
 * the log gets its identity. */
static void test_policy_and_identity(void **state)
{
    struct fx *f = *state;
    struct challenge_verdict v;
    struct tu_cert_spec nameless = tu_leaf_spec;
    X509 *anonymous;

    assert_int_equal(policy_add(f->policy, POLICY_DENY_MODEL, "Widget 3000"), 0);
    assert_int_equal(decide(f, &v), DEVID_ERR_POLICY_DENIED);
    assert_string_equal(v.id.serial, "SN0001");
    assert_string_equal(v.id.manufacturer, "Acme Devices");
    nameless.serial = NULL;
    nameless.hw_serial = NULL;
    anonymous = tu_cert(&nameless, f->pki.idev_key, f->pki.intermediate, f->pki.int_key);
    f->in.tls.client_cert = anonymous;
    assert_int_equal(decide(f, &v), DEVID_ERR_IDENTITY);
    assert_string_equal(v.id.manufacturer, "Acme Devices");
    X509_free(anonymous);
}

static void test_missing_inputs(void **state)
{
    struct fx *f = *state;
    struct challenge_verdict v;

    assert_int_equal(challenge_decide(NULL, &f->cfg, &f->in), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(challenge_decide(&v, NULL, &f->in), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(challenge_decide(&v, &f->cfg, NULL), DEVID_ERR_INVALID_ARGUMENT);
    f->in.nonce = NULL;
    assert_int_equal(decide(f, &v), DEVID_ERR_INVALID_ARGUMENT);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_good),
        T(test_intermediates),
        T(test_tls),
        T(test_protocol_version),
        T(test_policy_and_identity),
        T(test_missing_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
