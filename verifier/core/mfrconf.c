#include "verifier/core/mfrconf.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/conf.h"
#include "common/err.h"

struct parse_state {
    struct mfrconf *c;
    /* Per entry: whether revocation was given explicitly. */
    int revocation_set[CHAIN_MAX_MANUFACTURERS];
};

static void entry_free(struct mfrconf_entry *e)
{
    size_t i;

    if (e == NULL)
        return;
    for (i = 0; i < e->n_roots; i++)
        OPENSSL_free(e->roots[i]);
    for (i = 0; i < e->n_intermediates; i++)
        OPENSSL_free(e->intermediates[i]);
    for (i = 0; i < e->n_crls; i++)
        OPENSSL_free(e->crls[i]);
    OPENSSL_free(e);
}

void mfrconf_free(struct mfrconf *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < c->n; i++)
        entry_free(c->entries[i]);
    OPENSSL_free(c);
}

/* Parses `manufacturer "NAME"` or `tpm_vendor "NAME"` into |kind| and
 * |name|. */
static int section_name(enum mfrconf_kind *kind, char *name, size_t len, const char *section)
{
    static const char mfr[] = "manufacturer \"", vendor[] = "tpm_vendor \"";
    size_t n, i;

    if (strncmp(section, mfr, sizeof(mfr) - 1) == 0) {
        *kind = MFRCONF_MANUFACTURER;
        section += sizeof(mfr) - 1;
    } else if (strncmp(section, vendor, sizeof(vendor) - 1) == 0) {
        *kind = MFRCONF_TPM_VENDOR;
        section += sizeof(vendor) - 1;
    } else {
        return -1;
    }
    n = strlen(section);
    if (n < 2 || section[n - 1] != '"' || n - 1 >= len)
        return -1;
    for (i = 0; i + 1 < n; i++) {
        if ((unsigned char)section[i] < 0x20 || (unsigned char)section[i] > 0x7e ||
            section[i] == '"')
            return -1;
    }
    memcpy(name, section, n - 1);
    name[n - 1] = '\0';
    return 0;
}

static struct mfrconf_entry *entry_for(struct parse_state *st, enum mfrconf_kind kind,
                                       const char *name, size_t *idx, char *err, size_t err_len)
{
    struct mfrconf *c = st->c;
    struct mfrconf_entry *e;
    size_t i;

    for (i = 0; i < c->n; i++) {
        if (c->entries[i]->kind == kind && strcmp(c->entries[i]->name, name) == 0) {
            *idx = i;
            return c->entries[i];
        }
    }
    if (c->n >= CHAIN_MAX_MANUFACTURERS) {
        snprintf(err, err_len, "more than %d manufacturers and TPM vendors",
                 CHAIN_MAX_MANUFACTURERS);
        return NULL;
    }
    if ((e = OPENSSL_zalloc(sizeof(*e))) == NULL) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    e->kind = kind;
    memcpy(e->name, name, strlen(name) + 1);
    chain_mfr_settings_default(&e->settings);
    *idx = c->n;
    c->entries[c->n++] = e;
    return e;
}

