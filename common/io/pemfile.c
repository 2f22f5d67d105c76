#include "common/io/pemfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/io/store.h"
#include "common/pem.h"

int pemfile_read_certs(STACK_OF(X509) **out, const char *path, size_t max, char *why,
                       size_t why_len)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char reason[256];
    int r;

    if (out == NULL || path == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((r = store_read(&buf, &len, path, PEMFILE_MAX, why, why_len)) != 0)
        return r;
    if ((r = pem_parse_certs(out, buf, len, max, 0, reason, sizeof(reason))) != 0)
        snprintf(why, why_len, "%s: %s", path, reason);
    free(buf);
    return r;
}
