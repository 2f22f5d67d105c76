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
#include <openssl/x509v3.h>

#include "common/err.h"
#include "common/tpmkey.h"
#include "credvec/vectors.h"
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
    f->cfg = (struct enroll_config){f->pki.store, f->policy, f->token_key, NULL, NULL};
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

/* During a token key change the challenge seals with the current key only:
 * the accept-only key opens tokens, it never seals one. */
static void test_seals_with_current_key(void **state)
{
    struct fx *f = *state;
    struct challenge_verdict v;
    uint8_t nonce[TOKEN_NONCE_LEN], conn[TOKEN_CONN_HASH_LEN], cert_hash[32];
    uint8_t accept_key[TOKEN_KEY_LEN];
    enum token_key_role role = TOKEN_KEY_NONE;
    size_t i;

    for (i = 0; i < TOKEN_KEY_LEN; i++)
        accept_key[i] = (uint8_t)(0xEE ^ i);
    f->cfg.token_accept_key = accept_key;
    assert_int_equal(decide(f, &v), 0);
    assert_int_equal(enroll_cert_hash(cert_hash, f->pki.idevid), 0);
    assert_int_equal(token_open(nonce, conn, f->token_key, v.token, TOKEN_LEN, TU_NOW, cert_hash),
                     0);
    assert_int_equal(token_open(nonce, conn, accept_key, v.token, TOKEN_LEN, TU_NOW, cert_hash),
                     DEVID_ERR_TOKEN_INVALID);
    assert_int_equal(token_open_either(nonce, conn, NULL, &role, f->token_key, accept_key, v.token,
                                       TOKEN_LEN, TU_NOW, cert_hash),
                     0);
    assert_int_equal(role, TOKEN_KEY_CURRENT);
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

/* A TPM vendor whose root signed an EK certificate for swtpm's RSA EK
 * (credvec/vectors.h), and another vendor's store. */
struct ek_fx {
    EVP_PKEY *root_key, *other_key, *ek_key;
    X509 *root, *other, *ek;
    struct chain_store *store, *other_store;
    uint8_t *ek_der;
    int ek_der_len;
};

static struct chain_store *vendor_store(X509 *root)
{
    struct chain_store *st = chain_store_new();

    assert_non_null(st);
    chain_store_set_leaf(st, CHAIN_LEAF_EK);
    assert_int_equal(chain_store_add_manufacturer(st, "swtpm", NULL), 0);
    assert_int_equal(chain_store_add_mfr_root(st, "swtpm", root), 0);
    return st;
}

static void ek_fx_init(struct ek_fx *e)
{
    struct tu_cert_spec ca = {.o = "TPM Vendor",
                              .cn = "EK Root",
                              .ca = 1,
                              .not_before = TU_NOW - 365 * TU_DAY,
                              .not_after = TU_NOW + 3650 * TU_DAY};
    struct tu_cert_spec leaf = {.o = "TPM Vendor",
                                .cn = "EK",
                                .not_before = TU_NOW - TU_DAY,
                                .not_after = TU_NOW + 3650 * TU_DAY};
    X509_EXTENSION *ku;
    TPMT_PUBLIC pub;

    memset(e, 0, sizeof(*e));
    e->root_key = tu_ec_key();
    e->other_key = tu_ec_key();
    assert_int_equal(tpmkey_unmarshal_public(&pub, rsa_ek_public, sizeof(rsa_ek_public)), 0);
    assert_int_equal(tpmkey_public_to_pkey(&e->ek_key, &pub), 0);
    assert_non_null(e->root = tu_cert(&ca, e->root_key, NULL, e->root_key));
    assert_non_null(e->other = tu_cert(&ca, e->other_key, NULL, e->other_key));
    assert_non_null(e->ek = tu_cert(&leaf, e->ek_key, e->root, e->root_key));
    /* An EK is a decryption key: keyUsage keyEncipherment, signed again. */
    X509_EXTENSION_free(X509_delete_ext(e->ek, X509_get_ext_by_NID(e->ek, NID_key_usage, -1)));
    assert_non_null(ku =
                        X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage, "critical,keyEncipherment"));
    assert_int_equal(X509_add_ext(e->ek, ku, -1), 1);
    X509_EXTENSION_free(ku);
    assert_true(X509_sign(e->ek, e->root_key, EVP_sha256()) > 0);
    e->store = vendor_store(e->root);
    e->other_store = vendor_store(e->other);
    assert_true((e->ek_der_len = i2d_X509(e->ek, &e->ek_der)) > 0);
}

