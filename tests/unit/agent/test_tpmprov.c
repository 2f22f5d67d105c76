/* Unit tests for agent/tpmprov: the built-in OpenSSL provider whose keys sign
 * through a callback.
 *
 * No TPM here: a mock stands in for TPM2_Sign, because this test is about the
 * provider, not the TPM (the integration tests run the agent on swtpm). The
 * callback signs the digest it is handed with a software OpenSSL key (EC
 * P-256, P-384, RSA-2048) and returns what the TPM would: a TPMT_SIGNATURE
 * with r and s for ECDSA, the raw signature for RSASSA and RSAPSS. It records
 * the scheme and hash it was asked for, so each case checks those too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <tss2/tss2_tpm2_types.h>

#include "agent/tpmprov.h"
#include "common/err.h"
#include "common/tpmkey.h"
#include "testutil.h"

/* The software "TPM" behind one key. */
struct soft_tpm {
    EVP_PKEY *key;
    int calls;
    int fail; /* when not 0, return this instead of signing */
    TPMI_ALG_SIG_SCHEME scheme;
    TPMI_ALG_HASH hash;
};

struct fixture {
    struct tpmprov *prov;
    EVP_PKEY *p256, *p384, *rsa, *p256_other, *rsa_other;
    EVP_PKEY *server_key;
    X509 *server_cert;
};

static const uint8_t msg[] = "devid tpmprov test message";

static int soft_sign(void *arg, TPMT_SIGNATURE *sig, TPMI_ALG_SIG_SCHEME scheme, TPMI_ALG_HASH hash,
                     const uint8_t *digest, size_t digest_len)
{
    struct soft_tpm *t = arg;
    const EVP_MD *md = tpmkey_hash_md(hash);
    EVP_PKEY_CTX *ctx = NULL;
    ECDSA_SIG *esig = NULL;
    const BIGNUM *r = NULL, *s = NULL;
    const uint8_t *p;
    uint8_t der[1024];
    size_t der_len = sizeof(der);
    int n;

    t->calls++;
    t->scheme = scheme;
    t->hash = hash;
    if (t->fail != 0)
        return t->fail;
    assert_non_null(md);
    assert_int_equal(digest_len, (size_t)EVP_MD_get_size(md));
    if (EVP_PKEY_is_a(t->key, "EC"))
        assert_int_equal(scheme, TPM2_ALG_ECDSA);
    else
        assert_true(scheme == TPM2_ALG_RSASSA || scheme == TPM2_ALG_RSAPSS);

    assert_non_null(ctx = EVP_PKEY_CTX_new_from_pkey(NULL, t->key, NULL));
    assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, md), 1);
    if (scheme == TPM2_ALG_RSAPSS) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST), 1);
    } else if (scheme == TPM2_ALG_RSASSA) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
    }
    assert_int_equal(EVP_PKEY_sign(ctx, der, &der_len, digest, digest_len), 1);
    EVP_PKEY_CTX_free(ctx);

    memset(sig, 0, sizeof(*sig));
    sig->sigAlg = scheme;
    if (scheme == TPM2_ALG_ECDSA) {
        n = (EVP_PKEY_get_bits(t->key) + 7) / 8;
        p = der;
        assert_non_null(esig = d2i_ECDSA_SIG(NULL, &p, (long)der_len));
        ECDSA_SIG_get0(esig, &r, &s);
        sig->signature.ecdsa.hash = hash;
        assert_int_equal(BN_bn2binpad(r, sig->signature.ecdsa.signatureR.buffer, n), n);
        assert_int_equal(BN_bn2binpad(s, sig->signature.ecdsa.signatureS.buffer, n), n);
        sig->signature.ecdsa.signatureR.size = (UINT16)n;
        sig->signature.ecdsa.signatureS.size = (UINT16)n;
        ECDSA_SIG_free(esig);
    } else {
        /* rsassa and rsapss share one layout. */
        assert_true(der_len <= sizeof(sig->signature.rsassa.sig.buffer));
        sig->signature.rsassa.hash = hash;
        memcpy(sig->signature.rsassa.sig.buffer, der, der_len);
        sig->signature.rsassa.sig.size = (UINT16)der_len;
    }
    return 0;
}

