#include "verifier/policy.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/err.h"

#define POLICY_LISTS 4
#define POLICY_MAX_ENTRIES 4096
#define POLICY_MAX_VALUE 256

struct policy_strs {
    char **v;
    size_t n;
    size_t cap;
};

struct policy {
    struct policy_strs lists[POLICY_LISTS];
};

struct policy *policy_new(void)
{
    return OPENSSL_zalloc(sizeof(struct policy));
}

void policy_free(struct policy *p)
{
    size_t i, j;

    if (p == NULL)
        return;
    for (i = 0; i < POLICY_LISTS; i++) {
        for (j = 0; j < p->lists[i].n; j++)
            OPENSSL_free(p->lists[i].v[j]);
        OPENSSL_free(p->lists[i].v);
    }
    OPENSSL_free(p);
}

int policy_add(struct policy *p, enum policy_list list, const char *value)
{
    struct policy_strs *l;
    char **nv;
    char *copy = NULL;
    size_t cap, len;
    int r = DEVID_ERR_INTERNAL;

    if (p == NULL || value == NULL || (unsigned)list >= POLICY_LISTS)
        return DEVID_ERR_INVALID_ARGUMENT;
    len = strlen(value);
    if (len == 0 || len > POLICY_MAX_VALUE)
        return DEVID_ERR_CONFIG;
    l = &p->lists[list];
    if (l->n >= POLICY_MAX_ENTRIES)
        return DEVID_ERR_TOO_LARGE;
    if ((copy = OPENSSL_strndup(value, len)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if (l->n == l->cap) {
        cap = l->cap == 0 ? 8 : l->cap * 2;
        if ((nv = OPENSSL_realloc(l->v, cap * sizeof(*nv))) == NULL) {
            r = DEVID_ERR_ALLOC;
            goto out;
        }
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = copy;
    copy = NULL;
    r = 0;
out:
    OPENSSL_free(copy);
    return r;
}

/* Returns the first entry of |l| matching |value|, or NULL. */
static const char *find(const struct policy_strs *l, const char *value, int glob)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        if (glob ? fnmatch(l->v[i], value, 0) == 0 : strcmp(l->v[i], value) == 0)
            return l->v[i];
    }
    return NULL;
}

static int check_field(const struct policy *p, enum policy_list allow, enum policy_list deny,
                       int glob, const char *field, const char *value, char *why, size_t why_len)
{
    const char *rule;

    if ((rule = find(&p->lists[deny], value, glob)) != NULL) {
        snprintf(why, why_len, "%s \"%s\" matches deny rule \"%s\"", field, value, rule);
        return DEVID_ERR_POLICY_DENIED;
    }
    if (p->lists[allow].n > 0 && find(&p->lists[allow], value, glob) == NULL) {
        snprintf(why, why_len, "%s \"%s\" matches no allow rule (%zu configured)", field, value,
                 p->lists[allow].n);
        return DEVID_ERR_POLICY_DENIED;
    }
    return 0;
}

int policy_check(const struct policy *p, const struct device_identity *id, char *why,
                 size_t why_len)
{
    int r = DEVID_ERR_INTERNAL;

    if (p == NULL || id == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    why[0] = '\0';
    if ((r = check_field(p, POLICY_ALLOW_MODEL, POLICY_DENY_MODEL, 0, "model", id->model, why,
                         why_len)) != 0)
        goto out;
    if ((r = check_field(p, POLICY_ALLOW_SERIAL, POLICY_DENY_SERIAL, 1, "serial", id->serial, why,
                         why_len)) != 0)
        goto out;
    r = 0;
out:
    return r;
}
