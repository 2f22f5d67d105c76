#include "verifier/server/issue.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "common/err.h"
#include "common/serial.h"
#include "verifier/core/assurance.h"
#include "verifier/core/policy.h"
#include "verifier/core/profile.h"
#include "verifier/pki/ca.h"

void issued_cleanup(struct issued *out)
{
    if (out == NULL)
        return;
    free(out->der);
    memset(out, 0, sizeof(*out));
}

void issue_take_stored(struct issued *out, struct ledger_issuance *stored)
{
    out->der = stored->cert_der;
    out->der_len = stored->cert_der_len;
    stored->cert_der = NULL;
    stored->cert_der_len = 0;
    snprintf(out->serial, sizeof(out->serial), "%s", stored->cert_serial);
}

static int count_ledger_error(struct worker *w, const char *what, char *why, size_t why_len)
{
    atomic_fetch_add_explicit(&w->metrics.ledger_errors, 1, memory_order_relaxed);
    snprintf(why, why_len, "%s; retry", what);
    return DEVID_ERR_LEDGER;
}

/* The core's name for what the ledger holds for a nonce. */
static enum enroll_nonce_use nonce_use(enum ledger_nonce_use use)
{
    switch (use) {
        case LEDGER_NONCE_UNUSED:
            return ENROLL_NONCE_UNUSED;
        case LEDGER_NONCE_SAME_REQUEST:
            return ENROLL_NONCE_SAME_REQUEST;
        case LEDGER_NONCE_OTHER_REQUEST:
            return ENROLL_NONCE_OTHER_REQUEST;
    }
    return ENROLL_NONCE_UNKNOWN;
}

/* The assurance recorded with |stored|; a value the ledger should never
 * hold reads as the weakest level. */
static enum assurance stored_assurance(const struct ledger_issuance *stored)
{
    enum assurance a = ASSURANCE_NONE;

    if (assurance_parse(&a, stored->assurance) != 0)
        a = ASSURANCE_NONE;
    return a;
}

int issue_ask_ledger(struct worker *w, struct enroll_ledger_facts *facts,
                     struct ledger_issuance *stored, const struct enroll_ledger_query *query,
                     const uint8_t request_sha256[32], time_t now, char *why, size_t why_len)
{
    enum ledger_nonce_use use = LEDGER_NONCE_UNUSED;
    int active = 0;

    memset(facts, 0, sizeof(*facts));
    memset(stored, 0, sizeof(*stored));
    if (query == NULL)
        return 0;
    facts->asked = *query;
    if (ledger_nonce_use(w->ledger, &use, stored, query->nonce, request_sha256,
                         query->idevid_sha256) != 0)
        return count_ledger_error(w, "the ledger could not be read", why, why_len);
    facts->nonce = nonce_use(use);
    facts->nonce_cert_serial = stored->cert_serial;
    facts->nonce_assurance = stored_assurance(stored);
    facts->nonce_pcr_values = stored->pcr_values;
    if (use == LEDGER_NONCE_UNUSED && ledger_device_active(w->ledger, &active, query->manufacturer,
                                                           query->device_serial, (int64_t)now) != 0)
        return count_ledger_error(w, "the ledger could not be read", why, why_len);
    facts->device_active = active != 0;
    return 0;
}

/* Builds and signs the certificate for |v|; |out| gets its DER and serial. */
static int build_and_sign(struct issued *out, struct worker *w, const struct enroll_verdict *v,
                          X509 *idevid, time_t now, char *why, size_t why_len)
{
    struct profile_input in = {0};
    uint8_t serial_bytes[PROFILE_SERIAL_LEN];
    char oid[ASSURANCE_OID_LEN];
    X509 *cert = NULL;
    int r = DEVID_ERR_INTERNAL;

    if (RAND_bytes(serial_bytes, sizeof(serial_bytes)) != 1) {
        snprintf(why, why_len, "random generator failed");
        return DEVID_ERR_CRYPTO;
    }
    in.ca_cert = ca_get0_cert(w->s->ca);
    in.subject_key = v->csr_spki;
    in.id = &v->id;
    in.idevid = idevid;
    in.serial = serial_bytes;
    in.serial_len = sizeof(serial_bytes);
    in.now = now;
    in.validity_seconds = w->s->cfg->validity_seconds;
    if ((r = assurance_policy_oid(oid, sizeof(oid), w->s->cfg->assurance_arc, v->assurance)) != 0) {
        snprintf(why, why_len, "[ca] assurance_policy_arc does not make an OID for level %s",
                 assurance_str(v->assurance));
        return r;
    }
    in.assurance_oid = oid;
    if ((r = profile_build(&cert, &in)) != 0) {
        snprintf(why, why_len, "building the operational certificate failed");
        goto out;
    }
    if ((r = ca_sign(w->s->ca, cert, &out->der, &out->der_len)) != 0) {
        /* A refusal by the signer is a bug here, not the device's doing. */
        if (r == DEVID_ERR_REFUSED)
            r = DEVID_ERR_CRYPTO;
        snprintf(why, why_len, "the issuing CA could not sign");
        goto out;
    }
    /* The serial is the one asked for (ca_sign checks the signer's). */
    if ((r = serial_hex(out->serial, sizeof(out->serial), cert)) != 0) {
        snprintf(why, why_len, "writing the operational certificate's serial as hex failed");
        goto out;
    }
    r = 0;
out:
    if (r != 0)
        issued_cleanup(out);
    X509_free(cert);
    return r;
}