static void ek_fx_cleanup(struct ek_fx *e)
{
    OPENSSL_free(e->ek_der);
    chain_store_free(e->store);
    chain_store_free(e->other_store);
    X509_free(e->ek);
    X509_free(e->root);
    X509_free(e->other);
    EVP_PKEY_free(e->ek_key);
    EVP_PKEY_free(e->root_key);
    EVP_PKEY_free(e->other_key);
}

/* A challenge with an EK gets a credential, and its token seals the hash of
 * the EK certificate as received and the hash of the new key's Name (any
 * TPMT_PUBLIC stands for the new key here: the challenge only computes its
 * Name; the ECC EK's vector is one). */
static void test_ek_credential(void **state)
{
    struct fx *f = *state;
    struct challenge_verdict v;
    struct ek_fx e;
    struct token_ek ek;
    uint8_t nonce[TOKEN_NONCE_LEN], conn[TOKEN_CONN_HASH_LEN], cert_hash[32], want[32];
    uint8_t name[TPMKEY_NAME_MAX];
    size_t name_len = 0;
    unsigned int n = 0;

    ek_fx_init(&e);
    f->cfg.ek_store = e.store;
    f->req.ek_certificate = (ProtobufCBinaryData){(size_t)e.ek_der_len, e.ek_der};
    f->req.ek_public = (ProtobufCBinaryData){sizeof(rsa_ek_public), (uint8_t *)rsa_ek_public};
    f->req.ldevid_public = (ProtobufCBinaryData){sizeof(ecc_ek_public), (uint8_t *)ecc_ek_public};
    assert_int_equal(decide(f, &v), 0);
    assert_true(v.has_credential);
    assert_string_equal(v.tpm_vendor, "swtpm");
    /* TPM2B_ID_OBJECT: size, then an HMAC of 32 bytes and the encrypted
     * 34-byte TPM2B_DIGEST; TPM2B_ENCRYPTED_SECRET: size, then 256 bytes of
     * RSA-OAEP. */
    assert_int_equal(v.credential.id_object_len, 2 + 2 + 32 + 2 + 32);
    assert_int_equal(v.credential.secret_len, 2 + 256);
    assert_int_equal(enroll_cert_hash(cert_hash, f->pki.idevid), 0);
    assert_int_equal(
        token_open_ek(nonce, conn, &ek, f->token_key, v.token, TOKEN_LEN, TU_NOW, cert_hash), 0);
    assert_non_null(EVP_Digest(e.ek_der, (size_t)e.ek_der_len, want, &n, EVP_sha256(), NULL));
    assert_memory_equal(ek.ek_cert_hash, want, 32);
    assert_int_equal(tpmkey_name_from_bytes(name, &name_len, ecc_ek_public, sizeof(ecc_ek_public)),
                     0);
    assert_non_null(EVP_Digest(name, name_len, want, &n, EVP_sha256(), NULL));
    assert_memory_equal(ek.name_hash, want, 32);

    /* Without an EK the token seals none and no credential is made. */
    f->req.ek_certificate.len = 0;
    f->req.ek_public.len = 0;
    f->req.ldevid_public.len = 0;
    assert_int_equal(decide(f, &v), 0);
    assert_false(v.has_credential);
    assert_int_equal(
        token_open_ek(nonce, conn, &ek, f->token_key, v.token, TOKEN_LEN, TU_NOW, cert_hash), 0);
    assert_false(token_ek_present(&ek));
    ek_fx_cleanup(&e);
}

/* With an AK, an EK and a PCR gate the challenge makes a second credential,
 * for the AK's Name (the token is the same as without it); without the gate
 * the AK is ignored; an AK that is not restricted, or without an EK, is
 * refused. */
