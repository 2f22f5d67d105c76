#include "agent/run.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "agent/core/backoff.h"
#include "agent/enroll.h"
#include "agent/fileset.h"
#include "agent/ldevid.h"
#include "agent/renewal.h"
#include "agent/tpm.h"
#include "common/err.h"
#include "common/io/log.h"

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* try_once opens the TPM, finishes an interrupted renewal, returns at once
 * when the device is already enrolled (unless |plan| asks for a fresh key),
 * or runs one enrollment and its TPM side after the commit. */
static int try_once(struct run_result *res, struct enroll_attempt *a,
                    const struct agent_config *cfg, struct renewal *plan, long timeout)
{
    struct tpm *tpm = NULL;
    int r;

    if ((r = tpm_open(&tpm, cfg->tcti)) != 0) {
        snprintf(a->why, sizeof(a->why), "the TPM could not be opened");
        goto out;
    }
    if ((r = renewal_begin(plan, tpm, cfg)) != 0)
        goto out;
    if (!plan->fresh) {
        r = ldevid_check(&res->cert, res->cert_path, sizeof(res->cert_path), cfg, tpm);
        res->already = r == 0;
        if (r != DEVID_ERR_NOT_FOUND)
            goto out;
    }
    if ((r = enroll_attempt(a, tpm, cfg, timeout)) != 0 ||
        (r = renewal_commit(plan, a->ldevid, cfg)) != 0)
        goto out;
    snprintf(res->cert_path, sizeof(res->cert_path), "%s", a->cert_path);
    res->cert = a->cert;
    a->cert = NULL;
out:
    tpm_key_free(a->ldevid);
    a->ldevid = NULL;
    tpm_free(tpm);
    return r;
}

/* retryable says whether the failure |r| of attempt |a| may pass by itself,
 * and names it for the log. */
static bool retryable(const char **why, int r, const struct enroll_attempt *a)
{
    const struct exchange_refusal *f = &a->refusal;

    *why = a->why[0] != '\0' ? a->why : devid_err_str(r);
    switch (r) {
        case DEVID_ERR_NETWORK:
            *why = f->retry_after > 0 ? "verifier busy (HTTP 503)" : "network";
            return true;
        case DEVID_ERR_TLS:
            if (f->http_fail == HTTP_FAIL_PEER_UNTRUSTED) {
                *why = "the verifier's certificate is not trusted";
                return false;
            }
            *why = "TLS handshake";
            return f->http_fail == HTTP_FAIL_TLS;
        case DEVID_ERR_REFUSED:
            *why = f->retryable ? "verifier asks to retry" : "refused by the verifier";
            return f->retryable;
        case DEVID_ERR_TPM:
            if (tpm_last_error_transient()) {
                *why = "TPM busy or unreachable";
                return true;
            }
            return false;
        default:
            return false;
    }
}

/* wait_retry waits before the attempt after failed attempt |n|, or returns
 * DEVID_ERR_NOT_FOUND when no retry fits before the deadline (logged). */
static int wait_retry(const struct backoff_policy *policy, unsigned n, unsigned retry_after,
                      uint64_t start, const char *why, const struct agent_config *cfg)
{
    uint64_t elapsed, delay;
    uint32_t rnd;

    if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1)
        rnd = 0x80000000u;
    elapsed = now_ms() - start;
    if (backoff_next(&delay, policy, n, (uint64_t)retry_after * 1000u, elapsed, rnd) != 0) {
        if (retry_after > 0 && elapsed < policy->deadline_ms)
            log_err(
                "attempt %u failed (%s); the verifier asks to wait %u s, past the deadline of "
                "%ld s: giving up",
                n + 1, why, retry_after, cfg->deadline);
        else
            log_err(
                "attempt %u failed (%s); deadline of %ld s reached after %u attempts: giving up",
                n + 1, why, cfg->deadline, n + 1);
        return DEVID_ERR_NOT_FOUND;
    }
    log_info(
        "attempt %u failed (%s); retrying in %llu.%03llu s (backoff ceiling %llu ms%s, %llu s "
        "left)",
        n + 1, why, (unsigned long long)(delay / 1000), (unsigned long long)(delay % 1000),
        (unsigned long long)backoff_ceiling_ms(policy, n),
        retry_after > 0 ? ", Retry-After honoured" : "",
        (unsigned long long)((policy->deadline_ms - elapsed) / 1000));
    sleep_ms(delay);
    return 0;
}

