#include "factory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <tss2/tss2_mu.h>

#include "common/err.h"
#include "evidence.h"

/* RFC 4108 id-on-hardwareModuleName and the hwType devid-factory writes. */
#define OID_HMN "1.3.6.1.5.5.7.8.4"
#define OID_HWTYPE "1.3.6.1.4.1.32473.1.1"
/* devid-factory's default device certificate lifetime: 20 years. */
#define DEVICE_DAYS 7300L

struct factory {
    X509 *cert;
    EVP_PKEY *key;
    const EVP_MD *md;
    uint8_t *cert_der;
    size_t cert_der_len;
    char name[FACTORY_NAME_MAX + 1];
};

static void print_openssl(const char *what, const char *path)
{
    char buf[256];
    unsigned long e = ERR_get_error();

    ERR_error_string_n(e, buf, sizeof(buf));
    fprintf(stderr, "devid-fleetsim: %s %s: %s\n", what, path, e != 0 ? buf : "unknown error");
    ERR_clear_error();
}

static int read_name(char *out, size_t out_len, const char *path)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL)
        return DEVID_ERR_NOT_FOUND;
    if (fgets(out, (int)out_len, f) == NULL) {
        fclose(f);
        return DEVID_ERR_IO;
    }
    fclose(f);
    n = strcspn(out, "\r\n");
    out[n] = '\0';
    return n > 0 ? 0 : DEVID_ERR_CONFIG;
}

static int subject_o(char *out, size_t out_len, X509 *cert)
{
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_organizationName, out,
                                      (int)out_len);

    return n > 0 && (size_t)n < out_len ? 0 : DEVID_ERR_CONFIG;
}

static const EVP_MD *ca_digest(EVP_PKEY *key)
{
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC && EVP_PKEY_get_bits(key) > 256)
        return EVP_sha384();
    return EVP_sha256();
}