/* tpm_public fills |pub| with the TPMT_PUBLIC the TPM would report for |key|,
 * with signing scheme |scheme| and |hash| (TPM2_ALG_NULL: any). */
static void tpm_public(TPMT_PUBLIC *pub, EVP_PKEY *key, TPMI_ALG_SIG_SCHEME scheme,
                       TPMI_ALG_HASH hash)
{
    BIGNUM *a = NULL, *b = NULL;
    char group[32];
    int n;

    memset(pub, 0, sizeof(*pub));
    pub->nameAlg = TPM2_ALG_SHA256;
    pub->objectAttributes = TU_LDEVID_ATTRS;
    if (EVP_PKEY_is_a(key, "EC")) {
        pub->type = TPM2_ALG_ECC;
        pub->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        pub->parameters.eccDetail.scheme.scheme = scheme;
        pub->parameters.eccDetail.scheme.details.anySig.hashAlg = hash;
        pub->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        assert_int_equal(EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                        sizeof(group), NULL),
                         1);
        pub->parameters.eccDetail.curveID =
            strcmp(group, "secp384r1") == 0 ? TPM2_ECC_NIST_P384 : TPM2_ECC_NIST_P256;
        n = (EVP_PKEY_get_bits(key) + 7) / 8;
        assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &a), 1);
        assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &b), 1);
        assert_int_equal(BN_bn2binpad(a, pub->unique.ecc.x.buffer, n), n);
        assert_int_equal(BN_bn2binpad(b, pub->unique.ecc.y.buffer, n), n);
        pub->unique.ecc.x.size = (UINT16)n;
        pub->unique.ecc.y.size = (UINT16)n;
    } else {
        pub->type = TPM2_ALG_RSA;
        pub->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
        pub->parameters.rsaDetail.scheme.scheme = scheme;
        pub->parameters.rsaDetail.scheme.details.anySig.hashAlg = hash;
        pub->parameters.rsaDetail.keyBits = (TPMI_RSA_KEY_BITS)EVP_PKEY_get_bits(key);
        assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &a), 1);
        assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &b), 1);
        assert_true(BN_is_word(b, 65537));
        pub->parameters.rsaDetail.exponent = 0; /* the TPM's way to say 65537 */
        n = BN_num_bytes(a);
        assert_int_equal(BN_bn2binpad(a, pub->unique.rsa.buffer, n), n);
        pub->unique.rsa.size = (UINT16)n;
    }
    BN_free(a);
    BN_free(b);
}

static EVP_PKEY *tpm_key(struct fixture *f, struct soft_tpm *t, EVP_PKEY *soft,
                         TPMI_ALG_SIG_SCHEME scheme, TPMI_ALG_HASH hash)
{
    TPMT_PUBLIC pub;
    EVP_PKEY *k = NULL;

    memset(t, 0, sizeof(*t));
    t->key = soft;
    tpm_public(&pub, soft, scheme, hash);
    assert_int_equal(tpmprov_pkey_new(&k, f->prov, &pub, soft_sign, t), 0);
    assert_non_null(k);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(k)), "devid-tpm");
    return k;
}

/* digest_sign signs |msg| with |key| through EVP_DigestSign (one shot, or
 * update and final when |streamed|); |pad| is 0 for EC. Returns the
 * signature length, 0 on failure. */
