/* Unit tests for verifier/core/signreq and signcheck: the signer's framing
 * and its reading of the certificate profile. A certificate profile_build
 * makes passes; each departure from it is refused with its own reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "testutil.h"
#include "verifier/core/profile.h"
#include "verifier/core/signcheck.h"
#include "verifier/core/signreq.h"

struct fx {
    EVP_PKEY *ca_key, *dev_key, *sub_key;
    X509_PUBKEY *sub_spki;
    X509 *ca, *idevid;
    struct device_identity id;
    uint8_t serial[PROFILE_SERIAL_LEN];
    struct profile_input in;
    struct signcheck_rules rules;
    char why[SIGNREQ_MAX_WHY];
};

static int setup(void **state)
{
    struct fx *f = test_calloc(1, sizeof(*f));
    struct tu_cert_spec ca = {.o = "Example Ops",
                              .cn = "Ops Issuing CA",
                              .ca = 1,
                              .not_before = TU_NOW - 10 * TU_DAY,
                              .not_after = TU_NOW + 3650 * TU_DAY};
    struct tu_cert_spec dev = {.cn = "Widget 3000",
                               .serial = "SN0001",
                               .not_before = TU_NOW - 10 * TU_DAY,
                               .not_after = TU_NOW + 3650 * TU_DAY,
                               .hw_type = "1.3.6.1.4.1.99999.7",
                               .hw_serial = "SN0001"};

    f->ca_key = tu_ec_key();
    f->dev_key = tu_ec_key();
    f->sub_key = tu_ec_key();
    f->ca = tu_cert(&ca, f->ca_key, NULL, f->ca_key);
    f->idevid = tu_cert(&dev, f->dev_key, f->ca, f->ca_key);
    snprintf(f->id.manufacturer, sizeof(f->id.manufacturer), "Acme Devices");
    snprintf(f->id.model, sizeof(f->id.model), "Widget 3000");
    snprintf(f->id.serial, sizeof(f->id.serial), "SN0001");
    memset(f->serial, 0x5a, sizeof(f->serial));
    f->in.ca_cert = f->ca;
    assert_int_equal(X509_PUBKEY_set(&f->sub_spki, f->sub_key), 1);
    f->in.subject_key = f->sub_spki;
    f->in.id = &f->id;
    f->in.idevid = f->idevid;
    f->in.serial = f->serial;
    f->in.serial_len = sizeof(f->serial);
    f->in.now = TU_NOW;
    f->in.validity_seconds = 90 * TU_DAY;
    f->in.assurance_oid = "1.3.6.1.4.1.99999.2.1";
    f->rules.ca_cert = f->ca;
    f->rules.max_validity_seconds = 90 * TU_DAY;
    f->rules.max_crl_next_update_seconds = TU_DAY;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    X509_free(f->ca);
    X509_free(f->idevid);
    EVP_PKEY_free(f->ca_key);
    EVP_PKEY_free(f->dev_key);
    EVP_PKEY_free(f->sub_key);
    X509_PUBKEY_free(f->sub_spki);
    test_free(f);
    return 0;
}

/* build returns a certificate profile_build makes, as the signer parses
 * it from the request (which carries a signature algorithm, so that it
 * encodes: here, a signature by the CA key). */
static X509 *build(struct fx *f)
{
    X509 *x = NULL, *y;

    assert_int_equal(profile_build(&x, &f->in), 0);
    assert_true(X509_sign(x, f->ca_key, EVP_sha256()) > 0);
    assert_non_null(y = tu_der_copy(x));
    X509_free(x);
    return y;
}

/* check runs signcheck_cert on |x| as the signer reads it: its DER,
 * parsed by certview_parse. */
static int check(struct fx *f, X509 *x, time_t now)
{
    uint8_t *der = NULL;
    CERT_VIEW *v = NULL;
    int len, r;

    /* OpenSSL 3.0's setters leave the TBSCertificate's cached encoding in
     * place: encode it again. */
    assert_true(i2d_re_X509_tbs(x, NULL) > 0);
    assert_true((len = i2d_X509(x, &der)) > 0);
    assert_int_equal(certview_parse(&v, der, (size_t)len), 0);
    r = signcheck_cert(&f->rules, v, now, f->why, sizeof(f->why));
    certview_free(v);
    OPENSSL_free(der);
    return r;
}

