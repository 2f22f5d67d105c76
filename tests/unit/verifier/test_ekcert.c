/* EK certificates as TPM vendors make them (verifier/core/ekcert.h,
 * common/nvcert.h nvcert_parse_ek): an empty subject, a critical SAN with
 * the TPM's manufacturer, model and version, BER encodings, a TCG header and
 * padding are accepted; signatures, validity, the vendor and the end-entity
 * rules are strict. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "common/nvcert.h"
#include "testutil.h"
#include "verifier/core/chain.h"
#include "verifier/core/ekcert.h"

struct vendor {
    EVP_PKEY *root_key, *ek_key;
    X509 *root;
    struct chain_store *store;
};

static void vendor_init(struct vendor *v, const char *name)
{
    struct tu_cert_spec spec = {.o = name,
                                .cn = "EK Root",
                                .ca = 1,
                                .not_before = TU_NOW - 365 * TU_DAY,
                                .not_after = TU_NOW + 3650 * TU_DAY};

    memset(v, 0, sizeof(*v));
    v->root_key = tu_ec_key();
    v->ek_key = tu_ec_key();
    assert_non_null(v->root = tu_cert(&spec, v->root_key, NULL, v->root_key));
    assert_non_null(v->store = chain_store_new());
    chain_store_set_leaf(v->store, CHAIN_LEAF_EK);
    assert_int_equal(chain_store_add_manufacturer(v->store, name, NULL), 0);
    assert_int_equal(chain_store_add_mfr_root(v->store, name, v->root), 0);
}

static void vendor_cleanup(struct vendor *v)
{
    chain_store_free(v->store);
    X509_free(v->root);
    EVP_PKEY_free(v->root_key);
    EVP_PKEY_free(v->ek_key);
}

/* What an EK certificate under test varies. */
struct ek_spec {
    int ca;
    const char *ku;   /* keyUsage value, or NULL for none */
    int san_critical; /* -1: no SAN */
    time_t not_after;
};

/* ek_cert returns an EK certificate as the TCG profile describes it: an
 * empty subject, a SAN directoryName with tpmManufacturer, tpmModel and
 * tpmVersion. */
static X509 *ek_cert(const struct vendor *v, const struct ek_spec *s)
{
    X509 *x = X509_new();
    X509_NAME *dir = X509_NAME_new();
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *g = GENERAL_NAME_new();
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    char bc[32];

    assert_true(x != NULL && dir != NULL && gens != NULL && g != NULL);
    assert_int_equal(X509_set_version(x, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &(time_t){TU_NOW - TU_DAY}));
    assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), 0, 0,
                                     &(time_t){s->not_after ? s->not_after : TU_NOW + TU_DAY}));
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(v->root)), 1);
    assert_int_equal(X509_set_pubkey(x, v->ek_key), 1);
    X509V3_set_ctx(&ctx, v->root, x, NULL, NULL, 0);
    snprintf(bc, sizeof(bc), "critical,CA:%s", s->ca ? "TRUE" : "FALSE");
    assert_non_null(ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, bc));
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
    if (s->ku != NULL) {
        assert_non_null(ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, s->ku));
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    assert_int_equal(X509_NAME_add_entry_by_txt(dir, EKCERT_OID_TPM_MANUFACTURER, MBSTRING_UTF8,
                                                (const unsigned char *)"id:53544D20", -1, -1, 0),
                     1);
    assert_int_equal(X509_NAME_add_entry_by_txt(dir, EKCERT_OID_TPM_MODEL, MBSTRING_UTF8,
                                                (const unsigned char *)"ST33HTPHAHD4", -1, -1, 0),
                     1);
    assert_int_equal(X509_NAME_add_entry_by_txt(dir, EKCERT_OID_TPM_VERSION, MBSTRING_UTF8,
                                                (const unsigned char *)"id:00010101", -1, -1, 0),
                     1);
    g->type = GEN_DIRNAME;
    g->d.directoryName = dir;
    assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
    if (s->san_critical >= 0)
        assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, s->san_critical, 0), 1);
    GENERAL_NAMES_free(gens);
    assert_true(X509_sign(x, v->root_key, EVP_sha256()) > 0);
    return x;
}

