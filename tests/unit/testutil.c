#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <tss2/tss2_mu.h>

EVP_PKEY *tu_ec_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");

    assert_non_null(k);
    return k;
}

static void add_entry(X509_NAME *n, int nid, const char *v)
{
    if (v == NULL)
        return;
    assert_int_equal(
        X509_NAME_add_entry_by_NID(n, nid, MBSTRING_ASC, (const unsigned char *)v, -1, -1, 0), 1);
}

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *v)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, v);

    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

static void add_hwmodulename(X509 *x, const char *hw_type, const char *hw_serial)
{
    ASN1_OBJECT *type_oid = OBJ_txt2obj(hw_type, 1);
    ASN1_OBJECT *other_oid = OBJ_txt2obj("1.3.6.1.5.5.7.8.4", 1);
    unsigned char oid_der[64], *p = oid_der;
    unsigned char der[256];
    size_t sn_len = strlen(hw_serial);
    int oid_len;
    size_t body, n = 0;
    ASN1_STRING *seq;
    ASN1_TYPE *val;
    GENERAL_NAME *g;
    GENERAL_NAMES *gens;

    assert_non_null(type_oid);
    assert_non_null(other_oid);
    oid_len = i2d_ASN1_OBJECT(type_oid, &p);
    assert_true(oid_len > 0 && oid_len < 64);
    assert_true(sn_len < 100);
    body = (size_t)oid_len + 2 + sn_len;
    assert_true(body < 128);
    der[n++] = 0x30;
    der[n++] = (unsigned char)body;
    memcpy(der + n, oid_der, (size_t)oid_len);
    n += (size_t)oid_len;
    der[n++] = 0x04;
    der[n++] = (unsigned char)sn_len;
    memcpy(der + n, hw_serial, sn_len);
    n += sn_len;
    assert_non_null(seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE));
    assert_int_equal(ASN1_STRING_set(seq, der, (int)n), 1);
    assert_non_null(val = ASN1_TYPE_new());
    ASN1_TYPE_set(val, V_ASN1_SEQUENCE, seq);
    assert_non_null(g = GENERAL_NAME_new());
    assert_int_equal(GENERAL_NAME_set0_othername(g, other_oid, val), 1);
    assert_non_null(gens = GENERAL_NAMES_new());
    assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
    assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT), 1);
    GENERAL_NAMES_free(gens);
    ASN1_OBJECT_free(type_oid);
}

X509 *tu_der_copy(X509 *x)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    int len = i2d_X509(x, &der);
    X509 *y = NULL;

    if (len > 0) {
        p = der;
        y = d2i_X509(NULL, &p, len);
    }
    OPENSSL_free(der);
    return y;
}

X509 *tu_cert(const struct tu_cert_spec *spec, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    uint8_t sn[16];
    BIGNUM *bn;
    X509V3_CTX ctx;

    assert_non_null(x);
    assert_non_null(name);
    assert_int_equal(RAND_bytes(sn, sizeof(sn)), 1);
    sn[0] = (sn[0] & 0x7f) | 0x40;
    assert_non_null(bn = BN_bin2bn(sn, sizeof(sn), NULL));
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    BN_free(bn);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    add_entry(name, NID_organizationName, spec->o);
    add_entry(name, NID_commonName, spec->cn);
    add_entry(name, NID_serialNumber, spec->serial);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
    X509_NAME_free(name);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), spec->not_before));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), spec->not_after));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    if (spec->ca) {
        add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature");
    }
    add_ext(x, &ctx, NID_subject_key_identifier, "hash");
    add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
    if (spec->hw_serial != NULL)
        add_hwmodulename(x, spec->hw_type ? spec->hw_type : "1.3.6.1.4.1.99999.1", spec->hw_serial);
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    return x;
}

uint8_t *tu_csr_der(size_t *len, EVP_PKEY *key, EVP_PKEY *signer)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name;
    uint8_t *der = NULL, *out;
    int n;

    assert_non_null(req);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    name = X509_REQ_get_subject_name(req);
    add_entry(name, NID_commonName, "ldevid");
    assert_true(X509_REQ_sign(req, signer, EVP_sha256()) > 0);
    n = i2d_X509_REQ(req, &der);
    assert_true(n > 0);
    out = malloc((size_t)n);
    assert_non_null(out);
    memcpy(out, der, (size_t)n);
    OPENSSL_free(der);
    X509_REQ_free(req);
    *len = (size_t)n;
    return out;
}

void tu_tpm_public(TPMT_PUBLIC *pub, uint8_t *buf, size_t *len, EVP_PKEY *key, TPMA_OBJECT attrs)
{
    BIGNUM *x = NULL, *y = NULL;
    size_t off = 0;

    memset(pub, 0, sizeof(*pub));
    pub->type = TPM2_ALG_ECC;
    pub->nameAlg = TPM2_ALG_SHA256;
    pub->objectAttributes = attrs;
    pub->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    pub->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    pub->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    pub->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    pub->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
    assert_int_equal(BN_bn2binpad(x, pub->unique.ecc.x.buffer, 32), 32);
    assert_int_equal(BN_bn2binpad(y, pub->unique.ecc.y.buffer, 32), 32);
    pub->unique.ecc.x.size = 32;
    pub->unique.ecc.y.size = 32;
    BN_free(x);
    BN_free(y);
    assert_int_equal(Tss2_MU_TPMT_PUBLIC_Marshal(pub, buf, *len, &off), TSS2_RC_SUCCESS);
    *len = off;
}