/* refused: |x| is refused and the reason contains |want|; frees |x|. */
static void refused(struct fx *f, X509 *x, const char *want)
{
    int r;

    f->why[0] = '\0';
    if ((r = check(f, x, TU_NOW)) != DEVID_ERR_REFUSED)
        fail_msg("%d, not refused for \"%s\"", r, want);
    if (strstr(f->why, want) == NULL)
        fail_msg("reason \"%s\" does not name \"%s\"", f->why, want);
    X509_free(x);
}

static void add_ext(X509 *x, X509 *ca, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int i;

    while ((i = X509_get_ext_by_NID(x, nid, -1)) >= 0)
        X509_EXTENSION_free(X509_delete_ext(x, i));
    X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
    assert_non_null(ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value));
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

static void test_profile_passes(void **state)
{
    struct fx *f = *state;
    X509 *x = build(f);

    assert_int_equal(check(f, x, TU_NOW), 0);
    /* within the clock slack either way */
    assert_int_equal(check(f, x, TU_NOW + 250), 0);
    assert_int_equal(check(f, x, TU_NOW - 250), 0);
    X509_free(x);
}

static void test_refusals(void **state)
{
    struct fx *f = *state;
    struct tu_cert_spec other = {.o = "Evil",
                                 .cn = "Other CA",
                                 .ca = 1,
                                 .not_before = TU_NOW - TU_DAY,
                                 .not_after = TU_NOW + TU_DAY};
    EVP_PKEY *k = tu_ec_key();
    X509 *x, *o = tu_cert(&other, k, NULL, k);

    x = build(f);
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(o)), 1);
    refused(f, x, "the issuer is not the CA's subject");
    x = build(f);
    add_ext(x, f->ca, NID_basic_constraints, "critical,CA:TRUE");
    refused(f, x, "basicConstraints");
    x = build(f);
    add_ext(x, f->ca, NID_basic_constraints, "CA:FALSE");
    refused(f, x, "basicConstraints is not critical");
    x = build(f);
    add_ext(x, f->ca, NID_key_usage, "critical,digitalSignature,keyCertSign");
    refused(f, x, "keyUsage");
    x = build(f);
    add_ext(x, f->ca, NID_ext_key_usage, "clientAuth,serverAuth");
    refused(f, x, "extKeyUsage is not clientAuth only");
    x = build(f);
    X509_EXTENSION_free(
        X509_delete_ext(x, X509_get_ext_by_NID(x, NID_authority_key_identifier, -1)));
    refused(f, x, "extension X509v3 Authority Key Identifier is missing");
    x = build(f);
    add_ext(x, f->ca, NID_name_constraints, "critical,permitted;DNS:example.com");
    refused(f, x, "is not in the profile");
    x = build(f);
    add_ext(x, f->ca, NID_subject_alt_name, "DNS:evil.example");
    refused(f, x, "subjectAltName holds more than hardwareModuleName");
    f->in.validity_seconds = 91 * TU_DAY;
    refused(f, build(f), "over the maximum");
    f->in.validity_seconds = 90 * TU_DAY;
    f->in.now = TU_NOW - 2 * TU_DAY;
    refused(f, build(f), "notBefore is not now");
    f->in.now = TU_NOW;
    x = build(f);
    assert_int_equal(X509_set_pubkey(x, k), 1);
    refused(f, x, "the subject key identifier is not its key's");
    x = build(f);
    assert_int_equal(X509_set_pubkey(x, f->ca_key), 1);
    refused(f, x, "the subject key is the CA's key");
    x = build(f);
    assert_int_equal(X509_set_subject_name(x, X509_get_subject_name(f->ca)), 1);
    refused(f, x, "the subject is the CA's own name");
    x = build(f);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
    refused(f, x, "the serial");
    X509_free(o);
    EVP_PKEY_free(k);
}

static void test_policies(void **state)
{
    struct fx *f = *state;
    X509 *x;

    /* profile_build names the level's OID in certificatePolicies. */
    x = build(f);
    assert_int_equal(check(f, x, TU_NOW), 0);
    f->rules.policy_arc = "1.3.6.1.4.1.99999.2";
    assert_int_equal(check(f, x, TU_NOW), 0);
    X509_free(x);
    f->in.assurance_oid = "1.3.6.1.4.1.99999.20";
    x = build(f);
    refused(f, x, "certificatePolicies OID 1.3.6.1.4.1.99999.20 is not under the configured arc");
}

