#include "verifier/core/signcheck.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "verifier/core/identity.h"

/* profile.c backdates notBefore by this much. */
#define BACKDATE 300
#define SERIAL_MIN 8
#define SERIAL_MAX 20

static int check_serial(const TBS_VIEW *cert, char *why, size_t why_len)
{
    const ASN1_INTEGER *s = cert->serial;
    int len = ASN1_STRING_length(s);
    const unsigned char *d = ASN1_STRING_get0_data(s);

    if (ASN1_STRING_type(s) != V_ASN1_INTEGER || len < SERIAL_MIN || len > SERIAL_MAX ||
        d == NULL || d[0] == 0)
        return devid_why(DEVID_ERR_REFUSED, why, why_len,
                         "the serial is not a positive integer of 8 to 20 bytes");
    return 0;
}

static int check_validity(const struct signcheck_rules *rules, const TBS_VIEW *cert, time_t now,
                          char *why, size_t why_len)
{
    const ASN1_TIME *nb = cert->validity->notBefore, *na = cert->validity->notAfter;
    int days = 0, secs = 0;
    int64_t life;

    if (ASN1_TIME_cmp_time_t(nb, now - BACKDATE - SIGNCHECK_CLOCK_SLACK) < 0 ||
        ASN1_TIME_cmp_time_t(nb, now + SIGNCHECK_CLOCK_SLACK) > 0)
        return devid_why(DEVID_ERR_REFUSED, why, why_len,
                         "notBefore is not now (backdated at most %d s)", BACKDATE);
    if (ASN1_TIME_diff(&days, &secs, nb, na) != 1)
        return devid_why(DEVID_ERR_REFUSED, why, why_len, "the validity does not parse");
    life = (int64_t)days * 86400 + secs;
    if (life <= 0)
        return devid_why(DEVID_ERR_REFUSED, why, why_len, "notAfter is not after notBefore");
    if (life > (int64_t)rules->max_validity_seconds + BACKDATE)
        return devid_why(DEVID_ERR_REFUSED, why, why_len,
                         "the validity is %" PRId64 " s, over the maximum of %ld s", life,
                         rules->max_validity_seconds + BACKDATE);
    return 0;
}

static int check_names(const struct signcheck_rules *rules, const CERT_VIEW *view, char *why,
                       size_t why_len)
{
    const TBS_VIEW *cert = view->tbs;
    const X509_NAME *ca = X509_get_subject_name(rules->ca_cert);
    EVP_PKEY *key;
    int same;

    if (cert->version == NULL || ASN1_INTEGER_get(cert->version) != X509_VERSION_3)
        return devid_why(DEVID_ERR_REFUSED, why, why_len, "not a version 3 certificate");
    if (X509_NAME_cmp(cert->issuer, ca) != 0)
        return devid_why(DEVID_ERR_REFUSED, why, why_len, "the issuer is not the CA's subject");
    if (X509_NAME_cmp(cert->subject, ca) == 0)
        return devid_why(DEVID_ERR_REFUSED, why, why_len, "the subject is the CA's own name");
    if (cert->issuer_uid != NULL || cert->subject_uid != NULL)
        return devid_why(DEVID_ERR_REFUSED, why, why_len,
                         "issuerUniqueID or subjectUniqueID present");
    if ((key = certview_pkey(view)) == NULL)
        return devid_why(DEVID_ERR_REFUSED, why, why_len, "no usable subject public key");
    same = EVP_PKEY_eq(key, X509_get0_pubkey(rules->ca_cert)) == 1;
    EVP_PKEY_free(key);
    if (same)
        return devid_why(DEVID_ERR_REFUSED, why, why_len, "the subject key is the CA's key");
    return 0;
}

static int check_basic_constraints(X509_EXTENSION *ext, char *why, size_t why_len)
{
    BASIC_CONSTRAINTS *bc = X509V3_EXT_d2i(ext);
    int ok = bc != NULL && !bc->ca && bc->pathlen == NULL;

    BASIC_CONSTRAINTS_free(bc);
    if (!ok || !X509_EXTENSION_get_critical(ext))
        return devid_why(DEVID_ERR_REFUSED, why, why_len,
                         "basicConstraints is not critical CA:FALSE");
    return 0;
}

static int check_key_usage(X509_EXTENSION *ext, char *why, size_t why_len)
{
    ASN1_BIT_STRING *ku = X509V3_EXT_d2i(ext);
    int i, ok = ku != NULL && ASN1_BIT_STRING_get_bit(ku, 0);

    for (i = 1; ok && i < ASN1_STRING_length(ku) * 8; i++)
        ok = !ASN1_BIT_STRING_get_bit(ku, i);
    ASN1_BIT_STRING_free(ku);
    if (!ok || !X509_EXTENSION_get_critical(ext))
        return devid_why(DEVID_ERR_REFUSED, why, why_len,
                         "keyUsage is not critical digitalSignature only");
    return 0;
}

