#include "agent/renewal.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/x509.h>

#include "agent/core/renew.h"
#include "agent/crash.h"
#include "agent/fileset.h"
#include "agent/ldevid.h"
#include "common/err.h"
#include "common/io/log.h"
#include "common/serial.h"

/* What renewal_plan found, for renew_decide and for its messages. */
struct found {
    char marker_serial[RENEW_SERIAL_HEX_MAX + 1]; /* "": none or malformed */
    char cert_serial[SERIAL_HEX_LEN];             /* "": none readable */
    char cert_path[PATH_MAX];
    X509 *cert; /* renew without a marker: the valid certificate */
};

static int cert_times(int64_t *not_before, int64_t *not_after, X509 *cert)
{
    struct tm tm;
    time_t secs;

    if (ASN1_TIME_to_tm(X509_get0_notBefore(cert), &tm) != 1 || (secs = timegm(&tm)) == (time_t)-1)
        return DEVID_ERR_INVALID_ARGUMENT;
    *not_before = (int64_t)secs;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1 || (secs = timegm(&tm)) == (time_t)-1)
        return DEVID_ERR_INVALID_ARGUMENT;
    *not_after = (int64_t)secs;
    return 0;
}

static void fmt_utc(char *out, size_t size, int64_t when)
{
    time_t secs = (time_t)when;
    struct tm tm;

    if (gmtime_r(&secs, &tm) == NULL || strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(out, size, "%lld (seconds since the epoch)", (long long)when);
}

/* gather fills |facts| and |found| in the order renew_decide reads them. */
static int gather(struct renew_facts *facts, struct found *found, const struct agent_config *cfg)
{
    X509 *cert = NULL;
    int r;

    if ((r = fileset_marker_read(&facts->marker, found->marker_serial, sizeof(found->marker_serial),
                                 cfg)) != 0)
        return r;
    if (facts->marker) {
        facts->marker_serial = found->marker_serial[0] != '\0' ? found->marker_serial : NULL;
        if (fileset_read_cert(&cert, cfg) == 0 &&
            serial_hex(found->cert_serial, sizeof(found->cert_serial), cert) == 0)
            facts->cert_serial = found->cert_serial;
        X509_free(cert);
        return 0;
    }
    if (!facts->renew)
        return 0;
    /* Files only: a renewal that is not due touches neither TPM nor network. */
    r = ldevid_check(&found->cert, found->cert_path, sizeof(found->cert_path), cfg, NULL);
    if (r != 0 && r != DEVID_ERR_NOT_FOUND)
        return r;
    facts->enrolled = r == 0;
    facts->now = (int64_t)time(NULL);
    if (facts->enrolled &&
        (cert_times(&facts->not_before, &facts->not_after, found->cert) != 0 ||
         serial_hex(found->cert_serial, sizeof(found->cert_serial), found->cert) != 0))
        snprintf(found->cert_serial, sizeof(found->cert_serial), "(unknown)");
    return 0;
}

/* start writes the marker naming the certificate this renewal replaces
 * (step 1). */
static int start(struct renewal *plan, const struct agent_config *cfg, const struct found *found)
{
    int r;

    if ((r = fileset_marker_write(cfg, found->cert_serial)) != 0) {
        if (r == DEVID_ERR_INVALID_ARGUMENT) {
            log_err("cannot note the serial of the certificate being renewed: %s",
                    devid_err_str(r));
            r = DEVID_ERR_INTERNAL;
        }
        return r;
    }
    plan->marker = true;
    plan->fresh = true;
    plan->started = true;
    return 0;
}

/* act logs what |action| means and sets |plan| for it. */
static int act(struct renewal *plan, enum renew_action action, const struct agent_config *cfg,
               const struct renew_facts *facts, const struct found *found)
{
    const char *old = found->marker_serial[0] != '\0' ? found->marker_serial : "(unknown)";
    char when[64];

    fmt_utc(when, sizeof(when), plan->due_at);
    switch (action) {
        case RENEW_ACTION_REDO:
            log_warn(
                "a renewal of certificate %s was interrupted before its successor was stored; "
                "the verifier may already have revoked it: enrolling again with a new key",
                old);
            plan->marker = plan->fresh = true;
            return 0;
        case RENEW_ACTION_FINISH:
            log_info("a renewal was interrupted after certificate %s replaced %s: finishing it",
                     found->cert_serial, old);
            plan->marker = plan->finish = true;
            return 0;
        case RENEW_ACTION_NOT_DUE:
            log_info("renewal not due until %s (%g of the lifetime of certificate %s)", when,
                     cfg->renew_at, found->cert_serial);
            plan->not_due = true;
            return 0;
        case RENEW_ACTION_START:
            if (facts->now >= plan->due_at)
                log_info("renewing certificate %s: due since %s (renew_at %g)", found->cert_serial,
                         when, cfg->renew_at);
            else
                log_info("renewing certificate %s now (--force; due at %s)", found->cert_serial,
                         when);
            return start(plan, cfg, found);
        default:
            return 0;
    }
}

int renewal_plan(struct renewal *plan, const struct agent_config *cfg, bool renew, bool force)
{
    struct renew_facts facts;
    struct found found;
    enum renew_action action = RENEW_ACTION_ENROLL;
    int r;

    memset(plan, 0, sizeof(*plan));
    memset(&facts, 0, sizeof(facts));
    memset(&found, 0, sizeof(found));
    facts.renew = renew;
    facts.force = force;
    facts.renew_at = cfg->renew_at;
    if ((r = fileset_prepare(cfg)) != 0 || (r = gather(&facts, &found, cfg)) != 0)
        goto out;
    if (renew && !facts.marker && !facts.enrolled)
        log_info("no valid certificate in %s: enrolling instead of renewing", cfg->out_dir);
    if ((r = renew_decide(&action, &plan->due_at, &facts)) != 0) {
        log_err("%s has unusable validity dates: remove it and enroll again", found.cert_path);
        goto out;
    }
    r = act(plan, action, cfg, &facts, &found);
out:
    X509_free(found.cert);
    return r;
}

int renewal_begin(struct renewal *plan, struct tpm *tpm, const struct agent_config *cfg)
{
    int r;

    if (!plan->finish)
        return 0;
    if ((r = ldevid_persist_blob(tpm, cfg)) != 0 || (r = fileset_marker_remove(cfg)) != 0)
        return r;
    plan->marker = false;
    plan->finish = false;
    return 0;
}

int renewal_commit(struct renewal *plan, struct tpm_key *ldevid, const struct agent_config *cfg)
{
    int r;

    /* Only now, with the new set committed, does the old key leave the TPM. */
    if (plan->marker)
        crash_point("renew-evict");
    if (cfg->persist_handle != 0) {
        crash_point("persist");
        if ((r = tpm_key_persist(ldevid, cfg->persist_handle)) != 0)
            return r;
    }
    if (plan->marker) {
        if ((r = fileset_marker_remove(cfg)) != 0)
            return r;
        plan->marker = false;
    }
    return 0;
}

void renewal_abandon(struct renewal *plan, const struct agent_config *cfg, bool maybe_issued)
{
    if (!plan->started || !plan->marker || maybe_issued || fileset_marker_remove(cfg) != 0)
        return;
    plan->marker = false;
    log_info(
        "the renewal failed before the verifier issued a certificate: the current one stays; "
        "the next run tries again when due");
}
