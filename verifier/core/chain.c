#include "verifier/core/chain.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "common/err.h"

#define OID_HWMODULENAME "1.3.6.1.5.5.7.8.4"
#define OID_PERMANENTID "1.3.6.1.5.5.7.8.3"

struct mfr {
    char name[CHAIN_NAME_MAX];
    struct chain_mfr_settings set;
    STACK_OF(X509) *roots;
    STACK_OF(X509_CRL) *crls;
};

struct chain_store {
    X509_STORE *store;
    STACK_OF(X509) *intermediates;
    struct mfr *mfrs[CHAIN_MAX_MANUFACTURERS];
    size_t n_mfrs;
    size_t roots;
    size_t crls;
};

void chain_mfr_settings_default(struct chain_mfr_settings *s)
{
    if (s == NULL)
        return;
    memset(s, 0, sizeof(*s));
    s->min_rsa_bits = 2048;
    s->min_ec_bits = 256;
    s->allow_sha1 = 0;
    s->revocation = CHAIN_REVOCATION_NONE;
}

struct chain_store *chain_store_new(void)
{
    struct chain_store *s;

    if ((s = OPENSSL_zalloc(sizeof(*s))) == NULL)
        return NULL;
    if ((s->store = X509_STORE_new()) == NULL || (s->intermediates = sk_X509_new_null()) == NULL) {
        chain_store_free(s);
        return NULL;
    }
    return s;
}

static void mfr_free(struct mfr *m)
{
    if (m == NULL)
        return;
    sk_X509_pop_free(m->roots, X509_free);
    sk_X509_CRL_pop_free(m->crls, X509_CRL_free);
    OPENSSL_free(m);
}

void chain_store_free(struct chain_store *store)
{
    size_t i;

    if (store == NULL)
        return;
    for (i = 0; i < store->n_mfrs; i++)
        mfr_free(store->mfrs[i]);
    X509_STORE_free(store->store);
    sk_X509_pop_free(store->intermediates, X509_free);
    OPENSSL_free(store);
}

static struct mfr *find_mfr(const struct chain_store *store, const char *name)
{
    size_t i;

    for (i = 0; i < store->n_mfrs; i++) {
        if (strcmp(store->mfrs[i]->name, name) == 0)
            return store->mfrs[i];
    }
    return NULL;
}

static int printable_name(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n >= CHAIN_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    }
    return 1;
}