static size_t digest_sign(uint8_t *sig, size_t sig_size, EVP_PKEY *key, const char *md, int pad,
                          int streamed)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t len = 0, max = 0;
    int ok = 0;

    assert_non_null(mctx);
    if (EVP_DigestSignInit_ex(mctx, &pctx, md, NULL, NULL, key, NULL) != 1)
        goto out;
    if (pad != 0 && (EVP_PKEY_CTX_set_rsa_padding(pctx, pad) <= 0 ||
                     (pad == RSA_PKCS1_PSS_PADDING &&
                      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0)))
        goto out;
    len = sig_size;
    if (streamed) {
        if (EVP_DigestSignUpdate(mctx, msg, 10) != 1 ||
            EVP_DigestSignUpdate(mctx, msg + 10, sizeof(msg) - 10) != 1 ||
            EVP_DigestSignFinal(mctx, NULL, &max) != 1)
            goto out;
        assert_true(max <= sig_size);
        ok = EVP_DigestSignFinal(mctx, sig, &len) == 1;
    } else {
        if (EVP_DigestSign(mctx, NULL, &max, msg, sizeof(msg)) != 1)
            goto out;
        assert_true(max <= sig_size);
        ok = EVP_DigestSign(mctx, sig, &len, msg, sizeof(msg)) == 1;
    }
out:
    EVP_MD_CTX_free(mctx);
    return ok ? len : 0;
}

/* verify checks |sig| over |msg| with the software key, in the default
 * context; PSS requires salt length = digest length. */
static int verify(EVP_PKEY *soft, const char *md, int pad, const uint8_t *sig, size_t len)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = 0;

    assert_non_null(mctx);
    assert_int_equal(EVP_DigestVerifyInit_ex(mctx, &pctx, md, NULL, NULL, soft, NULL), 1);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(soft)), "default");
    if (pad != 0) {
        assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, pad) > 0);
        if (pad == RSA_PKCS1_PSS_PADDING)
            assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0);
    }
    ok = EVP_DigestVerify(mctx, sig, len, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(mctx);
    ERR_clear_error();
    return ok;
}

static int setup(void **state)
{
    static struct fixture f;
    struct tu_cert_spec spec = {.cn = "server", .not_before = 0, .not_after = 0};
    time_t now = time(NULL);

    memset(&f, 0, sizeof(f));
    assert_int_equal(tpmprov_new(&f.prov), 0);
    f.p256 = tu_ec_key();
    f.p256_other = tu_ec_key();
    assert_non_null(f.p384 = EVP_EC_gen("P-384"));
    assert_non_null(f.rsa = EVP_RSA_gen(2048));
    assert_non_null(f.rsa_other = EVP_RSA_gen(2048));
    f.server_key = tu_ec_key();
    spec.not_before = now - TU_DAY;
    spec.not_after = now + TU_DAY;
    f.server_cert = tu_cert(&spec, f.server_key, NULL, f.server_key);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    X509_free(f->server_cert);
    EVP_PKEY_free(f->server_key);
    EVP_PKEY_free(f->rsa_other);
    EVP_PKEY_free(f->rsa);
    EVP_PKEY_free(f->p384);
    EVP_PKEY_free(f->p256_other);
    EVP_PKEY_free(f->p256);
    tpmprov_free(f->prov);
    return 0;
}

/* ---- 1. signatures verify with the software public key ---- */