static uint8_t *der_of(X509 *x, size_t *len)
{
    uint8_t *der = NULL;
    int n = i2d_X509(x, &der);

    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

/* ber_of returns |x| re-encoded in BER as some vendors ship it: the TBS
 * SEQUENCE's and the certificate SEQUENCE's lengths in a non-minimal long
 * form (one leading zero byte), signed by |key| over those BER bytes. */
static uint8_t *ber_of(X509 *x, EVP_PKEY *key, size_t *len)
{
    uint8_t *tbs = NULL, *alg = NULL, *sig = NULL, *out, *p;
    size_t tlen, blen, slen = 0, body, hl, i, o = 0;
    const X509_ALGOR *algor = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int n, an;

    assert_true((n = i2d_re_X509_tbs(x, &tbs)) > 0);
    tlen = (size_t)n;
    /* 30 81 LL or 30 82 LL LL: rewrite with one more length byte, 00. */
    assert_int_equal(tbs[0], 0x30);
    assert_true(tbs[1] == 0x81 || tbs[1] == 0x82);
    hl = 2 + (tbs[1] & 0x7f);
    blen = tlen + 1;
    uint8_t *ber = malloc(blen);
    assert_non_null(ber);
    ber[0] = 0x30;
    ber[1] = (uint8_t)(tbs[1] + 1);
    ber[2] = 0x00;
    memcpy(ber + 3, tbs + 2, tlen - 2);
    (void)hl;
    X509_get0_signature(NULL, &algor, x);
    assert_true((an = i2d_X509_ALGOR(algor, &alg)) > 0);
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestSign(md, NULL, &slen, ber, blen), 1);
    assert_non_null(sig = malloc(slen));
    assert_int_equal(EVP_DigestSign(md, sig, &slen, ber, blen), 1);
    body = blen + (size_t)an + 2 + 1 + slen + (slen + 1 >= 128 ? 1 : 0);
    assert_true(body < 65536);
    assert_non_null(out = malloc(body + 5));
    p = out;
    p[o++] = 0x30;
    p[o++] = 0x83;
    p[o++] = 0x00;
    p[o++] = (uint8_t)(body >> 8);
    p[o++] = (uint8_t)body;
    memcpy(p + o, ber, blen);
    o += blen;
    memcpy(p + o, alg, (size_t)an);
    o += (size_t)an;
    p[o++] = 0x03;
    if (slen + 1 >= 128)
        p[o++] = 0x81;
    p[o++] = (uint8_t)(slen + 1);
    p[o++] = 0x00;
    for (i = 0; i < slen; i++)
        p[o++] = sig[i];
    assert_int_equal(o, body + 5);
    *len = o;
    EVP_MD_CTX_free(md);
    OPENSSL_free(tbs);
    OPENSSL_free(alg);
    free(sig);
    free(ber);
    return out;
}

static int verify(struct vendor *v, X509 *ek, struct ekcert_tpm *tpm, char *why, size_t len)
{
    struct chain_verdict verdict;
    int r = ekcert_verify(&verdict, tpm, v->store, ek, NULL, TU_NOW, why, len);

    chain_verdict_cleanup(&verdict);
    return r;
}

/* An EK certificate with an empty subject and a critical SAN naming the
 * TPM verifies, and its TPM manufacturer, model and version are reported. */
static void test_empty_subject_critical_san(void **state)
{
    struct ek_spec s = {.ku = "critical,keyAgreement", .san_critical = 1};
    struct vendor v;
    struct ekcert_tpm tpm;
    char why[512] = "";
    X509 *ek;

    (void)state;
    vendor_init(&v, "STMicro");
    ek = ek_cert(&v, &s);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(ek)), 0);
    assert_int_equal(verify(&v, ek, &tpm, why, sizeof(why)), 0);
    assert_string_equal(tpm.manufacturer, "id:53544D20");
    assert_string_equal(tpm.model, "ST33HTPHAHD4");
    assert_string_equal(tpm.version, "id:00010101");
    assert_int_equal(tpm.san_critical, 1);
    X509_free(ek);
    vendor_cleanup(&v);
}

/* BER: nvcert_parse refuses to re-send it, nvcert_parse_ek keeps the bytes;
 * the signature verifies over the received TBS, and one flipped bit in it
 * refuses. */
static void test_ber_encoding(void **state)
{
    struct ek_spec s = {.ku = "keyEncipherment", .san_critical = 1};
    struct nvcert_span span;
    struct vendor v;
    struct ekcert_tpm tpm;
    STACK_OF(X509) *sk = NULL;
    char why[512] = "";
    X509 *ek, *got = NULL, *wire = NULL;
    uint8_t *ber;
    size_t len, i;

    (void)state;
    vendor_init(&v, "Infineon");
    ek = ek_cert(&v, &s);
    ber = ber_of(ek, v.root_key, &len);
    assert_int_equal(nvcert_parse(&sk, ber, len, 1, why, sizeof(why)), DEVID_ERR_CONFIG);
    assert_non_null(strstr(why, "non-minimal length encoding (BER, not DER)"));
    assert_int_equal(nvcert_parse_ek(&got, &span, ber, len, why, sizeof(why)), 0);
    assert_int_equal(span.off, 0);
    assert_int_equal(span.len, len);
    assert_int_equal(ekcert_decode(&wire, ber + span.off, span.len, why, sizeof(why)), 0);
    assert_int_equal(verify(&v, wire, &tpm, why, sizeof(why)), 0);
    assert_string_equal(tpm.model, "ST33HTPHAHD4");
    X509_free(wire);
    wire = NULL;
    /* One bit of the TPM model in the SAN, inside the signed TBS. */
    for (i = 0; i + 4 < len && memcmp(ber + i, "ST33", 4) != 0; i++)
        ;
    assert_true(i + 4 < len);
    ber[i] ^= 0x01;
    assert_int_equal(ekcert_decode(&wire, ber, len, why, sizeof(why)), 0);
    assert_int_equal(verify(&v, wire, &tpm, why, sizeof(why)), DEVID_ERR_EK_CERT);
    assert_non_null(strstr(why, "signature"));
    X509_free(wire);
    X509_free(got);
    free(ber);
    X509_free(ek);
    vendor_cleanup(&v);
}

