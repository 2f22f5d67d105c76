#include "verifier/core/ekcert.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/err.h"

int ekcert_decode(X509 **out, const uint8_t *der, size_t len, char *why, size_t why_len)
{
    const unsigned char *p = der;
    char reason[256];
    X509 *x;

    *out = NULL;
    if (der == NULL || len == 0 || len > CHAIN_MAX_CERT_DER) {
        snprintf(why, why_len, "EK certificate is empty or longer than %d bytes",
                 CHAIN_MAX_CERT_DER);
        return DEVID_ERR_EK_CERT;
    }
    if ((x = d2i_X509(NULL, &p, (long)len)) == NULL) {
        snprintf(why, why_len, "EK certificate does not decode: %s",
                 devid_openssl_reason(reason, sizeof(reason)));
        return DEVID_ERR_EK_CERT;
    }
    if (p != der + len) {
        snprintf(why, why_len, "EK certificate: %zu bytes after the certificate's %zu",
                 len - (size_t)(p - der), (size_t)(p - der));
        X509_free(x);
        return DEVID_ERR_EK_CERT;
    }
    *out = x;
    return 0;
}

/* Copies the string value |v| printable-only into |buf|. */
static void copy_printable(char *buf, size_t len, const ASN1_STRING *v)
{
    const unsigned char *d = ASN1_STRING_get0_data(v);
    int i, n = ASN1_STRING_length(v);

    for (i = 0; i < n && (size_t)i + 1 < len; i++)
        buf[i] = d[i] >= 0x20 && d[i] <= 0x7e ? (char)d[i] : '?';
    buf[i] = '\0';
}

static void take_attrs(struct ekcert_tpm *out, const X509_NAME *name)
{
    char oid[40];
    int i;

    for (i = 0; i < X509_NAME_entry_count(name); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
        const ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);

        if (OBJ_obj2txt(oid, sizeof(oid), X509_NAME_ENTRY_get_object(e), 1) <= 0)
            continue;
        if (strcmp(oid, EKCERT_OID_TPM_MANUFACTURER) == 0)
            copy_printable(out->manufacturer, sizeof(out->manufacturer), v);
        else if (strcmp(oid, EKCERT_OID_TPM_MODEL) == 0)
            copy_printable(out->model, sizeof(out->model), v);
        else if (strcmp(oid, EKCERT_OID_TPM_VERSION) == 0)
            copy_printable(out->version, sizeof(out->version), v);
    }
}

int ekcert_tpm_info(struct ekcert_tpm *out, X509 *ek, char *why, size_t why_len)
{
    GENERAL_NAMES *gens = NULL;
    X509_EXTENSION *ext;
    int idx, i;

    memset(out, 0, sizeof(*out));
    if ((idx = X509_get_ext_by_NID(ek, NID_subject_alt_name, -1)) < 0 ||
        (ext = X509_get_ext(ek, idx)) == NULL)
        return 0;
    out->san_critical = X509_EXTENSION_get_critical(ext) ? 1 : 0;
    if ((gens = X509V3_EXT_d2i(ext)) == NULL) {
        ERR_clear_error();
        snprintf(why, why_len, "EK certificate: subjectAltName does not decode");
        return DEVID_ERR_EK_CERT;
    }
    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DIRNAME)
            take_attrs(out, g->d.directoryName);
    }
    GENERAL_NAMES_free(gens);
    return 0;
}

int ekcert_verify(struct chain_verdict *verdict, struct ekcert_tpm *tpm,
                  const struct chain_store *ek_store, X509 *ek, STACK_OF(X509) *chain, time_t now,
                  char *why, size_t why_len)
{
    char inner[512];
    int r;

    memset(tpm, 0, sizeof(*tpm));
    if (ek_store == NULL || chain_store_root_count(ek_store) == 0) {
        memset(verdict, 0, sizeof(*verdict));
        snprintf(why, why_len,
                 "EK certificate: no TPM vendor is configured (a [tpm_vendor \"NAME\"] section "
                 "of the manufacturers file)");
        return DEVID_ERR_EK_CERT;
    }
    if ((r = chain_verify(ek_store, verdict, ek, chain, now, inner, sizeof(inner))) != 0) {
        snprintf(why, why_len, "EK certificate: %s%s", inner,
                 r == DEVID_ERR_CHAIN_UNTRUSTED ? " (is its TPM vendor configured?)" : "");
        return r == DEVID_ERR_REVOCATION_UNKNOWN ? r : DEVID_ERR_EK_CERT;
    }
    if ((r = ekcert_tpm_info(tpm, ek, why, why_len)) != 0) {
        chain_verdict_cleanup(verdict);
        return r;
    }
    return 0;
}