static void sign_and_verify(struct fixture *f, EVP_PKEY *soft)
{
    static const char *mds[] = {"SHA256", "SHA384"};
    static const TPMI_ALG_HASH hashes[] = {TPM2_ALG_SHA256, TPM2_ALG_SHA384};
    int rsa = EVP_PKEY_is_a(soft, "RSA");
    int pads[] = {rsa ? RSA_PKCS1_PSS_PADDING : 0, RSA_PKCS1_PADDING};
    struct soft_tpm t;
    EVP_PKEY *k = tpm_key(f, &t, soft, TPM2_ALG_NULL, TPM2_ALG_NULL);
    uint8_t sig[512];
    size_t len, i, j;
    int streamed, calls = 0;

    for (i = 0; i < 2; i++) {
        for (j = 0; j < (rsa ? 2u : 1u); j++) {
            for (streamed = 0; streamed < 2; streamed++) {
                len = digest_sign(sig, sizeof(sig), k, mds[i], pads[j], streamed);
                assert_true(len > 0);
                assert_int_equal(t.calls, ++calls);
                assert_int_equal(t.hash, hashes[i]);
                if (!rsa)
                    assert_int_equal(t.scheme, TPM2_ALG_ECDSA);
                else if (pads[j] == RSA_PKCS1_PSS_PADDING)
                    assert_int_equal(t.scheme, TPM2_ALG_RSAPSS);
                else
                    assert_int_equal(t.scheme, TPM2_ALG_RSASSA);
                assert_true(verify(soft, mds[i], pads[j], sig, len));
                /* and a flipped bit does not */
                sig[len / 2] ^= 0x01;
                assert_false(verify(soft, mds[i], pads[j], sig, len));
            }
        }
    }
    EVP_PKEY_free(k);
}

static void test_sign_p256(void **state)
{
    struct fixture *f = *state;

    sign_and_verify(f, f->p256);
}

static void test_sign_p384(void **state)
{
    struct fixture *f = *state;

    sign_and_verify(f, f->p384);
}

static void test_sign_rsa(void **state)
{
    struct fixture *f = *state;

    sign_and_verify(f, f->rsa);
}

/* EVP_PKEY_sign over a digest made elsewhere (the provider's plain sign). */
static void test_sign_digest(void **state)
{
    struct fixture *f = *state;
    struct soft_tpm t;
    EVP_PKEY *k = tpm_key(f, &t, f->p256, TPM2_ALG_NULL, TPM2_ALG_NULL);
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t dgst[32], sig[128];
    size_t len = sizeof(sig);

    tu_sha256(dgst, msg, sizeof(msg));
    assert_non_null(ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL));
    assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_sign(ctx, sig, &len, dgst, sizeof(dgst)), 1);
    EVP_PKEY_CTX_free(ctx);
    assert_int_equal(t.calls, 1);
    assert_int_equal(t.hash, TPM2_ALG_SHA256);

    assert_non_null(ctx = EVP_PKEY_CTX_new_from_pkey(NULL, f->p256, NULL));
    assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
    assert_int_equal(EVP_PKEY_verify(ctx, sig, len, dgst, sizeof(dgst)), 1);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(k);
}

/* ---- 2. the provider's key matches its software public half ---- */

static void test_eq(void **state)
{
    struct fixture *f = *state;
    struct soft_tpm t1, t2, t3;
    EVP_PKEY *ec = tpm_key(f, &t1, f->p256, TPM2_ALG_NULL, TPM2_ALG_NULL);
    EVP_PKEY *ec384 = tpm_key(f, &t2, f->p384, TPM2_ALG_NULL, TPM2_ALG_NULL);
    EVP_PKEY *rsa = tpm_key(f, &t3, f->rsa, TPM2_ALG_NULL, TPM2_ALG_NULL);

    assert_int_equal(EVP_PKEY_eq(ec, f->p256), 1);
    assert_int_equal(EVP_PKEY_eq(f->p256, ec), 1);
    assert_int_equal(EVP_PKEY_eq(ec384, f->p384), 1);
    assert_int_equal(EVP_PKEY_eq(rsa, f->rsa), 1);
    assert_int_equal(EVP_PKEY_eq(f->rsa, rsa), 1);

    assert_int_not_equal(EVP_PKEY_eq(ec, f->p256_other), 1);
    assert_int_not_equal(EVP_PKEY_eq(f->p256_other, ec), 1);
    assert_int_not_equal(EVP_PKEY_eq(ec, f->p384), 1);
    assert_int_not_equal(EVP_PKEY_eq(ec384, f->p256), 1);
    assert_int_not_equal(EVP_PKEY_eq(rsa, f->rsa_other), 1);
    assert_int_not_equal(EVP_PKEY_eq(f->rsa_other, rsa), 1);
    assert_int_not_equal(EVP_PKEY_eq(ec, f->rsa), 1);
    assert_int_not_equal(EVP_PKEY_eq(rsa, ec), 1);
    ERR_clear_error();
    assert_int_equal(t1.calls + t2.calls + t3.calls, 0);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec384);
    EVP_PKEY_free(ec);
}