/* view_of parses |x|'s DER as the signer does; |*der| keeps the bytes. */
static CERT_VIEW *view_of(X509 *x, uint8_t **der, int *len)
{
    CERT_VIEW *v = NULL;

    *der = NULL;
    assert_true(i2d_re_X509_tbs(x, NULL) > 0);
    assert_true((*len = i2d_X509(x, der)) > 0);
    assert_int_equal(certview_parse(&v, *der, (size_t)*len), 0);
    return v;
}

/* The view re-encodes to the bytes it was read from, and refuses anything
 * but exactly one certificate. */
static void test_certview_round_trip(void **state)
{
    struct fx *f = *state;
    X509 *x = build(f);
    uint8_t *der, *enc = NULL, *longer;
    size_t enc_len = 0, i;
    CERT_VIEW *v = NULL;
    int len;

    v = view_of(x, &der, &len);
    assert_int_equal(certview_encode(v, &enc, &enc_len), 0);
    assert_int_equal(enc_len, (size_t)len);
    assert_memory_equal(enc, der, enc_len);
    certview_free(v);
    OPENSSL_free(enc);
    for (i = 0; i < (size_t)len; i++) {
        assert_int_equal(certview_parse(&v, der, i), DEVID_ERR_BAD_REQUEST);
        assert_null(v);
    }
    assert_non_null(longer = test_malloc((size_t)len + 1));
    memcpy(longer, der, (size_t)len);
    longer[len] = 0;
    assert_int_equal(certview_parse(&v, longer, (size_t)len + 1), DEVID_ERR_BAD_REQUEST);
    test_free(longer);
    OPENSSL_free(der);
    X509_free(x);
}

/* certview_sign gives what X509_sign would: a certificate OpenSSL parses,
 * that verifies under the CA key, with the fields asked for. */
static void test_certview_sign(void **state)
{
    struct fx *f = *state;
    X509 *x = build(f), *y;
    uint8_t *der, *enc = NULL;
    const unsigned char *p;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    size_t enc_len = 0;
    CERT_VIEW *v;
    int len;

    v = view_of(x, &der, &len);
    assert_non_null(mctx);
    assert_int_equal(EVP_DigestSignInit_ex(mctx, NULL, "SHA256", NULL, NULL, f->ca_key, NULL), 1);
    assert_int_equal(certview_sign(v, mctx), 0);
    assert_int_equal(certview_encode(v, &enc, &enc_len), 0);
    p = enc;
    assert_non_null(y = d2i_X509(NULL, &p, (long)enc_len));
    assert_ptr_equal(p, enc + enc_len);
    assert_int_equal(X509_verify(y, f->ca_key), 1);
    assert_int_equal(X509_verify(y, f->sub_key), 0);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(y), X509_get_subject_name(x)), 0);
    assert_int_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(y), X509_get0_serialNumber(x)), 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(y), f->sub_key), 1);
    assert_int_equal(X509_get_signature_nid(y), NID_ecdsa_with_SHA256);
    assert_int_equal(check(f, y, TU_NOW), 0);
    X509_free(y);
    EVP_MD_CTX_free(mctx);
    OPENSSL_free(enc);
    OPENSSL_free(der);
    certview_free(v);
    X509_free(x);
}

/* certview_pkey reads the key OpenSSL would, in either point form and for
 * RSA, and no key from a point off the curve. */
static void test_certview_pkey(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *rsa = EVP_RSA_gen(2048), *k;
    X509 *x = build(f);
    uint8_t *der;
    CERT_VIEW *v;
    int len;

    v = view_of(x, &der, &len);
    assert_non_null(k = certview_pkey(v));
    assert_int_equal(EVP_PKEY_eq(k, f->sub_key), 1);
    EVP_PKEY_free(k);
    /* the last byte of the point's y: off the curve */
    v->tbs->spki->public_key->data[v->tbs->spki->public_key->length - 1] ^= 1;
    assert_null(certview_pkey(v));
    certview_free(v);
    OPENSSL_free(der);

    assert_non_null(rsa);
    assert_int_equal(X509_set_pubkey(x, rsa), 1);
    v = view_of(x, &der, &len);
    assert_non_null(k = certview_pkey(v));
    assert_int_equal(EVP_PKEY_eq(k, rsa), 1);
    EVP_PKEY_free(k);
    certview_free(v);
    OPENSSL_free(der);

    /* The CA's key with a compressed point is still the CA's key. */
    assert_non_null(k = EVP_PKEY_dup(f->ca_key));
    assert_int_equal(
        EVP_PKEY_set_utf8_string_param(k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                       OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED),
        1);
    assert_int_equal(X509_set_pubkey(x, k), 1);
    v = view_of(x, &der, &len);
    assert_int_equal(v->tbs->spki->public_key->length, 33);
    certview_free(v);
    OPENSSL_free(der);
    refused(f, x, "the subject key is the CA's key");
    EVP_PKEY_free(k);
    EVP_PKEY_free(rsa);
}