static void test_ak_credential(void **state)
{
    struct fx *f = *state;
    struct challenge_verdict v;
    struct ek_fx e;
    TPMT_PUBLIC pub;
    EVP_PKEY *ak = tu_ec_key();
    uint8_t pcr[32];
    uint8_t ak_pub[512], bad_pub[512];
    size_t ak_pub_len = sizeof(ak_pub), bad_pub_len = sizeof(bad_pub);

    ek_fx_init(&e);
    tu_tpm_public(&pub, ak_pub, &ak_pub_len, ak, TU_LDEVID_ATTRS | TPMA_OBJECT_RESTRICTED);
    tu_tpm_public(&pub, bad_pub, &bad_pub_len, ak, TU_LDEVID_ATTRS);
    f->cfg.ek_store = e.store;
    f->req.ek_certificate = (ProtobufCBinaryData){(size_t)e.ek_der_len, e.ek_der};
    f->req.ek_public = (ProtobufCBinaryData){sizeof(rsa_ek_public), (uint8_t *)rsa_ek_public};
    f->req.ldevid_public = (ProtobufCBinaryData){sizeof(ecc_ek_public), (uint8_t *)ecc_ek_public};
    f->req.ak_public = (ProtobufCBinaryData){ak_pub_len, ak_pub};
    /* No PCR gate: no AK credential. */
    assert_int_equal(decide(f, &v), 0);
    assert_true(v.has_credential);
    assert_false(v.has_ak_credential);
    /* Gated on PCR 7: the AK's credential, to the same (RSA) EK. */
    memset(pcr, 0x77, sizeof(pcr));
    assert_int_equal(policy_add_pcr(f->policy, "Acme Devices", "Widget 3000", 7, pcr), 0);
    assert_int_equal(decide(f, &v), 0);
    assert_int_equal(v.quote_pcrs, 1u << 7);
    assert_true(v.has_ak_credential);
    assert_int_equal(v.ak_credential.secret_len, 2 + 256);
    assert_memory_not_equal(v.ak_credential.id_object, v.credential.id_object,
                            v.credential.id_object_len);
    /* An AK that is not restricted. */
    f->req.ak_public = (ProtobufCBinaryData){bad_pub_len, bad_pub};
    assert_int_equal(decide(f, &v), DEVID_ERR_ATTEST_ATTRIBUTES);
    assert_non_null(strstr(v.why, "restricted must be set"));
    assert_false(v.has_ak_credential);
    /* Bytes that are no TPMT_PUBLIC. */
    f->req.ak_public = (ProtobufCBinaryData){3, bad_pub};
    assert_int_equal(decide(f, &v), DEVID_ERR_ATTEST_MALFORMED);
    /* An AK without the EK. */
    f->req.ak_public = (ProtobufCBinaryData){ak_pub_len, ak_pub};
    f->req.ek_certificate.len = 0;
    f->req.ek_public.len = 0;
    f->req.ldevid_public.len = 0;
    assert_int_equal(decide(f, &v), DEVID_ERR_BAD_REQUEST);
    assert_non_null(strstr(v.why, "ak_public needs all three"));
    EVP_PKEY_free(ak);
    ek_fx_cleanup(&e);
}

/* Each EK refusal has its reason: fields missing, an unknown vendor, no
 * vendor configured, an EK public area of another key or malformed, a new
 * key's public area that does not parse. */
static void test_ek_refusals(void **state)
{
    struct fx *f = *state;
    struct challenge_verdict v;
    struct ek_fx e;

    ek_fx_init(&e);
    f->cfg.ek_store = e.store;
    f->req.ek_certificate = (ProtobufCBinaryData){(size_t)e.ek_der_len, e.ek_der};
    f->req.ek_public = (ProtobufCBinaryData){sizeof(rsa_ek_public), (uint8_t *)rsa_ek_public};
    f->req.ldevid_public.len = 0;
    assert_int_equal(decide(f, &v), DEVID_ERR_BAD_REQUEST);
    assert_non_null(strstr(v.why, "all three or none"));
    f->req.ldevid_public = (ProtobufCBinaryData){sizeof(ecc_ek_public), (uint8_t *)ecc_ek_public};
    f->cfg.ek_store = e.other_store;
    assert_int_equal(decide(f, &v), DEVID_ERR_EK_CERT);
    assert_non_null(strstr(v.why, "EK certificate"));
    f->cfg.ek_store = NULL;
    assert_int_equal(decide(f, &v), DEVID_ERR_EK_CERT);
    assert_non_null(strstr(v.why, "no TPM vendor is configured"));
    f->cfg.ek_store = e.store;
    f->req.ek_public = (ProtobufCBinaryData){sizeof(ecc_ek_public), (uint8_t *)ecc_ek_public};
    assert_int_equal(decide(f, &v), DEVID_ERR_EK_KEY);
    assert_non_null(strstr(v.why, "does not hold the EK certificate's key"));
    f->req.ek_public.len = 10;
    assert_int_equal(decide(f, &v), DEVID_ERR_EK_KEY);
    assert_non_null(strstr(v.why, "not a TPMT_PUBLIC"));
    f->req.ek_public = (ProtobufCBinaryData){sizeof(rsa_ek_public), (uint8_t *)rsa_ek_public};
    f->req.ldevid_public.len = 10;
    assert_int_equal(decide(f, &v), DEVID_ERR_ATTEST_MALFORMED);
    assert_int_equal(decide(f, &v), DEVID_ERR_ATTEST_MALFORMED);
    f->req.ldevid_public.len = sizeof(ecc_ek_public);
    assert_int_equal(decide(f, &v), 0);
    ek_fx_cleanup(&e);
}

/* An EK certificate issued by a TPM vendor intermediate that the store does
 * not hold verifies with the intermediate in ek_intermediates, and only
 * then: the intermediate is untrusted, never an anchor. More than
 * CHALLENGE_EK_INTERMEDIATES_MAX is a bad request naming the field. */
