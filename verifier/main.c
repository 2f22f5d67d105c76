/* devid-verifier: subcommands from a table, one *_main each. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "common/err.h"
#include "common/log.h"
#include "common/pemfile.h"
#include "verifier/ca.h"
#include "verifier/chain.h"
#include "verifier/identity.h"
#include "verifier/policy.h"
#include "verifier/server.h"
#include "verifier/token.h"
#include "verifier/trust.h"

/* Exit codes (sysexits.h values where one fits). */
enum {
    EXIT_REFUSED = 1,
    EXIT_USAGE = 64,
    EXIT_NOINPUT = 66,
    EXIT_SOFTWARE = 70,
    EXIT_CONFIG = 78,
};

static const char *prog = "devid-verifier";

static int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    unsigned long v;

    if (s == NULL || *s == '\0' || *s == '-')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_tls_version(const char *s, int *out)
{
    if (strcmp(s, "1.2") == 0)
        *out = TLS1_2_VERSION;
    else if (strcmp(s, "1.3") == 0)
        *out = TLS1_3_VERSION;
    else
        return -1;
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

static void serve_usage(FILE *f)
{
    fprintf(f,
            "usage: %s serve --tls-cert FILE --tls-key FILE --ca-cert FILE --ca-key URI\n"
            "           --token-key FILE [options]\n"
            "\n"
            "Serves POST /v1/challenge and POST /v1/enroll over mutual TLS.\n"
            "\n"
            "  --listen HOST:PORT     address to listen on (default 0.0.0.0:8443)\n"
            "  --tls-cert FILE        PEM server certificate, chain after it\n"
            "  --tls-key FILE         PEM server key\n"
            "  --roots DIR            manufacturer root certificates, *.pem and *.crt\n"
            "                         (default /etc/devid/roots)\n"
            "  --intermediates FILE   PEM manufacturer intermediates (optional)\n"
            "  --ca-cert FILE         PEM issuing CA certificate, its chain after it\n"
            "  --ca-key URI           issuing CA key: a PEM file (mode 0600) or an OpenSSL\n"
            "                         store URI\n"
            "  --token-key FILE       32 random bytes shared by every replica (mode 0600)\n"
            "  --validity-days N      operational certificate lifetime (default 365)\n"
            "  --token-ttl SECONDS    challenge lifetime (default 120)\n"
            "  --tls-min 1.2|1.3      lowest TLS version (default 1.2)\n"
            "  --tls-max 1.2|1.3      highest TLS version (default 1.3)\n"
            "  --allow-model M        only these models may enroll (repeatable)\n"
            "  --deny-model M         these models may not enroll (repeatable)\n"
            "  --allow-serial GLOB    only matching serials may enroll (repeatable)\n"
            "  --deny-serial GLOB     matching serials may not enroll (repeatable)\n"
            "  -v, --verbose          debug logging\n"
            "\n"
            "Exit status: 0 after SIGTERM or SIGINT, 64 usage, 66 unreadable input,\n"
            "78 bad configuration, 70 internal failure.\n",
            prog);
}

static int exit_for(int r)
{
    switch (r) {
        case 0:
            return 0;
        case DEVID_ERR_IO:
            return EXIT_NOINPUT;
        case DEVID_ERR_CONFIG:
            return EXIT_CONFIG;
        default:
            return EXIT_SOFTWARE;
    }
}

static int serve_main(int argc, char **argv)
{
    enum {
        O_TLS_CERT = 256,
        O_TLS_KEY,
        O_ROOTS,
        O_INTER,
        O_CA_CERT,
        O_CA_KEY,
        O_TOKEN_KEY,
        O_VALIDITY,
        O_TTL,
        O_TLS_MIN,
        O_TLS_MAX,
        O_ALLOW_MODEL,
        O_DENY_MODEL,
        O_ALLOW_SERIAL,
        O_DENY_SERIAL,
        O_LISTEN
    };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"tls-cert", required_argument, NULL, O_TLS_CERT},
        {"tls-key", required_argument, NULL, O_TLS_KEY},
        {"roots", required_argument, NULL, O_ROOTS},
        {"intermediates", required_argument, NULL, O_INTER},
        {"ca-cert", required_argument, NULL, O_CA_CERT},
        {"ca-key", required_argument, NULL, O_CA_KEY},
        {"token-key", required_argument, NULL, O_TOKEN_KEY},
        {"validity-days", required_argument, NULL, O_VALIDITY},
        {"token-ttl", required_argument, NULL, O_TTL},
        {"tls-min", required_argument, NULL, O_TLS_MIN},
        {"tls-max", required_argument, NULL, O_TLS_MAX},
        {"allow-model", required_argument, NULL, O_ALLOW_MODEL},
        {"deny-model", required_argument, NULL, O_DENY_MODEL},
        {"allow-serial", required_argument, NULL, O_ALLOW_SERIAL},
        {"deny-serial", required_argument, NULL, O_DENY_SERIAL},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct server_config cfg = {
        .listen = "0.0.0.0:8443",
        .tls_min = TLS1_2_VERSION,
        .tls_max = TLS1_3_VERSION,
        .validity_seconds = 365L * 86400,
        .token_ttl_seconds = 120,
        .max_body = 64 * 1024,
        .max_headers_size = 8 * 1024,
        .timeout_seconds = 30,
    };
    const char *roots = "/etc/devid/roots", *inter = NULL, *ca_cert = NULL, *ca_key = NULL;
    const char *token_key_path = NULL;
    uint8_t token_key[TOKEN_KEY_LEN];
    struct chain_store *store = NULL;
    struct policy *policy = NULL;
    struct ca *ca = NULL;
    unsigned long v;
    int c, r, rc = EXIT_USAGE, verbose = 0;

    if ((policy = policy_new()) == NULL)
        return EXIT_SOFTWARE;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
            case O_LISTEN:
                cfg.listen = optarg;
                break;
            case O_TLS_CERT:
                cfg.tls_cert = optarg;
                break;
            case O_TLS_KEY:
                cfg.tls_key = optarg;
                break;
            case O_ROOTS:
                roots = optarg;
                break;
            case O_INTER:
                inter = optarg;
                break;
            case O_CA_CERT:
                ca_cert = optarg;
                break;
            case O_CA_KEY:
                ca_key = optarg;
                break;
            case O_TOKEN_KEY:
                token_key_path = optarg;
                break;
            case O_VALIDITY:
                if (parse_ulong(optarg, 1, 36500, &v) != 0) {
                    fprintf(stderr, "%s: --validity-days wants 1..36500, not \"%s\"\n", prog,
                            optarg);
                    goto out;
                }
                cfg.validity_seconds = (long)v * 86400;
                break;
            case O_TTL:
                if (parse_ulong(optarg, 5, 3600, &v) != 0) {
                    fprintf(stderr, "%s: --token-ttl wants 5..3600 seconds, not \"%s\"\n", prog,
                            optarg);
                    goto out;
                }
                cfg.token_ttl_seconds = (long)v;
                break;
            case O_TLS_MIN:
            case O_TLS_MAX:
                if (parse_tls_version(optarg, c == O_TLS_MIN ? &cfg.tls_min : &cfg.tls_max) != 0) {
                    fprintf(stderr, "%s: TLS version must be 1.2 or 1.3, not \"%s\"\n", prog,
                            optarg);
                    goto out;
                }
                break;
            case O_ALLOW_MODEL:
            case O_DENY_MODEL:
            case O_ALLOW_SERIAL:
            case O_DENY_SERIAL:
                if (policy_add(policy,
                               c == O_ALLOW_MODEL    ? POLICY_ALLOW_MODEL
                               : c == O_DENY_MODEL   ? POLICY_DENY_MODEL
                               : c == O_ALLOW_SERIAL ? POLICY_ALLOW_SERIAL
                                                     : POLICY_DENY_SERIAL,
                               optarg) != 0) {
                    rc = EXIT_SOFTWARE;
                    goto out;
                }
                break;
            case 'v':
                verbose = 1;
                break;
            case 'h':
                serve_usage(stdout);
                rc = 0;
                goto out;
            default:
                serve_usage(stderr);
                goto out;
        }
    }
    if (optind != argc || cfg.tls_cert == NULL || cfg.tls_key == NULL || ca_cert == NULL ||
        ca_key == NULL || token_key_path == NULL) {
        fprintf(stderr,
                "%s serve: --tls-cert, --tls-key, --ca-cert, --ca-key and --token-key "
                "are required\n",
                prog);
        serve_usage(stderr);
        goto out;
    }
    if (cfg.tls_min > cfg.tls_max) {
        fprintf(stderr, "%s serve: --tls-min is above --tls-max\n", prog);
        goto out;
    }
    log_init(prog, verbose ? LOG_DEBUG : LOG_INFO);
    if ((r = read_token_key(token_key, token_key_path)) != 0 ||
        (r = trust_load(&store, roots, inter)) != 0 || (r = ca_load(&ca, ca_cert, ca_key)) != 0) {
        rc = exit_for(r);
        goto out;
    }
    rc = exit_for(server_run(&cfg, store, policy, ca, token_key));
