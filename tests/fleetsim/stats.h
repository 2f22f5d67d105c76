/* Counters, latencies and the final report of a fleet run. Thread-safe: every
 * stats_* call takes the lock. */
#ifndef DEVID_TESTS_FLEETSIM_STATS_H
#define DEVID_TESTS_FLEETSIM_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Distinct names each counter table holds; more are counted as "other". */
#define STATS_MAX_NAMES 48
#define STATS_NAME_MAX 48

/* The counter tables, each a list of name=count lines in the report. */
enum stats_table {
    STATS_ERROR,         /* final outcome of each failed device */
    STATS_ATTEMPT_ERROR, /* every failed attempt, retried or not */
    STATS_REPLAY,        /* outcome of each replay (replay-token, replay-body) */
    STATS_RESEND,        /* outcome of each re-send (drop-response) */
    STATS_RACE,          /* outcome of each same-device enrollment */
    STATS__TABLES,
};

struct stats;

/* stats_new sets |*out| to new stats for up to |devices| latency samples.
 * Returns 0 or DEVID_ERR_ALLOC. */
int stats_new(struct stats **out, size_t devices);

/* stats_free frees |s|; stats_free(NULL) does nothing. */
void stats_free(struct stats *s);

/* stats_count adds one to |name| in |table|. */
void stats_count(struct stats *s, enum stats_table table, const char *name);

/* stats_ok records one enrolled device and its latency in milliseconds. */
void stats_ok(struct stats *s, double ms);

/* stats_failed records one device that did not enroll, with its reason. */
void stats_failed(struct stats *s, const char *reason);

/* stats_http records an HTTP answer: its status and its Retry-After header. */
void stats_http(struct stats *s, long status, bool have_retry_after, unsigned long retry_after);

/* stats_retry records one retry. */
void stats_retry(struct stats *s);

/* stats_replay records a replay: refused (with its reason) or accepted. */
void stats_replay(struct stats *s, bool refused, const char *reason);

/* stats_resend records a drop-response re-send pair: whether the first
 * re-send got a certificate and whether the second returned the same one. */
void stats_resend(struct stats *s, bool dropped, const char *first, const char *second,
                  bool same_cert);

/* stats_race records one of the enrollments of a device at once: issued,
 * or refused with |reason|. */
void stats_race(struct stats *s, bool issued, const char *reason);

/* stats_detail returns true for the first few failures (whose details are
 * worth printing), false afterwards. */
bool stats_detail(struct stats *s);

/* The run's facts printed at the top of the report. */
struct stats_run {
    const char *mode;
    const char *url;
    const char *url2; /* NULL when there is none */
    unsigned long devices;
    unsigned parallel;
    const char *tls;
    unsigned retries;
    double elapsed_s;
};

/*
 * stats_report prints the report to |f| as "key=value" lines (stable names,
 * documented in tests/fleetsim/README.md) and returns whether the run passed
 * in the sense of |mode|: normal: every device enrolled; replay-*: every device
 * enrolled and every replay was refused; drop-response: every device got a
 * certificate on re-send and the second re-send returned the same one;
 * same-device: every device got exactly one certificate.
 */
bool stats_report(struct stats *s, FILE *f, const struct stats_run *run);

#endif
