#include "verifier/core/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "common/conf.h"
#include "common/err.h"
#include "verifier/ledger/ledger.h"

enum kind { K_STR, K_INT, K_LONG, K_SIZE, K_DAYS, K_TLS };

struct key {
    const char *section;
    const char *name;
    enum kind kind;
    size_t offset; /* into struct verifier_config */
    long min;
    long max;
};

#define VC(field) offsetof(struct verifier_config, field)
#define SC(field) (offsetof(struct verifier_config, server) + offsetof(struct server_config, field))

static const struct key keys[] = {
    {"server", "listen", K_STR, VC(listen), 0, 0},
    {"server", "workers", K_INT, SC(workers), 0, 64},
    {"server", "metrics_listen", K_STR, VC(metrics_listen), 0, 0},
    {"server", "replica_id", K_STR, VC(replica_id), 0, 0},
    {"tls", "cert", K_STR, VC(tls_cert), 0, 0},
    {"tls", "key", K_STR, VC(tls_key), 0, 0},
    {"tls", "min_version", K_TLS, SC(tls_min), 0, 0},
    {"tls", "max_version", K_TLS, SC(tls_max), 0, 0},
    {"trust", "roots", K_STR, VC(roots), 0, 0},
    {"trust", "intermediates", K_STR, VC(intermediates), 0, 0},
    {"trust", "manufacturers", K_STR, VC(manufacturers), 0, 0},
    {"trust", "policy", K_STR, VC(policy), 0, 0},
    {"ca", "cert", K_STR, VC(ca_cert), 0, 0},
    {"ca", "key", K_STR, VC(ca_key), 0, 0},
    {"ca", "provider", K_STR, VC(ca_provider), 0, 0},
    {"ca", "tcti", K_STR, VC(ca_tcti), 0, 0},
    {"ca", "validity_days", K_DAYS, SC(validity_seconds), 1, 36500},
    {"token", "key_file", K_STR, VC(token_key), 0, 0},
    {"token", "ttl_seconds", K_LONG, SC(token_ttl_seconds), 5, 3600},
    {"ledger", "uri", K_STR, VC(ledger), 0, 0},
    {"limits", "max_connections", K_INT, SC(max_connections), 1, 1000000},
    {"limits", "max_handshakes", K_INT, SC(max_handshakes), 1, 100000},
    {"limits", "retry_after_seconds", K_INT, SC(retry_after_seconds), 1, 3600},
    {"limits", "max_body_challenge", K_SIZE, SC(max_body_challenge), 64, 65536},
    {"limits", "max_body_enroll", K_SIZE, SC(max_body_enroll), 1024, 1048576},
    {"limits", "max_headers_size", K_SIZE, SC(max_headers_size), 256, 65536},
    {"limits", "max_header_count", K_INT, SC(max_header_count), 4, 256},
    {"timeouts", "handshake", K_INT, SC(timeout_handshake), 1, 600},
    {"timeouts", "request", K_INT, SC(timeout_request), 1, 600},
    {"timeouts", "idle", K_INT, SC(timeout_idle), 1, 3600},
    {"timeouts", "shutdown_grace", K_INT, SC(shutdown_grace_seconds), 0, 600},
};

static void sync_server(struct verifier_config *c)
{
    c->server.listen = c->listen;
    c->server.metrics_listen = c->metrics_listen;
    c->server.tls_cert = c->tls_cert;
    c->server.tls_key = c->tls_key;
    c->server.ledger_uri = c->ledger;
    c->server.replica_id = c->replica_id;
}

void server_config_defaults(struct server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen = "0.0.0.0:8443";
    cfg->metrics_listen = "127.0.0.1:9443";
    cfg->tls_min = TLS1_2_VERSION;
    cfg->tls_max = TLS1_3_VERSION;
    cfg->validity_seconds = 365L * 86400;
    cfg->token_ttl_seconds = 120;
    cfg->workers = 0;
    cfg->max_connections = 4096;
    cfg->max_handshakes = 256;
    cfg->retry_after_seconds = 2;
    cfg->max_body_challenge = 1024;
    cfg->max_body_enroll = 64 * 1024;
    cfg->max_headers_size = 8 * 1024;
    cfg->max_header_count = 32;
    cfg->timeout_handshake = 10;
    cfg->timeout_request = 10;
    cfg->timeout_idle = 30;
    cfg->shutdown_grace_seconds = 10;
    cfg->ledger_uri = LEDGER_DEFAULT_URI;
    cfg->crl_next_update_seconds = 24L * 3600;
}

