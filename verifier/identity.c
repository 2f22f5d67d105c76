#include "verifier/identity.h"

#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "common/err.h"

static int printable(const unsigned char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e)
            return 0;
    }
    return 1;
}

/* Copies the single |nid| entry of |name| into |buf|. Returns 0, or
 * DEVID_ERR_IDENTITY with |why| naming |field|. */
static int subject_field(char *buf, size_t len, const X509_NAME *name, int nid, const char *field,
                         char *why, size_t why_len)
{
    const X509_NAME_ENTRY *e;
    unsigned char *utf8 = NULL;
    int i, n = -1;
    int r = DEVID_ERR_IDENTITY;

    if ((i = X509_NAME_get_index_by_NID(name, nid, -1)) < 0) {
        snprintf(why, why_len, "IDevID has no subject %s", field);
        goto out;
    }
    if (X509_NAME_get_index_by_NID(name, nid, i) >= 0) {
        snprintf(why, why_len, "IDevID has more than one subject %s", field);
        goto out;
    }
    if ((e = X509_NAME_get_entry(name, i)) == NULL ||
        (n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e))) < 0) {
        snprintf(why, why_len, "IDevID subject %s does not decode", field);
        goto out;
    }
    if (n == 0 || !printable(utf8, (size_t)n)) {
        snprintf(why, why_len, "IDevID subject %s is empty or not printable ASCII", field);
        goto out;
    }
    if ((size_t)n >= len) {
        snprintf(why, why_len, "IDevID subject %s is longer than %zu bytes", field, len - 1);
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

static int check_san(struct device_identity *id, X509 *idevid, char *why, size_t why_len)
{
    GENERAL_NAMES *gens = NULL;
    ASN1_OBJECT *oid = NULL;
    char hw_serial[sizeof(id->serial)];
    int crit = -1, i, found = 0;
    int r = DEVID_ERR_IDENTITY;

    gens = X509_get_ext_d2i(idevid, NID_subject_alt_name, &crit, NULL);
    if (gens == NULL) {
        if (crit == -1) {
            r = 0;
            goto out;
        }
        snprintf(why, why_len, "IDevID subjectAltName is duplicated or malformed");
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
        if (found++) {
            snprintf(why, why_len, "IDevID SAN has more than one hardwareModuleName");
            goto out;
        }
        if ((r = parse_hwmodulename(id->hw_type, sizeof(id->hw_type), hw_serial, sizeof(hw_serial),
                                    g->d.otherName->value, why, why_len)) != 0)
            goto out;
        r = DEVID_ERR_IDENTITY;
        if (strcmp(hw_serial, id->serial) != 0) {
            snprintf(why, why_len,
                     "IDevID SAN hardwareModuleName hwSerialNum \"%s\" does not match subject "
                     "serialNumber \"%s\"",
                     hw_serial, id->serial);
            goto out;
        }
    }
    r = 0;
out:
    ASN1_OBJECT_free(oid);
    GENERAL_NAMES_free(gens);
    return r;
}

int identity_extract(struct device_identity *id, X509 *idevid, const char *manufacturer, char *why,
                     size_t why_len)
{
    const X509_NAME *subject;
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
    subject = X509_get_subject_name(idevid);
    if ((r = subject_field(id->serial, sizeof(id->serial), subject, NID_serialNumber,
                           "serialNumber", why, why_len)) != 0)
        goto out;
    if ((r = subject_field(id->model, sizeof(id->model), subject, NID_commonName,
                           "commonName (model)", why, why_len)) != 0)
        goto out;
    if ((r = check_san(id, idevid, why, why_len)) != 0)
        goto out;
    r = 0;
out:
    if (r != 0)
        memset(id, 0, sizeof(*id));
    return r;
}