int chain_store_add_manufacturer(struct chain_store *store, const char *name,
                                 const struct chain_mfr_settings *settings)
{
    struct mfr *m = NULL;
    int r = DEVID_ERR_INTERNAL;

    if (store == NULL || name == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (!printable_name(name) || find_mfr(store, name) != NULL)
        return DEVID_ERR_CONFIG;
    if (store->n_mfrs >= CHAIN_MAX_MANUFACTURERS)
        return DEVID_ERR_TOO_LARGE;
    if ((m = OPENSSL_zalloc(sizeof(*m))) == NULL || (m->roots = sk_X509_new_null()) == NULL ||
        (m->crls = sk_X509_CRL_new_null()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    memcpy(m->name, name, strlen(name) + 1);
    if (settings != NULL)
        m->set = *settings;
    else
        chain_mfr_settings_default(&m->set);
    store->mfrs[store->n_mfrs++] = m;
    m = NULL;
    r = 0;
out:
    mfr_free(m);
    return r;
}

static const struct mfr *mfr_of_root(const struct chain_store *store, X509 *root)
{
    size_t i;
    int j;

    for (i = 0; i < store->n_mfrs; i++) {
        for (j = 0; j < sk_X509_num(store->mfrs[i]->roots); j++) {
            if (X509_cmp(sk_X509_value(store->mfrs[i]->roots, j), root) == 0)
                return store->mfrs[i];
        }
    }
    return NULL;
}

int chain_store_add_mfr_root(struct chain_store *store, const char *name, X509 *root)
{
    struct mfr *m;

    if (store == NULL || name == NULL || root == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if ((m = find_mfr(store, name)) == NULL)
        return DEVID_ERR_NOT_FOUND;
    if (X509_check_ca(root) == 0 || (X509_get_extension_flags(root) & EXFLAG_SS) == 0 ||
        mfr_of_root(store, root) != NULL)
        return DEVID_ERR_CONFIG;
    if (store->roots >= CHAIN_MAX_ROOTS)
        return DEVID_ERR_TOO_LARGE;
    if (X509_up_ref(root) != 1)
        return DEVID_ERR_INTERNAL;
    if (sk_X509_push(m->roots, root) <= 0) {
        X509_free(root);
        return DEVID_ERR_ALLOC;
    }
    if (X509_STORE_add_cert(store->store, root) != 1) {
        X509_free(sk_X509_pop(m->roots));
        return DEVID_ERR_CONFIG;
    }
    store->roots++;
    return 0;
}

int chain_store_add_crl(struct chain_store *store, const char *name, X509_CRL *crl)
{
    struct mfr *m;

    if (store == NULL || name == NULL || crl == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if ((m = find_mfr(store, name)) == NULL)
        return DEVID_ERR_NOT_FOUND;
    if (store->crls >= CHAIN_MAX_CRLS)
        return DEVID_ERR_TOO_LARGE;
    if (X509_CRL_up_ref(crl) != 1)
        return DEVID_ERR_INTERNAL;
    if (sk_X509_CRL_push(m->crls, crl) <= 0) {
        X509_CRL_free(crl);
        return DEVID_ERR_ALLOC;
    }
    store->crls++;
    return 0;
}

/* Copies the first |nid| entry of |name| into |buf| as ASCII, with bytes
 * outside printable ASCII replaced by '?'. Returns 0 when found. */
static int name_entry(char *buf, size_t len, const X509_NAME *name, int nid)
{
    const X509_NAME_ENTRY *e;
    unsigned char *utf8 = NULL;
    int n, i;
    size_t j = 0;

    if ((i = X509_NAME_get_index_by_NID(name, nid, -1)) < 0)
        return -1;
    if ((e = X509_NAME_get_entry(name, i)) == NULL)
        return -1;
    if ((n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e))) < 0)
        return -1;
    for (i = 0; i < n && j + 1 < len; i++)
        buf[j++] = (utf8[i] >= 0x20 && utf8[i] < 0x7f) ? (char)utf8[i] : '?';
    buf[j] = '\0';
    OPENSSL_free(utf8);
    return j > 0 ? 0 : -1;
}

int chain_store_add_root(struct chain_store *store, X509 *root)
{
    char name[CHAIN_NAME_MAX];
    const X509_NAME *subject;
    int r;

    if (store == NULL || root == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    subject = X509_get_subject_name(root);
    if (name_entry(name, sizeof(name), subject, NID_organizationName) != 0 &&
        name_entry(name, sizeof(name), subject, NID_commonName) != 0)
        return DEVID_ERR_CONFIG;
    if (find_mfr(store, name) == NULL && (r = chain_store_add_manufacturer(store, name, NULL)) != 0)
        return r;
    return chain_store_add_mfr_root(store, name, root);
}

int chain_store_add_intermediate(struct chain_store *store, X509 *cert)
{
    if (store == NULL || cert == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (sk_X509_num(store->intermediates) >= CHAIN_MAX_CONFIG_INTERMEDIATES)
        return DEVID_ERR_TOO_LARGE;
    if (X509_up_ref(cert) != 1)
        return DEVID_ERR_INTERNAL;
    if (sk_X509_push(store->intermediates, cert) <= 0) {
        X509_free(cert);
        return DEVID_ERR_ALLOC;
    }
    return 0;
}

size_t chain_store_root_count(const struct chain_store *store)
{
    return store == NULL ? 0 : store->roots;
}

int chain_store_has_manufacturer(const struct chain_store *store, const char *name)
{
    return store != NULL && name != NULL && find_mfr(store, name) != NULL;
}

const char *chain_revocation_str(enum chain_revocation rev)
{
    switch (rev) {
        case CHAIN_REV_CHECKED:
            return "checked";
        case CHAIN_REV_SOFT_MISSING:
            return "soft-missing";
        case CHAIN_REV_SOFT_STALE:
            return "soft-stale";
        case CHAIN_REV_NOT_CONFIGURED:
        default:
            return "not-configured";
    }
}

void chain_verdict_cleanup(struct chain_verdict *v)
{
    if (v == NULL)
        return;
    X509_free(v->root);
    sk_X509_pop_free(v->path, X509_free);
    memset(v, 0, sizeof(*v));
}

void chain_subject(char *buf, size_t len, X509 *cert)
{
    BIO *bio = NULL;
    char *data = NULL;
    long n;

    snprintf(buf, len, "(unknown certificate)");
    if (cert == NULL || (bio = BIO_new(BIO_s_mem())) == NULL)
        return;
    if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0 &&
        (n = BIO_get_mem_data(bio, &data)) >= 0)
        snprintf(buf, len, "\"%.*s\"", (int)(n > 256 ? 256 : n), data);
    BIO_free(bio);
}

static void key_str(char *buf, size_t len, EVP_PKEY *pk)
{
    char group[64];
    size_t glen = 0;

    if (pk == NULL) {
        snprintf(buf, len, "(no key)");
        return;
    }
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
        EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &glen) == 1)
        snprintf(buf, len, "EC %s (%d bits)", group, EVP_PKEY_get_bits(pk));
    else
        snprintf(buf, len, "%s %d bits", OBJ_nid2sn(EVP_PKEY_get_base_id(pk)),
                 EVP_PKEY_get_bits(pk));
}

void chain_describe(char *buf, size_t len, X509 *x)
{
    char k[96];

    if (x == NULL) {
        snprintf(buf, len, "(none)");
        return;
    }
    key_str(k, sizeof(k), X509_get0_pubkey(x));
    snprintf(buf, len, "key %s, signature %s", k, OBJ_nid2ln(X509_get_signature_nid(x)));
}

static int map_error(int err)
{
    switch (err) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return DEVID_ERR_CHAIN_EXPIRED;
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_CERT_UNTRUSTED:
            return DEVID_ERR_CHAIN_UNTRUSTED;
        case X509_V_ERR_CERT_REVOKED:
            return DEVID_ERR_CHAIN_REVOKED;
        default:
            return DEVID_ERR_CHAIN_INVALID;
    }
}

/* The verify callback: tolerates the profile findings listed in chain.h. */
static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
    STACK_OF(X509) *chain;
    int depth;

    if (ok)
        return ok;
    switch (X509_STORE_CTX_get_error(ctx)) {
        case X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER:
        case X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER:
        case X509_V_ERR_AUTHORITY_KEY_IDENTIFIER_CRITICAL:
        case X509_V_ERR_SUBJECT_KEY_IDENTIFIER_CRITICAL:
        case X509_V_ERR_CA_BCONS_NOT_CRITICAL:
        case X509_V_ERR_CA_CERT_MISSING_KEY_USAGE:
        case X509_V_ERR_SUBJECT_NAME_EMPTY:
            return 1;
        case X509_V_ERR_INVALID_CA:
            chain = X509_STORE_CTX_get0_chain(ctx);
            depth = X509_STORE_CTX_get_error_depth(ctx);
            if (chain != NULL && depth == sk_X509_num(chain) - 1 &&
                (X509_get_extension_flags(X509_STORE_CTX_get_current_cert(ctx)) & EXFLAG_SS))
                return 1;
            return 0;
        default:
            return 0;
    }
}

