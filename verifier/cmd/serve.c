/* devid-verifier serve: configuration, start-up checks, then the server. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "common/err.h"
#include "common/io/log.h"
#include "verifier/pki/ca.h"
#include "verifier/core/chain.h"
#include "verifier/cmd/cmd.h"
#include "verifier/core/config.h"
#include "verifier/core/policy.h"
#include "verifier/server/server.h"
#include "verifier/core/token.h"
#include "verifier/pki/trust.h"

#define DEFAULT_CONFIG "/etc/devid/verifier.conf"
#define CONFIG_MAX (1024 * 1024)
#define MAX_POLICY_ARGS 256

/* A policy rule given on the command line; re-applied on every reload. */
struct policy_arg {
    enum policy_list list;
    const char *value;
};

struct loader {
    const struct verifier_config *cfg;
    struct policy_arg rules[MAX_POLICY_ARGS];
    size_t n_rules;
};

static void free_trust(void *arg)
{
    trust_free(arg);
}

/* load_trust is the server's (re)load hook: the manufacturers and policy
 * files when configured, else the simple --roots form with the command-line
 * policy rules. */
static int load_trust(void *arg, struct server_trust *out)
{
    const struct loader *l = arg;
    struct policy *policy = NULL;
    struct trust *t = NULL;
    char why[768] = "";
    size_t i;
    int r;

    if (l->cfg->manufacturers != NULL) {
        r = trust_load_files(&t, l->cfg->manufacturers, l->cfg->policy, why, sizeof(why));
    } else {
        if ((policy = policy_new()) == NULL)
            return DEVID_ERR_ALLOC;
        for (i = 0; i < l->n_rules; i++) {
            if ((r = policy_add(policy, l->rules[i].list, l->rules[i].value)) != 0) {
                policy_free(policy);
                return r;
            }
        }
        r = trust_load_roots(&t, l->cfg->roots, l->cfg->intermediates, policy, why, sizeof(why));
    }
    if (r != 0) {
        log_err("%s", why);
        return r;
    }
    out->store = trust_get0_store(t);
    out->policy = trust_get0_policy(t);
    out->owner = t;
    out->free_owner = free_trust;
    return 0;
}

