#include "verifier/core/metrics.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "common/err.h"
#include "devid/v1/enroll.pb-c.h"

static const double bucket_le[METRICS_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,   0.25,   0.5,   1.0,  2.5,   5.0};

#define ADD(field) atomic_fetch_add_explicit(&(field), 1, memory_order_relaxed)

static size_t reason_index(int r)
{
    int reason = devid_err_reason(r);

    return reason >= 0 && reason < METRICS_REASONS ? (size_t)reason : 0;
}

void metrics_enroll_done(struct metrics *m, int r, double seconds)
{
    size_t i;

    if (r == 0)
        ADD(m->enroll_issued);
    else
        ADD(m->enroll_refused[reason_index(r)]);
    for (i = 0; i < METRICS_BUCKETS; i++) {
        if (seconds <= bucket_le[i])
            ADD(m->latency_bucket[i]);
    }
    ADD(m->latency_count);
    atomic_fetch_add_explicit(&m->latency_sum_us, (uint_fast64_t)(seconds * 1e6),
                              memory_order_relaxed);
}

void metrics_challenge_done(struct metrics *m, int r)
{
    if (r == 0)
        ADD(m->challenges_ok);
    else
        ADD(m->challenges_refused[reason_index(r)]);
}

void metrics_token_opened(struct metrics *m, enum token_key_role role)
{
    if (role == TOKEN_KEY_CURRENT)
        ADD(m->tokens_opened_current);
    else if (role == TOKEN_KEY_ACCEPT)
        ADD(m->tokens_opened_accept);
}

struct out {
    char *buf;
    size_t len;
    size_t off;
    int overflow;
};

__attribute__((format(printf, 2, 3))) static void emit(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->overflow)
        return;
    va_start(ap, fmt);
    n = vsnprintf(o->buf + o->off, o->len - o->off, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->len - o->off) {
        o->overflow = 1;
        return;
    }
    o->off += (size_t)n;
}

static const char *reason_name(size_t i)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&devid__v1__reason__descriptor, (int)i);

    return v != NULL ? v->name : "REASON_UNKNOWN";
}

static uint64_t sum_at(struct metrics *const *all, size_t n, size_t offset)
{
    uint64_t s = 0;
    size_t k;

    for (k = 0; k < n; k++) {
        const atomic_uint_fast64_t *f =
            (const atomic_uint_fast64_t *)(const void *)((const char *)all[k] + offset);
        s += atomic_load_explicit(f, memory_order_relaxed);
    }
    return s;
}

#define SUM(field) sum_at(all, n, offsetof(struct metrics, field))

/* The gauges of a replica among others: its CRL and the PROXY headers it
 * refused. */
static void render_replica_gauges(struct out *o, const struct metrics_gauges *g)
{
    emit(o,
         "# HELP devid_crl_number The CRL number of the CRL GET /v1/crl serves.\n"
         "# TYPE devid_crl_number gauge\ndevid_crl_number %lld\n"
         "# HELP devid_crl_build_failures_total Background CRL builds that failed.\n"
         "# TYPE devid_crl_build_failures_total counter\ndevid_crl_build_failures_total %lld\n",
         (long long)g->crl_number, (long long)g->crl_build_failures);
    emit(o,
         "# HELP devid_proxy_refusals_total Connections refused for a PROXY protocol header "
         "from an address not in proxy_from, or a malformed one.\n"
         "# TYPE devid_proxy_refusals_total counter\ndevid_proxy_refusals_total %lld\n",
         (long long)g->proxy_refusals);
}

/* The issuance log and the signer. A refusal by the signer means the
 * serving process asked for something outside the profile: a bug, or code
 * that is not devid's running there. */