static int check_eku(X509_EXTENSION *ext, char *why, size_t why_len)
{
    EXTENDED_KEY_USAGE *eku = X509V3_EXT_d2i(ext);
    int ok = eku != NULL && sk_ASN1_OBJECT_num(eku) == 1 &&
             OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)) == NID_client_auth;

    EXTENDED_KEY_USAGE_free(eku);
    if (!ok)
        return devid_why(DEVID_ERR_REFUSED, why, why_len, "extKeyUsage is not clientAuth only");
    return 0;
}

static int check_ski(const TBS_VIEW *cert, X509_EXTENSION *ext, char *why, size_t why_len)
{
    const ASN1_BIT_STRING *key = cert->spki->public_key;
    ASN1_OCTET_STRING *ski = X509V3_EXT_d2i(ext);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    /* X509_pubkey_digest's digest: SHA-1 of the key's bits (RFC 5280
     * 4.2.1.2, method 1), as profile.c sets it. */
    int ok = ski != NULL &&
             EVP_Digest(ASN1_STRING_get0_data(key), (size_t)ASN1_STRING_length(key), md, &md_len,
                        EVP_sha1(), NULL) == 1 &&
             (unsigned)ASN1_STRING_length(ski) == md_len &&
             memcmp(ASN1_STRING_get0_data(ski), md, md_len) == 0;

    ASN1_OCTET_STRING_free(ski);
    if (!ok)
        return devid_why(DEVID_ERR_REFUSED, why, why_len,
                         "the subject key identifier is not its key's");
    return 0;
}

static int check_aki(const struct signcheck_rules *rules, X509_EXTENSION *ext, char *why,
                     size_t why_len)
{
    AUTHORITY_KEYID *aki = X509V3_EXT_d2i(ext);
    const ASN1_OCTET_STRING *ca_ski = X509_get0_subject_key_id(rules->ca_cert);
    int ok = aki != NULL && aki->keyid != NULL && aki->issuer == NULL && aki->serial == NULL &&
             ca_ski != NULL && ASN1_OCTET_STRING_cmp(aki->keyid, ca_ski) == 0;

    AUTHORITY_KEYID_free(aki);
    if (!ok)
        return devid_why(DEVID_ERR_REFUSED, why, why_len,
                         "the authority key identifier is not the CA's key id");
    return 0;
}

static int check_san(X509_EXTENSION *ext, char *why, size_t why_len)
{
    GENERAL_NAMES *names = X509V3_EXT_d2i(ext);
    ASN1_OBJECT *hw = OBJ_txt2obj(IDENTITY_OID_HWMODULENAME, 1);
    int i, ok = names != NULL && hw != NULL && sk_GENERAL_NAME_num(names) > 0;

    for (i = 0; ok && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        ok = g->type == GEN_OTHERNAME && OBJ_cmp(g->d.otherName->type_id, hw) == 0;
    }
    GENERAL_NAMES_free(names);
    ASN1_OBJECT_free(hw);
    if (!ok)
        return devid_why(DEVID_ERR_REFUSED, why, why_len,
                         "subjectAltName holds more than hardwareModuleName");
    return 0;
}

/* Whether dotted OID |oid| is |arc| or under it. */
static int under_arc(const char *oid, const char *arc)
{
    size_t n = strlen(arc);

    return strncmp(oid, arc, n) == 0 && (oid[n] == '\0' || oid[n] == '.');
}

static int check_policies(const struct signcheck_rules *rules, X509_EXTENSION *ext, char *why,
                          size_t why_len)
{
    CERTIFICATEPOLICIES *cp = X509V3_EXT_d2i(ext);
    char oid[128] = "";
    int i, ok = cp != NULL && sk_POLICYINFO_num(cp) > 0;

    for (i = 0; ok && i < sk_POLICYINFO_num(cp); i++) {
        const POLICYINFO *pi = sk_POLICYINFO_value(cp, i);
        ok = OBJ_obj2txt(oid, sizeof(oid), pi->policyid, 1) > 0 &&
             (size_t)OBJ_obj2txt(NULL, 0, pi->policyid, 1) < sizeof(oid) &&
             (rules->policy_arc == NULL || under_arc(oid, rules->policy_arc));
    }
    CERTIFICATEPOLICIES_free(cp);
    if (!ok)
        return devid_why(DEVID_ERR_REFUSED, why, why_len,
                         "certificatePolicies OID %s is not under the configured arc",
                         oid[0] != '\0' ? oid : "(unreadable)");
    return 0;
}

/* The extensions the profile adds, the ones it must. */
static const struct {
    int nid;
    int required;
} allowed[] = {
    {NID_basic_constraints, 1},
    {NID_key_usage, 1},
    {NID_ext_key_usage, 1},
    {NID_subject_key_identifier, 1},
    {NID_authority_key_identifier, 1},
    {NID_subject_alt_name, 0},
    {NID_certificate_policies, 0},
};

#define N_ALLOWED (sizeof(allowed) / sizeof(allowed[0]))