int factory_load(struct factory **out, const char *dir)
{
    struct factory *f = NULL;
    char path[4096];
    FILE *fp = NULL;
    uint8_t *der = NULL;
    int n, r = DEVID_ERR_INTERNAL;

    if (out == NULL || dir == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((f = calloc(1, sizeof(*f))) == NULL)
        return DEVID_ERR_ALLOC;
    n = snprintf(path, sizeof(path), "%s/intermediate.pem", dir);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    if ((fp = fopen(path, "r")) == NULL) {
        fprintf(stderr, "devid-fleetsim: cannot open %s (run 'devid-factory ca --dir %s')\n", path,
                dir);
        r = DEVID_ERR_IO;
        goto out;
    }
    if ((f->cert = PEM_read_X509(fp, NULL, NULL, NULL)) == NULL) {
        print_openssl("no certificate in", path);
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    fclose(fp);
    snprintf(path, sizeof(path), "%s/intermediate.key", dir);
    if ((fp = fopen(path, "r")) == NULL) {
        fprintf(stderr, "devid-fleetsim: cannot open %s\n", path);
        r = DEVID_ERR_IO;
        goto out;
    }
    if ((f->key = PEM_read_PrivateKey(fp, NULL, NULL, NULL)) == NULL) {
        print_openssl("no private key in", path);
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    if (X509_check_private_key(f->cert, f->key) != 1) {
        print_openssl("the key does not match intermediate.pem:", path);
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    /* Fill OpenSSL's extension cache now, so that worker threads only read. */
    X509_check_purpose(f->cert, -1, 0);
    f->md = ca_digest(f->key);
    if ((n = i2d_X509(f->cert, &der)) <= 0) {
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    f->cert_der = der;
    f->cert_der_len = (size_t)n;
    der = NULL;
    snprintf(path, sizeof(path), "%s/name", dir);
    if (read_name(f->name, sizeof(f->name), path) != 0 &&
        subject_o(f->name, sizeof(f->name), f->cert) != 0) {
        fprintf(stderr,
                "devid-fleetsim: no manufacturer name in %s nor an O= in %s/intermediate.pem\n",
                path, dir);
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    *out = f;
    f = NULL;
    r = 0;
out:
    if (fp != NULL)
        fclose(fp);
    OPENSSL_free(der);
    factory_free(f);
    return r;
}

void factory_free(struct factory *f)
{
    if (f == NULL)
        return;
    X509_free(f->cert);
    EVP_PKEY_free(f->key);
    OPENSSL_free(f->cert_der);
    free(f);
}

X509 *factory_get0_intermediate(const struct factory *f)
{
    return f->cert;
}

const uint8_t *factory_get0_intermediate_der(const struct factory *f, size_t *len)
{
    *len = f->cert_der_len;
    return f->cert_der;
}

const char *factory_get0_name(const struct factory *f)
{
    return f->name;
}

static int check_chars(const char *s, size_t max, const char *set)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > max || strspn(s, set) != n)
        return DEVID_ERR_INVALID_ARGUMENT;
    return 0;
}

int factory_check_serial(const char *s)
{
    return check_chars(s, FACTORY_SERIAL_MAX,
                       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.:()?-");
}

int factory_check_model(const char *s)
{
    int r = check_chars(s, FACTORY_MODEL_MAX,
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ._:()&'?-");

    if (r == 0 && (s[0] == ' ' || s[strlen(s) - 1] == ' '))
        r = DEVID_ERR_INVALID_ARGUMENT;
    return r;
}

static int add_entry(X509_NAME *n, int nid, const char *v)
{
    return X509_NAME_add_entry_by_NID(n, nid, MBSTRING_UTF8, (const unsigned char *)v, -1, -1, 0) ==
                   1
               ? 0
               : DEVID_ERR_CRYPTO;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *v)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, v);
    int ok = e != NULL && X509_add_ext(x, e, -1) == 1;

    X509_EXTENSION_free(e);
    return ok ? 0 : DEVID_ERR_CRYPTO;
}

/* add_hmn adds subjectAltName otherName hardwareModuleName {hwType,
 * hwSerialNum}, DER-encoded by hand: every length is short form, because the
 * serial is at most 64 bytes and the OID 11. */
static int add_hmn(X509 *x, const char *serial)
{
    ASN1_OBJECT *type_oid = NULL, *other_oid = NULL;
    ASN1_STRING *seq = NULL;
    ASN1_TYPE *val = NULL;
    GENERAL_NAME *g = NULL;
    GENERAL_NAMES *gens = NULL;
    unsigned char der[160], oid_der[32], *p = oid_der;
    size_t sn_len = strlen(serial), body, n = 0;
    int oid_len, r = DEVID_ERR_CRYPTO;

    if (sn_len > FACTORY_SERIAL_MAX)
        return DEVID_ERR_INVALID_ARGUMENT;
    if ((type_oid = OBJ_txt2obj(OID_HWTYPE, 1)) == NULL ||
        (other_oid = OBJ_txt2obj(OID_HMN, 1)) == NULL)
        goto out;
    if ((oid_len = i2d_ASN1_OBJECT(type_oid, NULL)) <= 0 || (size_t)oid_len > sizeof(oid_der))
        goto out;
    i2d_ASN1_OBJECT(type_oid, &p);
    body = (size_t)oid_len + 2 + sn_len;
    if (body > 127 || body + 2 > sizeof(der))
        goto out;
    der[n++] = 0x30;
    der[n++] = (unsigned char)body;
    memcpy(der + n, oid_der, (size_t)oid_len);
    n += (size_t)oid_len;
    der[n++] = 0x04;
    der[n++] = (unsigned char)sn_len;
    memcpy(der + n, serial, sn_len);
    n += sn_len;
    if ((seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE)) == NULL ||
        ASN1_STRING_set(seq, der, (int)n) != 1 || (val = ASN1_TYPE_new()) == NULL)
        goto out;
    ASN1_TYPE_set(val, V_ASN1_SEQUENCE, seq);
    seq = NULL;
    if ((g = GENERAL_NAME_new()) == NULL || GENERAL_NAME_set0_othername(g, other_oid, val) != 1)
        goto out;
    other_oid = NULL;
    val = NULL;
    if ((gens = GENERAL_NAMES_new()) == NULL || sk_GENERAL_NAME_push(gens, g) <= 0)
        goto out;
    g = NULL;
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
        goto out;
    r = 0;
out:
    GENERAL_NAMES_free(gens);
    GENERAL_NAME_free(g);
    ASN1_TYPE_free(val);
    ASN1_STRING_free(seq);
    ASN1_OBJECT_free(other_oid);
    ASN1_OBJECT_free(type_oid);
    return r;
}

static int random_serial(X509 *x)
{
    uint8_t sn[16];
    BIGNUM *bn = NULL;
    int r = DEVID_ERR_CRYPTO;

    if (RAND_bytes(sn, sizeof(sn)) != 1)
        return DEVID_ERR_CRYPTO;
    /* Positive, and 128 bits long as devid-factory's rand_serial. */
    sn[0] = (uint8_t)((sn[0] & 0x7f) | 0x01);
    if ((bn = BN_bin2bn(sn, sizeof(sn), NULL)) != NULL &&
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL)
        r = 0;
    BN_free(bn);
    return r;
}

static int issue(X509 **out, const struct factory *f, EVP_PKEY *key, const char *model,
                 const char *serial)
{
    X509 *x = NULL;
    X509_NAME *name = NULL;
    X509V3_CTX ctx;
    int r = DEVID_ERR_CRYPTO;

    *out = NULL;
    if ((x = X509_new()) == NULL || (name = X509_NAME_new()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if (X509_set_version(x, X509_VERSION_3) != 1 || (r = random_serial(x)) != 0)
        goto out;
    r = DEVID_ERR_CRYPTO;
    if (add_entry(name, NID_organizationName, f->name) != 0 ||
        add_entry(name, NID_commonName, model) != 0 ||
        add_entry(name, NID_serialNumber, serial) != 0 || X509_set_subject_name(x, name) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(f->cert)) != 1)
        goto out;
    if (X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), DEVICE_DAYS, 0, NULL) == NULL ||
        X509_set_pubkey(x, key) != 1)
        goto out;
    X509V3_set_ctx(&ctx, f->cert, x, NULL, NULL, 0);
    if ((r = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE")) != 0 ||
        (r = add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature")) != 0 ||
        (r = add_ext(x, &ctx, NID_subject_key_identifier, "hash")) != 0 ||
        (r = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always")) != 0 ||
        (r = add_hmn(x, serial)) != 0)
        goto out;
    if (X509_sign(x, f->key, f->md) <= 0) {
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    *out = x;
    x = NULL;
    r = 0;
out:
    X509_NAME_free(name);
    X509_free(x);
    return r;
}

/* tpm_public marshals the TPMT_PUBLIC that
 * `tpm2_createprimary -C e -g sha256 -G ecc256:ecdsa-sha256 -a
 * fixedtpm|fixedparent|sensitivedataorigin|userwithauth|adminwithpolicy|sign`
 * returns for |key|. */
static int tpm_public(uint8_t *buf, size_t *len, EVP_PKEY *key)
{
    return evidence_p256_public(buf, len, key,
                                TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                    TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_SIGN_ENCRYPT,
                                TPM2_ALG_ECDSA);
}

/* qualified_name writes nameAlg || SHA-256(parent_qn || name), the TPM's
 * qualified Name of an object with Name |name| under |parent_qn|. */
static int qualified_name(uint8_t *out, size_t *out_len, const uint8_t *parent_qn,
                          size_t parent_len, const uint8_t *name, size_t name_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int dlen = 0;
    int ok;

    ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(md, parent_qn, parent_len) == 1 &&
         EVP_DigestUpdate(md, name, name_len) == 1 && EVP_DigestFinal_ex(md, out + 2, &dlen) == 1 &&
         dlen == 32;
    EVP_MD_CTX_free(md);
    if (!ok)
        return DEVID_ERR_CRYPTO;
    out[0] = (uint8_t)(TPM2_ALG_SHA256 >> 8);
    out[1] = (uint8_t)(TPM2_ALG_SHA256 & 0xff);
    *out_len = 34;
    return 0;
}

static int tpm_facts(struct device *d)
{
    static const uint8_t endorsement[4] = {0x40, 0x00, 0x00, 0x0b};
    static const uint8_t owner[4] = {0x40, 0x00, 0x00, 0x01};
    uint8_t name[TPMKEY_NAME_MAX], srk_name[34], rnd[16];
    size_t name_len = 0;
    int r;

    if ((r = tpmkey_name_from_bytes(name, &name_len, d->pub, d->pub_len)) != 0 ||
        (r = qualified_name(d->qualified_name, &d->qualified_name_len, endorsement,
                            sizeof(endorsement), name, name_len)) != 0)
        return r;
    srk_name[0] = (uint8_t)(TPM2_ALG_SHA256 >> 8);
    srk_name[1] = (uint8_t)(TPM2_ALG_SHA256 & 0xff);
    if (RAND_bytes(srk_name + 2, 32) != 1 || RAND_bytes(rnd, sizeof(rnd)) != 1)
        return DEVID_ERR_CRYPTO;
    if ((r = qualified_name(d->srk_qualified_name, &d->srk_qualified_name_len, owner, sizeof(owner),
                            srk_name, sizeof(srk_name))) != 0)
        return r;
    /* Powered on for up to ~12 days, rebooted a few times. */
    d->clock_ms = 60000 + (((uint64_t)rnd[0] << 24 | (uint64_t)rnd[1] << 16 |
                            (uint64_t)rnd[2] << 8 | rnd[3]) %
                           1000000000u);
    d->reset_count = rnd[4] % 16;
    d->restart_count = 0;
    d->firmware_version = 0x2019102300163636ull;
    return 0;
}

int factory_device_new(struct device **out, const struct factory *f, const char *model,
                       const char *serial)
{
    struct device *d = NULL;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || f == NULL || model == NULL || serial == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (factory_check_serial(serial) != 0 || factory_check_model(model) != 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    if ((d = calloc(1, sizeof(*d))) == NULL)
        return DEVID_ERR_ALLOC;
    snprintf(d->serial, sizeof(d->serial), "%s", serial);
    if ((d->key = EVP_EC_gen("P-256")) == NULL) {
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    d->pub_len = sizeof(d->pub);
    if ((r = tpm_public(d->pub, &d->pub_len, d->key)) != 0 || (r = tpm_facts(d)) != 0 ||
        (r = issue(&d->cert, f, d->key, model, serial)) != 0)
        goto out;
    *out = d;
    d = NULL;
    r = 0;
out:
    factory_device_free(d);
    return r;
}

void factory_device_free(struct device *d)
{
    if (d == NULL)
        return;
    EVP_PKEY_free(d->key);
    X509_free(d->cert);
    free(d);
}
