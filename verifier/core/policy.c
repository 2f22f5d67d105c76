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

/* One pcr.N key of [assurance "MFR"] or [assurance "MFR" "MODEL"]. */
struct policy_pcr {
    char *manufacturer;
    char *model;
    unsigned index;
    uint8_t allowed[POLICY_MAX_PCR_VALUES][QUOTE_PCR_LEN];
    size_t n_allowed;
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
    struct policy_pcr *pcrs;
    size_t n_pcrs, cap_pcrs;
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
    for (i = 0; i < p->n_pcrs; i++) {
        OPENSSL_free(p->pcrs[i].manufacturer);
        OPENSSL_free(p->pcrs[i].model);
    }
    OPENSSL_free(p->pcrs);
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

/* The pcr.N rules that apply to |id|: those of its model's section when it
 * has any, else those of its manufacturer's. Sets |*model_rules|. */
static uint32_t pcr_rules(const struct policy *p, const struct device_identity *id,
                          bool *model_rules)
{
    uint32_t model_mask = 0, mfr_mask = 0;
    size_t i;

    for (i = 0; i < p->n_pcrs; i++) {
        const struct policy_pcr *r = &p->pcrs[i];
        if (strcmp(r->manufacturer, id->manufacturer) != 0)
            continue;
        if (r->model == NULL)
            mfr_mask |= 1u << r->index;
        else if (strcmp(r->model, id->model) == 0)
            model_mask |= 1u << r->index;
    }
    *model_rules = model_mask != 0;
    return model_mask != 0 ? model_mask : mfr_mask;
}

static struct policy_pcr *pcr_find(const struct policy *p, const char *manufacturer,
                                   const char *model, unsigned index)
{
    size_t i;

    for (i = 0; i < p->n_pcrs; i++) {
        struct policy_pcr *r = &p->pcrs[i];
        if (r->index == index && strcmp(r->manufacturer, manufacturer) == 0 &&
            same_name(r->model, model))
            return r;
    }
    return NULL;
}

int policy_add_pcr(struct policy *p, const char *manufacturer, const char *model, unsigned index,
                   const uint8_t value[QUOTE_PCR_LEN])
{
    struct policy_pcr *r, *nv;
    uint32_t mask = 0;
    size_t i, cap;

    if (p == NULL || value == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (!name_ok(manufacturer) || (model != NULL && !name_ok(model)) || index >= QUOTE_PCR_COUNT)
        return DEVID_ERR_CONFIG;
    if ((r = pcr_find(p, manufacturer, model, index)) == NULL) {
        for (i = 0; i < p->n_pcrs; i++) {
            if (strcmp(p->pcrs[i].manufacturer, manufacturer) == 0 &&
                same_name(p->pcrs[i].model, model))
                mask |= 1u << p->pcrs[i].index;
        }
        if (__builtin_popcount(mask) >= QUOTE_MAX_PCRS)
            return DEVID_ERR_CONFIG;
        if (p->n_pcrs >= POLICY_MAX_PCR_RULES)
            return DEVID_ERR_TOO_LARGE;
        if (p->n_pcrs == p->cap_pcrs) {
            cap = p->cap_pcrs == 0 ? 8 : p->cap_pcrs * 2;
            if ((nv = OPENSSL_realloc(p->pcrs, cap * sizeof(*nv))) == NULL)
                return DEVID_ERR_ALLOC;
            p->pcrs = nv;
            p->cap_pcrs = cap;
        }
        r = &p->pcrs[p->n_pcrs];
        memset(r, 0, sizeof(*r));
        if ((r->manufacturer = OPENSSL_strdup(manufacturer)) == NULL ||
            (model != NULL && (r->model = OPENSSL_strdup(model)) == NULL)) {
            OPENSSL_free(r->manufacturer);
            return DEVID_ERR_ALLOC;
        }
        r->index = index;
        p->n_pcrs++;
    }
    for (i = 0; i < r->n_allowed; i++) {
        if (memcmp(r->allowed[i], value, QUOTE_PCR_LEN) == 0)
            return 0;
    }
    if (r->n_allowed >= POLICY_MAX_PCR_VALUES)
        return DEVID_ERR_TOO_LARGE;
    memcpy(r->allowed[r->n_allowed++], value, QUOTE_PCR_LEN);
    return 0;
}

uint32_t policy_pcr_selection(const struct policy *p, const struct device_identity *id, char *rule,
                              size_t rule_len)
{
    bool model_rules = false;
    uint32_t mask;

    if (rule != NULL && rule_len > 0)
        rule[0] = '\0';
    if (p == NULL || id == NULL)
        return 0;
    mask = pcr_rules(p, id, &model_rules);
    if (mask != 0 && rule != NULL) {
        if (model_rules)
            snprintf(rule, rule_len, "[assurance \"%s\" \"%s\"]", id->manufacturer, id->model);
        else
            snprintf(rule, rule_len, "[assurance \"%s\"]", id->manufacturer);
    }
    return mask;
}

/* Writes "sha256:HEX" of |v| to |out| (at least 72 bytes). */
static void pcr_hex(char *out, const uint8_t v[QUOTE_PCR_LEN])
{
    static const char hexd[] = "0123456789abcdef";
    size_t j;

    memcpy(out, "sha256:", 7);
    for (j = 0; j < QUOTE_PCR_LEN; j++) {
        out[7 + 2 * j] = hexd[v[j] >> 4];
        out[8 + 2 * j] = hexd[v[j] & 0xf];
    }
    out[7 + 2 * QUOTE_PCR_LEN] = '\0';
}

/* Refuses |value| of the PCR of rule |r| under section |rule|. */
static int refuse_pcr(const struct policy_pcr *r, const struct device_identity *id,
                      const char *rule, const uint8_t *value, char *why, size_t why_len)
{
    char hex[80];
    size_t off, i;
    int n;

    if (value != NULL)
        pcr_hex(hex, value);
    n = snprintf(why, why_len,
                 "PCR %u of model \"%s\" of \"%s\" %s%s, which %s does not allow; "
                 "allowed:",
                 r->index, id->model, id->manufacturer, value != NULL ? "holds " : "was not quoted",
                 value != NULL ? hex : "", rule);
    off = n < 0 ? 0 : (size_t)n;
    for (i = 0; i < r->n_allowed && off < why_len; i++) {
        pcr_hex(hex, r->allowed[i]);
        n = snprintf(why + off, why_len - off, "%s %s", i > 0 ? "," : "", hex);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    return DEVID_ERR_PCR_VALUE;
}

int policy_check_pcrs(const struct policy *p, const struct device_identity *id,
                      const struct quote_pcr *pcrs, size_t n, char *why, size_t why_len)
{
    char rule[2 * POLICY_MAX_VALUE + 32];
    const uint8_t *value;
    bool model_rules = false;
    size_t i, j, k;

    if (p == NULL || id == NULL || (pcrs == NULL && n > 0) || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    why[0] = '\0';
    if (policy_pcr_selection(p, id, rule, sizeof(rule)) == 0)
        return 0;
    pcr_rules(p, id, &model_rules);
    for (i = 0; i < p->n_pcrs; i++) {
        const struct policy_pcr *r = &p->pcrs[i];
        if (strcmp(r->manufacturer, id->manufacturer) != 0 || (r->model != NULL) != model_rules ||
            (r->model != NULL && strcmp(r->model, id->model) != 0))
            continue;
        value = NULL;
        for (j = 0; j < n; j++) {
            if (pcrs[j].index == r->index)
                value = pcrs[j].sha256;
        }
        if (value == NULL)
            return refuse_pcr(r, id, rule, NULL, why, why_len);
        for (k = 0; k < r->n_allowed; k++) {
            if (CRYPTO_memcmp(r->allowed[k], value, QUOTE_PCR_LEN) == 0)
                break;
        }
        if (k == r->n_allowed)
            return refuse_pcr(r, id, rule, value, why, why_len);
    }
    return 0;
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

/* Reads one "sha256:HEX" (64 hex digits, any case) of |*s|, spaces around
 * it allowed, up to a comma or the end, into |out|; moves |*s| past the
 * comma. Returns 0 or -1. */
static int pcr_value(uint8_t out[QUOTE_PCR_LEN], const char **s)
{
    const char *p = *s;
    size_t i;
    int hi, lo;

    while (*p == ' ' || *p == '\t')
        p++;
    if (strncmp(p, "sha256:", 7) != 0)
        return -1;
    p += 7;
    for (i = 0; i < QUOTE_PCR_LEN; i++) {
        if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]))
            return -1;
        hi = isdigit((unsigned char)p[0]) ? p[0] - '0' : tolower((unsigned char)p[0]) - 'a' + 10;
        lo = isdigit((unsigned char)p[1]) ? p[1] - '0' : tolower((unsigned char)p[1]) - 'a' + 10;
        out[i] = (uint8_t)(hi << 4 | lo);
        p += 2;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == ',') {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            return -1;
    } else if (*p != '\0') {
        return -1;
    }
    *s = p;
    return 0;
}

/* pcr.N = sha256:HEX[, sha256:HEX ...] in [assurance "MFR"] or [assurance
 * "MFR" "MODEL"]: the values PCR N may hold. */
static int on_pcr_key(struct policy *p, const char *mfr, const char *model, const char *key,
                      const char *value, char *err, size_t err_len)
{
    const char *v = value;
    unsigned index;
    uint8_t digest[QUOTE_PCR_LEN];
    int r;

    if (mfr == NULL) {
        snprintf(err, err_len,
                 "key \"%s\": PCR rules belong in [assurance \"MANUFACTURER\"] or [assurance "
                 "\"MANUFACTURER\" \"MODEL\"]",
                 key);
        return -1;
    }
    /* One or two digits, no leading zero: 0 to 23. */
    index = QUOTE_PCR_COUNT;
    if (isdigit((unsigned char)key[4])) {
        index = (unsigned)(key[4] - '0');
        if (key[5] != '\0')
            index = index > 0 && isdigit((unsigned char)key[5]) && key[6] == '\0'
                        ? index * 10 + (unsigned)(key[5] - '0')
                        : QUOTE_PCR_COUNT;
    }
    if (index >= QUOTE_PCR_COUNT) {
        snprintf(err, err_len, "key \"%.64s\": want pcr.N with N a PCR index 0 to %d", key,
                 QUOTE_PCR_COUNT - 1);
        return -1;
    }
    if (*v == '\0')
        goto bad_value;
    while (*v != '\0') {
        if (pcr_value(digest, &v) != 0)
            goto bad_value;
        if ((r = policy_add_pcr(p, mfr, model, index, digest)) != 0) {
            snprintf(err, err_len, "key \"%s\": %s", key,
                     r == DEVID_ERR_TOO_LARGE ? "more than 16 values or 4096 PCR rules"
                     : r == DEVID_ERR_CONFIG  ? "more than 8 PCRs in one section"
                                              : "out of memory");
            return -1;
        }
    }
    return 0;
bad_value:
    snprintf(err, err_len,
             "key \"%s\": value \"%.80s\" is not a comma-separated list of sha256:HEX (64 hex "
             "digits: the SHA-256 bank only)",
             key, value);
    return -1;
}

/* [assurance], [assurance "MFR"] or [assurance "MFR" "MODEL"]: minimum, and
 * pcr.N in the last two. */
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
    if (strncmp(key, "pcr.", 4) == 0)
        return on_pcr_key(p, has_mfr ? mfr : NULL, has_model ? model : NULL, key, value, err,
                          err_len);
    if (strcmp(key, "minimum") != 0) {
        snprintf(err, err_len, "unknown key \"%s\" in section [%.300s] (want minimum or pcr.N)",
                 key, section);
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
