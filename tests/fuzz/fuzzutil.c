#include "fuzzutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/tls1.h>
#include <openssl/x509v3.h>
#include <tss2/tss2_mu.h>

void fu_fail(const char *what)
{
    fprintf(stderr, "fuzz fixture: %s failed\n", what);
    abort();
}

#define CHECK(cond)         \
    do {                    \
        if (!(cond))        \
            fu_fail(#cond); \
    } while (0)

void fu_sha256(uint8_t out[32], const uint8_t *in, size_t len)
{
    unsigned int n = 0;

    CHECK(EVP_Digest(in, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32);
}

EVP_PKEY *fu_ec_key(const char *label)
{
    uint8_t seed[32], pub[65];
    EC_GROUP *g = NULL;
    EC_POINT *pt = NULL;
    BIGNUM *d = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *k = NULL;

    fu_sha256(seed, (const uint8_t *)label, strlen(label));
    CHECK((g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1)) != NULL);
    CHECK((d = BN_bin2bn(seed, sizeof(seed), NULL)) != NULL);
    CHECK((pt = EC_POINT_new(g)) != NULL);
    CHECK(EC_POINT_mul(g, pt, d, NULL, NULL, NULL) == 1);
    CHECK(EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED, pub, sizeof(pub), NULL) ==
          sizeof(pub));
    CHECK((bld = OSSL_PARAM_BLD_new()) != NULL);
    CHECK(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, SN_X9_62_prime256v1,
                                          0) == 1);
    CHECK(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) == 1);
    CHECK(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)) == 1);
    CHECK((params = OSSL_PARAM_BLD_to_param(bld)) != NULL);
    CHECK((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) != NULL);
    CHECK(EVP_PKEY_fromdata_init(ctx) == 1);
    CHECK(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_KEYPAIR, params) == 1);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    EC_POINT_free(pt);
    EC_GROUP_free(g);
    return k;
}

EVP_PKEY *fu_ed_key(const char *label)
{
    uint8_t seed[32];
    EVP_PKEY *k;

    fu_sha256(seed, (const uint8_t *)label, strlen(label));
    CHECK((k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed))) != NULL);
    return k;
}

static void add_entry(X509_NAME *n, int nid, const char *v)
{
    if (v == NULL)
        return;
    CHECK(X509_NAME_add_entry_by_NID(n, nid, MBSTRING_ASC, (const unsigned char *)v, -1, -1, 0) ==
          1);
}

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *v)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, v);

    CHECK(e != NULL);
    CHECK(X509_add_ext(x, e, -1) == 1);
    X509_EXTENSION_free(e);
}

/* hardwareModuleName ::= SEQUENCE { hwType OID, hwSerialNum OCTET STRING } */
static void add_hwmodulename(X509 *x, const char *hw_serial)
{
    static const uint8_t hw_type[] = {0x06, 0x09, 0x2b, 0x06, 0x01, 0x04,
                                      0x01, 0x86, 0x8d, 0x1f, 0x01}; /* 1.3.6.1.4.1.99999.1 */
    ASN1_OBJECT *other_oid = OBJ_txt2obj("1.3.6.1.5.5.7.8.4", 1);
    uint8_t der[256];
    size_t sn_len = strlen(hw_serial), n = 0;
    ASN1_STRING *seq;
    ASN1_TYPE *val;
    GENERAL_NAME *g;
    GENERAL_NAMES *gens;

    CHECK(other_oid != NULL);
    CHECK(sn_len < 100);
    der[n++] = 0x30;
    der[n++] = (uint8_t)(sizeof(hw_type) + 2 + sn_len);
    memcpy(der + n, hw_type, sizeof(hw_type));
    n += sizeof(hw_type);
    der[n++] = 0x04;
    der[n++] = (uint8_t)sn_len;
    memcpy(der + n, hw_serial, sn_len);
    n += sn_len;
    CHECK((seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE)) != NULL);
    CHECK(ASN1_STRING_set(seq, der, (int)n) == 1);
    CHECK((val = ASN1_TYPE_new()) != NULL);
    ASN1_TYPE_set(val, V_ASN1_SEQUENCE, seq);
    CHECK((g = GENERAL_NAME_new()) != NULL);
    CHECK(GENERAL_NAME_set0_othername(g, other_oid, val) == 1);
    CHECK((gens = GENERAL_NAMES_new()) != NULL);
    CHECK(sk_GENERAL_NAME_push(gens, g) > 0);
    CHECK(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1);
    GENERAL_NAMES_free(gens);
}

static const EVP_MD *sign_md(EVP_PKEY *key)
{
    return EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
}