static int check_extension(const struct signcheck_rules *rules, const TBS_VIEW *cert,
                           X509_EXTENSION *ext, int nid, char *why, size_t why_len)
{
    switch (nid) {
        case NID_basic_constraints:
            return check_basic_constraints(ext, why, why_len);
        case NID_key_usage:
            return check_key_usage(ext, why, why_len);
        case NID_ext_key_usage:
            return check_eku(ext, why, why_len);
        case NID_subject_key_identifier:
            return check_ski(cert, ext, why, why_len);
        case NID_authority_key_identifier:
            return check_aki(rules, ext, why, why_len);
        case NID_subject_alt_name:
            return check_san(ext, why, why_len);
        case NID_certificate_policies:
            return check_policies(rules, ext, why, why_len);
    }
    return DEVID_ERR_INTERNAL;
}

static int check_extensions(const struct signcheck_rules *rules, const TBS_VIEW *cert, char *why,
                            size_t why_len)
{
    int seen[N_ALLOWED] = {0};
    char oid[128];
    size_t k;
    int i, nid, r;

    for (i = 0; i < sk_X509_EXTENSION_num(cert->extensions); i++) {
        X509_EXTENSION *ext = sk_X509_EXTENSION_value(cert->extensions, i);

        nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
        for (k = 0; k < N_ALLOWED && allowed[k].nid != nid; k++)
            ;
        if (OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object(ext), 1) <= 0)
            snprintf(oid, sizeof(oid), "(unreadable)");
        if (k == N_ALLOWED)
            return devid_why(DEVID_ERR_REFUSED, why, why_len, "extension %s is not in the profile",
                             oid);
        if (seen[k]++)
            return devid_why(DEVID_ERR_REFUSED, why, why_len, "extension %s appears twice", oid);
        if ((r = check_extension(rules, cert, ext, nid, why, why_len)) != 0)
            return r;
    }
    for (k = 0; k < N_ALLOWED; k++) {
        if (allowed[k].required && !seen[k])
            return devid_why(DEVID_ERR_REFUSED, why, why_len, "extension %s is missing",
                             OBJ_nid2ln(allowed[k].nid));
    }
    return 0;
}

int signcheck_cert(const struct signcheck_rules *rules, const CERT_VIEW *cert, time_t now,
                   char *why, size_t why_len)
{
    int r;

    if (rules == NULL || rules->ca_cert == NULL || cert == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if ((r = check_names(rules, cert, why, why_len)) != 0 ||
        (r = check_serial(cert->tbs, why, why_len)) != 0 ||
        (r = check_validity(rules, cert->tbs, now, why, why_len)) != 0 ||
        (r = check_extensions(rules, cert->tbs, why, why_len)) != 0)
        return r;
    return 0;
}

int signcheck_crl(const struct signcheck_rules *rules, const struct signreq_crl *crl, int have_last,
                  uint64_t last_number, time_t now, char *why, size_t why_len)
{
    if (have_last && crl->number <= last_number)
        return devid_why(DEVID_ERR_REFUSED, why, why_len,
                         "CRL number %" PRIu64 " is not above %" PRIu64 ", the last one signed",
                         crl->number, last_number);
    if (crl->this_update < (int64_t)now - SIGNCHECK_CLOCK_SLACK ||
        crl->this_update > (int64_t)now + SIGNCHECK_CLOCK_SLACK)
        return devid_why(DEVID_ERR_REFUSED, why, why_len, "CRL thisUpdate is not now");
    if (crl->next_update_seconds > rules->max_crl_next_update_seconds)
        return devid_why(DEVID_ERR_REFUSED, why, why_len,
                         "CRL lifetime %" PRId64 " s is over the maximum of %ld s",
                         crl->next_update_seconds, rules->max_crl_next_update_seconds);
    return 0;
}

int signcheck_tree_head(const struct signreq_tree_head *req, const struct tlog_head *last,
                        time_t now, char *why, size_t why_len)
{
    const struct tlog_head *h = &req->head;

    if (h->timestamp < (int64_t)now - SIGNCHECK_CLOCK_SLACK ||
        h->timestamp > (int64_t)now + SIGNCHECK_CLOCK_SLACK)
        return devid_why(DEVID_ERR_REFUSED, why, why_len,
                         "tree head timestamp %" PRId64 " is not now", h->timestamp);
    if (last == NULL)
        return 0;
    if (h->timestamp < last->timestamp)
        return devid_why(DEVID_ERR_REFUSED, why, why_len,
                         "tree head timestamp %" PRId64 " is before %" PRId64
                         ", the last one signed",
                         h->timestamp, last->timestamp);
    if (h->size < last->size)
        return devid_why(DEVID_ERR_REFUSED, why, why_len,
                         "tree size %" PRIu64 " is below %" PRIu64 ", the last one signed", h->size,
                         last->size);
    if (merkle_consistency_verify(last->size, h->size, last->root, h->root,
                                  (const uint8_t(*)[MERKLE_HASH_LEN])req->proof,
                                  req->proof_len) != 0)
        return devid_why(DEVID_ERR_REFUSED, why, why_len,
                         "the tree of size %" PRIu64
                         " does not extend the last one signed (size %" PRIu64
                         "): the consistency proof fails",
                         h->size, last->size);
    return 0;
}
