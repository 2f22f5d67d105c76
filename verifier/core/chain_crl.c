#include "verifier/core/chain_crl.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "common/serial.h"

/* Whether |crl| may speak for |x| issued by |issuer|: issuer name, signature
 * by the issuer's key, cRLSign, no delta, no unknown critical extension, and
 * an issuingDistributionPoint (if any) whose scope covers |x|. */
static int applies(X509_CRL *crl, X509 *x, X509 *issuer, int is_leaf)
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

/* The newest CRL of |crls| that applies to |x|, or NULL. */
static X509_CRL *find_crl(STACK_OF(X509_CRL) *crls, X509 *x, X509 *issuer, int is_leaf)
{
    X509_CRL *best = NULL, *c;
    int i;

    for (i = 0; i < sk_X509_CRL_num(crls); i++) {
        c = sk_X509_CRL_value(crls, i);
        if (!applies(c, x, issuer, is_leaf))
            continue;
        if (best == NULL ||
            ASN1_TIME_compare(X509_CRL_get0_lastUpdate(c), X509_CRL_get0_lastUpdate(best)) > 0)
            best = c;
    }
    return best;
}

static void update_times(char *buf, size_t len, X509_CRL *crl)
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

/* check_link checks |x| (at |depth|, issued by |issuer|) against the newest
 * applicable CRL; for the leaf it also records what was seen in |v|. */
static int check_link(struct chain_verdict *v, const char *mfr, int hard, STACK_OF(X509_CRL) *crls,
                      X509 *x, X509 *issuer, int depth, time_t now, char *why, size_t why_len)
{
    X509_REVOKED *rev = NULL;
    const ASN1_TIME *next;
    X509_CRL *crl;
    char isub[300], times[128], detail[512], serial[SERIAL_HEX_LEN];
    int stale;

    chain_subject(isub, sizeof(isub), issuer);
    if ((crl = find_crl(crls, x, issuer, depth == 0)) == NULL) {
        if (depth > 0)
            return 0;
        snprintf(detail, sizeof(detail),
                 "no CRL signed by issuer %s among manufacturer \"%s\"'s CRLs", isub, mfr);
        if (hard)
            return chain_refuse(DEVID_ERR_REVOCATION_UNKNOWN, why, why_len, x, depth,
                                "revocation status unknown (revocation = hard): ", detail);
        v->revocation = CHAIN_REV_SOFT_MISSING;
        snprintf(v->revocation_detail, sizeof(v->revocation_detail), "%s", detail);
        return 0;
    }
    update_times(times, sizeof(times), crl);
    next = X509_CRL_get0_nextUpdate(crl);
    stale = ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(crl), now) > 0 || next == NULL ||
            ASN1_TIME_cmp_time_t(next, now) < 0;
    snprintf(detail, sizeof(detail), "CRL of issuer %s (%s) is %s", isub, times,
             stale ? "stale at the verification time" : "current");
    if (stale && hard)
        return chain_refuse(DEVID_ERR_REVOCATION_UNKNOWN, why, why_len, x, depth,
                            "revocation status unknown (revocation = hard): ", detail);
    if (depth == 0) {
        v->revocation = stale ? CHAIN_REV_SOFT_STALE : CHAIN_REV_CHECKED;
        snprintf(v->revocation_detail, sizeof(v->revocation_detail), "%s", detail);
    }
    if (X509_CRL_get0_by_cert(crl, &rev, x) != 1)
        return 0;
    if (serial_hex(serial, sizeof(serial), x) != 0)
        snprintf(serial, sizeof(serial), "?");
    snprintf(detail, sizeof(detail), "serialNumber %s is listed in the CRL of issuer %s", serial,
             isub);
    return chain_refuse(DEVID_ERR_CHAIN_REVOKED, why, why_len, x, depth, "revoked: ", detail);
}

int chain_crl_check(struct chain_verdict *v, const char *mfr, enum chain_revocation_mode mode,
                    STACK_OF(X509_CRL) *crls, STACK_OF(X509) *path, time_t now, char *why,
                    size_t why_len)
{
    int i, r, n = sk_X509_num(path);

    v->revocation = CHAIN_REV_NOT_CONFIGURED;
    if (mode == CHAIN_REVOCATION_NONE) {
        snprintf(v->revocation_detail, sizeof(v->revocation_detail),
                 "manufacturer \"%s\" has revocation = none", mfr);
        return 0;
    }
    for (i = 0; i + 1 < n; i++) {
        if ((r = check_link(v, mfr, mode == CHAIN_REVOCATION_HARD, crls, sk_X509_value(path, i),
                            sk_X509_value(path, i + 1), i, now, why, why_len)) != 0)
            return r;
    }
    return 0;
}