static void render_log_signer(struct out *o, const struct metrics_gauges *g)
{
    static const char *const types[] = {"certificate", "crl", "tree_head"};
    static const char *const results[] = {"signed", "refused", "failed"};
    size_t t, k;

    emit(o,
         "# HELP devid_log_entries Issuance log entries this replica has read in index order.\n"
         "# TYPE devid_log_entries gauge\ndevid_log_entries %llu\n"
         "# HELP devid_log_head_size Entries covered by the signed tree head GET /v1/log/head "
         "serves (0: none).\n# TYPE devid_log_head_size gauge\ndevid_log_head_size %llu\n"
         "# HELP devid_log_head_timestamp_seconds When that head was signed, in seconds since "
         "the epoch (0: none).\n# TYPE devid_log_head_timestamp_seconds gauge\n"
         "devid_log_head_timestamp_seconds %lld\n"
         "# HELP devid_log_failures_total Background rounds of the issuance log that failed.\n"
         "# TYPE devid_log_failures_total counter\ndevid_log_failures_total %lld\n"
         "# HELP devid_log_stopped 1 when the log stopped at an index missing from the ledger "
         "(run devid-verifier audit).\n# TYPE devid_log_stopped gauge\ndevid_log_stopped %d\n",
         (unsigned long long)g->log_entries, (unsigned long long)g->log_head_size,
         (long long)g->log_head_timestamp, (long long)g->log_failures, g->log_stopped ? 1 : 0);
    emit(o,
         "# HELP devid_signer_requests_total Requests to the signer process, by type and "
         "result.\n# TYPE devid_signer_requests_total counter\n");
    for (t = 0; t < 3; t++) {
        for (k = 0; k < 3; k++)
            emit(o, "devid_signer_requests_total{type=\"%s\",result=\"%s\"} %llu\n", types[t],
                 results[k], (unsigned long long)g->signer[t][k]);
    }
}

/* The token keys this replica holds, and which of them opened tokens: during
 * a key change, when the accept-only key stops opening any, it can go. */
static void render_token_keys(struct out *o, struct metrics *const *all, size_t n,
                              const struct metrics_gauges *g)
{
    emit(o,
         "# HELP devid_token_key_info The token keys loaded: key=\"current\" seals and opens, "
         "key=\"accept\" only opens; id is the start of the key file's SHA-256.\n"
         "# TYPE devid_token_key_info gauge\n");
    if (g->token_key_id != NULL && g->token_key_id[0] != '\0')
        emit(o, "devid_token_key_info{key=\"current\",id=\"%s\"} 1\n", g->token_key_id);
    if (g->token_accept_key_id != NULL && g->token_accept_key_id[0] != '\0')
        emit(o, "devid_token_key_info{key=\"accept\",id=\"%s\"} 1\n", g->token_accept_key_id);
    emit(o,
         "# HELP devid_tokens_opened_total Enrollment tokens that opened, by the key that "
         "opened them.\n# TYPE devid_tokens_opened_total counter\n"
         "devid_tokens_opened_total{key=\"current\"} %llu\n"
         "devid_tokens_opened_total{key=\"accept\"} %llu\n",
         (unsigned long long)SUM(tokens_opened_current),
         (unsigned long long)SUM(tokens_opened_accept));
}

