#include "stats.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* How many failures stats_detail lets through. */
#define DETAIL_BUDGET 10

struct counter {
    char name[STATS_NAME_MAX];
    uint64_t n;
};

struct table {
    struct counter c[STATS_MAX_NAMES];
    size_t n;
    uint64_t other;
};

struct stats {
    pthread_mutex_t mu;
    struct table tables[STATS__TABLES];
    uint64_t ok, failed, retries, http_503, retry_after_seen, retry_after_max;
    uint64_t replay_refused, replay_accepted;
    uint64_t drop_sent, resend_ok, same_cert;
    uint64_t race_attempts, race_issued;
    unsigned detail;
    double *lat;
    size_t n_lat, cap;
};

int stats_new(struct stats **out, size_t devices)
{
    struct stats *s;

    *out = NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return DEVID_ERR_ALLOC;
    if ((s->lat = calloc(devices > 0 ? devices : 1, sizeof(double))) == NULL) {
        free(s);
        return DEVID_ERR_ALLOC;
    }
    s->cap = devices;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s->lat);
        free(s);
        return DEVID_ERR_INTERNAL;
    }
    *out = s;
    return 0;
}

void stats_free(struct stats *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->lat);
    free(s);
}

static void count_locked(struct table *t, const char *name)
{
    size_t i;

    for (i = 0; i < t->n; i++) {
        if (strcmp(t->c[i].name, name) == 0) {
            t->c[i].n++;
            return;
        }
    }
    if (t->n == STATS_MAX_NAMES) {
        t->other++;
        return;
    }
    snprintf(t->c[t->n].name, sizeof(t->c[t->n].name), "%s", name);
    t->c[t->n].n = 1;
    t->n++;
}

void stats_count(struct stats *s, enum stats_table table, const char *name)
{
    pthread_mutex_lock(&s->mu);
    count_locked(&s->tables[table], name);
    pthread_mutex_unlock(&s->mu);
}

void stats_ok(struct stats *s, double ms)
{
    pthread_mutex_lock(&s->mu);
    s->ok++;
    if (s->n_lat < s->cap)
        s->lat[s->n_lat++] = ms;
    pthread_mutex_unlock(&s->mu);
}

void stats_failed(struct stats *s, const char *reason)
{
    pthread_mutex_lock(&s->mu);
    s->failed++;
    count_locked(&s->tables[STATS_ERROR], reason);
    pthread_mutex_unlock(&s->mu);
}

void stats_http(struct stats *s, long status, bool have_retry_after, unsigned long retry_after)
{
    pthread_mutex_lock(&s->mu);
    if (status == 503)
        s->http_503++;
    if (have_retry_after) {
        s->retry_after_seen++;
        if (retry_after > s->retry_after_max)
            s->retry_after_max = retry_after;
    }
    pthread_mutex_unlock(&s->mu);
}

void stats_retry(struct stats *s)
{
    pthread_mutex_lock(&s->mu);
    s->retries++;
    pthread_mutex_unlock(&s->mu);
}

void stats_replay(struct stats *s, bool refused, const char *reason)
{
    pthread_mutex_lock(&s->mu);
    if (refused)
        s->replay_refused++;
    else
        s->replay_accepted++;
    count_locked(&s->tables[STATS_REPLAY], refused ? reason : "ACCEPTED");
    pthread_mutex_unlock(&s->mu);
}

void stats_resend(struct stats *s, bool dropped, const char *first, const char *second,
                  bool same_cert)
{
    char name[STATS_NAME_MAX];

    pthread_mutex_lock(&s->mu);
    if (dropped)
        s->drop_sent++;
    if (strcmp(first, "ok") == 0)
        s->resend_ok++;
    if (same_cert)
        s->same_cert++;
    snprintf(name, sizeof(name), "resend1.%s", first);
    count_locked(&s->tables[STATS_RESEND], name);
    snprintf(name, sizeof(name), "resend2.%s", second);
    count_locked(&s->tables[STATS_RESEND], name);
    pthread_mutex_unlock(&s->mu);
}

void stats_race(struct stats *s, bool issued, const char *reason)
{
    pthread_mutex_lock(&s->mu);
    s->race_attempts++;
    if (issued)
        s->race_issued++;
    count_locked(&s->tables[STATS_RACE], issued ? "issued" : reason);
    pthread_mutex_unlock(&s->mu);
}

bool stats_detail(struct stats *s)
{
    bool yes;

    pthread_mutex_lock(&s->mu);
    yes = s->detail < DETAIL_BUDGET;
    if (yes)
        s->detail++;
    pthread_mutex_unlock(&s->mu);
    return yes;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static int cmp_counter(const void *a, const void *b)
{
    return strcmp(((const struct counter *)a)->name, ((const struct counter *)b)->name);
}

/* Nearest-rank percentile of the sorted |v|. */
static double percentile(const double *v, size_t n, double p)
{
    size_t rank;

    if (n == 0)
        return 0.0;
    rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1)
        rank = 1;
    return v[rank - 1];
}

