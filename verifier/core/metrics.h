/* Service counters and their Prometheus text rendering. Each worker owns one
 * struct metrics and updates it with relaxed atomics, so no lock is taken on
 * the hot path; the renderer sums them. */
#ifndef DEVID_VERIFIER_CORE_METRICS_H
#define DEVID_VERIFIER_CORE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "verifier/core/token.h"

/* Wire reasons are 0..METRICS_REASONS-1 (proto/devid/v1 Reason). */
#define METRICS_REASONS 32
/* Upper bounds, in seconds, of the enrollment latency histogram buckets. */
#define METRICS_BUCKETS 12

struct metrics {
    atomic_uint_fast64_t challenges_ok;
    atomic_uint_fast64_t challenges_refused[METRICS_REASONS];
    atomic_uint_fast64_t enroll_issued;
    atomic_uint_fast64_t enroll_replayed_ok;
    atomic_uint_fast64_t enroll_refused[METRICS_REASONS];
    atomic_uint_fast64_t latency_bucket[METRICS_BUCKETS];
    atomic_uint_fast64_t latency_count;
    atomic_uint_fast64_t latency_sum_us;
    atomic_uint_fast64_t connections_total;
    atomic_uint_fast64_t overload_rejections;
    atomic_uint_fast64_t handshake_rejections;
    atomic_uint_fast64_t handshake_source_rejections;
    atomic_uint_fast64_t deadline_closes;
    atomic_uint_fast64_t ledger_errors;
    /* Requests refused by their head (docs/protocol.md section 3). */
    atomic_uint_fast64_t bad_requests;
    /* Enrollment tokens that opened, under the current key and under the
     * accept-only key of a key change. */
    atomic_uint_fast64_t tokens_opened_current;
    atomic_uint_fast64_t tokens_opened_accept;
};

/* Gauges kept by the server across workers. */
struct metrics_gauges {
    int64_t connections_open;
    int64_t handshakes_in_flight;
    int64_t requests_in_flight;
    int64_t workers;
    int64_t reloads_ok;
    int64_t reloads_failed;
    /* The number of the CRL GET /v1/crl serves, and failed CRL builds. */
    int64_t crl_number;
    int64_t crl_build_failures;
    /* Connections refused for a PROXY protocol header they may not send. */
    int64_t proxy_refusals;
    /* token_key_id of the token key and of the accept-only key (borrowed;
     * NULL or "": none). */
    const char *token_key_id;
    const char *token_accept_key_id;
    /* The issuance log: entries this replica has read, the signed head it
     * serves (size 0, timestamp 0: none), background rounds that failed,
     * and whether it stopped at an index missing from the ledger. */
    uint64_t log_entries;
    uint64_t log_head_size;
    int64_t log_head_timestamp;
    int64_t log_failures;
    int log_stopped;
    /* The signer process's answers, by request type (certificate, CRL, tree
     * head) and result (signed, refused, failed). */
    uint64_t signer[3][3];
};

/* metrics_enroll_done counts one enrollment answered with |r| (0 issued) after
 * |seconds|. */
void metrics_enroll_done(struct metrics *m, int r, double seconds);

/* metrics_challenge_done counts one challenge answered with |r|. */
void metrics_challenge_done(struct metrics *m, int r);

/* metrics_token_opened counts an enrollment token that opened under the key
 * |role| names; TOKEN_KEY_NONE (it did not open) counts nothing. */
void metrics_token_opened(struct metrics *m, enum token_key_role role);

/*
 * metrics_render writes the Prometheus text exposition of the sum of the |n|
 * workers' |all| counters and of |g| to |buf| (at most |len| bytes, NUL
 * terminated). Returns the length written, or -1 when |buf| is too small.
 */
long metrics_render(char *buf, size_t len, struct metrics *const *all, size_t n,
                    const struct metrics_gauges *g);

#endif