void tu_sha256(uint8_t out[32], const uint8_t *in, size_t len)
{
    unsigned int n = 0;

    assert_int_equal(EVP_Digest(in, len, out, &n, EVP_sha256(), NULL), 1);
    assert_int_equal(n, 32);
}

void tu_tpm_name(TPM2B_NAME *name, const uint8_t *pub, size_t pub_len)
{
    memset(name, 0, sizeof(*name));
    name->name[0] = (TPM2_ALG_SHA256 >> 8) & 0xff;
    name->name[1] = TPM2_ALG_SHA256 & 0xff;
    tu_sha256(name->name + 2, pub, pub_len);
    name->size = 34;
}

void tu_tpm_sign(uint8_t *buf, size_t *len, EVP_PKEY *key, const uint8_t *digest)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    uint8_t der[128];
    const uint8_t *p = der;
    size_t der_len = sizeof(der), off = 0;
    ECDSA_SIG *es;
    const BIGNUM *r, *s;
    TPMT_SIGNATURE sig;

    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_sign(ctx, der, &der_len, digest, 32), 1);
    EVP_PKEY_CTX_free(ctx);
    assert_non_null(es = d2i_ECDSA_SIG(NULL, &p, (long)der_len));
    ECDSA_SIG_get0(es, &r, &s);
    memset(&sig, 0, sizeof(sig));
    sig.sigAlg = TPM2_ALG_ECDSA;
    sig.signature.ecdsa.hash = TPM2_ALG_SHA256;
    assert_int_equal(BN_bn2binpad(r, sig.signature.ecdsa.signatureR.buffer, 32), 32);
    assert_int_equal(BN_bn2binpad(s, sig.signature.ecdsa.signatureS.buffer, 32), 32);
    sig.signature.ecdsa.signatureR.size = 32;
    sig.signature.ecdsa.signatureS.size = 32;
    ECDSA_SIG_free(es);
    assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, buf, *len, &off), TSS2_RC_SUCCESS);
    *len = off;
}

void tu_certify_info(uint8_t *buf, size_t *len, const TPM2B_NAME *name, const uint8_t *extra,
                     size_t extra_len)
{
    TPMS_ATTEST att;
    size_t off = 0;

    memset(&att, 0, sizeof(att));
    att.magic = TPM2_GENERATED_VALUE;
    att.type = TPM2_ST_ATTEST_CERTIFY;
    att.qualifiedSigner.size = 4;
    memcpy(att.qualifiedSigner.name, "\x00\x0b\x01\x02", 4);
    assert_true(extra_len <= sizeof(att.extraData.buffer));
    memcpy(att.extraData.buffer, extra, extra_len);
    att.extraData.size = (UINT16)extra_len;
    att.clockInfo.clock = 123456;
    att.clockInfo.safe = 1;
    att.firmwareVersion = 0x2020;
    att.attested.certify.name = *name;
    att.attested.certify.qualifiedName = *name;
    assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(&att, buf, *len, &off), TSS2_RC_SUCCESS);
    *len = off;
}

static const struct tu_cert_spec root_spec = {.o = "Acme Devices",
                                              .cn = "Acme Root CA",
                                              .ca = 1,
                                              .not_before = TU_NOW - 365 * TU_DAY,
                                              .not_after = TU_NOW + 3650 * TU_DAY};
static const struct tu_cert_spec int_spec = {.o = "Acme Devices",
                                             .cn = "Acme IDevID CA",
                                             .ca = 1,
                                             .not_before = TU_NOW - 365 * TU_DAY,
                                             .not_after = TU_NOW + 3650 * TU_DAY};
const struct tu_cert_spec tu_leaf_spec = {.cn = "Widget 3000",
                                          .serial = "SN0001",
                                          .hw_serial = "SN0001",
                                          .not_before = TU_NOW - 30 * TU_DAY,
                                          .not_after = TU_NOW + 3650 * TU_DAY};

void tu_pki_init(struct tu_pki *p)
{
    unsigned char *q;
    int len;

    memset(p, 0, sizeof(*p));
    p->root_key = tu_ec_key();
    p->int_key = tu_ec_key();
    p->idev_key = tu_ec_key();
    p->root = tu_cert(&root_spec, p->root_key, NULL, p->root_key);
    p->intermediate = tu_cert(&int_spec, p->int_key, p->root, p->root_key);
    p->idevid = tu_cert(&tu_leaf_spec, p->idev_key, p->intermediate, p->int_key);
    assert_true((len = i2d_X509(p->intermediate, NULL)) > 0);
    assert_non_null(p->int_der = malloc((size_t)len));
    q = p->int_der;
    assert_int_equal(i2d_X509(p->intermediate, &q), len);
    p->int_der_len = (size_t)len;
    assert_non_null(p->store = chain_store_new());
    assert_int_equal(chain_store_add_root(p->store, p->root), 0);
}

void tu_pki_cleanup(struct tu_pki *p)
{
    chain_store_free(p->store);
    free(p->int_der);
    X509_free(p->idevid);
    X509_free(p->intermediate);
    X509_free(p->root);
    EVP_PKEY_free(p->idev_key);
    EVP_PKEY_free(p->int_key);
    EVP_PKEY_free(p->root_key);
    memset(p, 0, sizeof(*p));
}