/* A TCG header before and 0xFF padding after: the span is exactly the
 * certificate; a wrong certSize or junk after it is refused. */
static void test_nv_padding_header(void **state)
{
    struct ek_spec s = {.ku = "keyAgreement", .san_critical = 1};
    struct nvcert_span span;
    struct vendor v;
    char why[512] = "";
    X509 *ek, *got = NULL;
    uint8_t *der, *nv;
    size_t len, nvlen;

    (void)state;
    vendor_init(&v, "Nuvoton");
    ek = ek_cert(&v, &s);
    der = der_of(ek, &len);
    nvlen = NVCERT_TCG_HEADER_LEN + len + 200;
    assert_non_null(nv = malloc(nvlen));
    memset(nv, 0xff, nvlen);
    memcpy(nv,
           (uint8_t[]){0x10, 0x01, 0x00, (uint8_t)((len + 2) >> 8), (uint8_t)(len + 2), 0x10, 0x02},
           NVCERT_TCG_HEADER_LEN);
    memcpy(nv + NVCERT_TCG_HEADER_LEN, der, len);
    assert_int_equal(nvcert_parse_ek(&got, &span, nv, nvlen, why, sizeof(why)), 0);
    assert_int_equal(span.off, NVCERT_TCG_HEADER_LEN);
    assert_int_equal(span.len, len);
    assert_memory_equal(nv + span.off, der, len);
    X509_free(got);
    got = NULL;
    nv[4] ^= 1;
    assert_int_equal(nvcert_parse_ek(&got, &span, nv, nvlen, why, sizeof(why)), DEVID_ERR_CONFIG);
    assert_non_null(strstr(why, "certSize"));
    nv[4] ^= 1;
    nv[nvlen - 1] = 0x41;
    assert_int_equal(nvcert_parse_ek(&got, &span, nv, nvlen, why, sizeof(why)), DEVID_ERR_CONFIG);
    assert_non_null(strstr(why, "not 0x00 or 0xFF padding"));
    assert_null(got);
    free(nv);
    OPENSSL_free(der);
    X509_free(ek);
    vendor_cleanup(&v);
}

/* Strict: another vendor's EK, a CA-flagged EK, a signing-only keyUsage, an
 * expired one, and an empty vendor store are refused, each saying why. */
static void test_refusals(void **state)
{
    struct vendor v, other;
    struct ekcert_tpm tpm;
    struct chain_verdict verdict;
    char why[512] = "";
    X509 *ek;

    (void)state;
    vendor_init(&v, "Known");
    vendor_init(&other, "Unknown");
    ek = ek_cert(&other, &(struct ek_spec){.ku = "keyAgreement", .san_critical = 1});
    assert_int_equal(verify(&v, ek, &tpm, why, sizeof(why)), DEVID_ERR_EK_CERT);
    assert_non_null(strstr(why, "is its TPM vendor configured?"));
    X509_free(ek);
    ek = ek_cert(&v, &(struct ek_spec){.ca = 1, .san_critical = 1});
    assert_int_equal(verify(&v, ek, &tpm, why, sizeof(why)), DEVID_ERR_EK_CERT);
    assert_non_null(strstr(why, "an EK certificate must be an end-entity certificate, not a CA"));
    X509_free(ek);
    ek = ek_cert(&v, &(struct ek_spec){.ku = "digitalSignature", .san_critical = 1});
    assert_int_equal(verify(&v, ek, &tpm, why, sizeof(why)), DEVID_ERR_EK_CERT);
    assert_non_null(strstr(why, "neither keyEncipherment nor keyAgreement"));
    X509_free(ek);
    ek = ek_cert(
        &v, &(struct ek_spec){.ku = "keyAgreement", .san_critical = 1, .not_after = TU_NOW - 60});
    assert_int_equal(verify(&v, ek, &tpm, why, sizeof(why)), DEVID_ERR_EK_CERT);
    assert_non_null(strstr(why, "expired"));
    assert_int_equal(ekcert_verify(&verdict, &tpm, other.store == NULL ? NULL : NULL, ek, NULL,
                                   TU_NOW, why, sizeof(why)),
                     DEVID_ERR_EK_CERT);
    assert_non_null(strstr(why, "no TPM vendor is configured"));
    X509_free(ek);
    vendor_cleanup(&other);
    vendor_cleanup(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_subject_critical_san),
        cmocka_unit_test(test_ber_encoding),
        cmocka_unit_test(test_nv_padding_header),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
