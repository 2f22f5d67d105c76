#include "agent/core/config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/conf.h"
#include "common/err.h"

#define PERSISTENT_TYPE 0x81000000u
#define NV_TYPE 0x01000000u

static void say(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

int agent_config_init(struct agent_config *cfg)
{
    if (cfg == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(cfg, 0, sizeof(*cfg));
    cfg->tls_version = CONFIG_TLS_DEFAULT;
    cfg->idevid_handle = CONFIG_DEFAULT_IDEVID_HANDLE;
    cfg->idevid_nv = CONFIG_DEFAULT_IDEVID_NV;
    cfg->iak_nv = CONFIG_DEFAULT_IAK_NV;
    cfg->srk_handle = CONFIG_DEFAULT_SRK_HANDLE;
    cfg->timeout = CONFIG_DEFAULT_TIMEOUT;
    cfg->deadline = CONFIG_DEFAULT_DEADLINE;
    cfg->backoff_initial_ms = CONFIG_DEFAULT_BACKOFF_INITIAL_MS;
    cfg->backoff_max_ms = CONFIG_DEFAULT_BACKOFF_MAX_MS;
    cfg->renew_at = CONFIG_DEFAULT_RENEW_AT;
    if ((cfg->tcti = strdup(CONFIG_DEFAULT_TCTI)) == NULL ||
        (cfg->out_dir = strdup(CONFIG_DEFAULT_OUT_DIR)) == NULL) {
        agent_config_cleanup(cfg);
        return DEVID_ERR_ALLOC;
    }
    return 0;
}

void agent_config_cleanup(struct agent_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->url);
    free(cfg->ca_bundle);
    free(cfg->proxy);
    free(cfg->tcti);
    free(cfg->idevid_cert_file);
    free(cfg->iak_cert_file);
    free(cfg->chain_file);
    free(cfg->out_dir);
    memset(cfg, 0, sizeof(*cfg));
}

static int set_str(char **field, const char *value)
{
    char *s = NULL;

    if (value[0] != '\0' && (s = strdup(value)) == NULL)
        return DEVID_ERR_ALLOC;
    free(*field);
    *field = s;
    return 0;
}

static int parse_ull(unsigned long long *out, const char *s, unsigned long long max)
{
    char *end = NULL;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    *out = strtoull(s, &end, 0);
    if (errno != 0 || end == s || *end != '\0' || *out > max)
        return -1;
    return 0;
}

/* set_handle parses a handle of |type| (0x81.. or 0x01..); with |optional|,
 * "none" or 0 sets 0. */
static int set_handle(uint32_t *field, char *err, size_t err_len, const char *key,
                      const char *value, uint32_t type, int optional)
{
    unsigned long long v;
    const char *kind = type == PERSISTENT_TYPE ? "persistent handle" : "NV index";

    if (optional && (strcmp(value, "none") == 0 || strcmp(value, "0") == 0)) {
        *field = 0;
        return 0;
    }
    if (parse_ull(&v, value, UINT32_MAX) != 0) {
        say(err, err_len, "%s: \"%s\" is not a %s (0x%02xXXXXXX)%s", key, value, kind, type >> 24,
            optional ? " or none" : "");
        return DEVID_ERR_CONFIG;
    }
    if (((uint32_t)v & 0xff000000u) != type) {
        say(err, err_len, "%s: 0x%08llx is not a %s (0x%02xXXXXXX)", key, v, kind, type >> 24);
        return DEVID_ERR_CONFIG;
    }
    *field = (uint32_t)v;
    return 0;
}

/* set_nv_range parses chain_nv: "none", one NV index, or FIRST-LAST, two NV
 * indices in order (e.g. 0x01C00100-0x01C001FF). */
static int set_nv_range(uint32_t *first, uint32_t *last, char *err, size_t err_len, const char *key,
                        const char *value)
{
    char a[32];
    const char *dash = strchr(value, '-');
    size_t n;
    uint32_t lo, hi;
    int r;

    if (dash == NULL) {
        *last = 0;
        return set_handle(first, err, err_len, key, value, NV_TYPE, 1);
    }
    n = (size_t)(dash - value);
    if (n == 0 || n >= sizeof(a)) {
        say(err, err_len, "%s: \"%s\" is not an NV index, FIRST-LAST or none", key, value);
        return DEVID_ERR_CONFIG;
    }
    memcpy(a, value, n);
    a[n] = '\0';
    if ((r = set_handle(&lo, err, err_len, key, a, NV_TYPE, 0)) != 0 ||
        (r = set_handle(&hi, err, err_len, key, dash + 1, NV_TYPE, 0)) != 0)
        return r;
    if (hi < lo) {
        say(err, err_len, "%s: range 0x%08x-0x%08x ends before it starts", key, lo, hi);
        return DEVID_ERR_CONFIG;
    }
    *first = lo;
    *last = hi;
    return 0;
}

static int set_long(long *field, char *err, size_t err_len, const char *key, const char *value,
                    long min, long max, const char *unit)
{
    unsigned long long v;

    if (parse_ull(&v, value, (unsigned long long)max) != 0 || (long long)v < min) {
        say(err, err_len, "%s: \"%s\" is not a whole number of %s from %ld to %ld", key, value,
            unit, min, max);
        return DEVID_ERR_CONFIG;
    }
    *field = (long)v;
    return 0;
}

static int set_fraction(double *field, char *err, size_t err_len, const char *key,
                        const char *value)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = strtod(value, &end);
    if (errno != 0 || end == value || *end != '\0' || !isfinite(v) || v <= 0.0 || v >= 1.0) {
        say(err, err_len, "%s: \"%s\" is not a fraction between 0 and 1 (e.g. 0.66)", key, value);
        return DEVID_ERR_CONFIG;
    }
    *field = v;
    return 0;
}

