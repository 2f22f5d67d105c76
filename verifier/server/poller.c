#include "verifier/server/poller.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/io/log.h"

static void *poller_main(void *arg)
{
    struct poller *p = arg;
    struct timespec until;

    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += p->seconds;
        while (!p->stop && pthread_cond_timedwait(&p->wake, &p->mu, &until) != ETIMEDOUT)
            ;
        if (p->stop)
            break;
        pthread_mutex_unlock(&p->mu);
        p->tick(p->arg);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int init_sync(struct poller *p)
{
    pthread_condattr_t attr;
    int ok;

    if (pthread_condattr_init(&attr) != 0)
        return DEVID_ERR_INTERNAL;
    ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
         pthread_cond_init(&p->wake, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (!ok)
        return DEVID_ERR_INTERNAL;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        pthread_cond_destroy(&p->wake);
        return DEVID_ERR_INTERNAL;
    }
    p->sync = 1;
    return 0;
}

int poller_start(struct poller *p, const char *what, int seconds, void (*tick)(void *arg),
                 void *arg)
{
    sigset_t block, old;

    memset(p, 0, sizeof(*p));
    p->seconds = seconds;
    p->tick = tick;
    p->arg = arg;
    if (init_sync(p) != 0) {
        log_err("cannot start %s: no mutex or condition variable", what);
        return DEVID_ERR_INTERNAL;
    }
    sigfillset(&block);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    p->started = pthread_create(&p->thread, NULL, poller_main, p) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!p->started) {
        log_err("cannot start %s", what);
        return DEVID_ERR_INTERNAL;
    }
    return 0;
}

void poller_stop(struct poller *p)
{
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        p->started = 0;
    }
    if (p->sync) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->mu);
        p->sync = 0;
    }
}