static int refuse(int code, char *why, size_t why_len, X509 *x, int depth, const char *fmt,
                  const char *detail)
{
    char subject[300];

    chain_subject(subject, sizeof(subject), x);
    snprintf(why, why_len, "certificate %s (chain depth %d): %s%s", subject, depth, fmt,
             detail == NULL ? "" : detail);
    return code;
}

static int check_key(const struct mfr *m, X509 *x, int depth, char *why, size_t why_len)
{
    EVP_PKEY *pk = X509_get0_pubkey(x);
    char detail[512], desc[96];
    int id, bits, explicit_params = 0;

    if (pk == NULL)
        return refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, x, depth,
                      "subjectPublicKeyInfo does not decode", NULL);
    id = EVP_PKEY_get_base_id(pk);
    bits = EVP_PKEY_get_bits(pk);
    key_str(desc, sizeof(desc), pk);
    switch (id) {
        case EVP_PKEY_RSA:
        case EVP_PKEY_RSA_PSS:
            if (bits < 0 || (unsigned)bits < m->set.min_rsa_bits) {
                snprintf(detail, sizeof(detail),
                         "%s is below min_rsa_bits %u of manufacturer \"%s\"", desc,
                         m->set.min_rsa_bits, m->name);
                return refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, x, depth,
                              "weak algorithm: subjectPublicKeyInfo key ", detail);
            }
            return 0;
        case EVP_PKEY_EC:
            if (EVP_PKEY_get_int_param(pk, OSSL_PKEY_PARAM_EC_DECODED_FROM_EXPLICIT_PARAMS,
                                       &explicit_params) == 1 &&
                explicit_params)
                return refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, x, depth,
                              "subjectPublicKeyInfo EC key has explicit curve parameters", NULL);
            if (bits < 0 || (unsigned)bits < m->set.min_ec_bits) {
                snprintf(detail, sizeof(detail),
                         "%s is below min_ec_bits %u of manufacturer \"%s\"", desc,
                         m->set.min_ec_bits, m->name);
                return refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, x, depth,
                              "weak algorithm: subjectPublicKeyInfo key ", detail);
            }
            return 0;
        case EVP_PKEY_ED25519:
        case EVP_PKEY_ED448:
            return 0;
        default:
            return refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, x, depth,
                          "subjectPublicKeyInfo key type is not RSA, EC or EdDSA: ", desc);
    }
}