static void print_table(FILE *f, struct table *t, const char *prefix)
{
    size_t i;

    qsort(t->c, t->n, sizeof(t->c[0]), cmp_counter);
    for (i = 0; i < t->n; i++)
        fprintf(f, "%s%s=%llu\n", prefix, t->c[i].name, (unsigned long long)t->c[i].n);
    if (t->other > 0)
        fprintf(f, "%sother=%llu\n", prefix, (unsigned long long)t->other);
}

bool stats_report(struct stats *s, FILE *f, const struct stats_run *run)
{
    bool pass;
    uint64_t total;

    pthread_mutex_lock(&s->mu);
    total = s->ok + s->failed;
    qsort(s->lat, s->n_lat, sizeof(s->lat[0]), cmp_double);
    fprintf(f, "# devid-fleetsim report v1\n");
    fprintf(f, "mode=%s\n", run->mode);
    fprintf(f, "url=%s\n", run->url);
    if (run->url2 != NULL)
        fprintf(f, "url2=%s\n", run->url2);
    fprintf(f, "devices=%lu\n", run->devices);
    fprintf(f, "parallel=%u\n", run->parallel);
    fprintf(f, "tls=%s\n", run->tls);
    fprintf(f, "retries_allowed=%u\n", run->retries);
    fprintf(f, "total=%llu\n", (unsigned long long)total);
    fprintf(f, "ok=%llu\n", (unsigned long long)s->ok);
    fprintf(f, "failed=%llu\n", (unsigned long long)s->failed);
    print_table(f, &s->tables[STATS_ERROR], "error.");
    print_table(f, &s->tables[STATS_ATTEMPT_ERROR], "attempt_error.");
    fprintf(f, "retries=%llu\n", (unsigned long long)s->retries);
    fprintf(f, "http_503=%llu\n", (unsigned long long)s->http_503);
    fprintf(f, "retry_after_seen=%llu\n", (unsigned long long)s->retry_after_seen);
    fprintf(f, "retry_after_max_s=%llu\n", (unsigned long long)s->retry_after_max);
    fprintf(f, "latency_ms.p50=%.1f\n", percentile(s->lat, s->n_lat, 50));
    fprintf(f, "latency_ms.p90=%.1f\n", percentile(s->lat, s->n_lat, 90));
    fprintf(f, "latency_ms.p99=%.1f\n", percentile(s->lat, s->n_lat, 99));
    fprintf(f, "latency_ms.max=%.1f\n", s->n_lat > 0 ? s->lat[s->n_lat - 1] : 0.0);
    fprintf(f, "elapsed_s=%.3f\n", run->elapsed_s);
    fprintf(f, "enrollments_per_s=%.1f\n",
            run->elapsed_s > 0 ? (double)s->ok / run->elapsed_s : 0.0);
    pass = s->ok == run->devices && s->failed == 0;
    if (strcmp(run->mode, "replay-token") == 0 || strcmp(run->mode, "replay-body") == 0) {
        fprintf(f, "replay.attempted=%llu\n",
                (unsigned long long)(s->replay_refused + s->replay_accepted));
        fprintf(f, "replay.refused=%llu\n", (unsigned long long)s->replay_refused);
        fprintf(f, "replay.accepted=%llu\n", (unsigned long long)s->replay_accepted);
        print_table(f, &s->tables[STATS_REPLAY], "replay.reason.");
        pass = pass && s->replay_accepted == 0 && s->replay_refused == run->devices;
    } else if (strcmp(run->mode, "drop-response") == 0) {
        fprintf(f, "drop.sent=%llu\n", (unsigned long long)s->drop_sent);
        fprintf(f, "drop.resend_ok=%llu\n", (unsigned long long)s->resend_ok);
        fprintf(f, "drop.same_certificate=%llu\n", (unsigned long long)s->same_cert);
        print_table(f, &s->tables[STATS_RESEND], "drop.");
        pass = s->drop_sent == run->devices && s->same_cert == run->devices;
    } else if (strcmp(run->mode, "same-device") == 0) {
        fprintf(f, "race.attempts=%llu\n", (unsigned long long)s->race_attempts);
        fprintf(f, "race.issued=%llu\n", (unsigned long long)s->race_issued);
        print_table(f, &s->tables[STATS_RACE], "race.outcome.");
    }
    fprintf(f, "result=%s\n", pass ? "pass" : "fail");
    pthread_mutex_unlock(&s->mu);
    fflush(f);
    return pass;
}
