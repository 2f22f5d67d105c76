/* same-device mode: device by device, --parallel enrollments of that one
 * device at once, alternating between --url and --url2. Each opens its own
 * connection and gets its own challenge; then all send their enroll
 * requests together, so that the verifiers judge them at the same moment.
 * Under reenroll = deny exactly one may get a certificate; the run passes
 * when every device got exactly one. No retries: each enrollment is one
 * attempt. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "sim.h"

/* Most enrollments of one device at once. */
#define MAX_RACERS 64

/* Holds the racers until every one of them has its challenge. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned ready;
    bool go;
};

struct racer {
    struct sim *sim;
    const struct conn_config *cc;
    struct gate *gate;
    /* A copy of the device: its own TPM clock, the same IDevID key. */
    struct device dev;
    struct outcome o;
    struct enrollment e;
    int r;
};

static void *racer_main(void *arg)
{
    struct racer *x = arg;
    struct conn *c = NULL;
    uint8_t exporter[TRANSCRIPT_EXPORTER_LEN];

    x->r = sim_open(x->sim, x->cc, &x->dev, &c, &x->o, &x->e, true, exporter);
    pthread_mutex_lock(&x->gate->mu);
    x->gate->ready++;
    pthread_cond_broadcast(&x->gate->cv);
    while (!x->gate->go)
        pthread_cond_wait(&x->gate->cv, &x->gate->mu);
    pthread_mutex_unlock(&x->gate->mu);
    if (x->r == 0)
        x->r = sim_enroll(x->sim, c, &x->dev, &x->o, &x->e, false, exporter);
    OPENSSL_cleanse(exporter, sizeof(exporter));
    conn_free(c);
    OPENSSL_thread_stop();
    return NULL;
}

/* run_racers starts |n| racers, lets them go once all have their
 * challenge, and waits for them. Returns how many ran. */
static unsigned long run_racers(struct racer *x, unsigned long n, struct gate *gate)
{
    pthread_t th[MAX_RACERS];
    unsigned long i, started;

    for (started = 0; started < n; started++) {
        if (pthread_create(&th[started], NULL, racer_main, &x[started]) != 0)
            break;
    }
    pthread_mutex_lock(&gate->mu);
    while (gate->ready < started)
        pthread_cond_wait(&gate->cv, &gate->mu);
    gate->go = true;
    pthread_cond_broadcast(&gate->cv);
    pthread_mutex_unlock(&gate->mu);
    for (i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    return started;
}

static void race_device(struct sim *sim, unsigned long idx, struct racer *x, unsigned long n)
{
    struct gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false};
    struct device *dev = NULL;
    struct outcome o = {0};
    char serial[FACTORY_SERIAL_MAX + 1];
    unsigned long i, ran, issued = 0;
    double start;
    int r;

    snprintf(serial, sizeof(serial), "%s-%lu", sim->prefix, idx + 1);
    if ((r = factory_device_new(&dev, sim->factory, sim->model, serial)) != 0) {
        sim_local_failure(sim, &o, "making the device's IDevID", r);
        stats_failed(sim->stats, o.reason);
        return;
    }
    memset(x, 0, n * sizeof(*x));
    for (i = 0; i < n; i++) {
        x[i].sim = sim;
        x[i].cc = i % 2 == 0 ? &sim->conn : &sim->conn2;
        x[i].gate = &gate;
        x[i].dev = *dev;
    }
    start = sim_now_ms();
    ran = run_racers(x, n, &gate);
    for (i = 0; i < ran; i++) {
        stats_race(sim->stats, x[i].r == 0, x[i].o.reason);
        if (x[i].r == 0) {
            issued++;
            sim_write_serial(sim, x[i].e.serial);
        } else {
            o = x[i].o;
        }
    }
    if (issued == 1 && ran == n) {
        stats_ok(sim->stats, sim_now_ms() - start);
    } else {
        snprintf(o.reason, sizeof(o.reason), "%s",
                 ran < n       ? "local"
                 : issued == 0 ? "no-certificate"
                               : "several-certificates");
        snprintf(o.message, sizeof(o.message), "%lu of %lu enrollments got a certificate", issued,
                 ran);
        stats_failed(sim->stats, o.reason);
        sim_report_failure(sim, serial, "same-device", &o);
    }
    for (i = 0; i < n; i++)
        enrollment_cleanup(&x[i].e);
    pthread_cond_destroy(&gate.cv);
    pthread_mutex_destroy(&gate.mu);
    factory_device_free(dev);
}

void sim_race(struct sim *sim)
{
    unsigned long idx, n = sim->parallel < MAX_RACERS ? sim->parallel : MAX_RACERS;
    struct racer *x = calloc(n, sizeof(*x));

    if (x == NULL) {
        fprintf(stderr, "devid-fleetsim: out of memory for %lu racers\n", n);
        return;
    }
    for (idx = 0; idx < sim->devices; idx++)
        race_device(sim, idx, x, n);
    free(x);
}
