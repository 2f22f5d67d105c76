#include "verifier/core/identity.h"

#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "common/hex.h"

static int printable(const unsigned char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e)
            return 0;
    }
    return 1;
}

/* Copies the single |nid| entry of |name| into |buf|. Returns 0, 1 when
 * there is none, or DEVID_ERR_IDENTITY with |why| naming |what| and |field|. */
static int subject_field(char *buf, size_t len, const X509_NAME *name, int nid, const char *what,
                         const char *field, char *why, size_t why_len)
{
    const X509_NAME_ENTRY *e;
    unsigned char *utf8 = NULL;
    int i, n = -1;
    int r = DEVID_ERR_IDENTITY;

    if ((i = X509_NAME_get_index_by_NID(name, nid, -1)) < 0) {
        r = 1;
        goto out;
    }
    if (X509_NAME_get_index_by_NID(name, nid, i) >= 0) {
        snprintf(why, why_len, "%s has more than one subject %s", what, field);
        goto out;
    }
    if ((e = X509_NAME_get_entry(name, i)) == NULL ||
        (n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e))) < 0) {
        snprintf(why, why_len, "%s subject %s does not decode", what, field);
        goto out;
    }
    if (n == 0 || !printable(utf8, (size_t)n)) {
        snprintf(why, why_len, "%s subject %s is empty or not printable ASCII", what, field);
        goto out;
    }
    if ((size_t)n >= len) {
        snprintf(why, why_len, "%s subject %s is longer than %zu bytes", what, field, len - 1);
        goto out;
    }
    memcpy(buf, utf8, (size_t)n);
    buf[n] = '\0';
    r = 0;
out:
    OPENSSL_free(utf8);
    return r;
}

/* Parses hardwareModuleName ::= SEQUENCE { hwType OBJECT IDENTIFIER,
 * hwSerialNum OCTET STRING } from |value| into |hw_type| and |serial|. */
static int parse_hwmodulename(char *hw_type, size_t hw_type_len, char *serial, size_t serial_len,
                              const ASN1_TYPE *value, char *why, size_t why_len)
{
    STACK_OF(ASN1_TYPE) *seq = NULL;
    const ASN1_TYPE *t0, *t1;
    const unsigned char *p, *der;
    const ASN1_OCTET_STRING *sn;
    long der_len;
    int n;
    int r = DEVID_ERR_IDENTITY;

    if (value == NULL || value->type != V_ASN1_SEQUENCE || value->value.sequence == NULL) {
        snprintf(why, why_len, "IDevID SAN hardwareModuleName is not a SEQUENCE");
        goto out;
    }
    der = p = ASN1_STRING_get0_data(value->value.sequence);
    der_len = ASN1_STRING_length(value->value.sequence);
    if ((seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, der_len)) == NULL || p != der + der_len ||
        sk_ASN1_TYPE_num(seq) != 2 || (t0 = sk_ASN1_TYPE_value(seq, 0)) == NULL ||
        (t1 = sk_ASN1_TYPE_value(seq, 1)) == NULL || t0->type != V_ASN1_OBJECT ||
        t1->type != V_ASN1_OCTET_STRING) {
        snprintf(why, why_len,
                 "IDevID SAN hardwareModuleName is not SEQUENCE { OID, OCTET STRING }");
        goto out;
    }
    n = OBJ_obj2txt(hw_type, (int)hw_type_len, t0->value.object, 1);
    if (n <= 0 || (size_t)n >= hw_type_len) {
        snprintf(why, why_len, "IDevID SAN hardwareModuleName hwType does not decode");
        goto out;
    }
    sn = t1->value.octet_string;
    n = ASN1_STRING_length(sn);
    if (n <= 0 || (size_t)n >= serial_len || !printable(ASN1_STRING_get0_data(sn), (size_t)n)) {
        snprintf(why, why_len,
                 "IDevID SAN hardwareModuleName hwSerialNum is empty, too long or not "
                 "printable ASCII");
        goto out;
    }
    memcpy(serial, ASN1_STRING_get0_data(sn), (size_t)n);
    serial[n] = '\0';
    r = 0;
out:
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    return r;
}