static int check_signature_alg(const struct mfr *m, X509 *x, int depth, char *why, size_t why_len)
{
    int mdnid = NID_undef, pknid = NID_undef, secbits = 0;
    uint32_t flags = 0;
    char detail[200];

    if (X509_get_signature_info(x, &mdnid, &pknid, &secbits, &flags) != 1) {
        ERR_clear_error();
        return refuse(
            DEVID_ERR_CHAIN_INVALID, why, why_len, x, depth,
            "signatureAlgorithm is not supported: ", OBJ_nid2ln(X509_get_signature_nid(x)));
    }
    if (mdnid == NID_md5 || mdnid == NID_md4 || mdnid == NID_md2 ||
        (mdnid == NID_sha1 && !m->set.allow_sha1)) {
        snprintf(detail, sizeof(detail), "%s (manufacturer \"%s\" has allow_sha1 = %s)",
                 OBJ_nid2ln(X509_get_signature_nid(x)), m->name, m->set.allow_sha1 ? "yes" : "no");
        return refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, x, depth,
                      "weak algorithm: signatureAlgorithm ", detail);
    }
    return 0;
}

static int check_leaf(X509 *leaf, char *why, size_t why_len)
{
    GENERAL_NAMES *gens = NULL;
    ASN1_OBJECT *hw = NULL, *perm = NULL;
    X509_EXTENSION *ext;
    char oid[80];
    int idx, i, r = DEVID_ERR_INTERNAL;

    if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) &&
        (X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) == 0) {
        r = refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, leaf, 0,
                   "keyUsage does not allow digitalSignature", NULL);
        goto out;
    }
    if ((idx = X509_get_ext_by_NID(leaf, NID_subject_alt_name, -1)) < 0 ||
        (ext = X509_get_ext(leaf, idx)) == NULL || !X509_EXTENSION_get_critical(ext)) {
        r = 0;
        goto out;
    }
    if ((gens = X509V3_EXT_d2i(ext)) == NULL) {
        r = refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, leaf, 0,
                   "critical subjectAltName does not decode", NULL);
        goto out;
    }
    if ((hw = OBJ_txt2obj(OID_HWMODULENAME, 1)) == NULL ||
        (perm = OBJ_txt2obj(OID_PERMANENTID, 1)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_OTHERNAME || OBJ_cmp(g->d.otherName->type_id, hw) == 0 ||
            OBJ_cmp(g->d.otherName->type_id, perm) == 0)
            continue;
        OBJ_obj2txt(oid, sizeof(oid), g->d.otherName->type_id, 1);
        r = refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, leaf, 0,
                   "critical subjectAltName holds an otherName of unknown type ", oid);
        goto out;
    }
    r = 0;