long metrics_render(char *buf, size_t len, struct metrics *const *all, size_t n,
                    const struct metrics_gauges *g)
{
    struct out o = {buf, len, 0, 0};
    uint64_t v;
    size_t i;

    if (buf == NULL || len == 0)
        return -1;
    emit(&o,
         "# HELP devid_enrollments_total Enrollment requests answered, by result and "
         "reason.\n# TYPE devid_enrollments_total counter\n");
    emit(&o, "devid_enrollments_total{result=\"issued\",reason=\"\"} %llu\n",
         (unsigned long long)SUM(enroll_issued));
    emit(&o, "devid_enrollments_total{result=\"replayed\",reason=\"\"} %llu\n",
         (unsigned long long)SUM(enroll_replayed_ok));
    for (i = 0; i < METRICS_REASONS; i++) {
        if ((v = SUM(enroll_refused[i])) > 0)
            emit(&o, "devid_enrollments_total{result=\"refused\",reason=\"%s\"} %llu\n",
                 reason_name(i), (unsigned long long)v);
    }
    emit(&o,
         "# HELP devid_challenges_total Challenge requests answered, by result and reason.\n"
         "# TYPE devid_challenges_total counter\n");
    emit(&o, "devid_challenges_total{result=\"issued\",reason=\"\"} %llu\n",
         (unsigned long long)SUM(challenges_ok));
    for (i = 0; i < METRICS_REASONS; i++) {
        if ((v = SUM(challenges_refused[i])) > 0)
            emit(&o, "devid_challenges_total{result=\"refused\",reason=\"%s\"} %llu\n",
                 reason_name(i), (unsigned long long)v);
    }
    emit(&o,
         "# HELP devid_enroll_duration_seconds Time to answer an enrollment request.\n"
         "# TYPE devid_enroll_duration_seconds histogram\n");
    for (i = 0; i < METRICS_BUCKETS; i++)
        emit(&o, "devid_enroll_duration_seconds_bucket{le=\"%g\"} %llu\n", bucket_le[i],
             (unsigned long long)SUM(latency_bucket[i]));
    emit(&o, "devid_enroll_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
         (unsigned long long)SUM(latency_count));
    emit(&o, "devid_enroll_duration_seconds_sum %.6f\n", (double)SUM(latency_sum_us) / 1e6);
    emit(&o, "devid_enroll_duration_seconds_count %llu\n", (unsigned long long)SUM(latency_count));
    emit(&o,
         "# HELP devid_connections_total Connections accepted on the enrollment listener.\n"
         "# TYPE devid_connections_total counter\ndevid_connections_total %llu\n",
         (unsigned long long)SUM(connections_total));
    emit(&o,
         "# HELP devid_connections_open Connections open now.\n"
         "# TYPE devid_connections_open gauge\ndevid_connections_open %lld\n",
         (long long)g->connections_open);
    emit(&o,
         "# HELP devid_handshakes_in_flight TLS handshakes past their ClientHello now.\n"
         "# TYPE devid_handshakes_in_flight gauge\ndevid_handshakes_in_flight %lld\n",
         (long long)g->handshakes_in_flight);
    emit(&o,
         "# HELP devid_requests_in_flight Requests being answered now.\n"
         "# TYPE devid_requests_in_flight gauge\ndevid_requests_in_flight %lld\n",
         (long long)g->requests_in_flight);
    emit(&o,
         "# HELP devid_overload_rejections_total Requests answered 503 over the connection "
         "limit.\n# TYPE devid_overload_rejections_total counter\n"
         "devid_overload_rejections_total %llu\n",
         (unsigned long long)SUM(overload_rejections));
    emit(&o,
         "# HELP devid_handshake_rejections_total Handshakes refused over the in-flight "
         "limit.\n# TYPE devid_handshake_rejections_total counter\n"
         "devid_handshake_rejections_total %llu\n",
         (unsigned long long)SUM(handshake_rejections));
    emit(&o,
         "# HELP devid_handshake_source_rejections_total Handshakes refused over the "
         "in-flight limit for one source address.\n"
         "# TYPE devid_handshake_source_rejections_total counter\n"
         "devid_handshake_source_rejections_total %llu\n",
         (unsigned long long)SUM(handshake_source_rejections));
    emit(&o,
         "# HELP devid_deadline_closes_total Connections closed by a handshake, header, "
         "body or idle deadline.\n# TYPE devid_deadline_closes_total counter\n"
         "devid_deadline_closes_total %llu\n",
         (unsigned long long)SUM(deadline_closes));
    emit(&o,
         "# HELP devid_ledger_errors_total Enrollments the ledger failed to serve (the device "
         "retries).\n"
         "# TYPE devid_ledger_errors_total counter\ndevid_ledger_errors_total %llu\n",
         (unsigned long long)SUM(ledger_errors));
    emit(&o,
         "# HELP devid_bad_requests_total Requests refused for their HTTP head (method, path, "
         "framing, sizes).\n# TYPE devid_bad_requests_total counter\n"
         "devid_bad_requests_total %llu\n",
         (unsigned long long)SUM(bad_requests));
    emit(&o,
         "# HELP devid_workers Worker threads serving requests.\n"
         "# TYPE devid_workers gauge\ndevid_workers %lld\n",
         (long long)g->workers);
    emit(&o,
         "# HELP devid_reloads_total SIGHUP reloads of the trust files, policy and token "
         "keys, by result.\n"
         "# TYPE devid_reloads_total counter\ndevid_reloads_total{result=\"ok\"} %lld\n"
         "devid_reloads_total{result=\"failed\"} %lld\n",
         (long long)g->reloads_ok, (long long)g->reloads_failed);
    render_replica_gauges(&o, g);
    render_token_keys(&o, all, n, g);
    render_log_signer(&o, g);
    if (o.overflow)
        return -1;
    return (long)o.off;
}
