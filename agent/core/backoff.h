/* The retry schedule: exponential backoff with full jitter, bounded by a
 * deadline, honouring the server's Retry-After. Pure: the caller passes the
 * elapsed time and the random value. */
#ifndef DEVID_AGENT_CORE_BACKOFF_H
#define DEVID_AGENT_CORE_BACKOFF_H

#include <stdint.h>

struct backoff_policy {
    uint64_t initial_ms;  /* ceiling of the first wait */
    uint64_t max_ms;      /* the ceiling never grows past this */
    uint64_t deadline_ms; /* no wait may end after this much time since the start */
};

/* backoff_ceiling_ms returns min(|p->max_ms|, |p->initial_ms| * 2^|attempt|),
 * the upper bound of the wait after failed attempt number |attempt| (0-based). */
uint64_t backoff_ceiling_ms(const struct backoff_policy *p, unsigned attempt);

/*
 * backoff_next sets |*delay_ms| to the wait after failed attempt |attempt|
 * (0-based): |rnd| / 2^32 of the ceiling (full jitter; |rnd| comes from the
 * caller's random source), but at least |retry_after_ms| (the server's
 * Retry-After, 0 if none). |elapsed_ms| is the time since the run began.
 * A jittered wait that would pass the deadline is cut to end at it. Returns 0,
 * or DEVID_ERR_NOT_FOUND when no retry fits: the deadline has passed, or the
 * server's Retry-After ends after it (|*delay_ms| is then the Retry-After).
 */
int backoff_next(uint64_t *delay_ms, const struct backoff_policy *p, unsigned attempt,
                 uint64_t retry_after_ms, uint64_t elapsed_ms, uint32_t rnd);

#endif
