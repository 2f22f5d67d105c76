/* PROXY protocol v2 headers (verifier/core/proxy.c): proxy_parse on the
 * input, which must agree with itself on the header alone and ask for more,
 * within the header, on every shorter prefix; the forwarded address through
 * proxy_addr_format and proxy_acl_allows. The same bytes as text are a
 * proxy_from list for proxy_acl_parse. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "verifier/core/proxy.h"

static void check_prefixes(const uint8_t *data, const struct proxy_header *h)
{
    struct proxy_header again;
    enum proxy_found found;
    char why[256];
    size_t need, i;

    if (h->len < PROXY_V2_FIXED_LEN || h->len > PROXY_V2_MAX_LEN)
        abort();
    if (proxy_parse(&found, &again, &need, data, h->len, why, sizeof(why)) != 0 ||
        found != PROXY_HEADER || again.len != h->len || again.proxied != h->proxied ||
        memcmp(&again.src, &h->src, sizeof(h->src)) != 0)
        abort();
    for (i = 0; i < h->len; i++) {
        if (proxy_parse(&found, &again, &need, data, i, why, sizeof(why)) != 0 ||
            found != PROXY_INCOMPLETE || need <= i || need > h->len)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxy_header h;
    struct proxy_acl acl;
    enum proxy_found found;
    char why[256], text[1024], addr[PROXY_ADDR_LEN];
    size_t need = 0, n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
    int r;

    r = proxy_parse(&found, &h, &need, data, size, why, sizeof(why));
    if (r == 0 && found == PROXY_INCOMPLETE && need <= size)
        abort();
    if (r == 0 && found == PROXY_HEADER)
        check_prefixes(data, &h);
    if (r == 0 && found == PROXY_HEADER && h.proxied)
        proxy_addr_format(addr, sizeof(addr), (const struct sockaddr *)&h.src);
    memcpy(text, data, n);
    text[n] = '\0';
    if (proxy_acl_parse(&acl, text, why, sizeof(why)) == 0 && acl.n > PROXY_ACL_MAX)
        abort();
    if (r == 0 && found == PROXY_HEADER)
        proxy_acl_allows(&acl, (const struct sockaddr *)&h.src);
    return 0;
}