static void test_ek_intermediates(void **state)
{
    struct fx *f = *state;
    struct challenge_verdict v;
    struct ek_fx e;
    struct tu_cert_spec ica = {.o = "TPM Vendor",
                               .cn = "EK Intermediate",
                               .ca = 1,
                               .not_before = TU_NOW - 365 * TU_DAY,
                               .not_after = TU_NOW + 3650 * TU_DAY};
    struct tu_cert_spec leaf = {.o = "TPM Vendor",
                                .cn = "EK",
                                .not_before = TU_NOW - TU_DAY,
                                .not_after = TU_NOW + 3650 * TU_DAY};
    ProtobufCBinaryData many[CHALLENGE_EK_INTERMEDIATES_MAX + 1];
    EVP_PKEY *ikey;
    X509 *inter, *ek;
    X509_EXTENSION *ku;
    uint8_t *ider = NULL, *ekder = NULL;
    int ilen, eklen;
    size_t i;

    ek_fx_init(&e);
    assert_non_null(ikey = tu_ec_key());
    assert_non_null(inter = tu_cert(&ica, ikey, e.root, e.root_key));
    assert_non_null(ek = tu_cert(&leaf, e.ek_key, inter, ikey));
    X509_EXTENSION_free(X509_delete_ext(ek, X509_get_ext_by_NID(ek, NID_key_usage, -1)));
    assert_non_null(ku =
                        X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage, "critical,keyEncipherment"));
    assert_int_equal(X509_add_ext(ek, ku, -1), 1);
    X509_EXTENSION_free(ku);
    assert_true(X509_sign(ek, ikey, EVP_sha256()) > 0);
    assert_true((ilen = i2d_X509(inter, &ider)) > 0);
    assert_true((eklen = i2d_X509(ek, &ekder)) > 0);

    f->cfg.ek_store = e.store;
    f->req.ek_certificate = (ProtobufCBinaryData){(size_t)eklen, ekder};
    f->req.ek_public = (ProtobufCBinaryData){sizeof(rsa_ek_public), (uint8_t *)rsa_ek_public};
    f->req.ldevid_public = (ProtobufCBinaryData){sizeof(ecc_ek_public), (uint8_t *)ecc_ek_public};
    assert_int_equal(decide(f, &v), DEVID_ERR_EK_CERT);
    assert_non_null(strstr(v.why, "EK certificate"));

    many[0] = (ProtobufCBinaryData){(size_t)ilen, ider};
    f->req.ek_intermediates = many;
    f->req.n_ek_intermediates = 1;
    assert_int_equal(decide(f, &v), 0);
    assert_true(v.has_credential);
    assert_string_equal(v.tpm_vendor, "swtpm");

    /* The intermediate is no anchor: with another vendor's root, refused. */
    f->cfg.ek_store = e.other_store;
    assert_int_equal(decide(f, &v), DEVID_ERR_EK_CERT);
    f->cfg.ek_store = e.store;

    many[0].len = (size_t)ilen - 1;
    assert_int_equal(decide(f, &v), DEVID_ERR_EK_CERT);
    assert_non_null(strstr(v.why, "ek_intermediates[0]"));
    many[0].len = (size_t)ilen;

    for (i = 0; i < CHALLENGE_EK_INTERMEDIATES_MAX + 1; i++)
        many[i] = (ProtobufCBinaryData){(size_t)ilen, ider};
    f->req.n_ek_intermediates = CHALLENGE_EK_INTERMEDIATES_MAX + 1;
    assert_int_equal(decide(f, &v), DEVID_ERR_BAD_REQUEST);
    assert_non_null(strstr(v.why, "ek_intermediates"));

    /* Without the EK certificate, ek_intermediates alone is a bad request. */
    f->req.n_ek_intermediates = 1;
    f->req.ek_certificate.len = 0;
    f->req.ek_public.len = 0;
    f->req.ldevid_public.len = 0;
    assert_int_equal(decide(f, &v), DEVID_ERR_BAD_REQUEST);
    assert_non_null(strstr(v.why, "ek_intermediates needs all three"));

    f->req.ek_intermediates = NULL;
    f->req.n_ek_intermediates = 0;
    OPENSSL_free(ider);
    OPENSSL_free(ekder);
    X509_free(ek);
    X509_free(inter);
    EVP_PKEY_free(ikey);
    ek_fx_cleanup(&e);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_good),
        T(test_seals_with_current_key),
        T(test_intermediates),
        T(test_tls),
        T(test_protocol_version),
        T(test_policy_and_identity),
        T(test_missing_inputs),
        T(test_ek_credential),
        T(test_ak_credential),
        T(test_ek_refusals),
        T(test_ek_intermediates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
