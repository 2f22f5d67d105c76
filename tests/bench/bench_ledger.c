/* devid-bench-ledger: what the ledger alone costs. T threads, each with its
 * own handle (as the server's workers have, all opened before the clock
 * starts), record issuances for S seconds through the very calls one enrollment makes: the early
 * read (ledger_nonce_use, ledger_device_active) and ledger_record with LEDGER_SUPERSEDE; or, with
 * --record-only, ledger_record alone. Prints records per second. A benchmark: prints figures,
 * asserts nothing. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/io/log.h"
#include "verifier/ledger/ledger.h"

#define MAX_THREADS 64

struct bench {
    const char *uri;
    int seconds;
    int record_only;
    atomic_ulong done;
    atomic_int failed;
    /* Every thread opens its handle before the clock starts. */
    pthread_barrier_t ready;
    double start, end;
};

struct thread {
    struct bench *b;
    int id;
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One enrollment's ledger work for issuance |n| of thread |id|. */
static int one(struct ledger *l, const struct bench *b, int id, unsigned long n)
{
    static uint8_t der[1200];
    struct ledger_issuance rec, found;
    enum ledger_recorded result;
    enum ledger_nonce_use use;
    int64_t now = (int64_t)time(NULL);
    int active = 0, r;

    memset(&rec, 0, sizeof(rec));
    snprintf(rec.cert_serial, sizeof(rec.cert_serial), "%02x%016lx%08lx", id + 1, n,
             (unsigned long)now);
    rec.cert_der = der;
    rec.cert_der_len = sizeof(der);
    snprintf(rec.manufacturer, sizeof(rec.manufacturer), "Bench Devices");
    snprintf(rec.model, sizeof(rec.model), "Bench");
    snprintf(rec.device_serial, sizeof(rec.device_serial), "B%d-%lu-%lld", id, n, (long long)now);
    memset(rec.idevid_sha256, 0x11, 32);
    memset(rec.csr_sha256, 0x22, 32);
    memset(rec.request_sha256, 0x33, 32);
    memcpy(rec.nonce, rec.cert_serial, 26);
    rec.signer_kind = 1;
    snprintf(rec.assurance, sizeof(rec.assurance), "none");
    rec.issued_at = now;
    rec.not_after = now + 86400;
    if (!b->record_only) {
        if ((r = ledger_nonce_use(l, &use, &found, rec.nonce, rec.request_sha256,
                                  rec.idevid_sha256)) != 0)
            return r;
        ledger_issuance_cleanup(&found);
        if ((r = ledger_device_active(l, &active, rec.manufacturer, rec.device_serial, now)) != 0)
            return r;
    }
    r = ledger_record(l, &result, &found, &rec, LEDGER_SUPERSEDE);
    ledger_issuance_cleanup(&found);
    return r != 0 ? r : result != LEDGER_RECORDED ? DEVID_ERR_INTERNAL : 0;
}

static void *run(void *arg)
{
    struct thread *t = arg;
    struct ledger *l = NULL;
    unsigned long n = 0;
    int r;

    if (ledger_open(&l, t->b->uri, "bench") != 0)
        atomic_fetch_add(&t->b->failed, 1);
    r = pthread_barrier_wait(&t->b->ready);
    if (r == PTHREAD_BARRIER_SERIAL_THREAD) {
        t->b->start = now_s();
        t->b->end = t->b->start + t->b->seconds;
    }
    pthread_barrier_wait(&t->b->ready);
    while (l != NULL && now_s() < t->b->end) {
        if (one(l, t->b, t->id, n++) != 0) {
            atomic_fetch_add(&t->b->failed, 1);
            break;
        }
        atomic_fetch_add(&t->b->done, 1);
    }
    ledger_free(l);
    return NULL;
}

/* number reads a count from the command line; -1 when it is not one. */
static int number(const char *s)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || v < 0 || v > 100000)
        return -1;
    return (int)v;
}

int main(int argc, char **argv)
{
    struct bench b;
    struct thread t[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    int i, threads = 1, started = 0;
    double elapsed;

    memset(&b, 0, sizeof(b));
    b.seconds = 5;
    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--ledger") == 0)
            b.uri = argv[i + 1];
        else if (strcmp(argv[i], "--threads") == 0)
            threads = number(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            b.seconds = number(argv[i + 1]);
        else
            break;
    }
    if (i < argc && strcmp(argv[i], "--record-only") == 0) {
        b.record_only = 1;
        i++;
    }
    if (b.uri == NULL || i != argc || threads < 1 || threads > MAX_THREADS || b.seconds < 1) {
        fprintf(stderr,
                "usage: devid-bench-ledger --ledger URI [--threads 1-%d] [--seconds S] "
                "[--record-only]\n",
                MAX_THREADS);
        return 64;
    }
    log_init("devid-bench-ledger", LOG_WARNING);
    if (pthread_barrier_init(&b.ready, NULL, (unsigned)threads) != 0)
        return 1;
    for (i = 0; i < threads; i++) {
        t[i] = (struct thread){&b, i};
        if (pthread_create(&th[i], NULL, run, &t[i]) != 0) {
            fprintf(stderr, "devid-bench-ledger: cannot start thread %d\n", i + 1);
            return 1;
        }
        started++;
    }
    for (i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    elapsed = now_s() - b.start;
    printf("records=%lu\nseconds=%.2f\nrecords_per_s=%.0f\nfailed_threads=%d\n",
           atomic_load(&b.done), elapsed, (double)atomic_load(&b.done) / elapsed,
           atomic_load(&b.failed));
    return 0;
}