/* request_timeout bounds one request by the time left before the deadline. */
static long request_timeout(const struct agent_config *cfg, uint64_t elapsed_ms)
{
    long left_s = cfg->deadline - (long)(elapsed_ms / 1000);

    return left_s < cfg->timeout ? (left_s > 0 ? left_s : 1) : cfg->timeout;
}

/* ended sets the outcome of a run whose last attempt |a| ended with |r|. */
static int ended(struct run_result *res, int r, const struct enroll_attempt *a, const char *why,
                 const struct agent_config *cfg)
{
    if (r == 0) {
        if (res->already)
            log_info("already enrolled: %s is valid and matches %s/%s and the TPM", res->cert_path,
                     cfg->out_dir, FILESET_KEY);
        return 0;
    }
    res->reason = a->refusal.reason;
    res->peer_untrusted = r == DEVID_ERR_TLS && a->refusal.http_fail == HTTP_FAIL_PEER_UNTRUSTED;
    if (r == DEVID_ERR_TLS && a->refusal.http_fail == HTTP_FAIL_LOCAL)
        r = DEVID_ERR_CONFIG;
    if (!res->gave_up && !res->peer_untrusted && r != DEVID_ERR_REFUSED)
        log_err("attempt %u failed (%s): not retryable", res->attempts, why);
    return r;
}

/* run enrolls as |plan| says, retrying what may pass by itself until the
 * deadline. */
static int run(struct run_result *res, const struct agent_config *cfg, struct renewal *plan)
{
    struct backoff_policy policy;
    struct enroll_attempt a;
    uint64_t start = now_ms();
    const char *why = "";
    bool maybe_issued = false;
    unsigned n;
    int r;

    memset(&a, 0, sizeof(a));
    policy.initial_ms = (uint64_t)cfg->backoff_initial_ms;
    policy.max_ms = (uint64_t)cfg->backoff_max_ms;
    policy.deadline_ms = (uint64_t)cfg->deadline * 1000u;
    for (n = 0;; n++) {
        enroll_attempt_cleanup(&a);
        log_info("attempt %u: enrolling with %s", n + 1, cfg->url);
        res->attempts = n + 1;
        r = try_once(res, &a, cfg, plan, request_timeout(cfg, now_ms() - start));
        if (a.refusal.enroll_sent && !a.refusal.enroll_refused)
            maybe_issued = true;
        if (r == 0 || !retryable(&why, r, &a))
            break;
        if (wait_retry(&policy, n, a.refusal.retry_after, start, why, cfg) != 0) {
            res->gave_up = true;
            break;
        }
    }
    r = ended(res, r, &a, why, cfg);
    if (r != 0)
        renewal_abandon(plan, cfg, maybe_issued);
    enroll_attempt_cleanup(&a);
    return r;
}

static bool args_ok(const struct run_result *res, const struct agent_config *cfg)
{
    return res != NULL && cfg != NULL && cfg->url != NULL && cfg->ca_bundle != NULL &&
           cfg->tcti != NULL && cfg->out_dir != NULL;
}

int run_enroll(struct run_result *res, const struct agent_config *cfg)
{
    struct renewal plan;
    int r;

    if (!args_ok(res, cfg))
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(res, 0, sizeof(*res));
    if ((r = renewal_plan(&plan, cfg, false, false)) != 0)
        return r;
    return run(res, cfg, &plan);
}

int run_renew(struct run_result *res, const struct agent_config *cfg, bool force)
{
    struct renewal plan;
    int r;

    if (!args_ok(res, cfg))
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(res, 0, sizeof(*res));
    if ((r = renewal_plan(&plan, cfg, true, force)) != 0)
        return r;
    if (plan.not_due) {
        res->not_due = true;
        res->due_at = plan.due_at;
        return 0;
    }
    r = run(res, cfg, &plan);
    if (r == 0 && !res->already)
        res->renewed = plan.fresh;
    return r;
}

void run_result_cleanup(struct run_result *res)
{
    if (res == NULL)
        return;
    X509_free(res->cert);
    memset(res, 0, sizeof(*res));
}
