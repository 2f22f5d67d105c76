/* devid-verifier serve: options, start-up checks, then the server. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "common/err.h"
#include "common/log.h"
#include "verifier/ca.h"
#include "verifier/chain.h"
#include "verifier/cmd.h"
#include "verifier/policy.h"
#include "verifier/server.h"
#include "verifier/token.h"
#include "verifier/trust.h"

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
            cmd_prog);
}

int serve_main(int argc, char **argv)
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
                if (cmd_parse_ulong(optarg, 1, 36500, &v) != 0) {
                    fprintf(stderr, "%s: --validity-days wants 1..36500, not \"%s\"\n", cmd_prog,
                            optarg);
                    goto out;
                }
                cfg.validity_seconds = (long)v * 86400;
                break;
            case O_TTL:
                if (cmd_parse_ulong(optarg, 5, 3600, &v) != 0) {
                    fprintf(stderr, "%s: --token-ttl wants 5..3600 seconds, not \"%s\"\n", cmd_prog,
                            optarg);
                    goto out;
                }
                cfg.token_ttl_seconds = (long)v;
                break;
            case O_TLS_MIN:
            case O_TLS_MAX:
                if (parse_tls_version(optarg, c == O_TLS_MIN ? &cfg.tls_min : &cfg.tls_max) != 0) {
                    fprintf(stderr, "%s: TLS version must be 1.2 or 1.3, not \"%s\"\n", cmd_prog,
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
                cmd_prog);
        serve_usage(stderr);
        goto out;
    }
    if (cfg.tls_min > cfg.tls_max) {
        fprintf(stderr, "%s serve: --tls-min is above --tls-max\n", cmd_prog);
        goto out;
    }
    log_init(cmd_prog, verbose ? LOG_DEBUG : LOG_INFO);
    if ((r = read_token_key(token_key, token_key_path)) != 0 ||
        (r = trust_load(&store, roots, inter)) != 0 || (r = ca_load(&ca, ca_cert, ca_key)) != 0) {
        rc = cmd_exit_for(r);
        goto out;
    }
    rc = cmd_exit_for(server_run(&cfg, store, policy, ca, token_key));
out:
    OPENSSL_cleanse(token_key, sizeof(token_key));
    ca_free(ca);
    chain_store_free(store);
    policy_free(policy);
    return rc;
}
