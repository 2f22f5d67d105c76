#include "verifier/core/srclimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int srclimit_init(struct srclimit *t, size_t slots, int per_source)
{
    memset(t, 0, sizeof(*t));
    if (slots == 0 || per_source < 1)
        return DEVID_ERR_INVALID_ARGUMENT;
    if ((t->e = calloc(slots, sizeof(*t->e))) == NULL)
        return DEVID_ERR_ALLOC;
    t->cap = slots;
    t->per_source = per_source;
    return 0;
}

void srclimit_cleanup(struct srclimit *t)
{
    if (t == NULL)
        return;
    free(t->e);
    memset(t, 0, sizeof(*t));
}

void srclimit_source(char out[SRCLIMIT_ADDR_MAX], const char *peer)
{
    const char *colon = strrchr(peer, ':');
    size_t n = strlen(peer);

    /* "ADDR:PORT" with one colon, or "[ADDR]:PORT". */
    if (colon != NULL && (strchr(peer, ':') == colon || (peer[0] == '[' && colon[-1] == ']')))
        n = (size_t)(colon - peer);
    if (n >= SRCLIMIT_ADDR_MAX)
        n = SRCLIMIT_ADDR_MAX - 1;
    memcpy(out, peer, n);
    out[n] = '\0';
}

static struct srclimit_entry *find(const struct srclimit *t, const char *source)
{
    size_t i;

    for (i = 0; i < t->used; i++) {
        if (strcmp(t->e[i].addr, source) == 0)
            return &t->e[i];
    }
    return NULL;
}

int srclimit_take(struct srclimit *t, const char *source)
{
    struct srclimit_entry *e = find(t, source);

    if (e != NULL) {
        if (e->n >= t->per_source)
            return DEVID_ERR_REFUSED;
        e->n++;
        return 0;
    }
    if (t->used == t->cap)
        return DEVID_ERR_REFUSED;
    e = &t->e[t->used++];
    snprintf(e->addr, sizeof(e->addr), "%s", source);
    e->n = 1;
    return 0;
}

void srclimit_give(struct srclimit *t, const char *source)
{
    struct srclimit_entry *e = find(t, source);

    if (e == NULL || --e->n > 0)
        return;
    /* The last entry takes the freed place: the table stays dense. */
    *e = t->e[--t->used];
    memset(&t->e[t->used], 0, sizeof(t->e[t->used]));
}

int srclimit_held(const struct srclimit *t, const char *source)
{
    const struct srclimit_entry *e = find(t, source);

    return e != NULL ? e->n : 0;
}