/* ---- 3. a fixed scheme in the TPMT_PUBLIC limits the hash ---- */

static void test_fixed_scheme(void **state)
{
    struct fixture *f = *state;
    struct soft_tpm t;
    EVP_PKEY *k = tpm_key(f, &t, f->p256, TPM2_ALG_ECDSA, TPM2_ALG_SHA256);
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    uint8_t sig[512];
    size_t len;

    assert_non_null(mctx);
    assert_int_not_equal(EVP_DigestSignInit_ex(mctx, NULL, "SHA384", NULL, NULL, k, NULL), 1);
    assert_int_equal(ERR_GET_REASON(ERR_peek_last_error()), EVP_R_UNSUPPORTED_ALGORITHM);
    ERR_clear_error();
    EVP_MD_CTX_free(mctx);
    assert_int_equal(t.calls, 0);

    len = digest_sign(sig, sizeof(sig), k, "SHA256", 0, 0);
    assert_true(len > 0);
    assert_int_equal(t.calls, 1);
    assert_true(verify(f->p256, "SHA256", 0, sig, len));
    EVP_PKEY_free(k);

    /* RSASSA-SHA256 refuses PSS padding, and SHA-384. */
    k = tpm_key(f, &t, f->rsa, TPM2_ALG_RSASSA, TPM2_ALG_SHA256);
    assert_int_equal(digest_sign(sig, sizeof(sig), k, "SHA256", RSA_PKCS1_PSS_PADDING, 0), 0);
    assert_int_equal(digest_sign(sig, sizeof(sig), k, "SHA384", RSA_PKCS1_PADDING, 0), 0);
    ERR_clear_error();
    assert_int_equal(t.calls, 0);
    len = digest_sign(sig, sizeof(sig), k, "SHA256", RSA_PKCS1_PADDING, 0);
    assert_true(len > 0);
    assert_int_equal(t.scheme, TPM2_ALG_RSASSA);
    assert_true(verify(f->rsa, "SHA256", RSA_PKCS1_PADDING, sig, len));
    EVP_PKEY_free(k);
}

/* ---- 4. and 5. TLS client authentication in memory ---- */

static int accept_any(int ok, X509_STORE_CTX *ctx)
{
    (void)ok;
    (void)ctx;
    return 1;
}

struct tls_result {
    int ok;
    X509 *peer; /* the client certificate the server saw, owned */
};

/* handshake runs a TLS |version| handshake over a BIO pair: the server asks
 * for a client certificate, the client presents |cert| with |key|.
 * |request_sigalgs| sets the signature algorithms of the server's
 * CertificateRequest, or NULL for OpenSSL's default. */
