#include "verifier/core/policy.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/conf.h"
#include "common/err.h"

#define POLICY_LISTS 8
#define POLICY_MAX_ENTRIES 4096
#define POLICY_MAX_VALUE 256

struct policy_strs {
    char **v;
    size_t n;
    size_t cap;
};

struct policy {
    struct policy_strs lists[POLICY_LISTS];
    /* Every trusted manufacturer may enroll unless the allow list is used. */
    bool any_manufacturer;
    bool require_iak;
    bool reenroll;
};

struct policy *policy_new(void)
{
    struct policy *p = OPENSSL_zalloc(sizeof(struct policy));

    if (p != NULL) {
        p->any_manufacturer = true;
        p->reenroll = true;
    }
    return p;
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

/* Normalizes a fingerprint to 64 lowercase hex digits in |out|. */
static int norm_fingerprint(char out[65], const char *in)
{
    size_t n = 0;

    for (; *in != '\0'; in++) {
        if (*in == ':')
            continue;
        if (!isxdigit((unsigned char)*in) || n >= 64)
            return -1;
        out[n++] = (char)tolower((unsigned char)*in);
    }
    out[n] = '\0';
    return n == 64 ? 0 : -1;
}

int policy_add(struct policy *p, enum policy_list list, const char *value)
{
    struct policy_strs *l;
    char **nv;
    char *copy = NULL;
    char fp[65];
    size_t cap, len;
    int r = DEVID_ERR_INTERNAL;

    if (p == NULL || value == NULL || (unsigned)list >= POLICY_LISTS)
        return DEVID_ERR_INVALID_ARGUMENT;
    len = strlen(value);
    if (len == 0 || len > POLICY_MAX_VALUE)
        return DEVID_ERR_CONFIG;
    if (list == POLICY_DENYLIST_FINGERPRINT) {
        if (norm_fingerprint(fp, value) != 0)
            return DEVID_ERR_CONFIG;
        value = fp;
        len = 64;
    }
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
    if (list == POLICY_ALLOW_MANUFACTURER)
        p->any_manufacturer = false;
    r = 0;
out:
    OPENSSL_free(copy);
    return r;
}

void policy_set_require_iak(struct policy *p, bool require_iak)
{
    if (p != NULL)
        p->require_iak = require_iak;
}

bool policy_require_iak(const struct policy *p)
{
    return p != NULL && p->require_iak;
}

void policy_set_reenroll(struct policy *p, bool allow)
{
    if (p != NULL)
        p->reenroll = allow;
}

bool policy_reenroll(const struct policy *p)
{
    return p != NULL && p->reenroll;
}

const char *policy_get0_manufacturer(const struct policy *p, size_t i)
{
    const struct policy_strs *a, *d;

    if (p == NULL)
        return NULL;
    a = &p->lists[POLICY_ALLOW_MANUFACTURER];
    d = &p->lists[POLICY_DENY_MANUFACTURER];
    if (i < a->n)
        return a->v[i];
    if (i - a->n < d->n)
        return d->v[i - a->n];
    return NULL;
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
    if (!p->any_manufacturer && p->lists[POLICY_ALLOW_MANUFACTURER].n == 0) {
        snprintf(why, why_len, "manufacturer \"%s\" is not allowed: the policy allows none",
                 id->manufacturer);
        r = DEVID_ERR_POLICY_DENIED;
        goto out;
    }
    if ((r = check_field(p, POLICY_ALLOW_MANUFACTURER, POLICY_DENY_MANUFACTURER, 0, "manufacturer",
                         id->manufacturer, why, why_len)) != 0)
        goto out;
    if ((r = check_field(p, POLICY_ALLOW_MODEL, POLICY_DENY_MODEL, 0, "model", id->model, why,
                         why_len)) != 0)
        goto out;
    if ((r = check_field(p, POLICY_ALLOW_SERIAL, POLICY_DENY_SERIAL, 1, "serial", id->serial, why,
                         why_len)) != 0)
        goto out;
    if (find(&p->lists[POLICY_DENYLIST_SERIAL], id->serial, 0) != NULL) {
        snprintf(why, why_len, "serial \"%s\" is on the local deny list", id->serial);
        r = DEVID_ERR_POLICY_DENIED;
        goto out;
    }
    if (id->fingerprint[0] != '\0' &&
        find(&p->lists[POLICY_DENYLIST_FINGERPRINT], id->fingerprint, 0) != NULL) {
        snprintf(why, why_len,
                 "IDevID certificate fingerprint (SHA-256) %s of serial \"%s\" is on the local "
                 "deny list",
                 id->fingerprint, id->serial);
        r = DEVID_ERR_POLICY_DENIED;
        goto out;
    }
    r = 0;
out:
    return r;
}

int policy_check_signer(const struct policy *p, bool iak_restricted, char *why, size_t why_len)
{
    if (p == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    why[0] = '\0';
    if (p->require_iak && !iak_restricted) {
        snprintf(why, why_len,
                 "require_iak = yes: the certify evidence is signed by the unrestricted IDevID "
                 "key, not by a restricted IAK");
        return DEVID_ERR_POLICY_DENIED;
    }
    return 0;
}

int policy_check_reenroll(const struct policy *p, const struct device_identity *id,
                          bool already_enrolled, char *why, size_t why_len)
{
    if (p == NULL || id == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    why[0] = '\0';
    if (already_enrolled && !p->reenroll) {
        snprintf(why, why_len, "serial \"%s\" of \"%s\" is already enrolled and reenroll = deny",
                 id->serial, id->manufacturer);
        return DEVID_ERR_POLICY_DENIED;
    }
    return 0;
}

static int on_policy_key(void *arg, const char *section, const char *key, const char *value,
                         char *err, size_t err_len)
{
    static const struct {
        const char *section, *key;
        enum policy_list list;
    } lists[] = {
        {"policy", "allow_manufacturer", POLICY_ALLOW_MANUFACTURER},
        {"policy", "deny_manufacturer", POLICY_DENY_MANUFACTURER},
        {"policy", "allow_model", POLICY_ALLOW_MODEL},
        {"policy", "deny_model", POLICY_DENY_MODEL},
        {"policy", "allow_serial", POLICY_ALLOW_SERIAL},
        {"policy", "deny_serial", POLICY_DENY_SERIAL},
        {"denylist", "serial", POLICY_DENYLIST_SERIAL},
        {"denylist", "fingerprint", POLICY_DENYLIST_FINGERPRINT},
    };
    struct policy *p = arg;
    size_t i;
    int b, r;

    if (strcmp(section, "policy") != 0 && strcmp(section, "denylist") != 0) {
        snprintf(err, err_len, "key \"%s\" in unknown section [%s] (want [policy] or [denylist])",
                 key, section);
        return -1;
    }
    for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        if (strcmp(section, lists[i].section) != 0 || strcmp(key, lists[i].key) != 0)
            continue;
        if ((r = policy_add(p, lists[i].list, value)) != 0) {
            snprintf(err, err_len, "key \"%s\": value \"%.64s\" is %s", key, value,
                     r == DEVID_ERR_TOO_LARGE ? "one too many"
                     : lists[i].list == POLICY_DENYLIST_FINGERPRINT
                         ? "not a SHA-256 fingerprint (64 hex digits, colons allowed)"
                         : "empty or longer than 256 characters");
            return -1;
        }
        return 0;
    }
    if (strcmp(section, "policy") == 0 && strcmp(key, "reenroll") == 0) {
        if (strcmp(value, "allow") != 0 && strcmp(value, "deny") != 0) {
            snprintf(err, err_len, "key \"reenroll\": value \"%.64s\" is not allow or deny", value);
            return -1;
        }
        p->reenroll = strcmp(value, "allow") == 0;
        return 0;
    }
    if (strcmp(section, "policy") == 0 && strcmp(key, "require_iak") == 0) {
        if (conf_bool(value, &b) != 0) {
            snprintf(err, err_len, "key \"require_iak\": value \"%.64s\" is not yes or no", value);
            return -1;
        }
        p->require_iak = b != 0;
        return 0;
    }
    snprintf(err, err_len, "unknown key \"%s\" in section [%s]", key, section);
    return -1;
}

int policy_parse(struct policy **out, const char *buf, size_t len, const char *file, char *why,
                 size_t why_len)
{
    struct policy *p = NULL;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || buf == NULL || file == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    why[0] = '\0';
    if ((p = policy_new()) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    p->any_manufacturer = false;
    if ((r = conf_parse(buf, len, file, on_policy_key, p, why, why_len)) != 0)
        goto out;
    *out = p;
    p = NULL;
    r = 0;
out:
    policy_free(p);
    return r;
}
