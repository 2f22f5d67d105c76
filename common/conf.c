#include "common/conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>
#include <openssl/crypto.h>

#include "common/err.h"

struct conf_ctx {
    conf_handler handler;
    void *arg;
    char err[256];
    int failed;
};

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct conf_ctx *c = user;

    if (c->failed)
        return 1;
    if (c->handler(c->arg, section, name, value, c->err, sizeof(c->err)) != 0) {
        if (c->err[0] == '\0')
            snprintf(c->err, sizeof(c->err), "key \"%s\" is not valid here", name);
        c->failed = 1;
        return 0;
    }
    return 1;
}

int conf_parse(const char *buf, size_t len, const char *file, conf_handler handler, void *arg,
               char *why, size_t why_len)
{
    struct conf_ctx c;
    char *copy = NULL;
    size_t i, col = 0, line = 1;
    int n, r = DEVID_ERR_CONFIG;

    if (buf == NULL || file == NULL || handler == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    why[0] = '\0';
    memset(&c, 0, sizeof(c));
    c.handler = handler;
    c.arg = arg;
    if (len > CONF_MAX_SIZE) {
        snprintf(why, why_len, "%s: larger than %d bytes", file, CONF_MAX_SIZE);
        goto out;
    }
    for (i = 0; i < len; i++) {
        if (buf[i] == '\0') {
            snprintf(why, why_len, "%s:%zu: NUL byte", file, line);
            goto out;
        }
        if (buf[i] == '\n') {
            line++;
            col = 0;
        } else if (++col > CONF_MAX_LINE) {
            snprintf(why, why_len, "%s:%zu: line longer than %d characters", file, line,
                     CONF_MAX_LINE);
            goto out;
        }
    }
    if ((copy = OPENSSL_malloc(len + 1)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    memcpy(copy, buf, len);
    copy[len] = '\0';
    n = ini_parse_string(copy, on_key, &c);
    if (n == -2) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if (n != 0) {
        snprintf(why, why_len, "%s:%d: %s", file, n,
                 c.failed ? c.err : "syntax error (expected [section], key = value or a comment)");
        goto out;
    }
    r = 0;
out:
    OPENSSL_free(copy);
    return r;
}

int conf_bool(const char *value, int *out)
{
    static const char *yes[] = {"yes", "true", "on", "1"}, *no[] = {"no", "false", "off", "0"};
    size_t i;

    for (i = 0; i < 4; i++) {
        if (strcasecmp(value, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(value, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

int conf_uint(const char *value, unsigned min, unsigned max, unsigned *out)
{
    unsigned long long v;
    char *end = NULL;

    if (value[0] < '0' || value[0] > '9')
        return -1;
    errno = 0;
    v = strtoull(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v < min || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}
