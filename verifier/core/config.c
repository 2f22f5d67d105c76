#include "verifier/core/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "common/conf.h"
#include "common/err.h"
#include "verifier/core/assurance.h"
#include "verifier/core/proxy.h"

enum kind { K_STR, K_NETS, K_INT, K_LONG, K_SIZE, K_DAYS, K_TLS, K_OID };

/* One setting: its INI section and key, where it lives in struct
 * verifier_config, the range of a number, and its command-line option. */
struct key {
    const char *section;
    const char *name;
    enum kind kind;
    size_t offset;
    long min;
    long max;
    struct verifier_config_option option;
};

#define F(field) offsetof(struct verifier_config, field)

/* In the order `serve --help` lists them. */
static const struct key keys[] = {
    {"server",
     "listen",
     K_STR,
     F(listen),
     0,
     0,
     {"listen", "HOST:PORT", "TLS listener (default 0.0.0.0:8443)"}},
    {"server",
     "metrics_listen",
     K_STR,
     F(metrics_listen),
     0,
     0,
     {"metrics-listen", "H:P", "/healthz and /metrics (default 127.0.0.1:9443;\n\"\" disables)"}},
    {"server",
     "workers",
     K_INT,
     F(workers),
     0,
     64,
     {"workers", "N", "worker threads (default: one per core)"}},
    {"tls",
     "cert",
     K_STR,
     F(tls_cert),
     0,
     0,
     {"tls-cert", "FILE", "PEM server certificate, chain after it"}},
    {"tls", "key", K_STR, F(tls_key), 0, 0, {"tls-key", "FILE", "PEM server key"}},
    {"tls",
     "min_version",
     K_TLS,
     F(tls_min),
     0,
     0,
     {"tls-min", "1.2|1.3", "lowest TLS version (default 1.2)"}},
    {"tls",
     "max_version",
     K_TLS,
     F(tls_max),
     0,
     0,
     {"tls-max", "1.2|1.3", "highest TLS version (default 1.3)"}},
    {"trust",
     "roots",
     K_STR,
     F(roots),
     0,
     0,
     {"roots", "DIR", "manufacturer roots, *.pem and *.crt\n(default /etc/devid/roots)"}},
    {"trust",
     "intermediates",
     K_STR,
     F(intermediates),
     0,
     0,
     {"intermediates", "FILE", "PEM manufacturer intermediates"}},
    {"trust",
     "manufacturers",
     K_STR,
     F(manufacturers),
     0,
     0,
     {"manufacturers", "FILE",
      "per-manufacturer roots, CRLs and algorithm rules\n"
      "(deploy/config/manufacturers.conf.example);\n"
      "replaces --roots and --intermediates"}},
    {"trust",
     "policy",
     K_STR,
     F(policy),
     0,
     0,
     {"policy", "FILE",
      "enrollment policy (deploy/config/policy.conf.example);\nwith --manufacturers only"}},
    {"ca",
     "cert",
     K_STR,
     F(ca_cert),
     0,
     0,
     {"ca-cert", "FILE", "PEM issuing CA certificate, its chain after it"}},
    {"ca",
     "key",
     K_STR,
     F(ca_key),
     0,
     0,
     {"ca-key", "URI",
      "issuing CA key: a PEM file (mode 0600) or an\n"
      "OpenSSL store URI (e.g. handle:0x81000002 with\n"
      "the tpm2 provider)"}},
    {"ca",
     "provider",
     K_STR,
     F(ca_provider),
     0,
     0,
     {"ca-provider", "NAME", "OpenSSL provider holding the CA key (e.g. tpm2)"}},
    {"ca",
     "tcti",
     K_STR,
     F(ca_tcti),
     0,
     0,
     {"ca-tcti", "TCTI", "the TPM the tpm2 provider uses (e.g.\ndevice:/dev/tpmrm0)"}},
    {"token",
     "key_file",
     K_STR,
     F(token_key),
     0,
     0,
     {"token-key", "FILE", "32 random bytes shared by every replica (mode 0600)"}},
    {"token",
     "accept_key_file",
     K_STR,
     F(token_accept_key),
     0,
     0,
     {"token-accept-key", "FILE",
      "during a token key change: a second key (mode\n"
      "0600, 32 bytes) that opens tokens but never seals;\n"
      "an absent file is no second key (default: unset)"}},
    {"ledger",
     "uri",
     K_STR,
     F(ledger),
     0,
     0,
     {"ledger", "URI",
      "issuance ledger: sqlite:PATH, or PostgreSQL as a\n"
      "postgresql:// URI or libpq keyword string\n"
      "(default " VERIFIER_CONFIG_DEFAULT_LEDGER ")"}},
    {"server",
     "replica_id",
     K_STR,
     F(replica_id),
     0,
     0,
     {"replica-id", "NAME", "this replica's name in the ledger (default: host)"}},
    {"server",
     "proxy_from",
     K_NETS,
     F(proxy_from),
     0,
     0,
     {"proxy-from", "NETS",
      "load balancers that may send a PROXY protocol v2\n"
      "header, e.g. \"127.0.0.1, 10.0.0.0/8\" (default: none)"}},
    {"server",
     "user",
     K_STR,
     F(user),
     0,
     0,
     {"user", "NAME",
      "started as root, the signer (once it has loaded\n"
      "its keys) and the serving process (once its sockets\n"
      "are bound) run as this user (default devid, if it\n"
      "exists; root keeps root)"}},
    {"crl",
     "poll_seconds",
     K_INT,
     F(crl_poll_seconds),
     1,
     3600,
     {"crl-poll", "S",
      "how often to check the ledger for revocations and\nrebuild GET /v1/crl (2)"}},
    {"crl",
     "next_update_seconds",
     K_LONG,
     F(crl_next_update_seconds),
     60,
     31L * 24 * 3600,
     {"crl-next-update", "S",
      "lifetime of each CRL served at GET /v1/crl, to its\nnextUpdate (86400)"}},
    {"log",
     "key",
     K_STR,
     F(log_key),
     0,
     0,
     {"log-key", "URI",
      "issuance log signing key, separate from the CA key:\n"
      "a PEM file (mode 0600) or an OpenSSL store URI;\n"
      "only the signer opens it (default: no signed heads)"}},
    {"log",
     "poll_seconds",
     K_INT,
     F(log_poll_seconds),
     1,
     3600,
     {"log-poll", "S", "how often to index new log entries and sign\na tree head that moved (1)"}},
    {"log",
     "sign_seconds",
     K_INT,
     F(log_sign_seconds),
     1,
     86400,
     {"log-sign", "S", "sign an unchanged tree head again after S (300)"}},
    {"ca",
     "validity_days",
     K_DAYS,
     F(validity_seconds),
     1,
     36500,
     {"validity-days", "N", "operational certificate lifetime (default 365)"}},
    {"ca",
     "assurance_policy_arc",
     K_OID,
     F(assurance_arc),
     0,
     0,
     {"assurance-policy-arc", "OID",
      "certificatePolicies arc of the assurance level:\n"
      "ARC.1 none, ARC.2 ek, ARC.3 iak (default\n" ASSURANCE_DEFAULT_ARC ")"}},
    {"token",
     "ttl_seconds",
     K_LONG,
     F(token_ttl_seconds),
     5,
     3600,
     {"token-ttl", "SECONDS", "challenge lifetime (default 120)"}},
    {"limits",
     "max_connections",
     K_INT,
     F(max_connections),
     1,
     1000000,
     {"max-connections", "N", "past it, requests get 503 + Retry-After (16384)"}},
    {"limits",
     "max_handshakes",
     K_INT,
     F(max_handshakes),
     1,
     100000,
     {"max-handshakes", "N", "TLS handshakes past their ClientHello at once (256)"}},
    {"limits",
     "max_handshakes_per_source",
     K_INT,
     F(max_handshakes_per_source),
     1,
     100000,
     {"max-handshakes-per-source", "N",
      "of those, at once from one source address\n"
      "(64; behind a load balancer, the PROXY header's)"}},
    {"limits",
     "retry_after_seconds",
     K_INT,
     F(retry_after_seconds),
     1,
     3600,
     {"retry-after", "S", "Retry-After advice on 503 (2)"}},
    {"limits",
     "max_body_challenge",
     K_SIZE,
     F(max_body_challenge),
     64,
     65536,
     {"max-body-challenge", "N", "POST /v1/challenge body limit in bytes (16384)"}},
    {"limits",
     "max_body_enroll",
     K_SIZE,
     F(max_body_enroll),
     1024,
     1048576,
     {"max-body-enroll", "N", "POST /v1/enroll body limit in bytes (65536)"}},
    {"limits",
     "max_headers_size",
     K_SIZE,
     F(max_headers_size),
     256,
     65536,
     {"max-headers-size", "N", "request header bytes (8192)"}},
    {"limits",
     "max_header_count",
     K_INT,
     F(max_header_count),
     4,
     256,
     {"max-header-count", "N", "request headers (32)"}},
    {"timeouts",
     "hello",
     K_INT,
     F(timeout_hello),
     1,
     600,
     {"timeout-hello", "S", "accept to a complete ClientHello (5)"}},
    {"timeouts",
     "handshake",
     K_INT,
     F(timeout_handshake),
     1,
     600,
     {"timeout-handshake", "S", "TLS handshake deadline, from its ClientHello (10)"}},
    {"timeouts",
     "request",
     K_INT,
     F(timeout_request),
     1,
     600,
     {"timeout-request", "S", "one request, first byte to answer (10)"}},
    {"timeouts",
     "idle",
     K_INT,
     F(timeout_idle),
     1,
     3600,
     {"timeout-idle", "S", "idle keep-alive connection (30)"}},
    {"timeouts",
     "shutdown_grace",
     K_INT,
     F(shutdown_grace_seconds),
     0,
     600,
     {"shutdown-grace", "S", "on SIGTERM, time for requests in flight (10)"}},
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static char **str_field(struct verifier_config *c, const struct key *k)
{
    return (char **)(void *)((char *)c + k->offset);
}

static int set_str(char **field, const char *value)
{
    char *copy = NULL;

    if (value != NULL && (copy = strdup(value)) == NULL)
        return DEVID_ERR_ALLOC;
    free(*field);
    *field = copy;
    return 0;
}

int verifier_config_init(struct verifier_config *c)
{
    memset(c, 0, sizeof(*c));
    c->tls_min = TLS1_2_VERSION;
    c->tls_max = TLS1_3_VERSION;
    c->validity_seconds = 365L * 86400;
    c->token_ttl_seconds = 120;
    c->workers = 0;
    c->max_connections = 16384;
    c->max_handshakes = 256;
    c->max_handshakes_per_source = 64;
    c->retry_after_seconds = 2;
    c->max_body_challenge = 16384;
    c->max_body_enroll = 64 * 1024;
    c->max_headers_size = 8 * 1024;
    c->max_header_count = 32;
    c->timeout_hello = 5;
    c->timeout_handshake = 10;
    c->timeout_request = 10;
    c->timeout_idle = 30;
    c->shutdown_grace_seconds = 10;
    c->crl_poll_seconds = 2;
    c->crl_next_update_seconds = 24L * 3600;
    c->log_poll_seconds = 1;
    c->log_sign_seconds = 300;
    if (set_str(&c->listen, "0.0.0.0:8443") != 0 ||
        set_str(&c->metrics_listen, "127.0.0.1:9443") != 0 ||
        set_str(&c->roots, "/etc/devid/roots") != 0 ||
        set_str(&c->ledger, VERIFIER_CONFIG_DEFAULT_LEDGER) != 0 ||
        set_str(&c->assurance_arc, ASSURANCE_DEFAULT_ARC) != 0)
        return DEVID_ERR_ALLOC;
    return 0;
}

void verifier_config_cleanup(struct verifier_config *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < N_KEYS; i++) {
        if (keys[i].kind == K_STR || keys[i].kind == K_NETS || keys[i].kind == K_OID)
            set_str(str_field(c, &keys[i]), NULL);
    }
    memset(c, 0, sizeof(*c));
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

/* Writes |v| of kind |k| into |c|. */
static void set_number(struct verifier_config *c, const struct key *k, long v)
{
    void *field = (char *)c + k->offset;

    if (k->kind == K_SIZE)
        *(size_t *)field = (size_t)v;
    else if (k->kind == K_DAYS)
        *(long *)field = v * 86400;
    else if (k->kind == K_LONG)
        *(long *)field = v;
    else
        *(int *)field = (int)v;
}

/* apply_text sets text key |k| of |c| to |value|. */
static int apply_text(struct verifier_config *c, const struct key *k, const char *value, int cli,
                      char *why, size_t why_len)
{
    if (*value == '\0' && !cli) {
        snprintf(why, why_len, "[%s] %s must not be empty", k->section, k->name);
        return DEVID_ERR_CONFIG;
    }
    if (set_str(str_field(c, k), value) != 0) {
        snprintf(why, why_len, "out of memory");
        return DEVID_ERR_ALLOC;
    }
    return 0;
}

/* apply sets key |k| of |c| from |value|, from the file or (|cli|) the
 * command line; the messages name the key the way its user wrote it. */
static int apply(struct verifier_config *c, const struct key *k, const char *value, int cli,
                 char *why, size_t why_len)
{
    struct proxy_acl acl;
    char net_why[160];
    long v = 0;

    switch (k->kind) {
        case K_NETS:
            if (proxy_acl_parse(&acl, value, net_why, sizeof(net_why)) != 0) {
                if (cli)
                    snprintf(why, why_len, "--%s: %s", k->option.name, net_why);
                else
                    snprintf(why, why_len, "[%s] %s: %s", k->section, k->name, net_why);
                return DEVID_ERR_CONFIG;
            }
            return apply_text(c, k, value, cli, why, why_len);
        case K_STR:
            return apply_text(c, k, value, cli, why, why_len);
        case K_OID:
            if (!assurance_arc_valid(value)) {
                if (cli)
                    snprintf(why, why_len,
                             "--%s wants a dotted-decimal OID of at most %d characters, not "
                             "\"%.120s\"",
                             k->option.name, ASSURANCE_ARC_MAX, value);
                else
                    snprintf(why, why_len,
                             "[%s] %s must be a dotted-decimal OID of at most %d characters, "
                             "not \"%.120s\"",
                             k->section, k->name, ASSURANCE_ARC_MAX, value);
                return DEVID_ERR_CONFIG;
            }
            return apply_text(c, k, value, cli, why, why_len);
        case K_TLS:
            if (strcmp(value, "1.2") != 0 && strcmp(value, "1.3") != 0) {
                if (cli)
                    snprintf(why, why_len, "TLS version must be 1.2 or 1.3, not \"%s\"", value);
                else
                    snprintf(why, why_len, "[%s] %s must be 1.2 or 1.3, not \"%s\"", k->section,
                             k->name, value);
                return DEVID_ERR_CONFIG;
            }
            *(int *)(void *)((char *)c + k->offset) =
                strcmp(value, "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
            return 0;
        default:
            if (parse_long(value, k->min, k->max, &v) != 0) {
                if (cli)
                    snprintf(why, why_len, "--%s wants %ld..%ld, not \"%s\"", k->option.name,
                             k->min, k->max, value);
                else
                    snprintf(why, why_len,
                             "[%s] %s must be a whole number from %ld to %ld, not \"%s\"",
                             k->section, k->name, k->min, k->max, value);
                return DEVID_ERR_CONFIG;
            }
            set_number(c, k, v);
            return 0;
    }
}

static int on_entry(void *arg, const char *section, const char *name, const char *value, char *err,
                    size_t err_len)
{
    size_t i;
    int known_section = 0;

    for (i = 0; i < N_KEYS; i++) {
        if (strcmp(keys[i].section, section) != 0)
            continue;
        known_section = 1;
        if (strcmp(keys[i].name, name) == 0)
            return apply(arg, &keys[i], value, 0, err, err_len) == 0 ? 0 : -1;
    }
    if (known_section)
        snprintf(err, err_len, "unknown key \"%s\" in section [%s]", name, section);
    else
        snprintf(err, err_len, "unknown section [%s]", section);
    return -1;
}

int verifier_config_parse(struct verifier_config *c, const char *buf, size_t len, const char *file,
                          char *why, size_t why_len)
{
    if (c == NULL || (buf == NULL && len > 0) || file == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    return conf_parse(buf != NULL ? buf : "", len, file, on_entry, c, why, why_len);
}

const struct verifier_config_option *verifier_config_get0_option(size_t i)
{
    return i < N_KEYS ? &keys[i].option : NULL;
}

int verifier_config_get0_key(size_t i, const char **section, const char **name)
{
    if (section == NULL || name == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *section = NULL;
    *name = NULL;
    if (i >= N_KEYS)
        return DEVID_ERR_NOT_FOUND;
    *section = keys[i].section;
    *name = keys[i].name;
    return 0;
}

int verifier_config_set_option(struct verifier_config *c, size_t i, const char *value, char *why,
                               size_t why_len)
{
    if (c == NULL || i >= N_KEYS || value == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    return apply(c, &keys[i], value, 1, why, why_len);
}
