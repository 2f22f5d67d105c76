/* HTTP request heads from the network: httphead_parse with the verifier's
 * default limits, and what its verdict promises: an accepted head lies
 * within the input and the limits and names a route; every strict prefix of
 * it is only incomplete; a refusal has one of the documented statuses, a
 * reason and a close. A broken promise aborts. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "verifier/core/httphead.h"

static const struct httphead_limits lim = {8192, 32, 1024, 64 * 1024};

static void check_refusal(const struct httphead *h)
{
    switch (h->status) {
        case 400:
        case 404:
        case 411:
        case 413:
        case 414:
        case 415:
        case 417:
        case 431:
        case 505:
            break;
        case 405:
            if (h->allow == NULL)
                abort();
            break;
        default:
            abort();
    }
    if (!h->close || h->why[0] == '\0')
        abort();
}

static void check_accepted(const struct httphead *h, const uint8_t *data, size_t size)
{
    struct httphead prefix;

    if (h->head_len > size || h->head_len > lim.max_head || h->route == HTTPHEAD_ROUTE_NONE)
        abort();
    if ((h->route == HTTPHEAD_ROUTE_CHALLENGE && h->content_length > lim.max_body_challenge) ||
        (h->route == HTTPHEAD_ROUTE_ENROLL && h->content_length > lim.max_body_enroll) ||
        ((h->route == HTTPHEAD_ROUTE_CRL || h->route == HTTPHEAD_ROUTE_LOG_HEAD) &&
         h->content_length != 0))
        abort();
    if (httphead_parse(&prefix, (const char *)data, h->head_len - 1, &lim) != 0 || prefix.complete)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct httphead h;
    int r = httphead_parse(&h, (const char *)data, size, &lim);

    if (r != 0)
        check_refusal(&h);
    else if (h.complete)
        check_accepted(&h, data, size);
    return 0;
}