X509 *fu_cert(const struct fu_cert_spec *spec, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX ctx;

    CHECK(x != NULL && name != NULL);
    CHECK(ASN1_INTEGER_set(X509_get_serialNumber(x), spec->serial_number) == 1);
    CHECK(X509_set_version(x, X509_VERSION_3) == 1);
    add_entry(name, NID_organizationName, spec->o);
    add_entry(name, NID_commonName, spec->cn);
    add_entry(name, NID_serialNumber, spec->serial);
    CHECK(X509_set_subject_name(x, name) == 1);
    CHECK(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) == 1);
    X509_NAME_free(name);
    CHECK(ASN1_TIME_set(X509_getm_notBefore(x), spec->not_before) != NULL);
    CHECK(ASN1_TIME_set(X509_getm_notAfter(x), spec->not_after) != NULL);
    CHECK(X509_set_pubkey(x, key) == 1);
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
        add_hwmodulename(x, spec->hw_serial);
    CHECK(X509_sign(x, issuer_key, sign_md(issuer_key)) > 0);
    return x;
}

uint8_t *fu_der(size_t *len, X509 *x)
{
    uint8_t *der = NULL, *out;
    int n = i2d_X509(x, &der);

    CHECK(n > 0);
    CHECK((out = malloc((size_t)n)) != NULL);
    memcpy(out, der, (size_t)n);
    OPENSSL_free(der);
    *len = (size_t)n;
    return out;
}

uint8_t *fu_csr_der(size_t *len, EVP_PKEY *key, EVP_PKEY *signer)
{
    X509_REQ *req = X509_REQ_new();
    uint8_t *der = NULL, *out;
    int n;

    CHECK(req != NULL);
    CHECK(X509_REQ_set_pubkey(req, key) == 1);
    add_entry(X509_REQ_get_subject_name(req), NID_commonName, "ldevid");
    CHECK(X509_REQ_sign(req, signer, sign_md(signer)) > 0);
    CHECK((n = i2d_X509_REQ(req, &der)) > 0);
    CHECK((out = malloc((size_t)n)) != NULL);
    memcpy(out, der, (size_t)n);
    OPENSSL_free(der);
    X509_REQ_free(req);
    *len = (size_t)n;
    return out;
}

void fu_tpm_public(uint8_t *buf, size_t *len, EVP_PKEY *key, TPMA_OBJECT attrs)
{
    TPMT_PUBLIC pub;
    BIGNUM *x = NULL, *y = NULL;
    size_t off = 0;

    memset(&pub, 0, sizeof(pub));
    pub.type = TPM2_ALG_ECC;
    pub.nameAlg = TPM2_ALG_SHA256;
    pub.objectAttributes = attrs;
    pub.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    pub.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    pub.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    pub.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    CHECK(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1);
    CHECK(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1);
    CHECK(BN_bn2binpad(x, pub.unique.ecc.x.buffer, 32) == 32);
    CHECK(BN_bn2binpad(y, pub.unique.ecc.y.buffer, 32) == 32);
    pub.unique.ecc.x.size = 32;
    pub.unique.ecc.y.size = 32;
    BN_free(x);
    BN_free(y);
    CHECK(Tss2_MU_TPMT_PUBLIC_Marshal(&pub, buf, *len, &off) == TSS2_RC_SUCCESS);
    *len = off;
}

void fu_tpm_name(TPM2B_NAME *name, const uint8_t *pub, size_t pub_len)
{
    memset(name, 0, sizeof(*name));
    name->name[0] = (TPM2_ALG_SHA256 >> 8) & 0xff;
    name->name[1] = TPM2_ALG_SHA256 & 0xff;
    fu_sha256(name->name + 2, pub, pub_len);
    name->size = 34;
}

void fu_tpm_sign(uint8_t *buf, size_t *len, EVP_PKEY *key, const uint8_t *digest)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    uint8_t der[128];
    const uint8_t *p = der;
    size_t der_len = sizeof(der), off = 0;
    ECDSA_SIG *es;
    const BIGNUM *r, *s;
    TPMT_SIGNATURE sig;

    CHECK(ctx != NULL);
    CHECK(EVP_PKEY_sign_init(ctx) == 1);
    CHECK(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1);
    CHECK(EVP_PKEY_sign(ctx, der, &der_len, digest, 32) == 1);
    EVP_PKEY_CTX_free(ctx);
    CHECK((es = d2i_ECDSA_SIG(NULL, &p, (long)der_len)) != NULL);
    ECDSA_SIG_get0(es, &r, &s);
    memset(&sig, 0, sizeof(sig));
    sig.sigAlg = TPM2_ALG_ECDSA;
    sig.signature.ecdsa.hash = TPM2_ALG_SHA256;
    CHECK(BN_bn2binpad(r, sig.signature.ecdsa.signatureR.buffer, 32) == 32);
    CHECK(BN_bn2binpad(s, sig.signature.ecdsa.signatureS.buffer, 32) == 32);
    sig.signature.ecdsa.signatureR.size = 32;
    sig.signature.ecdsa.signatureS.size = 32;
    ECDSA_SIG_free(es);
    CHECK(Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, buf, *len, &off) == TSS2_RC_SUCCESS);
    *len = off;
}