out:
    OPENSSL_cleanse(token_key, sizeof(token_key));
    ca_free(ca);
    chain_store_free(store);
    policy_free(policy);
    return rc;
}

static void check_usage(FILE *f)
{
    fprintf(f,
            "usage: %s check-idevid --roots DIR [--intermediates FILE] [--at UNIXTIME]\n"
            "           [--allow-model M] [--deny-model M] [--deny-serial GLOB] CERT.pem\n"
            "\n"
            "Checks an IDevID certificate offline against the manufacturer roots. Any\n"
            "certificates after the first in CERT.pem are used as device intermediates.\n"
            "\n"
            "Exit status: 0 accepted (prints manufacturer, model and serial), 1 refused\n"
            "(prints the reason), 64 usage error, 66 unreadable input, 78 bad roots.\n",
            prog);
}

static int check_idevid_main(int argc, char **argv)
{
    enum { O_ROOTS = 256, O_INTER, O_AT, O_ALLOW_MODEL, O_DENY_MODEL, O_DENY_SERIAL };
    static const struct option opts[] = {
        {"roots", required_argument, NULL, O_ROOTS},
        {"intermediates", required_argument, NULL, O_INTER},
        {"at", required_argument, NULL, O_AT},
        {"allow-model", required_argument, NULL, O_ALLOW_MODEL},
        {"deny-model", required_argument, NULL, O_DENY_MODEL},
        {"deny-serial", required_argument, NULL, O_DENY_SERIAL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *roots = NULL, *inter = NULL;
    struct chain_store *store = NULL;
    struct chain_verdict verdict = {0};
    struct device_identity id;
    struct policy *policy = NULL;
    STACK_OF(X509) *certs = NULL;
    X509 *leaf = NULL;
    time_t now = time(NULL);
    unsigned long v;
    char why[512] = "";
    int c, r, rc = EXIT_USAGE;

    log_init(prog, LOG_WARNING);
    if ((policy = policy_new()) == NULL)
        return EXIT_SOFTWARE;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
            case O_ROOTS:
                roots = optarg;
                break;
            case O_INTER:
                inter = optarg;
                break;
            case O_AT:
                if (parse_ulong(optarg, 0, (unsigned long)INT64_MAX, &v) != 0) {
                    fprintf(stderr, "%s: --at wants seconds since the epoch\n", prog);
                    goto out;
                }
                now = (time_t)v;
                break;
            case O_ALLOW_MODEL:
            case O_DENY_MODEL:
            case O_DENY_SERIAL:
                if (policy_add(policy,
                               c == O_ALLOW_MODEL  ? POLICY_ALLOW_MODEL
                               : c == O_DENY_MODEL ? POLICY_DENY_MODEL
                                                   : POLICY_DENY_SERIAL,
                               optarg) != 0) {
                    rc = EXIT_SOFTWARE;
                    goto out;
                }
                break;
            case 'h':
                check_usage(stdout);
                rc = 0;
                goto out;
            default:
                check_usage(stderr);
                goto out;
        }
    }
    if (roots == NULL || optind != argc - 1) {
        check_usage(stderr);
        goto out;
    }
    if ((r = trust_load(&store, roots, inter)) != 0 ||
        (r = pemfile_read_certs(&certs, argv[optind], 1 + CHAIN_MAX_INTERMEDIATES)) != 0) {
        rc = exit_for(r);
        goto out;
    }
    leaf = sk_X509_shift(certs);
    if ((r = chain_verify(store, &verdict, leaf, certs, now, why, sizeof(why))) != 0 ||
        (r = identity_extract(&id, leaf, verdict.manufacturer, why, sizeof(why))) != 0 ||
        (r = policy_check(policy, &id, why, sizeof(why))) != 0) {
        printf("refused: %s: %s\n", devid_err_str(r), why);
        rc = EXIT_REFUSED;
        goto out;
    }
    printf("accepted\nmanufacturer: %s\nmodel: %s\nserial: %s\n", id.manufacturer, id.model,
           id.serial);
    rc = 0;
out:
    chain_verdict_cleanup(&verdict);
    X509_free(leaf);
    sk_X509_pop_free(certs, X509_free);
    chain_store_free(store);
    policy_free(policy);
    return rc;
}

static int help_main(int argc, char **argv);

static const struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *description;
} subcommands[] = {
    {"serve", serve_main, "run the enrollment service"},
    {"check-idevid", check_idevid_main, "check an IDevID certificate offline"},
    {"help", help_main, "show this help"},
};

static int help_main(int argc, char **argv)
{
    size_t i;

    printf("usage: %s <command> [options]\n\ncommands:\n", prog);
    for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        printf("  %-14s %s\n", subcommands[i].name, subcommands[i].description);
    printf("\n`%s <command> --help` describes each command.\n", prog);
    return 0;
}

int main(int argc, char **argv)
{
    size_t i;

    if (argc < 2) {
        help_main(argc, argv);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return help_main(argc, argv);
    if (strcmp(argv[1], "--version") == 0) {
        printf("%s %s\n", prog, DEVID_VERSION);
        return 0;
    }
    for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "%s: unknown command \"%s\"; try `%s --help`\n", prog, argv[1], prog);
    return EXIT_USAGE;
}