out:
    ASN1_OBJECT_free(hw);
    ASN1_OBJECT_free(perm);
    GENERAL_NAMES_free(gens);
    return r;
}

/* Whether |crl| may speak for |x| issued by |issuer|: issuer name, signature
 * by the issuer's key, cRLSign, no delta, no unknown critical extension, and
 * an issuingDistributionPoint (if any) whose scope covers |x|. */
static int crl_applies(X509_CRL *crl, X509 *x, X509 *issuer, int is_leaf)
{
    ISSUING_DIST_POINT *idp = NULL;
    const STACK_OF(X509_EXTENSION) *exts;
    int i, nid, ok = 0;

    if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_issuer_name(x)) != 0)
        return 0;
    if ((X509_get_extension_flags(issuer) & EXFLAG_KUSAGE) &&
        (X509_get_key_usage(issuer) & KU_CRL_SIGN) == 0)
        return 0;
    exts = X509_CRL_get0_extensions(crl);
    for (i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
        nid = OBJ_obj2nid(X509_EXTENSION_get_object(e));
        if (nid == NID_delta_crl)
            return 0;
        if (X509_EXTENSION_get_critical(e) && nid != NID_issuing_distribution_point)
            return 0;
    }
    if ((idp = X509_CRL_get_ext_d2i(crl, NID_issuing_distribution_point, &i, NULL)) != NULL) {
        if (idp->onlysomereasons != NULL || idp->indirectCRL || idp->onlyattr ||
            (idp->onlyCA && is_leaf) || (idp->onlyuser && !is_leaf))
            goto out;
    } else if (i != -1) {
        goto out;
    }
    if (X509_CRL_verify(crl, X509_get0_pubkey(issuer)) != 1)
        goto out;
    ok = 1;
out:
    ISSUING_DIST_POINT_free(idp);
    ERR_clear_error();
    return ok;
}

/* The newest applicable CRL of |m| for |x|, or NULL. */
static X509_CRL *find_crl(const struct mfr *m, X509 *x, X509 *issuer, int is_leaf)
{
    X509_CRL *best = NULL, *c;
    int i;

    for (i = 0; i < sk_X509_CRL_num(m->crls); i++) {
        c = sk_X509_CRL_value(m->crls, i);
        if (!crl_applies(c, x, issuer, is_leaf))
            continue;
        if (best == NULL ||
            ASN1_TIME_compare(X509_CRL_get0_lastUpdate(c), X509_CRL_get0_lastUpdate(best)) > 0)
            best = c;
    }
    return best;
}