void fu_certify_info(uint8_t *buf, size_t *len, const TPM2B_NAME *name, const uint8_t *extra,
                     size_t extra_len)
{
    TPMS_ATTEST att;
    size_t off = 0;

    memset(&att, 0, sizeof(att));
    att.magic = TPM2_GENERATED_VALUE;
    att.type = TPM2_ST_ATTEST_CERTIFY;
    att.qualifiedSigner.size = 4;
    memcpy(att.qualifiedSigner.name, "\x00\x0b\x01\x02", 4);
    CHECK(extra_len <= sizeof(att.extraData.buffer));
    memcpy(att.extraData.buffer, extra, extra_len);
    att.extraData.size = (UINT16)extra_len;
    att.clockInfo.clock = 123456;
    att.clockInfo.safe = 1;
    att.firmwareVersion = 0x2020;
    att.attested.certify.name = *name;
    att.attested.certify.qualifiedName = *name;
    CHECK(Tss2_MU_TPMS_ATTEST_Marshal(&att, buf, *len, &off) == TSS2_RC_SUCCESS);
    *len = off;
}

static void build(struct fu_world *w)
{
    const time_t nb = FU_NOW - 86400, na = FU_NOW + 3650 * (time_t)86400;
    const struct fu_cert_spec root = {
        "Fuzz Manufacturer", "Fuzz Root CA", NULL, 1, 1, nb, na, NULL};
    const struct fu_cert_spec inter = {
        "Fuzz Manufacturer", "Fuzz IDevID CA", NULL, 1, 2, nb, na, NULL};
    const struct fu_cert_spec idevid = {NULL, "fuzz-model", "FZ0001", 0, 3, nb, na, "FZ0001"};
    uint8_t *der, pcr7[32];
    size_t len;

    w->root_key = fu_ed_key("devid fuzz root");
    w->inter_key = fu_ed_key("devid fuzz intermediate");
    w->idevid_key = fu_ec_key("devid fuzz idevid");
    w->ldevid_key = fu_ec_key("devid fuzz ldevid");
    w->root = fu_cert(&root, w->root_key, NULL, w->root_key);
    w->inter = fu_cert(&inter, w->inter_key, w->root, w->root_key);
    w->idevid = fu_cert(&idevid, w->idevid_key, w->inter, w->inter_key);
    CHECK((w->store = chain_store_new()) != NULL);
    CHECK(chain_store_add_root(w->store, w->root) == 0);
    CHECK((w->ek_store = chain_store_new()) != NULL);
    chain_store_set_leaf(w->ek_store, CHAIN_LEAF_EK);
    CHECK(chain_store_add_manufacturer(w->ek_store, "fuzz vendor", NULL) == 0);
    CHECK(chain_store_add_mfr_root(w->ek_store, "fuzz vendor", w->root) == 0);
    CHECK((w->policy = policy_new()) != NULL);
    CHECK(policy_add(w->policy, POLICY_DENY_SERIAL, "DENY*") == 0);
    CHECK((w->policy_pcr = policy_new()) != NULL);
    CHECK(policy_add(w->policy_pcr, POLICY_DENY_SERIAL, "DENY*") == 0);
    memset(pcr7, FU_PCR7, sizeof(pcr7));
    CHECK(policy_add_pcr(w->policy_pcr, "Fuzz Manufacturer", "fuzz-model", 7, pcr7) == 0);
    fu_sha256(w->token_key, (const uint8_t *)"devid fuzz token key", 20);
    fu_sha256(w->exporter, (const uint8_t *)"devid fuzz exporter", 19);
    CHECK(token_conn_hash(w->conn_hash, w->exporter, sizeof(w->exporter)) == 0);
    fu_sha256(w->qualifying, (const uint8_t *)"devid fuzz qualifying", 21);
    der = fu_der(&len, w->idevid);
    fu_sha256(w->idevid_sha256, der, len);
    free(der);
}

const struct fu_world *fu_world(void)
{
    static struct fu_world w;
    static int built;

    if (!built) {
        build(&w);
        built = 1;
    }
    return &w;
}

struct enroll_tls fu_tls(void)
{
    const struct fu_world *w = fu_world();
    struct enroll_tls tls = {TLS1_3_VERSION, false, w->idevid, NULL, w->exporter, NULL};

    return tls;
}