void config_init(struct verifier_config *c)
{
    memset(c, 0, sizeof(*c));
    server_config_defaults(&c->server);
    /* On allocation failure the strings stay NULL and start-up fails later,
     * naming the missing setting. */
    (void)config_set_str(c, &c->listen, "0.0.0.0:8443");
    (void)config_set_str(c, &c->metrics_listen, "127.0.0.1:9443");
    (void)config_set_str(c, &c->roots, "/etc/devid/roots");
    (void)config_set_str(c, &c->ledger, LEDGER_DEFAULT_URI);
}

void config_cleanup(struct verifier_config *c)
{
    char **strs[] = {&c->listen,    &c->metrics_listen, &c->tls_cert,      &c->tls_key,
                     &c->roots,     &c->intermediates,  &c->manufacturers, &c->policy,
                     &c->ca_cert,   &c->ca_key,         &c->ca_provider,   &c->ca_tcti,
                     &c->token_key, &c->ledger,         &c->replica_id};
    size_t i;

    for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
    sync_server(c);
}

int config_set_str(struct verifier_config *c, char **field, const char *value)
{
    char *copy = NULL;

    if (value != NULL && (copy = strdup(value)) == NULL)
        return DEVID_ERR_ALLOC;
    free(*field);
    *field = copy;
    sync_server(c);
    return 0;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    long v;

    if (*s == '\0')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int apply(struct verifier_config *c, const struct key *k, const char *value, char *err,
                 size_t err_len)
{
    char *base = (char *)c;
    long v = 0;

    switch (k->kind) {
        case K_STR:
            if (*value == '\0') {
                snprintf(err, err_len, "[%s] %s must not be empty", k->section, k->name);
                return -1;
            }
            return config_set_str(c, (char **)(void *)(base + k->offset), value) == 0 ? 0 : -1;
        case K_TLS:
            if (strcmp(value, "1.2") == 0)
                *(int *)(void *)(base + k->offset) = TLS1_2_VERSION;
            else if (strcmp(value, "1.3") == 0)
                *(int *)(void *)(base + k->offset) = TLS1_3_VERSION;
            else {
                snprintf(err, err_len, "[%s] %s must be 1.2 or 1.3, not \"%s\"", k->section,
                         k->name, value);
                return -1;
            }
            return 0;
        case K_INT:
        case K_LONG:
        case K_SIZE:
        case K_DAYS:
            if (parse_long(value, k->min, k->max, &v) != 0) {
                snprintf(err, err_len, "[%s] %s must be a whole number from %ld to %ld, not \"%s\"",
                         k->section, k->name, k->min, k->max, value);
                return -1;
            }
            if (k->kind == K_SIZE)
                *(size_t *)(void *)(base + k->offset) = (size_t)v;
            else if (k->kind == K_DAYS)
                *(long *)(void *)(base + k->offset) = v * 86400;
            else if (k->kind == K_LONG)
                *(long *)(void *)(base + k->offset) = v;
            else
                *(int *)(void *)(base + k->offset) = (int)v;
            return 0;
    }
    return -1;
}

static int on_entry(void *arg, const char *section, const char *name, const char *value, char *err,
                    size_t err_len)
{
    size_t i;
    int known_section = 0;

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(keys[i].section, section) != 0)
            continue;
        known_section = 1;
        if (strcmp(keys[i].name, name) == 0)
            return apply(arg, &keys[i], value, err, err_len);
    }
    if (known_section)
        snprintf(err, err_len, "unknown key \"%s\" in section [%s]", name, section);
    else
        snprintf(err, err_len, "unknown section [%s]", section);
    return -1;
}

int config_parse(struct verifier_config *c, const char *text, const char *name, char *err,
                 size_t err_len)
{
    return conf_parse(text, strlen(text), name, on_entry, c, err, err_len);
}
