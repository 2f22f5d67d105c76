/* A background thread that runs one task every few seconds until stopped:
 * the CRL cache and the issuance log's sequencer. It takes no signals (the
 * control thread owns them) and waits on the monotonic clock. */
#ifndef DEVID_VERIFIER_SERVER_POLLER_H
#define DEVID_VERIFIER_SERVER_POLLER_H

#include <pthread.h>

struct poller {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    int stop, started, sync;
    int seconds;
    void (*tick)(void *arg);
    void *arg;
};

/*
 * poller_start runs |tick(arg)| every |seconds| on a new thread. |p| is the
 * caller's (zeroed or not). Returns 0, or DEVID_ERR_INTERNAL with the
 * reason logged naming |what| ("the CRL thread").
 */
int poller_start(struct poller *p, const char *what, int seconds, void (*tick)(void *arg),
                 void *arg);

/* poller_stop wakes the thread, waits for the tick in progress and joins
 * it; a poller that did not start is only cleaned up. */
void poller_stop(struct poller *p);

#endif