static int read_token_key(uint8_t key[TOKEN_KEY_LEN], const char *path)
{
    uint8_t buf[TOKEN_KEY_LEN + 1];
    struct stat st;
    FILE *f = NULL;
    size_t n;
    int r = DEVID_ERR_INTERNAL;

    if ((f = fopen(path, "rb")) == NULL) {
        log_err("cannot read token key %s: %s", path, strerror(errno));
        return DEVID_ERR_IO;
    }
    if (fstat(fileno(f), &st) != 0 || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        log_err("token key %s is accessible by group or others; chmod 600 it", path);
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    n = fread(buf, 1, sizeof(buf), f);
    if (n != TOKEN_KEY_LEN) {
        log_err(
            "token key %s must hold exactly %d random bytes (it holds %s%zu); make one with "
            "`head -c 32 /dev/urandom > %s`",
            path, TOKEN_KEY_LEN, n > TOKEN_KEY_LEN ? "more than " : "", n, path);
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    memcpy(key, buf, TOKEN_KEY_LEN);
    r = 0;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    fclose(f);
    return r;
}

static int read_config(struct verifier_config *cfg, const char *path, int explicit)
{
    char err[512];
    char *text = NULL;
    FILE *f = NULL;
    size_t n;
    int r = DEVID_ERR_INTERNAL;

    if ((f = fopen(path, "r")) == NULL) {
        if (!explicit && errno == ENOENT)
            return 0;
        log_err("cannot read configuration %s: %s", path, strerror(errno));
        return DEVID_ERR_IO;
    }
    if ((text = malloc(CONFIG_MAX + 1)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    n = fread(text, 1, CONFIG_MAX + 1, f);
    if (ferror(f) || n > CONFIG_MAX) {
        log_err("configuration %s: %s", path, ferror(f) ? "read error" : "larger than 1 MiB");
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    text[n] = '\0';
    if ((r = config_parse(cfg, text, path, err, sizeof(err))) != 0) {
        log_err("%s", err);
        goto out;
    }
    r = 0;
out:
    free(text);
    fclose(f);
    return r;
}

static void serve_usage(FILE *f)
{
    fprintf(f,
            "usage: %s serve [--config FILE] [options]\n"
            "\n"
            "Serves POST /v1/challenge and POST /v1/enroll over mutual TLS, and /healthz and\n"
            "/metrics over plain HTTP. Settings come from the configuration file (default\n"
            "%s, if present; see deploy/config/verifier.conf.example); options override it.\n"
            "\n"
            "  --config FILE            INI configuration file\n"
            "  --listen HOST:PORT       TLS listener (default 0.0.0.0:8443)\n"
            "  --metrics-listen H:P     /healthz and /metrics (default 127.0.0.1:9443;\n"
            "                           \"\" disables)\n"
            "  --workers N              worker threads (default: one per core)\n"
            "  --tls-cert FILE          PEM server certificate, chain after it\n"
            "  --tls-key FILE           PEM server key\n"
            "  --tls-min 1.2|1.3        lowest TLS version (default 1.2)\n"
            "  --tls-max 1.2|1.3        highest TLS version (default 1.3)\n"
            "  --roots DIR              manufacturer roots, *.pem and *.crt\n"
            "                           (default /etc/devid/roots)\n"
            "  --intermediates FILE     PEM manufacturer intermediates\n"
            "  --manufacturers FILE     per-manufacturer roots, CRLs and algorithm rules\n"
            "                           (deploy/config/manufacturers.conf.example);\n"
            "                           replaces --roots and --intermediates\n"
            "  --policy FILE            enrollment policy (deploy/config/policy.conf.example);\n"
            "                           with --manufacturers only\n"
            "  --ca-cert FILE           PEM issuing CA certificate, its chain after it\n"
            "  --ca-key URI             issuing CA key: a PEM file (mode 0600) or an\n"
            "                           OpenSSL store URI (e.g. handle:0x81000002 with\n"
            "                           the tpm2 provider)\n"
            "  --ca-provider NAME       OpenSSL provider holding the CA key (e.g. tpm2)\n"
            "  --ca-tcti TCTI           the TPM the tpm2 provider uses (e.g.\n"
            "                           device:/dev/tpmrm0)\n"
            "  --token-key FILE         32 random bytes shared by every replica (mode 0600)\n"
            "  --ledger URI             issuance ledger (default\n"
            "                           sqlite:/var/lib/devid/ledger.db)\n"
            "  --replica-id NAME        this replica's name in the ledger (default: host)\n"
            "  --validity-days N        operational certificate lifetime (default 365)\n"
            "  --token-ttl SECONDS      challenge lifetime (default 120)\n"
            "  --max-connections N      past it, requests get 503 + Retry-After (4096)\n"
            "  --max-handshakes N       TLS handshakes in progress at once (256)\n"
            "  --timeout-handshake S    TLS handshake deadline (10)\n"
            "  --timeout-request S      one request, first byte to answer (10)\n"
            "  --timeout-idle S         idle keep-alive connection (30)\n"
            "  --allow-model M          only these models may enroll (repeatable)\n"
            "  --deny-model M           these models may not enroll (repeatable)\n"
            "  --allow-serial GLOB      only matching serials may enroll (repeatable)\n"
            "  --deny-serial GLOB       matching serials may not enroll (repeatable)\n"
            "  -v, --verbose            debug logging\n"
            "\n"
            "Signals: SIGTERM/SIGINT stop accepting, let requests in flight finish and exit 0;\n"
            "SIGHUP reloads roots, intermediates, CRLs and policy (a broken file keeps the old).\n"
            "Exit status: 0 after SIGTERM or SIGINT, 64 usage, 66 unreadable input,\n"
            "78 bad configuration, 70 internal failure.\n",
            cmd_prog, DEFAULT_CONFIG);
}

enum {
    O_CONFIG = 256,
    O_LISTEN,
    O_METRICS,
    O_WORKERS,
    O_TLS_CERT,
    O_TLS_KEY,
    O_TLS_MIN,
    O_TLS_MAX,
    O_ROOTS,
    O_INTER,
    O_CA_CERT,
    O_CA_KEY,
    O_TOKEN_KEY,
    O_VALIDITY,
    O_TTL,
    O_MAX_CONN,
    O_MAX_HS,
    O_T_HS,
    O_T_REQ,
    O_T_IDLE,
    O_ALLOW_MODEL,
    O_DENY_MODEL,
    O_ALLOW_SERIAL,
    O_DENY_SERIAL,
    O_LEDGER,
    O_REPLICA,
    O_MANUFACTURERS,
    O_POLICY,
    O_CA_PROVIDER,
    O_CA_TCTI,
};

static const struct option serve_opts[] = {
    {"config", required_argument, NULL, O_CONFIG},
    {"listen", required_argument, NULL, O_LISTEN},
    {"metrics-listen", required_argument, NULL, O_METRICS},
    {"workers", required_argument, NULL, O_WORKERS},
    {"tls-cert", required_argument, NULL, O_TLS_CERT},
    {"tls-key", required_argument, NULL, O_TLS_KEY},
    {"tls-min", required_argument, NULL, O_TLS_MIN},
    {"tls-max", required_argument, NULL, O_TLS_MAX},
    {"roots", required_argument, NULL, O_ROOTS},
    {"intermediates", required_argument, NULL, O_INTER},
    {"ca-cert", required_argument, NULL, O_CA_CERT},
    {"ca-key", required_argument, NULL, O_CA_KEY},
    {"ca-provider", required_argument, NULL, O_CA_PROVIDER},
    {"ca-tcti", required_argument, NULL, O_CA_TCTI},
    {"token-key", required_argument, NULL, O_TOKEN_KEY},
    {"validity-days", required_argument, NULL, O_VALIDITY},
    {"token-ttl", required_argument, NULL, O_TTL},
    {"max-connections", required_argument, NULL, O_MAX_CONN},
    {"max-handshakes", required_argument, NULL, O_MAX_HS},
    {"timeout-handshake", required_argument, NULL, O_T_HS},
    {"timeout-request", required_argument, NULL, O_T_REQ},
    {"timeout-idle", required_argument, NULL, O_T_IDLE},
    {"allow-model", required_argument, NULL, O_ALLOW_MODEL},
    {"deny-model", required_argument, NULL, O_DENY_MODEL},
    {"allow-serial", required_argument, NULL, O_ALLOW_SERIAL},
    {"deny-serial", required_argument, NULL, O_DENY_SERIAL},
    {"ledger", required_argument, NULL, O_LEDGER},
    {"manufacturers", required_argument, NULL, O_MANUFACTURERS},
    {"policy", required_argument, NULL, O_POLICY},
    {"replica-id", required_argument, NULL, O_REPLICA},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The --config option is read before the others, so they override it. */
static const char *find_config(int argc, char **argv, int *explicit)
{
    int i;

    *explicit = 0;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            *explicit = 1;
            return argv[i + 1];
        }
        if (strncmp(argv[i], "--config=", 9) == 0) {
            *explicit = 1;
            return argv[i] + 9;
        }
    }
    return DEFAULT_CONFIG;
}

static int set_int(const char *opt, const char *value, long min, long max, int *out)
{
    unsigned long v;

    if (cmd_parse_ulong(value, (unsigned long)min, (unsigned long)max, &v) != 0) {
        fprintf(stderr, "%s: --%s wants %ld..%ld, not \"%s\"\n", cmd_prog, opt, min, max, value);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int set_tls(const char *value, int *out)
{
    if (strcmp(value, "1.2") == 0)
        *out = TLS1_2_VERSION;
    else if (strcmp(value, "1.3") == 0)
        *out = TLS1_3_VERSION;
    else {
        fprintf(stderr, "%s: TLS version must be 1.2 or 1.3, not \"%s\"\n", cmd_prog, value);
        return -1;
    }
    return 0;
}

/* apply_option applies one command-line option; returns 0, or -1 on a bad value. */
static int apply_option(struct verifier_config *cfg, struct loader *l, int c, const char *arg)
{
    struct server_config *sc = &cfg->server;
    int v = 0;

    switch (c) {
        case O_CONFIG:
            return 0;
        case O_LISTEN:
            return config_set_str(cfg, &cfg->listen, arg);
        case O_METRICS:
            return config_set_str(cfg, &cfg->metrics_listen, arg);
        case O_WORKERS:
            return set_int("workers", arg, 0, 64, &sc->workers);
        case O_TLS_CERT:
            return config_set_str(cfg, &cfg->tls_cert, arg);
        case O_TLS_KEY:
            return config_set_str(cfg, &cfg->tls_key, arg);
        case O_TLS_MIN:
            return set_tls(arg, &sc->tls_min);
        case O_TLS_MAX:
            return set_tls(arg, &sc->tls_max);
        case O_ROOTS:
            return config_set_str(cfg, &cfg->roots, arg);
        case O_INTER:
            return config_set_str(cfg, &cfg->intermediates, arg);
        case O_CA_CERT:
            return config_set_str(cfg, &cfg->ca_cert, arg);
        case O_CA_KEY:
            return config_set_str(cfg, &cfg->ca_key, arg);
        case O_CA_PROVIDER:
            return config_set_str(cfg, &cfg->ca_provider, arg);
        case O_CA_TCTI:
            return config_set_str(cfg, &cfg->ca_tcti, arg);
        case O_TOKEN_KEY:
            return config_set_str(cfg, &cfg->token_key, arg);
        case O_LEDGER:
            return config_set_str(cfg, &cfg->ledger, arg);
        case O_MANUFACTURERS:
            return config_set_str(cfg, &cfg->manufacturers, arg);
        case O_POLICY:
            return config_set_str(cfg, &cfg->policy, arg);
        case O_REPLICA:
            return config_set_str(cfg, &cfg->replica_id, arg);
        case O_VALIDITY:
            if (set_int("validity-days", arg, 1, 36500, &v) != 0)
                return -1;
            sc->validity_seconds = (long)v * 86400;
            return 0;
        case O_TTL:
            if (set_int("token-ttl", arg, 5, 3600, &v) != 0)
                return -1;
            sc->token_ttl_seconds = v;
            return 0;
        case O_MAX_CONN:
            return set_int("max-connections", arg, 1, 1000000, &sc->max_connections);
        case O_MAX_HS:
            return set_int("max-handshakes", arg, 1, 100000, &sc->max_handshakes);
        case O_T_HS:
            return set_int("timeout-handshake", arg, 1, 600, &sc->timeout_handshake);
        case O_T_REQ:
            return set_int("timeout-request", arg, 1, 600, &sc->timeout_request);
        case O_T_IDLE:
            return set_int("timeout-idle", arg, 1, 3600, &sc->timeout_idle);
        case O_ALLOW_MODEL:
        case O_DENY_MODEL:
        case O_ALLOW_SERIAL:
        case O_DENY_SERIAL:
            if (l->n_rules >= MAX_POLICY_ARGS) {
                fprintf(stderr, "%s: more than %d policy options\n", cmd_prog, MAX_POLICY_ARGS);
                return -1;
            }
            l->rules[l->n_rules].list = c == O_ALLOW_MODEL    ? POLICY_ALLOW_MODEL
                                        : c == O_DENY_MODEL   ? POLICY_DENY_MODEL
                                        : c == O_ALLOW_SERIAL ? POLICY_ALLOW_SERIAL
                                                              : POLICY_DENY_SERIAL;
            l->rules[l->n_rules++].value = arg;
            return 0;
        default:
            return -1;
    }
}

int serve_main(int argc, char **argv)
{
    struct verifier_config cfg;
    struct loader loader;
    struct server_hooks hooks = {load_trust, &loader};
    const char *config_path;
    uint8_t token_key[TOKEN_KEY_LEN];
    struct ca *ca = NULL;
    int c, r, explicit = 0, rc = EXIT_USAGE, verbose = 0;

    memset(&loader, 0, sizeof(loader));
    memset(token_key, 0, sizeof(token_key));
    config_init(&cfg);
    loader.cfg = &cfg;
    log_init(cmd_prog, LOG_INFO);
    config_path = find_config(argc, argv, &explicit);
    if ((r = read_config(&cfg, config_path, explicit)) != 0) {
        rc = cmd_exit_for(r);
        goto out;
    }
    while ((c = getopt_long(argc, argv, "vh", serve_opts, NULL)) != -1) {
        if (c == 'v') {
            verbose = 1;
        } else if (c == 'h') {
            serve_usage(stdout);
            rc = 0;
            goto out;
        } else if (c == '?' || apply_option(&cfg, &loader, c, optarg) != 0) {
            serve_usage(stderr);
            goto out;
        }
    }
    if (optind != argc || cfg.tls_cert == NULL || cfg.tls_key == NULL || cfg.ca_cert == NULL ||
        cfg.ca_key == NULL || cfg.token_key == NULL) {
        fprintf(stderr,
                "%s serve: TLS certificate and key, CA certificate and key, and the token key "
                "are required (in %s or as --tls-cert, --tls-key, --ca-cert, --ca-key, "
                "--token-key)\n",
                cmd_prog, config_path);
        goto out;
    }
    if (cfg.manufacturers != NULL && loader.n_rules > 0) {
        fprintf(stderr,
                "%s serve: with a manufacturers file, put policy rules in the policy "
                "file, not on the command line\n",
                cmd_prog);
        goto out;
    }
    if (cfg.policy != NULL && cfg.manufacturers == NULL) {
        fprintf(stderr, "%s serve: a policy file goes with a manufacturers file\n", cmd_prog);
        goto out;
    }
    if (cfg.server.tls_min > cfg.server.tls_max) {
        fprintf(stderr, "%s serve: the lowest TLS version is above the highest\n", cmd_prog);
        goto out;
    }
    log_init(cmd_prog, verbose ? LOG_DEBUG : LOG_INFO);
    if ((r = read_token_key(token_key, cfg.token_key)) != 0 ||
        (cfg.ca_provider != NULL && (r = ca_use_provider(cfg.ca_provider, cfg.ca_tcti)) != 0) ||
        (r = ca_load(&ca, cfg.ca_cert, cfg.ca_key)) != 0) {
        rc = cmd_exit_for(r);
        goto out;
    }
    rc = cmd_exit_for(server_run(&cfg.server, &hooks, ca, token_key));
out:
    OPENSSL_cleanse(token_key, sizeof(token_key));
    ca_free(ca);
    ca_release_providers();
    config_cleanup(&cfg);
    return rc;
}