static void crl_times(char *buf, size_t len, X509_CRL *crl)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n;

    snprintf(buf, len, "?");
    if (bio == NULL)
        return;
    BIO_puts(bio, "thisUpdate ");
    ASN1_TIME_print(bio, X509_CRL_get0_lastUpdate(crl));
    BIO_puts(bio, ", nextUpdate ");
    if (X509_CRL_get0_nextUpdate(crl) != NULL)
        ASN1_TIME_print(bio, X509_CRL_get0_nextUpdate(crl));
    else
        BIO_puts(bio, "(absent)");
    if ((n = BIO_get_mem_data(bio, &data)) > 0)
        snprintf(buf, len, "%.*s", (int)(n > 120 ? 120 : n), data);
    BIO_free(bio);
}

static int check_revocation(const struct mfr *m, STACK_OF(X509) *path, time_t now,
                            struct chain_verdict *v, char *why, size_t why_len)
{
    X509_REVOKED *rev = NULL;
    X509_CRL *crl;
    X509 *x, *issuer;
    char isub[300], times[128], detail[512];
    const ASN1_TIME *next;
    ASN1_INTEGER *sn;
    BIGNUM *bn = NULL;
    char *hex = NULL;
    int i, stale, n = sk_X509_num(path), hard = m->set.revocation == CHAIN_REVOCATION_HARD;
    int r = DEVID_ERR_INTERNAL;

    v->revocation = CHAIN_REV_NOT_CONFIGURED;
    if (m->set.revocation == CHAIN_REVOCATION_NONE) {
        snprintf(v->revocation_detail, sizeof(v->revocation_detail),
                 "manufacturer \"%s\" has revocation = none", m->name);
        r = 0;
        goto out;
    }
    for (i = 0; i + 1 < n; i++) {
        x = sk_X509_value(path, i);
        issuer = sk_X509_value(path, i + 1);
        chain_subject(isub, sizeof(isub), issuer);
        if ((crl = find_crl(m, x, issuer, i == 0)) == NULL) {
            if (i > 0)
                continue;
            snprintf(detail, sizeof(detail),
                     "no CRL signed by issuer %s among manufacturer \"%s\"'s CRLs", isub, m->name);
            if (hard) {
                r = refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, x, i,
                           "revocation status unknown (revocation = hard): ", detail);
                goto out;
            }
            v->revocation = CHAIN_REV_SOFT_MISSING;
            snprintf(v->revocation_detail, sizeof(v->revocation_detail), "%s", detail);
            continue;
        }
        crl_times(times, sizeof(times), crl);
        next = X509_CRL_get0_nextUpdate(crl);
        stale = ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(crl), now) > 0 || next == NULL ||
                ASN1_TIME_cmp_time_t(next, now) < 0;
        snprintf(detail, sizeof(detail), "CRL of issuer %s (%s) is %s", isub, times,
                 stale ? "stale at the verification time" : "current");
        if (stale && hard) {
            r = refuse(DEVID_ERR_CHAIN_INVALID, why, why_len, x, i,
                       "revocation status unknown (revocation = hard): ", detail);
            goto out;
        }
        if (i == 0) {
            v->revocation = stale ? CHAIN_REV_SOFT_STALE : CHAIN_REV_CHECKED;
            snprintf(v->revocation_detail, sizeof(v->revocation_detail), "%s", detail);
        }
        if (X509_CRL_get0_by_cert(crl, &rev, x) == 1) {
            sn = (ASN1_INTEGER *)X509_get0_serialNumber(x);
            if ((bn = ASN1_INTEGER_to_BN(sn, NULL)) != NULL)
                hex = BN_bn2hex(bn);
            snprintf(detail, sizeof(detail), "serialNumber %s is listed in the CRL of issuer %s",
                     hex != NULL ? hex : "?", isub);
            r = refuse(DEVID_ERR_CHAIN_REVOKED, why, why_len, x, i, "revoked: ", detail);
            goto out;
        }
    }
    r = 0;
out:
    OPENSSL_free(hex);
    BN_free(bn);
    return r;
}

