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

/* One [assurance "MFR"] or [assurance "MFR" "MODEL"] rule; model NULL for
 * the manufacturer's. */
struct policy_minimum {
    char *manufacturer;
    char *model;
    enum assurance level;
};

struct policy {
    struct policy_strs lists[POLICY_LISTS];
    /* Every trusted manufacturer may enroll unless the allow list is used. */
    bool any_manufacturer;
    bool reenroll;
    /* The minimum of every device no rule below names, and whether a file
     * set it ([assurance] minimum, or [policy] require_iak). */
    enum assurance minimum;
    bool minimum_set;
    struct policy_minimum *mins;
    size_t n_mins, cap_mins;
};

struct policy *policy_new(void)
{
    struct policy *p = OPENSSL_zalloc(sizeof(struct policy));

    if (p != NULL) {
        p->any_manufacturer = true;
        p->reenroll = true;
        p->minimum = POLICY_DEFAULT_MINIMUM;
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
    for (i = 0; i < p->n_mins; i++) {
        OPENSSL_free(p->mins[i].manufacturer);
        OPENSSL_free(p->mins[i].model);
    }
    OPENSSL_free(p->mins);
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

static int name_ok(const char *s)
{
    size_t n = s == NULL ? 0 : strlen(s);

    return n > 0 && n <= POLICY_MAX_VALUE;
}

static int same_name(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

int policy_set_minimum(struct policy *p, const char *manufacturer, const char *model,
                       enum assurance level)
{
    struct policy_minimum *m, *nv;
    size_t i, cap;

    if (p == NULL || (unsigned)level >= ASSURANCE_LEVELS)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (manufacturer == NULL) {
        if (model != NULL)
            return DEVID_ERR_CONFIG;
        p->minimum = level;
        return 0;
    }
    if (!name_ok(manufacturer) || (model != NULL && !name_ok(model)))
        return DEVID_ERR_CONFIG;
    for (i = 0; i < p->n_mins; i++) {
        if (strcmp(p->mins[i].manufacturer, manufacturer) == 0 &&
            same_name(p->mins[i].model, model)) {
            p->mins[i].level = level;
            return 0;
        }
    }
    if (p->n_mins >= POLICY_MAX_MINIMUMS)
        return DEVID_ERR_TOO_LARGE;
    if (p->n_mins == p->cap_mins) {
        cap = p->cap_mins == 0 ? 8 : p->cap_mins * 2;
        if ((nv = OPENSSL_realloc(p->mins, cap * sizeof(*nv))) == NULL)
            return DEVID_ERR_ALLOC;
        p->mins = nv;
        p->cap_mins = cap;
    }
    m = &p->mins[p->n_mins];
    memset(m, 0, sizeof(*m));
    if ((m->manufacturer = OPENSSL_strdup(manufacturer)) == NULL ||
        (model != NULL && (m->model = OPENSSL_strdup(model)) == NULL)) {
        OPENSSL_free(m->manufacturer);
        return DEVID_ERR_ALLOC;
    }
    m->level = level;
    p->n_mins++;
    return 0;
}

enum assurance policy_minimum(const struct policy *p, const struct device_identity *id, char *rule,
                              size_t rule_len)
{
    const struct policy_minimum *mfr = NULL;
    size_t i;

    if (rule != NULL && rule_len > 0)
        rule[0] = '\0';
    if (p == NULL || id == NULL)
        return ASSURANCE_IAK;
    for (i = 0; i < p->n_mins; i++) {
        const struct policy_minimum *m = &p->mins[i];
        if (strcmp(m->manufacturer, id->manufacturer) != 0)
            continue;
        if (m->model == NULL) {
            mfr = m;
        } else if (strcmp(m->model, id->model) == 0) {
            if (rule != NULL)
                snprintf(rule, rule_len, "[assurance \"%s\" \"%s\"]", m->manufacturer, m->model);
            return m->level;
        }
    }
    if (mfr != NULL) {
        if (rule != NULL)
            snprintf(rule, rule_len, "[assurance \"%s\"]", mfr->manufacturer);
        return mfr->level;
    }
    if (rule != NULL)
        snprintf(rule, rule_len, "%s", p->minimum_set ? "[assurance]" : "the default");
    return p->minimum;
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

int policy_check_assurance(const struct policy *p, const struct device_identity *id,
                           enum assurance level, char *why, size_t why_len)
{
    enum assurance min;
    char rule[2 * POLICY_MAX_VALUE + 32];

    if (p == NULL || id == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    why[0] = '\0';
    min = policy_minimum(p, id, rule, sizeof(rule));
    if (level >= min)
        return 0;
    snprintf(why, why_len, "assurance %s is below minimum %s (%s, model \"%s\" of \"%s\"): %s",
             assurance_str(level), assurance_str(min), rule, id->model, id->manufacturer,
             level == ASSURANCE_NONE
                 ? "the certify evidence is signed by the unrestricted IDevID key, which proves "
                   "possession of the IDevID but not where the new key lives; certify with the "
                   "device's IAK"
                 : "the evidence does not reach the required level");
    return DEVID_ERR_POLICY_DENIED;
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

/* Reads a "quoted" name of printable ASCII (no quote) at |*s| into |out|
 * and moves |*s| past it. Returns 0 or -1. */
static int quoted(char *out, size_t len, const char **s)
{
    const char *p = *s;
    size_t n = 0;

    if (*p++ != '"')
        return -1;
    for (; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e || n + 1 >= len)
            return -1;
        out[n++] = *p;
    }
    out[n] = '\0';
    *s = p + 1;
    return n > 0 ? 0 : -1;
}

/* [assurance], [assurance "MFR"] or [assurance "MFR" "MODEL"]: minimum. */
static int on_assurance_key(struct policy *p, const char *section, const char *key,
                            const char *value, char *err, size_t err_len)
{
    char mfr[POLICY_MAX_VALUE + 1], model[POLICY_MAX_VALUE + 1];
    const char *s = section + 9;
    enum assurance level;
    int has_mfr = 0, has_model = 0, r;

    if (*s == ' ') {
        s++;
        if (quoted(mfr, sizeof(mfr), &s) != 0)
            goto bad_section;
        has_mfr = 1;
        if (*s == ' ') {
            s++;
            if (quoted(model, sizeof(model), &s) != 0)
                goto bad_section;
            has_model = 1;
        }
    }
    if (*s != '\0')
        goto bad_section;
    if (strcmp(key, "minimum") != 0) {
        snprintf(err, err_len, "unknown key \"%s\" in section [%.300s] (want minimum)", key,
                 section);
        return -1;
    }
    if (assurance_parse(&level, value) != 0) {
        snprintf(err, err_len, "key \"minimum\": value \"%.64s\" is not none, ek or iak", value);
        return -1;
    }
    if (!has_mfr && p->minimum_set) {
        snprintf(err, err_len,
                 "key \"minimum\": the default minimum is already set (by [assurance] or "
                 "[policy] require_iak)");
        return -1;
    }
    if ((r = policy_set_minimum(p, has_mfr ? mfr : NULL, has_model ? model : NULL, level)) != 0) {
        snprintf(err, err_len, "key \"minimum\": %s",
                 r == DEVID_ERR_TOO_LARGE ? "more than 4096 [assurance] rules" : "out of memory");
        return -1;
    }
    if (!has_mfr)
        p->minimum_set = true;
    return 0;
bad_section:
    snprintf(err, err_len,
             "section [%.300s]: want [assurance], [assurance \"MANUFACTURER\"] or [assurance "
             "\"MANUFACTURER\" \"MODEL\"] (printable names of 1 to %d characters, no quotes)",
             section, POLICY_MAX_VALUE);
    return -1;
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

    if (strncmp(section, "assurance", 9) == 0)
        return on_assurance_key(p, section, key, value, err, err_len);
    if (strcmp(section, "policy") != 0 && strcmp(section, "denylist") != 0) {
        snprintf(err, err_len,
                 "key \"%s\" in unknown section [%s] (want [policy], [denylist] or [assurance])",
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
        if (p->minimum_set) {
            snprintf(err, err_len,
                     "key \"require_iak\": the default minimum is already set; use [assurance] "
                     "minimum only");
            return -1;
        }
        p->minimum = b != 0 ? ASSURANCE_IAK : ASSURANCE_NONE;
        p->minimum_set = true;
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
