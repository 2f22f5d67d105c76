/* Handshake slots per source address, so that one source cannot take every
 * slot of [limits] max_handshakes (a client that sends a ClientHello and
 * then stalls holds its slot until the handshake deadline).
 *
 * The table holds one entry per source with a handshake in flight: at most
 * as many entries as slots, so it never needs more room than the global
 * limit gives it. A source is its address without the port, as the logs show
 * it: the socket's peer, or the address a load balancer forwarded in a
 * PROXY header. Pure; the caller serializes access. */
#ifndef DEVID_VERIFIER_CORE_SRCLIMIT_H
#define DEVID_VERIFIER_CORE_SRCLIMIT_H

#include <stddef.h>

/* Longest source address kept (an IPv6 address in brackets fits). */
#define SRCLIMIT_ADDR_MAX 64

struct srclimit_entry {
    char addr[SRCLIMIT_ADDR_MAX];
    int n;
};

struct srclimit {
    struct srclimit_entry *e;
    size_t cap, used;
    int per_source;
};

/* srclimit_init sizes |t| for |slots| handshakes in flight, at most
 * |per_source| of them from one source. Returns 0 or DEVID_ERR_ALLOC. */
int srclimit_init(struct srclimit *t, size_t slots, int per_source);

/* srclimit_cleanup frees what |t| holds. */
void srclimit_cleanup(struct srclimit *t);

/*
 * srclimit_source writes the source of |peer| ("ADDR:PORT", "[ADDR]:PORT",
 * or anything else, taken whole) to |out| (SRCLIMIT_ADDR_MAX bytes).
 */
void srclimit_source(char out[SRCLIMIT_ADDR_MAX], const char *peer);

/*
 * srclimit_take takes a slot for |source|: returns 0, or DEVID_ERR_REFUSED
 * when the source holds per_source slots already or the table is full (more
 * handshakes than it was sized for; the global limit comes first).
 */
int srclimit_take(struct srclimit *t, const char *source);

/* srclimit_give returns a slot |source| took. */
void srclimit_give(struct srclimit *t, const char *source);

/* srclimit_held returns the slots |source| holds. */
int srclimit_held(const struct srclimit *t, const char *source);

#endif
