#include "agent/core/backoff.h"

#include <stddef.h>

#include "common/err.h"

uint64_t backoff_ceiling_ms(const struct backoff_policy *p, unsigned attempt)
{
    uint64_t c = p->initial_ms;
    unsigned i;

    for (i = 0; i < attempt && c < p->max_ms; i++)
        c = c > UINT64_MAX / 2 ? UINT64_MAX : c * 2;
    return c < p->max_ms ? c : p->max_ms;
}

int backoff_next(uint64_t *delay_ms, const struct backoff_policy *p, unsigned attempt,
                 uint64_t retry_after_ms, uint64_t elapsed_ms, uint32_t rnd)
{
    uint64_t ceiling, d, left;

    if (delay_ms == NULL || p == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *delay_ms = 0;
    if (elapsed_ms >= p->deadline_ms)
        return DEVID_ERR_NOT_FOUND;
    left = p->deadline_ms - elapsed_ms;
    ceiling = backoff_ceiling_ms(p, attempt);
    /* ceiling * rnd / 2^32 without overflow: ceiling < 2^32 in any sane policy,
     * but split it anyway. */
    d = (ceiling >> 32) * rnd + (((ceiling & 0xffffffffu) * rnd) >> 32);
    if (retry_after_ms > 0) {
        if (retry_after_ms >= left) {
            *delay_ms = retry_after_ms;
            return DEVID_ERR_NOT_FOUND;
        }
        if (d < retry_after_ms)
            d = retry_after_ms;
    }
    if (d > left)
        d = left;
    *delay_ms = d;
    return 0;
}