static struct tls_result handshake(struct fixture *f, X509 *cert, EVP_PKEY *key, int version,
                                   const char *request_sigalgs)
{
    struct tls_result res = {0, NULL};
    SSL_CTX *sctx = NULL, *cctx = NULL;
    SSL *s = NULL, *c = NULL;
    BIO *sb = NULL, *cb = NULL;
    int i, rc = 0, rs = 0, ec, es;

    assert_non_null(sctx = SSL_CTX_new(TLS_server_method()));
    assert_non_null(cctx = SSL_CTX_new(TLS_client_method()));
    assert_int_equal(SSL_CTX_set_min_proto_version(sctx, version), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(sctx, version), 1);
    assert_int_equal(SSL_CTX_set_min_proto_version(cctx, version), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(cctx, version), 1);
    assert_int_equal(SSL_CTX_use_certificate(sctx, f->server_cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(sctx, f->server_key), 1);
    SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, accept_any);
    assert_int_equal(SSL_CTX_use_certificate(cctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(cctx, key), 1);
    if (request_sigalgs != NULL)
        assert_int_equal(SSL_CTX_set1_client_sigalgs_list(sctx, request_sigalgs), 1);

    assert_non_null(s = SSL_new(sctx));
    assert_non_null(c = SSL_new(cctx));
    assert_int_equal(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
    SSL_set_bio(s, sb, sb);
    SSL_set_bio(c, cb, cb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    for (i = 0; i < 50 && (rc != 1 || rs != 1); i++) {
        if (rc != 1) {
            rc = SSL_do_handshake(c);
            ec = SSL_get_error(c, rc);
            if (rc != 1 && ec != SSL_ERROR_WANT_READ && ec != SSL_ERROR_WANT_WRITE)
                break;
        }
        if (rs != 1) {
            rs = SSL_do_handshake(s);
            es = SSL_get_error(s, rs);
            if (rs != 1 && es != SSL_ERROR_WANT_READ && es != SSL_ERROR_WANT_WRITE)
                break;
        }
    }
    res.ok = rc == 1 && rs == 1;
    if (res.ok) {
        assert_int_equal(SSL_version(c), version);
        res.peer = SSL_get1_peer_certificate(s);
    }
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return res;
}

static X509 *client_cert(EVP_PKEY *soft)
{
    struct tu_cert_spec spec = {.o = "devid", .cn = "tpmprov client"};
    time_t now = time(NULL);

    spec.not_before = now - TU_DAY;
    spec.not_after = now + TU_DAY;
    return tu_cert(&spec, soft, NULL, soft);
}

static void tls_case(struct fixture *f, EVP_PKEY *soft, TPMI_ALG_SIG_SCHEME fixed, int version,
                     const char *sigalgs, TPMI_ALG_SIG_SCHEME want_scheme, TPMI_ALG_HASH want_hash)
{
    struct soft_tpm t;
    EVP_PKEY *k = tpm_key(f, &t, soft, fixed, fixed == TPM2_ALG_NULL ? TPM2_ALG_NULL : want_hash);
    X509 *cert = client_cert(soft);
    struct tls_result res = handshake(f, cert, k, version, sigalgs);

    assert_true(res.ok);
    assert_int_equal(t.calls, 1);
    assert_int_equal(t.scheme, want_scheme);
    assert_int_equal(t.hash, want_hash);
    assert_non_null(res.peer);
    assert_int_equal(X509_cmp(res.peer, cert), 0);
    X509_free(res.peer);
    X509_free(cert);
    EVP_PKEY_free(k);
}

static void test_tls13_p256(void **state)
{
    tls_case(*state, ((struct fixture *)*state)->p256, TPM2_ALG_NULL, TLS1_3_VERSION, NULL,
             TPM2_ALG_ECDSA, TPM2_ALG_SHA256);
}

static void test_tls13_rsa(void **state)
{
    tls_case(*state, ((struct fixture *)*state)->rsa, TPM2_ALG_NULL, TLS1_3_VERSION, NULL,
             TPM2_ALG_RSAPSS, TPM2_ALG_SHA256);
}

static void test_tls12_p256(void **state)
{
    tls_case(*state, ((struct fixture *)*state)->p256, TPM2_ALG_NULL, TLS1_2_VERSION, NULL,
             TPM2_ALG_ECDSA, TPM2_ALG_SHA256);
}

static void test_tls12_rsa(void **state)
{
    tls_case(*state, ((struct fixture *)*state)->rsa, TPM2_ALG_NULL, TLS1_2_VERSION, NULL,
             TPM2_ALG_RSAPSS, TPM2_ALG_SHA256);
}

static void test_tls12_rsa_pkcs1(void **state)
{
    tls_case(*state, ((struct fixture *)*state)->rsa, TPM2_ALG_NULL, TLS1_2_VERSION, "RSA+SHA384",
             TPM2_ALG_RSASSA, TPM2_ALG_SHA384);
}

/* A key fixed to ECDSA-SHA256 facing a server that prefers ECDSA-SHA384
 * (TLS 1.2 lets a P-256 key sign with any hash). */
static void test_tls12_fixed_sha256(void **state)
{
    tls_case(*state, ((struct fixture *)*state)->p256, TPM2_ALG_ECDSA, TLS1_2_VERSION,
             "ECDSA+SHA384:ECDSA+SHA256", TPM2_ALG_ECDSA, TPM2_ALG_SHA256);
    /* and without the fixed scheme, the same server gets SHA-384 */
    tls_case(*state, ((struct fixture *)*state)->p256, TPM2_ALG_NULL, TLS1_2_VERSION,
             "ECDSA+SHA384:ECDSA+SHA256", TPM2_ALG_ECDSA, TPM2_ALG_SHA384);
}

/* has_tpm_error says whether the error queue names the failed TPM2_Sign. */
static int has_tpm_error(void)
{
    const char *data = NULL;
    int flags = 0, found = 0;

    while (ERR_get_error_all(NULL, NULL, NULL, &data, &flags) != 0) {
        if ((flags & ERR_TXT_STRING) != 0 && data != NULL && strstr(data, "TPM2_Sign") != NULL)
            found = 1;
    }
    return found;
}

static void sign_fails(struct fixture *f, EVP_PKEY *soft, int pad)
{
    struct soft_tpm t;
    EVP_PKEY *k = tpm_key(f, &t, soft, TPM2_ALG_NULL, TPM2_ALG_NULL);
    X509 *cert = client_cert(soft);
    struct tls_result res;
    uint8_t sig[512];
    static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
    size_t i;

    t.fail = DEVID_ERR_TPM;
    ERR_clear_error();
    assert_int_equal(digest_sign(sig, sizeof(sig), k, "SHA256", pad, 0), 0);
    assert_true(has_tpm_error());
    assert_int_equal(digest_sign(sig, sizeof(sig), k, "SHA384", pad, 1), 0);
    assert_true(has_tpm_error());
    assert_int_equal(t.calls, 2);
    for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        t.calls = 0;
        res = handshake(f, cert, k, versions[i], NULL);
        assert_false(res.ok);
        assert_null(res.peer);
        assert_int_equal(t.calls, 1);
    }
    /* The same key signs again once the TPM answers. */
    t.fail = 0;
    res = handshake(f, cert, k, TLS1_3_VERSION, NULL);
    assert_true(res.ok);
    X509_free(res.peer);
    X509_free(cert);
    EVP_PKEY_free(k);
}

static void test_sign_fails_p256(void **state)
{
    sign_fails(*state, ((struct fixture *)*state)->p256, 0);
}

static void test_sign_fails_rsa(void **state)
{
    sign_fails(*state, ((struct fixture *)*state)->rsa, RSA_PKCS1_PSS_PADDING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_p256),
        cmocka_unit_test(test_sign_p384),
        cmocka_unit_test(test_sign_rsa),
        cmocka_unit_test(test_sign_digest),
        cmocka_unit_test(test_eq),
        cmocka_unit_test(test_fixed_scheme),
        cmocka_unit_test(test_tls13_p256),
        cmocka_unit_test(test_tls13_rsa),
        cmocka_unit_test(test_tls12_p256),
        cmocka_unit_test(test_tls12_rsa),
        cmocka_unit_test(test_tls12_rsa_pkcs1),
        cmocka_unit_test(test_tls12_fixed_sha256),
        cmocka_unit_test(test_sign_fails_p256),
        cmocka_unit_test(test_sign_fails_rsa),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
