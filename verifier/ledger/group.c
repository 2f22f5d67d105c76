#include "verifier/ledger/group.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/io/log.h"

/* One queued transaction; its caller waits on |cv| until it is done or it
 * is its turn to lead. */
struct request {
    int (*body)(struct ledger *l, void *arg);
    void *arg;
    int r;
    int done;
    pthread_cond_t cv;
    struct request *next;
};

struct ledger_group {
    char key[512];
    int refs;
    /* The group's own handle, on which every shared transaction runs: one
     * connection, so its cache stays warm whoever leads. */
    struct ledger *writer;
    pthread_mutex_t mu;
    /* Waiting to be run, oldest first. */
    struct request *head, **tail;
    int leading;
    struct ledger_group *next;
};

static pthread_mutex_t groups_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ledger_group *groups;

int ledger_group_join(struct ledger_group **out, const char *key,
                      int (*open_writer)(struct ledger **writer, void *arg), void *arg)
{
    struct ledger_group *g;
    int r = 0;

    *out = NULL;
    pthread_mutex_lock(&groups_mu);
    for (g = groups; g != NULL; g = g->next) {
        if (strcmp(g->key, key) == 0)
            break;
    }
    if (g == NULL) {
        if ((g = calloc(1, sizeof(*g))) == NULL) {
            r = DEVID_ERR_ALLOC;
        } else if ((r = open_writer(&g->writer, arg)) != 0) {
            free(g);
            g = NULL;
        } else {
            snprintf(g->key, sizeof(g->key), "%s", key);
            pthread_mutex_init(&g->mu, NULL);
            g->tail = &g->head;
            g->next = groups;
            groups = g;
        }
    }
    if (g != NULL)
        g->refs++;
    pthread_mutex_unlock(&groups_mu);
    *out = g;
    return r;
}

void ledger_group_leave(struct ledger_group *g)
{
    struct ledger_group **p;

    if (g == NULL)
        return;
    pthread_mutex_lock(&groups_mu);
    if (--g->refs > 0) {
        pthread_mutex_unlock(&groups_mu);
        return;
    }
    for (p = &groups; *p != NULL; p = &(*p)->next) {
        if (*p == g) {
            *p = g->next;
            break;
        }
    }
    pthread_mutex_unlock(&groups_mu);
    g->writer->driver->free(g->writer);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

/* run_one runs |q|'s body in a savepoint; 0, or DEVID_ERR_LEDGER when the
 * savepoint itself failed and the shared transaction cannot go on. */
static int run_one(struct ledger *l, struct request *q)
{
    const struct ledger_driver *d = l->driver;

    if (d->script(l, "SAVEPOINT grouped", "starting a grouped transaction") != 0)
        return DEVID_ERR_LEDGER;
    q->r = q->body(l, q->arg);
    if (q->r != 0 && d->script(l, "ROLLBACK TO grouped", "rolling back a grouped transaction") != 0)
        return DEVID_ERR_LEDGER;
    return d->script(l, "RELEASE grouped", "ending a grouped transaction");
}

/* run_batch runs |batch| in one transaction on |l| and commits it; each
 * request's r gets its outcome. */
static void run_batch(struct ledger *l, struct request *batch)
{
    const struct ledger_driver *d = l->driver;
    struct request *q;
    int r;

    if ((r = d->begin(l, 1)) == 0) {
        for (q = batch; q != NULL && r == 0; q = q->next)
            r = run_one(l, q);
    }
    if (r == 0 && (r = d->commit(l)) == 0)
        return;
    d->rollback(l);
    for (q = batch; q != NULL; q = q->next)
        q->r = DEVID_ERR_LEDGER;
}

int ledger_group_transaction(struct ledger_group *g, int (*body)(struct ledger *l, void *arg),
                             void *arg)
{
    struct request self = {body, arg, 0, 0, PTHREAD_COND_INITIALIZER, NULL};
    struct request *batch, *q, *next, **cut;
    int n;

    pthread_mutex_lock(&g->mu);
    *g->tail = &self;
    g->tail = &self.next;
    while (g->leading && !self.done)
        pthread_cond_wait(&self.cv, &g->mu);
    if (!self.done) {
        /* No commit under way: lead one with whatever is queued. */
        g->leading = 1;
        batch = g->head;
        for (cut = &g->head, n = 0; *cut != NULL && n < GROUP_MAX_BATCH; n++)
            cut = &(*cut)->next;
        g->head = *cut;
        *cut = NULL;
        if (g->head == NULL)
            g->tail = &g->head;
        pthread_mutex_unlock(&g->mu);
        run_batch(g->writer, batch);
        pthread_mutex_lock(&g->mu);
        for (q = batch; q != NULL; q = next) {
            next = q->next;
            q->done = 1;
            if (q != &self)
                pthread_cond_signal(&q->cv);
        }
        g->leading = 0;
        /* The oldest waiter leads the next commit. */
        if (g->head != NULL)
            pthread_cond_signal(&g->head->cv);
    }
    pthread_mutex_unlock(&g->mu);
    pthread_cond_destroy(&self.cv);
    return self.r;
}