static int build_untrusted(STACK_OF(X509) **out, const struct chain_store *store,
                           STACK_OF(X509) *device_chain)
{
    STACK_OF(X509) *untrusted;
    int i, n;

    *out = NULL;
    if ((untrusted = sk_X509_new_null()) == NULL)
        return DEVID_ERR_ALLOC;
    n = device_chain == NULL ? 0 : sk_X509_num(device_chain);
    for (i = 0; i < n && i < CHAIN_MAX_INTERMEDIATES; i++) {
        if (sk_X509_push(untrusted, sk_X509_value(device_chain, i)) <= 0)
            goto fail;
    }
    for (i = 0; i < sk_X509_num(store->intermediates); i++) {
        if (sk_X509_push(untrusted, sk_X509_value(store->intermediates, i)) <= 0)
            goto fail;
    }
    *out = untrusted;
    return 0;
fail:
    sk_X509_free(untrusted);
    return DEVID_ERR_ALLOC;
}

int chain_verify(const struct chain_store *store, struct chain_verdict *verdict, X509 *leaf,
                 STACK_OF(X509) *device_chain, time_t now, char *why, size_t why_len)
{
    X509_STORE_CTX *ctx = NULL;
    STACK_OF(X509) *untrusted = NULL, *path = NULL;
    X509_VERIFY_PARAM *param;
    const struct mfr *m;
    X509 *root = NULL;
    char subject[300];
    int i, n, err;
    int r = DEVID_ERR_INTERNAL;

    if (store == NULL || verdict == NULL || leaf == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(verdict, 0, sizeof(*verdict));
    why[0] = '\0';
    if ((r = build_untrusted(&untrusted, store, device_chain)) != 0)
        goto out;
    if ((ctx = X509_STORE_CTX_new()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if (X509_STORE_CTX_init(ctx, store->store, leaf, untrusted) != 1) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, now);
    X509_VERIFY_PARAM_set_depth(param, CHAIN_MAX_DEPTH);
    X509_VERIFY_PARAM_set_auth_level(param, 0);
    X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
    if (X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT) != 1 ||
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY) != 1) {
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    if (X509_verify_cert(ctx) != 1) {
        err = X509_STORE_CTX_get_error(ctx);
        chain_subject(subject, sizeof(subject), X509_STORE_CTX_get_current_cert(ctx));
        snprintf(why, why_len, "certificate %s (chain depth %d): %s", subject,
                 X509_STORE_CTX_get_error_depth(ctx), X509_verify_cert_error_string(err));
        r = map_error(err);
        goto out;
    }
    if ((path = X509_STORE_CTX_get1_chain(ctx)) == NULL || (n = sk_X509_num(path)) < 1) {
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    root = sk_X509_value(path, n - 1);
    if ((m = mfr_of_root(store, root)) == NULL) {
        chain_subject(subject, sizeof(subject), root);
        snprintf(why, why_len, "trust anchor %s belongs to no manufacturer", subject);
        r = DEVID_ERR_CHAIN_UNTRUSTED;
        goto out;
    }
    for (i = 0; i < n; i++) {
        if ((r = check_key(m, sk_X509_value(path, i), i, why, why_len)) != 0)
            goto out;
        if (i + 1 < n && (r = check_signature_alg(m, sk_X509_value(path, i), i, why, why_len)) != 0)
            goto out;
    }
    if ((r = check_leaf(leaf, why, why_len)) != 0)
        goto out;
    if ((r = check_revocation(m, path, now, verdict, why, why_len)) != 0)
        goto out;
    if (X509_up_ref(root) != 1) {
        r = DEVID_ERR_INTERNAL;
        goto out;
    }
    memcpy(verdict->manufacturer, m->name, strlen(m->name) + 1);
    verdict->root = root;
    verdict->path = path;
    path = NULL;
    r = 0;
out:
    if (r != 0)
        chain_verdict_cleanup(verdict);
    sk_X509_pop_free(path, X509_free);
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    ERR_clear_error();
    return r;
}