static int set_tls(enum config_tls *field, char *err, size_t err_len, const char *value)
{
    if (strcmp(value, "1.2") == 0)
        *field = CONFIG_TLS_1_2;
    else if (strcmp(value, "1.3") == 0)
        *field = CONFIG_TLS_1_3;
    else if (strcmp(value, "any") == 0)
        *field = CONFIG_TLS_DEFAULT;
    else {
        say(err, err_len, "tls_version: \"%s\" is not 1.2, 1.3 or any", value);
        return DEVID_ERR_CONFIG;
    }
    return 0;
}

static int set_verifier(struct agent_config *cfg, char *err, size_t err_len, const char *key,
                        const char *value)
{
    if (strcmp(key, "url") == 0)
        return set_str(&cfg->url, value);
    if (strcmp(key, "ca_bundle") == 0)
        return set_str(&cfg->ca_bundle, value);
    if (strcmp(key, "proxy") == 0)
        return set_str(&cfg->proxy, value);
    if (strcmp(key, "tls_version") == 0)
        return set_tls(&cfg->tls_version, err, err_len, value);
    say(err, err_len, "unknown key \"%s\" in section [verifier]", key);
    return DEVID_ERR_CONFIG;
}

static int set_tpm(struct agent_config *cfg, char *err, size_t err_len, const char *key,
                   const char *value)
{
    if (strcmp(key, "tcti") == 0) {
        if (value[0] == '\0') {
            say(err, err_len, "tcti: empty");
            return DEVID_ERR_CONFIG;
        }
        return set_str(&cfg->tcti, value);
    }
    if (strcmp(key, "idevid_handle") == 0)
        return set_handle(&cfg->idevid_handle, err, err_len, key, value, PERSISTENT_TYPE, 0);
    if (strcmp(key, "idevid_cert_nv") == 0)
        return set_handle(&cfg->idevid_nv, err, err_len, key, value, NV_TYPE, 0);
    if (strcmp(key, "idevid_cert_file") == 0)
        return set_str(&cfg->idevid_cert_file, value);
    if (strcmp(key, "iak_handle") == 0)
        return set_handle(&cfg->iak_handle, err, err_len, key, value, PERSISTENT_TYPE, 1);
    if (strcmp(key, "iak_cert_nv") == 0)
        return set_handle(&cfg->iak_nv, err, err_len, key, value, NV_TYPE, 0);
    if (strcmp(key, "iak_cert_file") == 0)
        return set_str(&cfg->iak_cert_file, value);
    if (strcmp(key, "chain_file") == 0)
        return set_str(&cfg->chain_file, value);
    if (strcmp(key, "chain_nv") == 0)
        return set_nv_range(&cfg->chain_nv, &cfg->chain_nv_last, err, err_len, key, value);
    if (strcmp(key, "srk_handle") == 0)
        return set_handle(&cfg->srk_handle, err, err_len, key, value, PERSISTENT_TYPE, 0);
    if (strcmp(key, "persist_handle") == 0)
        return set_handle(&cfg->persist_handle, err, err_len, key, value, PERSISTENT_TYPE, 1);
    if (strcmp(key, "ek") == 0) {
        if (strcmp(value, "off") == 0)
            cfg->ek = CONFIG_EK_OFF;
        else if (strcmp(value, "auto") == 0)
            cfg->ek = CONFIG_EK_AUTO;
        else if (strcmp(value, "rsa") == 0)
            cfg->ek = CONFIG_EK_RSA;
        else if (strcmp(value, "ecc") == 0)
            cfg->ek = CONFIG_EK_ECC;
        else {
            say(err, err_len, "ek: \"%s\" is not auto, rsa, ecc or off", value);
            return DEVID_ERR_CONFIG;
        }
        return 0;
    }
    if (strcmp(key, "ak") == 0) {
        if (strcmp(value, "off") == 0)
            cfg->ak = CONFIG_AK_OFF;
        else if (strcmp(value, "auto") == 0)
            cfg->ak = CONFIG_AK_AUTO;
        else {
            say(err, err_len, "ak: \"%s\" is not auto or off", value);
            return DEVID_ERR_CONFIG;
        }
        return 0;
    }
    say(err, err_len, "unknown key \"%s\" in section [tpm]", key);
    return DEVID_ERR_CONFIG;
}