/* Finds the single hardwareModuleName in |cert|'s SAN. Sets |*found|. */
static int san_serial(char *hw_type, size_t hw_type_len, char *serial, size_t serial_len,
                      int *found, X509 *cert, const char *what, char *why, size_t why_len)
{
    GENERAL_NAMES *gens = NULL;
    ASN1_OBJECT *oid = NULL;
    int crit = -1, i;
    int r = DEVID_ERR_IDENTITY;

    *found = 0;
    gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    if (gens == NULL) {
        if (crit == -1) {
            r = 0;
            goto out;
        }
        snprintf(why, why_len, "%s subjectAltName is duplicated or malformed", what);
        goto out;
    }
    if ((oid = OBJ_txt2obj(IDENTITY_OID_HWMODULENAME, 1)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_OTHERNAME || OBJ_cmp(g->d.otherName->type_id, oid) != 0)
            continue;
        if ((*found)++) {
            snprintf(why, why_len, "%s SAN has more than one hardwareModuleName", what);
            goto out;
        }
        if ((r = parse_hwmodulename(hw_type, hw_type_len, serial, serial_len, g->d.otherName->value,
                                    why, why_len)) != 0)
            goto out;
        r = DEVID_ERR_IDENTITY;
    }
    r = 0;
out:
    ASN1_OBJECT_free(oid);
    GENERAL_NAMES_free(gens);
    return r;
}

/* The device serial of |cert| and its hwType (or ""). */
static int get_serial(char *serial, size_t len, char *hw_type, size_t hw_type_len, X509 *cert,
                      const char *what, char *why, size_t why_len)
{
    char subj[128] = "", hw[128] = "";
    int found = 0, r;

    hw_type[0] = '\0';
    r = subject_field(subj, sizeof(subj), X509_get_subject_name(cert), NID_serialNumber, what,
                      "serialNumber", why, why_len);
    if (r < 0)
        return r;
    if ((r = san_serial(hw_type, hw_type_len, hw, sizeof(hw), &found, cert, what, why, why_len)) !=
        0)
        return r;
    if (subj[0] == '\0' && !found) {
        snprintf(why, why_len,
                 "%s has no subject serialNumber and no hardwareModuleName SAN: no device serial",
                 what);
        return DEVID_ERR_IDENTITY;
    }
    if (subj[0] != '\0' && found && strcmp(subj, hw) != 0) {
        snprintf(why, why_len,
                 "%s SAN hardwareModuleName hwSerialNum \"%s\" does not match subject "
                 "serialNumber \"%s\"",
                 what, hw, subj);
        return DEVID_ERR_IDENTITY;
    }
    if (strlen(subj[0] != '\0' ? subj : hw) >= len) {
        snprintf(why, why_len, "%s serial is longer than %zu bytes", what, len - 1);
        return DEVID_ERR_IDENTITY;
    }
    snprintf(serial, len, "%s", subj[0] != '\0' ? subj : hw);
    return 0;
}

int identity_extract_serial(char *serial, size_t len, X509 *cert, const char *what, char *why,
                            size_t why_len)
{
    char hw_type[128];
    int r;

    if (serial == NULL || len == 0 || cert == NULL || what == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    serial[0] = '\0';
    why[0] = '\0';
    if ((r = get_serial(serial, len, hw_type, sizeof(hw_type), cert, what, why, why_len)) != 0)
        serial[0] = '\0';
    return r;
}

int identity_extract(struct device_identity *id, X509 *idevid, const char *manufacturer, char *why,
                     size_t why_len)
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    size_t mlen;
    int r = DEVID_ERR_INTERNAL;

    if (id == NULL || idevid == NULL || manufacturer == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(id, 0, sizeof(*id));
    why[0] = '\0';
    mlen = strlen(manufacturer);
    if (mlen == 0 || mlen >= sizeof(id->manufacturer) ||
        !printable((const unsigned char *)manufacturer, mlen)) {
        snprintf(why, why_len, "manufacturer name is empty, too long or not printable ASCII");
        r = DEVID_ERR_IDENTITY;
        goto out;
    }
    memcpy(id->manufacturer, manufacturer, mlen + 1);
    if ((r = get_serial(id->serial, sizeof(id->serial), id->hw_type, sizeof(id->hw_type), idevid,
                        "IDevID", why, why_len)) != 0)
        goto out;
    r = subject_field(id->model, sizeof(id->model), X509_get_subject_name(idevid), NID_commonName,
                      "IDevID", "commonName (model)", why, why_len);
    if (r < 0)
        goto out;
    if (r == 1) {
        if (id->hw_type[0] == '\0') {
            snprintf(why, why_len,
                     "IDevID has no subject commonName (model) and no hardwareModuleName hwType");
            r = DEVID_ERR_IDENTITY;
            goto out;
        }
        memcpy(id->model, id->hw_type, sizeof(id->model));
    }
    if (X509_digest(idevid, EVP_sha256(), md, &mdlen) != 1 || mdlen != sizeof(md)) {
        r = DEVID_ERR_CRYPTO;
        goto out;
    }
    hex_encode(id->fingerprint, md, sizeof(md));
    r = 0;
out:
    if (r != 0)
        memset(id, 0, sizeof(*id));
    return r;
}