static int add_path(char **v, size_t *n, const char *key, const char *value, char *err,
                    size_t err_len)
{
    if (value[0] == '\0') {
        snprintf(err, err_len, "key \"%s\": empty path", key);
        return -1;
    }
    if (*n >= MFRCONF_MAX_FILES) {
        snprintf(err, err_len, "key \"%s\": more than %d files", key, MFRCONF_MAX_FILES);
        return -1;
    }
    if ((v[*n] = OPENSSL_strdup(value)) == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    (*n)++;
    return 0;
}

static int on_key(void *arg, const char *section, const char *key, const char *value, char *err,
                  size_t err_len)
{
    struct parse_state *st = arg;
    struct mfrconf_entry *e;
    enum mfrconf_kind kind = MFRCONF_MANUFACTURER;
    char name[CHAIN_NAME_MAX];
    size_t idx = 0;
    unsigned u;
    int b;

    if (section_name(&kind, name, sizeof(name), section) != 0) {
        snprintf(err, err_len,
                 "key \"%s\" in section [%.64s]: sections must be [manufacturer \"NAME\"] or "
                 "[tpm_vendor \"NAME\"] with a printable name of at most %d characters",
                 key, section, CHAIN_NAME_MAX - 1);
        return -1;
    }
    if ((e = entry_for(st, kind, name, &idx, err, err_len)) == NULL)
        return -1;
    if (strcmp(key, "roots") == 0)
        return add_path(e->roots, &e->n_roots, key, value, err, err_len);
    if (strcmp(key, "intermediates") == 0)
        return add_path(e->intermediates, &e->n_intermediates, key, value, err, err_len);
    if (strcmp(key, "crl") == 0)
        return add_path(e->crls, &e->n_crls, key, value, err, err_len);
    if (strcmp(key, "min_rsa_bits") == 0) {
        if (conf_uint(value, 1024, 16384, &u) != 0) {
            snprintf(err, err_len, "key \"min_rsa_bits\": value \"%.32s\" is not 1024..16384",
                     value);
            return -1;
        }
        e->settings.min_rsa_bits = u;
        return 0;
    }
    if (strcmp(key, "min_ec_bits") == 0) {
        if (conf_uint(value, 160, 521, &u) != 0) {
            snprintf(err, err_len, "key \"min_ec_bits\": value \"%.32s\" is not 160..521", value);
            return -1;
        }
        e->settings.min_ec_bits = u;
        return 0;
    }
    if (strcmp(key, "max_depth") == 0) {
        if (conf_uint(value, CHAIN_MIN_DEPTH, CHAIN_MAX_DEPTH, &u) != 0) {
            snprintf(err, err_len,
                     "key \"max_depth\": value \"%.32s\" is not %d..%d (certificates from the "
                     "leaf to the trust anchor, both counted)",
                     value, CHAIN_MIN_DEPTH, CHAIN_MAX_DEPTH);
            return -1;
        }
        e->settings.max_depth = u;
        return 0;
    }
    if (strcmp(key, "allow_sha1") == 0) {
        if (conf_bool(value, &b) != 0) {
            snprintf(err, err_len, "key \"allow_sha1\": value \"%.32s\" is not yes or no", value);
            return -1;
        }
        e->settings.allow_sha1 = b;
        return 0;
    }
    if (strcmp(key, "revocation") == 0) {
        if (strcmp(value, "none") == 0)
            e->settings.revocation = CHAIN_REVOCATION_NONE;
        else if (strcmp(value, "soft") == 0)
            e->settings.revocation = CHAIN_REVOCATION_SOFT;
        else if (strcmp(value, "hard") == 0)
            e->settings.revocation = CHAIN_REVOCATION_HARD;
        else {
            snprintf(err, err_len, "key \"revocation\": value \"%.32s\" is not none, soft or hard",
                     value);
            return -1;
        }
        st->revocation_set[idx] = 1;
        return 0;
    }
    snprintf(err, err_len, "unknown key \"%s\" in section [%s \"%s\"]", key,
             kind == MFRCONF_TPM_VENDOR ? "tpm_vendor" : "manufacturer", name);
    return -1;
}

int mfrconf_parse(struct mfrconf **out, const char *buf, size_t len, const char *file, char *why,
                  size_t why_len)
{
    struct parse_state st;
    struct mfrconf_entry *e;
    const char *kind;
    size_t i;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || buf == NULL || file == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    why[0] = '\0';
    memset(&st, 0, sizeof(st));
    if ((st.c = OPENSSL_zalloc(sizeof(*st.c))) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    if ((r = conf_parse(buf, len, file, on_key, &st, why, why_len)) != 0)
        goto out;
    r = DEVID_ERR_CONFIG;
    for (i = 0; i < st.c->n && st.c->entries[i]->kind != MFRCONF_MANUFACTURER; i++)
        ;
    if (i == st.c->n) {
        snprintf(why, why_len, "%s: no [manufacturer \"NAME\"] section", file);
        goto out;
    }
    for (i = 0; i < st.c->n; i++) {
        e = st.c->entries[i];
        kind = e->kind == MFRCONF_TPM_VENDOR ? "TPM vendor" : "manufacturer";
        if (e->n_roots == 0) {
            snprintf(why, why_len, "%s: %s \"%s\" has no roots file", file, kind, e->name);
            goto out;
        }
        if (!st.revocation_set[i] && e->n_crls > 0)
            e->settings.revocation = CHAIN_REVOCATION_SOFT;
        if (e->settings.revocation == CHAIN_REVOCATION_NONE && e->n_crls > 0) {
            snprintf(why, why_len, "%s: %s \"%s\" names CRLs but has revocation = none", file, kind,
                     e->name);
            goto out;
        }
    }
    *out = st.c;
    st.c = NULL;
    r = 0;
out:
    mfrconf_free(st.c);
    return r;
}