static void fill_record(struct ledger_issuance *rec, const struct enroll_verdict *v,
                        const struct issued *cert, const uint8_t request_sha256[32], time_t now,
                        long validity)
{
    memset(rec, 0, sizeof(*rec));
    snprintf(rec->cert_serial, sizeof(rec->cert_serial), "%s", cert->serial);
    rec->cert_der = cert->der;
    rec->cert_der_len = cert->der_len;
    snprintf(rec->manufacturer, sizeof(rec->manufacturer), "%s", v->id.manufacturer);
    snprintf(rec->model, sizeof(rec->model), "%s", v->id.model);
    snprintf(rec->device_serial, sizeof(rec->device_serial), "%s", v->id.serial);
    memcpy(rec->idevid_sha256, v->idevid_sha256, 32);
    memcpy(rec->csr_sha256, v->csr_sha256, 32);
    memcpy(rec->nonce, v->nonce, 32);
    memcpy(rec->request_sha256, request_sha256, 32);
    rec->signer_kind = v->signer_kind;
    snprintf(rec->assurance, sizeof(rec->assurance), "%s", assurance_str(v->assurance));
    quote_pcrs_str(rec->pcr_values, sizeof(rec->pcr_values), v->pcrs, v->n_pcrs);
    rec->issued_at = (int64_t)now;
    rec->not_after = (int64_t)now + validity;
}

/* What the ledger found, inside its transaction, that another enrollment
 * recorded meanwhile: the core decides again. */
static int decided_meanwhile(struct issued *out, struct worker *w, struct enroll_verdict *v,
                             enum ledger_recorded result, struct ledger_issuance *found, char *why,
                             size_t why_len)
{
    const struct server_trust *t = &w->snap->trust;
    const struct enroll_config cfg = {t->store, t->policy, t->token_key,
                                      t->has_token_accept_key ? t->token_accept_key : NULL,
                                      t->ek_store};
    struct enroll_ledger_facts facts;
    int r;

    memset(&facts, 0, sizeof(facts));
    facts.nonce = result == LEDGER_SAME_REQUEST  ? ENROLL_NONCE_SAME_REQUEST
                  : result == LEDGER_NONCE_TAKEN ? ENROLL_NONCE_OTHER_REQUEST
                                                 : ENROLL_NONCE_UNUSED;
    facts.device_active = result == LEDGER_DEVICE_ACTIVE;
    facts.nonce_cert_serial = found->cert_serial;
    facts.nonce_assurance = stored_assurance(found);
    facts.nonce_pcr_values = found->pcr_values;
    if ((r = enroll_decide_conflict(v, &cfg, &facts)) == 0)
        issue_take_stored(out, found);
    else
        snprintf(why, why_len, "%s", v->why);
    return r;
}

int issue_certificate(struct issued *out, struct worker *w, struct enroll_verdict *v, X509 *idevid,
                      const uint8_t request_sha256[32], time_t now, char *why, size_t why_len)
{
    struct ledger_issuance rec, found;
    enum ledger_recorded result = LEDGER_RECORDED;
    unsigned flags = LEDGER_SUPERSEDE;
    int r;

    memset(out, 0, sizeof(*out));
    if (v->action != ENROLL_ISSUE) {
        snprintf(why, why_len, "issue_certificate called without an issue verdict");
        return DEVID_ERR_INTERNAL;
    }
    if ((r = build_and_sign(out, w, v, idevid, now, why, why_len)) != 0)
        return r;
    /* Durable before acknowledged: the answer goes out only after the
     * commit. The nonce and the re-enrollment rule are decided again inside
     * the ledger's transaction, against every replica's committed writes. */
    fill_record(&rec, v, out, request_sha256, now, w->s->cfg->validity_seconds);
    if (!policy_reenroll(w->snap->trust.policy))
        flags |= LEDGER_DENY_ACTIVE;
    r = ledger_record(w->ledger, &result, &found, &rec, flags);
    if (r == 0 && result == LEDGER_RECORDED)
        return 0;
    issued_cleanup(out);
    if (r != 0)
        return count_ledger_error(w, "the issuance could not be recorded", why, why_len);
    r = decided_meanwhile(out, w, v, result, &found, why, why_len);
    ledger_issuance_cleanup(&found);
    return r;
}