static int set_retry(struct agent_config *cfg, char *err, size_t err_len, const char *key,
                     const char *value)
{
    if (strcmp(key, "request_timeout") == 0)
        return set_long(&cfg->timeout, err, err_len, key, value, 1, 3600, "seconds");
    if (strcmp(key, "deadline") == 0)
        return set_long(&cfg->deadline, err, err_len, key, value, 1, 7 * 86400, "seconds");
    if (strcmp(key, "backoff_initial") == 0)
        return set_long(&cfg->backoff_initial_ms, err, err_len, key, value, 1, 3600000,
                        "milliseconds");
    if (strcmp(key, "backoff_max") == 0)
        return set_long(&cfg->backoff_max_ms, err, err_len, key, value, 1, 3600000, "milliseconds");
    say(err, err_len, "unknown key \"%s\" in section [retry]", key);
    return DEVID_ERR_CONFIG;
}

int agent_config_set(struct agent_config *cfg, char *err, size_t err_len, const char *section,
                     const char *key, const char *value)
{
    if (cfg == NULL || section == NULL || key == NULL || value == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (strcmp(section, "verifier") == 0)
        return set_verifier(cfg, err, err_len, key, value);
    if (strcmp(section, "tpm") == 0)
        return set_tpm(cfg, err, err_len, key, value);
    if (strcmp(section, "output") == 0) {
        if (strcmp(key, "dir") == 0) {
            if (value[0] == '\0') {
                say(err, err_len, "dir: empty");
                return DEVID_ERR_CONFIG;
            }
            return set_str(&cfg->out_dir, value);
        }
        say(err, err_len, "unknown key \"%s\" in section [output]", key);
        return DEVID_ERR_CONFIG;
    }
    if (strcmp(section, "retry") == 0)
        return set_retry(cfg, err, err_len, key, value);
    if (strcmp(section, "renew") == 0) {
        if (strcmp(key, "renew_at") == 0)
            return set_fraction(&cfg->renew_at, err, err_len, key, value);
        say(err, err_len, "unknown key \"%s\" in section [renew]", key);
        return DEVID_ERR_CONFIG;
    }
    if (section[0] == '\0')
        say(err, err_len, "key \"%s\" outside any section (want [verifier], [tpm], ...)", key);
    else
        say(err, err_len, "unknown section [%s]", section);
    return DEVID_ERR_CONFIG;
}

static int on_key(void *arg, const char *section, const char *key, const char *value, char *err,
                  size_t err_len)
{
    int r = agent_config_set(arg, err, err_len, section, key, value);

    if (r == DEVID_ERR_ALLOC)
        say(err, err_len, "out of memory");
    return r == 0 ? 0 : -1;
}

int agent_config_parse(struct agent_config *cfg, char *err, size_t err_len, const char *buf,
                       const char *source)
{
    if (cfg == NULL || buf == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    return conf_parse(buf, strlen(buf), source != NULL ? source : "configuration", on_key, cfg, err,
                      err_len);
}

int agent_config_check(const struct agent_config *cfg, char *err, size_t err_len)
{
    if (cfg == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if (cfg->url == NULL || cfg->ca_bundle == NULL) {
        say(err, err_len,
            "the verifier url and ca_bundle are required ([verifier] in the "
            "configuration file, or --url and --ca-bundle)");
        return DEVID_ERR_CONFIG;
    }
    if (strncmp(cfg->url, "https://", 8) != 0 || cfg->url[8] == '\0') {
        say(err, err_len, "url: \"%s\" is not an https:// URL", cfg->url);
        return DEVID_ERR_CONFIG;
    }
    if (cfg->persist_handle != 0 &&
        (cfg->persist_handle == cfg->idevid_handle || cfg->persist_handle == cfg->srk_handle ||
         cfg->persist_handle == cfg->iak_handle)) {
        say(err, err_len, "persist_handle 0x%08x would replace the IDevID, IAK or SRK",
            cfg->persist_handle);
        return DEVID_ERR_CONFIG;
    }
    if (cfg->iak_handle != 0 &&
        (cfg->iak_handle == cfg->idevid_handle || cfg->iak_handle == cfg->srk_handle)) {
        say(err, err_len, "iak_handle 0x%08x is also the IDevID or SRK handle", cfg->iak_handle);
        return DEVID_ERR_CONFIG;
    }
    if (cfg->idevid_handle == cfg->srk_handle) {
        say(err, err_len, "idevid_handle and srk_handle are both 0x%08x", cfg->srk_handle);
        return DEVID_ERR_CONFIG;
    }
    if (cfg->chain_nv != 0 && cfg->idevid_cert_file == NULL && cfg->idevid_nv >= cfg->chain_nv &&
        cfg->idevid_nv <= (cfg->chain_nv_last != 0 ? cfg->chain_nv_last : cfg->chain_nv)) {
        say(err, err_len, "chain_nv includes idevid_cert_nv 0x%08x", cfg->idevid_nv);
        return DEVID_ERR_CONFIG;
    }
    if (cfg->backoff_max_ms < cfg->backoff_initial_ms) {
        say(err, err_len, "backoff_max (%ld ms) is less than backoff_initial (%ld ms)",
            cfg->backoff_max_ms, cfg->backoff_initial_ms);
        return DEVID_ERR_CONFIG;
    }
    if (cfg->deadline < cfg->timeout) {
        say(err, err_len, "deadline (%ld s) is shorter than request_timeout (%ld s)", cfg->deadline,
            cfg->timeout);
        return DEVID_ERR_CONFIG;
    }
    return 0;
}