static void test_crl_number_goes_up(void **state)
{
    struct fx *f = *state;
    struct signreq_crl c = {10, TU_NOW, TU_DAY, 0, NULL, NULL};

    assert_int_equal(signcheck_crl(&f->rules, &c, 0, 0, TU_NOW, f->why, sizeof(f->why)), 0);
    assert_int_equal(signcheck_crl(&f->rules, &c, 1, 9, TU_NOW, f->why, sizeof(f->why)), 0);
    assert_int_equal(signcheck_crl(&f->rules, &c, 1, 10, TU_NOW, f->why, sizeof(f->why)),
                     DEVID_ERR_REFUSED);
    assert_non_null(strstr(f->why, "CRL number 10 is not above 10"));
    c.next_update_seconds = 2 * TU_DAY;
    assert_int_equal(signcheck_crl(&f->rules, &c, 0, 0, TU_NOW, f->why, sizeof(f->why)),
                     DEVID_ERR_REFUSED);
    assert_non_null(strstr(f->why, "over the maximum"));
    c.next_update_seconds = TU_DAY;
    c.this_update = TU_NOW - 3600;
    assert_int_equal(signcheck_crl(&f->rules, &c, 0, 0, TU_NOW, f->why, sizeof(f->why)),
                     DEVID_ERR_REFUSED);
}

