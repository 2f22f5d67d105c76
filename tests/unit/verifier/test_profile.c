/* Unit tests for verifier/profile: build, sign with a test CA, inspect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "testutil.h"
#include "verifier/core/assurance.h"
#include "verifier/core/chain.h"
#include "verifier/core/profile.h"

struct fx {
    EVP_PKEY *ca_key, *dev_key, *sub_key;
    X509_PUBKEY *sub_spki;
    X509 *ca, *idevid;
    struct device_identity id;
    uint8_t serial[PROFILE_SERIAL_LEN];
    struct profile_input in;
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
    memset(f->serial, 0xff, sizeof(f->serial));
    f->in.ca_cert = f->ca;
    assert_int_equal(X509_PUBKEY_set(&f->sub_spki, f->sub_key), 1);
    f->in.subject_key = f->sub_spki;
    f->in.id = &f->id;
    f->in.idevid = f->idevid;
    f->in.serial = f->serial;
    f->in.serial_len = sizeof(f->serial);
    f->in.now = TU_NOW;
    f->in.validity_seconds = 90 * TU_DAY;
    f->in.assurance_oid = ASSURANCE_DEFAULT_ARC ".3";
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

static int ext_critical(X509 *x, int nid)
{
    int i = X509_get_ext_by_NID(x, nid, -1);

    assert_true(i >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

static void name_field(X509 *x, int nid, const char *want)
{
    char buf[128];

    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), nid, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, want);
}

static void test_build_and_inspect(void **state)
{
    struct fx *f = *state;
    X509 *x = NULL, *y;
    BIGNUM *bn;
    int day = 0, sec = 0;
    struct chain_store *store;
    struct chain_verdict v;
    char why[256];

    assert_int_equal(profile_build(&x, &f->in), 0);
    assert_int_equal(X509_sign(x, f->ca_key, EVP_sha256()) > 0, 1);
    assert_int_equal(X509_verify(x, f->ca_key), 1);
    assert_int_equal(X509_get_version(x), X509_VERSION_3);

    assert_non_null(bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL));
    assert_false(BN_is_negative(bn));
    assert_true(BN_num_bits(bn) >= 64);
    assert_int_equal(BN_num_bits(bn), 8 * PROFILE_SERIAL_LEN - 1);
    BN_free(bn);

    name_field(x, NID_serialNumber, "SN0001");
    name_field(x, NID_commonName, "Widget 3000");
    name_field(x, NID_organizationName, "Acme Devices");
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(f->ca)), 0);

    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    assert_int_equal(ext_critical(x, NID_key_usage), 1);
    assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
    assert_int_equal(X509_check_ca(x), 0);
    assert_int_equal(ext_critical(x, NID_basic_constraints), 1);
    assert_non_null(X509_get0_subject_key_id(x));
    assert_non_null(X509_get0_authority_key_id(x));
    assert_int_equal(
        ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), X509_get0_subject_key_id(f->ca)), 0);
    /* The key is copied as encoded: the unsigned certificate holds no
     * decoded key, and the DER sent out decodes to the subject's. */
    assert_null(X509_get0_pubkey(x));
    ERR_clear_error();
    assert_non_null(y = tu_der_copy(x));
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(y), f->sub_key), 1);

    assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x), TU_NOW - 300), 0);
    assert_int_equal(ASN1_TIME_diff(&day, &sec, X509_get0_notBefore(x), X509_get0_notAfter(x)), 1);
    assert_int_equal(day * 86400 + sec, 90 * 86400 + 300);

    /* The issued certificate verifies to its CA with the same chain code. */
    assert_non_null(store = chain_store_new());
    assert_int_equal(chain_store_add_root(store, f->ca), 0);
    assert_int_equal(chain_verify(store, &v, y, NULL, TU_NOW, why, sizeof(why)), 0);
    chain_verdict_cleanup(&v);
    chain_store_free(store);
    X509_free(y);
    X509_free(x);
}

/* certificatePolicies, not critical, holds exactly the assurance OID, without
 * qualifiers; an OID that does not parse builds nothing. */
static void test_assurance_policy(void **state)
{
    struct fx *f = *state;
    CERTIFICATEPOLICIES *pols;
    const POLICYINFO *pi;
    char oid[ASSURANCE_OID_LEN], got[ASSURANCE_OID_LEN];
    X509 *x = NULL;
    int crit = -1;

    assert_int_equal(assurance_policy_oid(oid, sizeof(oid), "1.3.6.1.4.1.32473.5", ASSURANCE_NONE),
                     0);
    assert_string_equal(oid, "1.3.6.1.4.1.32473.5.1");
    f->in.assurance_oid = oid;
    assert_int_equal(profile_build(&x, &f->in), 0);
    assert_non_null(pols = X509_get_ext_d2i(x, NID_certificate_policies, &crit, NULL));
    assert_int_equal(crit, 0);
    assert_int_equal(sk_POLICYINFO_num(pols), 1);
    pi = sk_POLICYINFO_value(pols, 0);
    assert_null(pi->qualifiers);
    assert_true(OBJ_obj2txt(got, sizeof(got), pi->policyid, 1) > 0);
    assert_string_equal(got, "1.3.6.1.4.1.32473.5.1");
    CERTIFICATEPOLICIES_free(pols);
    X509_free(x);
    x = NULL;
    f->in.assurance_oid = "not an oid";
    assert_int_equal(profile_build(&x, &f->in), DEVID_ERR_INVALID_ARGUMENT);
    assert_null(x);
    f->in.assurance_oid = NULL;
    assert_int_equal(profile_build(&x, &f->in), DEVID_ERR_INVALID_ARGUMENT);
}

static void test_san_copied(void **state)
{
    struct fx *f = *state;
    X509 *x = NULL;
    GENERAL_NAMES *gens;
    const GENERAL_NAME *g;
    char oid[64];
    int crit = 0;

    assert_int_equal(profile_build(&x, &f->in), 0);
    assert_non_null(gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL));
    assert_int_equal(crit, 0);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
    g = sk_GENERAL_NAME_value(gens, 0);
    assert_int_equal(g->type, GEN_OTHERNAME);
    OBJ_obj2txt(oid, sizeof(oid), g->d.otherName->type_id, 1);
    assert_string_equal(oid, "1.3.6.1.5.5.7.8.4");
    GENERAL_NAMES_free(gens);
    X509_free(x);
}

static void test_no_san(void **state)
{
    struct fx *f = *state;
    struct tu_cert_spec dev = {.cn = "Widget 3000",
                               .serial = "SN0001",
                               .not_before = TU_NOW - TU_DAY,
                               .not_after = TU_NOW + TU_DAY};
    X509 *idevid = tu_cert(&dev, f->dev_key, f->ca, f->ca_key);
    X509 *x = NULL;

    f->in.idevid = idevid;
    assert_int_equal(profile_build(&x, &f->in), 0);
    assert_true(X509_get_ext_by_NID(x, NID_subject_alt_name, -1) < 0);
    X509_free(x);
    X509_free(idevid);
}

static void test_bad_serial(void **state)
{
    struct fx *f = *state;
    X509 *x = NULL;

    memset(f->serial, 0, sizeof(f->serial));
    f->serial[0] = 0x80; /* only the high bit: zero once cleared */
    assert_int_equal(profile_build(&x, &f->in), DEVID_ERR_INVALID_ARGUMENT);
    assert_null(x);
    memset(f->serial, 0x11, sizeof(f->serial));
    f->in.serial_len = 7;
    assert_int_equal(profile_build(&x, &f->in), DEVID_ERR_INVALID_ARGUMENT);
    f->in.serial_len = sizeof(f->serial);
    f->in.validity_seconds = 0;
    assert_int_equal(profile_build(&x, &f->in), DEVID_ERR_INVALID_ARGUMENT);
    assert_null(x);
}

static void test_serial_not_printablestring(void **state)
{
    struct fx *f = *state;
    X509 *x = NULL;

    snprintf(f->id.serial, sizeof(f->id.serial), "SN_0001@x");
    assert_int_equal(profile_build(&x, &f->in), 0);
    name_field(x, NID_serialNumber, "SN_0001@x");
    X509_free(x);
}

/* response_chain_is checks that profile_response_chain of |issuer| and
 * |above| is exactly the |n| certificates of |want|, in order. */
static void response_chain_is(X509 *issuer, STACK_OF(X509) *above, X509 *const *want, int n)
{
    STACK_OF(X509) *out = NULL;
    int i;

    assert_int_equal(profile_response_chain(&out, issuer, above), 0);
    assert_int_equal(sk_X509_num(out), n);
    for (i = 0; i < n; i++)
        assert_ptr_equal(sk_X509_value(out, i), want[i]);
    sk_X509_pop_free(out, X509_free);
}

/* EnrollResponse.chain: from the issuer up to, not including, the root. */
static void test_response_chain(void **state)
{
    struct fx *f = *state;
    struct tu_cert_spec spec = {.o = "Example Ops",
                                .cn = "Ops Sub CA",
                                .ca = 1,
                                .not_before = TU_NOW - TU_DAY,
                                .not_after = TU_NOW + 365 * TU_DAY};
    EVP_PKEY *k1 = tu_ec_key(), *k2 = tu_ec_key();
    X509 *sub1 = tu_cert(&spec, k1, f->ca, f->ca_key), *sub2 = tu_cert(&spec, k2, sub1, k1);
    STACK_OF(X509) *above = sk_X509_new_null();
    STACK_OF(X509) *out = NULL;
    X509 *want[2] = {sub2, sub1};

    assert_non_null(above);
    response_chain_is(f->ca, NULL, want, 0);
    response_chain_is(sub1, NULL, want + 1, 1);
    assert_true(sk_X509_push(above, f->ca) > 0);
    response_chain_is(sub1, above, want + 1, 1);
    assert_true(sk_X509_unshift(above, sub1) > 0);
    response_chain_is(sub2, above, want, 2);
    assert_int_equal(profile_response_chain(&out, NULL, above), DEVID_ERR_INVALID_ARGUMENT);
    assert_null(out);
    sk_X509_free(above);
    X509_free(sub2);
    X509_free(sub1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_build_and_inspect), T(test_assurance_policy),
        T(test_san_copied),        T(test_no_san),
        T(test_bad_serial),        T(test_serial_not_printablestring),
        T(test_response_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