static void test_heads(void **state)
{
    uint8_t head[SIGNREQ_HEAD_LEN], type;
    size_t len;
    char why[256];

    (void)state;
    assert_int_equal(signreq_head_write(head, SIGNREQ_CERT, 100), 0);
    assert_int_equal(signreq_head_parse(&type, &len, head, 0, why, sizeof(why)), 0);
    assert_int_equal(type, SIGNREQ_CERT);
    assert_int_equal(len, 100);
    assert_int_equal(signreq_head_write(head, SIGNREQ_CERT, SIGNREQ_MAX_CERT + 1), 0);
    assert_int_equal(signreq_head_parse(&type, &len, head, 0, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "over the 16384-byte limit"));
    assert_int_equal(signreq_head_write(head, SIGNREQ_TREE_HEAD, SIGNREQ_MAX_TREE_HEAD), 0);
    assert_int_equal(signreq_head_parse(&type, &len, head, 0, why, sizeof(why)), 0);
    assert_int_equal(type, SIGNREQ_TREE_HEAD);
    assert_int_equal(signreq_head_write(head, SIGNREQ_TREE_HEAD, SIGNREQ_MAX_TREE_HEAD + 1), 0);
    assert_int_equal(signreq_head_parse(&type, &len, head, 0, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "tree head request"));
    assert_int_equal(signreq_head_write(head, 77, 0), 0);
    assert_int_equal(signreq_head_parse(&type, &len, head, 0, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "not in the request table"));
    assert_int_equal(signreq_head_write(head, SIGNREQ_REFUSED, SIGNREQ_MAX_WHY + 1), 0);
    assert_int_equal(signreq_head_parse(&type, &len, head, 1, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
}

static void test_crl_round_trip(void **state)
{
    const struct crl_entry e[] = {{"0a1b2c", 1000, 1}, {"FF", 2000, 0}};
    struct signreq_crl in = {42, TU_NOW, TU_DAY, 2, (struct crl_entry *)e, NULL}, out;
    uint8_t *buf = NULL;
    size_t len = 0;
    char why[256];

    (void)state;
    assert_int_equal(signreq_crl_encode(&buf, &len, &in), 0);
    assert_int_equal(signreq_crl_decode(&out, buf, len, why, sizeof(why)), 0);
    assert_int_equal(out.number, 42);
    assert_int_equal(out.this_update, TU_NOW);
    assert_int_equal(out.n, 2);
    assert_string_equal(out.entries[0].serial_hex, "0a1b2c");
    assert_string_equal(out.entries[1].serial_hex, "FF");
    assert_int_equal(out.entries[1].revoked_at, 2000);
    assert_int_equal(out.entries[0].reason, 1);
    signreq_crl_cleanup(&out);
    assert_int_equal(signreq_crl_decode(&out, buf, len - 1, why, sizeof(why)), DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "CRL request"));
    buf[SIGNREQ_CRL_FIXED + 1] = 'x'; /* not hex */
    assert_int_equal(signreq_crl_decode(&out, buf, len, why, sizeof(why)), DEVID_ERR_PROTOCOL);
    assert_non_null(strstr(why, "bad or truncated serial"));
    buf[27] = 0xff; /* a count the body cannot hold */
    assert_int_equal(signreq_crl_decode(&out, buf, len, why, sizeof(why)), DEVID_ERR_PROTOCOL);
    free(buf);
}

/* der_signed signs |x| with |key| and |md| and returns its DER
 * (OPENSSL_free it), length in |*len|. */
static unsigned char *der_signed(X509 *x, EVP_PKEY *key, const EVP_MD *md, size_t *len)
{
    unsigned char *der = NULL;
    int n;

    assert_true(X509_sign(x, key, md) > 0);
    assert_true((n = i2d_X509(x, &der)) > 0);
    *len = (size_t)n;
    return der;
}

/* answer_refused: the answer is refused with a reason containing |want|. */
static void answer_refused(const unsigned char *asked, size_t asked_len, const unsigned char *ans,
                           size_t ans_len, const char *want)
{
    char why[256];

    assert_int_equal(signreq_cert_answer_check(asked, asked_len, ans, ans_len, why, sizeof(why)),
                     DEVID_ERR_PROTOCOL);
    if (strstr(why, want) == NULL)
        fail_msg("reason \"%s\" does not name \"%s\"", why, want);
}

/* The serving process takes the signer's answer without parsing it: it
 * must be the certificate asked for, its signature algorithm aside. */
static void test_cert_answer(void **state)
{
    struct fx *f = *state;
    X509 *x = NULL;
    size_t alen, blen, clen;
    unsigned char *asked, *ans, *other;
    char why[256];
    size_t i;

    assert_int_equal(profile_build(&x, &f->in), 0);
    asked = der_signed(x, f->ca_key, EVP_sha256(), &alen);
    /* Another algorithm (and so another signature) is the signer's to set. */
    ans = der_signed(x, f->ca_key, EVP_sha384(), &blen);
    assert_int_equal(signreq_cert_answer_check(asked, alen, ans, blen, why, sizeof(why)), 0);
    assert_int_equal(signreq_cert_answer_check(asked, alen, asked, alen, why, sizeof(why)), 0);
    /* Trailing bytes, truncation, nothing. */
    assert_non_null(other = OPENSSL_malloc(blen + 1));
    memcpy(other, ans, blen);
    other[blen] = 0;
    answer_refused(asked, alen, other, blen + 1, "not one DER certificate");
    answer_refused(asked, alen, ans, blen - 1, "not one DER certificate");
    answer_refused(asked, alen, ans, 0, "not one DER certificate");
    answer_refused(other, 0, ans, blen, "asked for does not walk");
    OPENSSL_free(other);
    /* The outer algorithm is not the TBSCertificate's: the last
     * ecdsa-with-SHA384 OID in the DER is the outer one; make it SHA-512. */
    {
        static const unsigned char sha384[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                               0xce, 0x3d, 0x04, 0x03, 0x03};
        size_t at = 0;

        for (i = 0; i + sizeof(sha384) <= blen; i++)
            if (memcmp(ans + i, sha384, sizeof(sha384)) == 0)
                at = i;
        assert_true(at > 0);
        ans[at + sizeof(sha384) - 1] = 0x04;
        answer_refused(asked, alen, ans, blen, "two signature algorithms differ");
    }
    OPENSSL_free(ans);
    /* Another serial; another subject. */
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
    other = der_signed(x, f->ca_key, EVP_sha256(), &clen);
    answer_refused(asked, alen, other, clen, "another serial number");
    OPENSSL_free(other);
    X509_free(x);
    f->id.serial[0] = 'X';
    x = NULL;
    assert_int_equal(profile_build(&x, &f->in), 0);
    other = der_signed(x, f->ca_key, EVP_sha256(), &clen);
    answer_refused(asked, alen, other, clen, "TBSCertificate differs");
    OPENSSL_free(other);
    X509_free(x);
    OPENSSL_free(asked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_profile_passes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certview_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certview_sign, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certview_pkey, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_number_goes_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cert_answer, setup, teardown),
        cmocka_unit_test(test_heads),
        cmocka_unit_test(test_crl_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
