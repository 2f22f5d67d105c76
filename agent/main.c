/* devid-agent: enrolls this device with a devid verifier, using the IDevID in
 * its TPM. Subcommands come from a table (WireGuard wg.c style). */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/x509.h>

#include "agent/core/config.h"
#include "agent/run.h"
#include "agent/status.h"
#include "common/err.h"
#include "common/io/log.h"
#include "common/io/store.h"
#include "common/serial.h"

/* Exit codes; docs/agent.md and --help list them. systemd's
 * RestartPreventExitStatus names every one that retrying cannot fix. */
enum {
    EXIT_OK = 0,        /* enrolled, already enrolled, renewed or not due; status: valid */
    EXIT_REFUSED = 1,   /* the verifier refused (policy, chain, evidence); status: none */
    EXIT_TPM = 2,       /* TPM: IDevID/IAK missing, NV empty, cert/key mismatch, TPM error */
    EXIT_GAVE_UP = 3,   /* verifier or network unavailable until the deadline */
    EXIT_LOCAL = 4,     /* local files: output directory, writes */
    EXIT_UNTRUSTED = 5, /* the verifier's TLS certificate did not verify */
    EXIT_USAGE = 64,    /* bad command line */
    EXIT_CONFIG = 78,   /* bad or missing configuration */
};

static const char *prog = "devid-agent";

static int enroll_main(int argc, char *argv[]);
static int renew_main(int argc, char *argv[]);
static int status_main(int argc, char *argv[]);
static int help_main(int argc, char *argv[]);
static int version_main(int argc, char *argv[]);

static const struct {
    const char *name;
    int (*fn)(int argc, char *argv[]);
    const char *description;
} subcommands[] = {
    {"enroll", enroll_main, "Enroll this device and write its LDevID certificate"},
    {"renew", renew_main, "Renew the LDevID certificate with a new TPM key when due"},
    {"status", status_main, "Show the device identity and its operational certificate"},
    {"help", help_main, "Show this help"},
    {"version", version_main, "Show the version"},
};

static void usage(FILE *f)
{
    size_t i;

    fprintf(f, "Usage: %s <command> [options]\n       %s --help | --version\n\nCommands:\n", prog,
            prog);
    for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        fprintf(f, "  %-10s %s\n", subcommands[i].name, subcommands[i].description);
    fprintf(f, "\nRun '%s enroll --help' for the options and exit codes.\n", prog);
}

static void enroll_usage(FILE *f)
{
    fprintf(f,
            "Usage: %s enroll [--config FILE] [options]\n"
            "       %s renew [--force] [--config FILE] [options]\n"
            "       %s status [--config FILE] [options]\n"
            "\n"
            "enroll proves the device's IDevID (a key in the TPM and its certificate) to\n"
            "the verifier over mutual TLS, creates a new key in the TPM and writes its\n"
            "certificate. Does nothing when the output directory already holds a valid\n"
            "enrollment that matches the TPM. status prints the device identity and the\n"
            "operational certificate.\n"
            "\n"
            "renew enrolls again, with a new TPM key and fresh evidence, once [renew]\n"
            "renew_at (default %.2f) of the certificate's lifetime has passed, or at once\n"
            "with --force. The verifier revokes the old certificate (superseded); the\n"
            "old key leaves the TPM only after the new files are committed. Before that,\n"
            "renew says when it is due and exits 0 without using the TPM or network.\n"
            "Without a valid certificate it enrolls.\n"
            "\n"
            "Settings come from the configuration file (default %s, which may\n"
            "be absent; see agent.conf.example), then from these options, which win:\n"
            "  --config FILE        configuration file (must exist when given)\n"
            "  --url URL            verifier base URL, e.g. https://verifier:8443\n"
            "  --ca-bundle FILE     PEM CAs trusted for the verifier's certificate\n"
            "  --proxy URL          HTTP(S) proxy (default: https_proxy/no_proxy env)\n"
            "  --tcti STR           TPM TCTI (default %s; or\n"
            "                       tabrmd:bus_type=session, swtpm:host=H,port=P)\n"
            "  --idevid-handle H    persistent handle of the IDevID key (default 0x%08X)\n"
            "  --idevid-nv IDX      NV index of the IDevID certificate (default 0x%08X)\n"
            "  --idevid-cert FILE   read the IDevID certificate from FILE instead of NV\n"
            "  --iak-handle H       certify with the IAK at H (default: none, IDevID)\n"
            "  --iak-nv IDX         NV index of the IAK certificate (default 0x%08X)\n"
            "  --iak-cert FILE      read the IAK certificate from FILE instead of NV\n"
            "  --chain FILE         PEM intermediates of the IDevID certificate\n"
            "  --chain-nv IDX|FIRST-LAST\n"
            "                       NV index holding DER intermediates (e.g. 0x01C90001),\n"
            "                       or a range with one in each defined index (e.g.\n"
            "                       0x01C00100-0x01C001FF); NV contents may be padded\n"
            "                       with 0xFF/0x00 or start with a TCG header (10 01 00)\n"
            "  --out-dir DIR        where cert.pem, chain.pem, key.tss2.pem go\n"
            "                       (default %s)\n"
            "  --srk-handle H       persistent handle of the storage root key, created if\n"
            "                       absent (default 0x%08X)\n"
            "  --persist-handle H   also make the new key persistent at H\n"
            "  --ek auto|rsa|ecc|off\n"
            "                       auto: when an EK certificate is in NV (0x01C0000A,\n"
            "                       0x01C00016, 0x01C00002, first found), prove the new\n"
            "                       key is in this TPM by credential activation with the\n"
            "                       persistent EK (0x81010002, 0x81010016, 0x81010001),\n"
            "                       else one made from the TCG template: level ek;\n"
            "                       rsa, ecc: that EK only; off: never (default)\n"
            "  --ak auto|off        auto: with an EK and without an IAK, create an AK\n"
            "                       (restricted signing key) for the verifier's PCR\n"
            "                       quote, bound to this TPM by a second credential\n"
            "                       activation with the EK; off: never (default)\n"
            "  --tls-version V      1.2, 1.3 or any (default: any, 1.2 to 1.3)\n"
            "  --timeout SECONDS    per request (default %d)\n"
            "  --deadline SECONDS   give up retrying after this long (default %d)\n"
            "  --force              renew: renew now, even when not yet due\n"
            "  -v, --verbose        debug logging\n"
            "  -h, --help           this help\n"
            "\n"
            "Retries: network errors, HTTP 503, retryable refusals (overload, expired\n"
            "token) and transient TPM errors are retried with exponential backoff and\n"
            "full jitter, honouring Retry-After, until the deadline.\n"
            "\n"
            "Exit codes:\n"
            "  0   enrolled or already enrolled; renewed or not yet due (status: a valid\n"
            "      certificate is in place)\n"
            "  1   refused by the verifier: policy, chain, evidence (status: no valid\n"
            "      certificate)\n"
            "  2   TPM: IDevID/IAK key or certificate missing, NV index empty,\n"
            "      certificate and key do not match, TPM failure\n"
            "  3   the verifier could not be reached or answered wrongly until the\n"
            "      deadline (network, overload, TLS handshake); worth retrying later\n"
            "  4   local error: output directory or files\n"
            "  5   the verifier's TLS certificate is not trusted (check ca_bundle, url)\n"
            "  64  usage error\n"
            "  78  configuration error (file, line and reason are printed)\n"
            "\n"
            "Test hook: DEVID_AGENT_CRASH_AT=key-created|response|write|commit|\n"
            "renew-evict|persist makes the agent kill itself (SIGKILL) at that point.\n"
            "Never set it in production.\n",
            prog, prog, prog, CONFIG_DEFAULT_RENEW_AT, CONFIG_DEFAULT_FILE, CONFIG_DEFAULT_TCTI,
            CONFIG_DEFAULT_IDEVID_HANDLE, CONFIG_DEFAULT_IDEVID_NV, CONFIG_DEFAULT_IAK_NV,
            CONFIG_DEFAULT_OUT_DIR, CONFIG_DEFAULT_SRK_HANDLE, CONFIG_DEFAULT_TIMEOUT,
            CONFIG_DEFAULT_DEADLINE);
}

enum {
    OPT_CONFIG = 256,
    OPT_URL,
    OPT_CA,
    OPT_PROXY,
    OPT_TCTI,
    OPT_IDEVID_HANDLE,
    OPT_IDEVID_NV,
    OPT_IDEVID_CERT,
    OPT_IAK_HANDLE,
    OPT_IAK_NV,
    OPT_IAK_CERT,
    OPT_CHAIN,
    OPT_CHAIN_NV,
    OPT_OUT_DIR,
    OPT_SRK,
    OPT_PERSIST,
    OPT_EK,
    OPT_AK,
    OPT_TLS,
    OPT_TIMEOUT,
    OPT_DEADLINE,
    OPT_FORCE,
};

static const struct option opts[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"url", required_argument, NULL, OPT_URL},
    {"ca-bundle", required_argument, NULL, OPT_CA},
    {"proxy", required_argument, NULL, OPT_PROXY},
    {"tcti", required_argument, NULL, OPT_TCTI},
    {"idevid-handle", required_argument, NULL, OPT_IDEVID_HANDLE},
    {"idevid-nv", required_argument, NULL, OPT_IDEVID_NV},
    {"idevid-cert", required_argument, NULL, OPT_IDEVID_CERT},
    {"iak-handle", required_argument, NULL, OPT_IAK_HANDLE},
    {"iak-nv", required_argument, NULL, OPT_IAK_NV},
    {"iak-cert", required_argument, NULL, OPT_IAK_CERT},
    {"chain", required_argument, NULL, OPT_CHAIN},
    {"chain-nv", required_argument, NULL, OPT_CHAIN_NV},
    {"out-dir", required_argument, NULL, OPT_OUT_DIR},
    {"srk-handle", required_argument, NULL, OPT_SRK},
    {"persist-handle", required_argument, NULL, OPT_PERSIST},
    {"ek", required_argument, NULL, OPT_EK},
    {"ak", required_argument, NULL, OPT_AK},
    {"tls-version", required_argument, NULL, OPT_TLS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"deadline", required_argument, NULL, OPT_DEADLINE},
    {"force", no_argument, NULL, OPT_FORCE},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Each option is a configuration key: the flags go through agent_config_set, so
 * they are checked exactly as the file is. */
static const struct {
    int opt;
    const char *section;
    const char *key;
} opt_keys[] = {
    {OPT_URL, "verifier", "url"},
    {OPT_CA, "verifier", "ca_bundle"},
    {OPT_PROXY, "verifier", "proxy"},
    {OPT_TLS, "verifier", "tls_version"},
    {OPT_TCTI, "tpm", "tcti"},
    {OPT_IDEVID_HANDLE, "tpm", "idevid_handle"},
    {OPT_IDEVID_NV, "tpm", "idevid_cert_nv"},
    {OPT_IDEVID_CERT, "tpm", "idevid_cert_file"},
    {OPT_IAK_HANDLE, "tpm", "iak_handle"},
    {OPT_IAK_NV, "tpm", "iak_cert_nv"},
    {OPT_IAK_CERT, "tpm", "iak_cert_file"},
    {OPT_CHAIN, "tpm", "chain_file"},
    {OPT_CHAIN_NV, "tpm", "chain_nv"},
    {OPT_SRK, "tpm", "srk_handle"},
    {OPT_PERSIST, "tpm", "persist_handle"},
    {OPT_EK, "tpm", "ek"},
    {OPT_AK, "tpm", "ak"},
    {OPT_OUT_DIR, "output", "dir"},
    {OPT_TIMEOUT, "retry", "request_timeout"},
    {OPT_DEADLINE, "retry", "deadline"},
};

/* load_file applies the configuration file |path| to |cfg|; a missing file
 * is an error only when |explicit|. */
static int load_file(struct agent_config *cfg, const char *path, int explicit)
{
    char err[512], why[PATH_MAX + 128];
    uint8_t *buf = NULL;
    size_t len = 0;
    int r;

    r = store_read(&buf, &len, path, CONFIG_FILE_MAX, why, sizeof(why));
    if (r == DEVID_ERR_NOT_FOUND && !explicit)
        return 0;
    if (r != 0) {
        if (r == DEVID_ERR_NOT_FOUND)
            log_err("configuration file %s does not exist", path);
        else
            log_err("cannot read configuration file %s", why);
        return DEVID_ERR_CONFIG;
    }
    if (memchr(buf, '\0', len) != NULL) {
        log_err("configuration file %s holds a NUL byte", path);
        free(buf);
        return DEVID_ERR_CONFIG;
    }
    r = agent_config_parse(cfg, err, sizeof(err), (const char *)buf, path);
    if (r != 0)
        log_err("%s", err);
    free(buf);
    return r;
}

/* load_config fills |cfg| from the defaults, the configuration file and the
 * flags in |argv|. |force| is NULL for a command without --force. Returns
 * EXIT_OK, or an exit code; -1 for --help. */
static int load_config(struct agent_config *cfg, int *verbose, bool *force, int argc, char *argv[],
                       const char *cmd)
{
    const char *config_path = NULL;
    char err[512];
    size_t i;
    int c, r;

    *verbose = 0;
    if (force != NULL)
        *force = false;
    if (agent_config_init(cfg) != 0)
        return EXIT_LOCAL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        if (c == OPT_CONFIG)
            config_path = optarg;
    }
    if (load_file(cfg, config_path != NULL ? config_path : CONFIG_DEFAULT_FILE,
                  config_path != NULL) != 0)
        return EXIT_CONFIG;
    optind = 1;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
            case OPT_CONFIG:
                break;
            case OPT_FORCE:
                if (force == NULL) {
                    fprintf(stderr, "%s: %s: --force is an option of renew only\n", prog, cmd);
                    return EXIT_USAGE;
                }
                *force = true;
                break;
            case 'v':
                *verbose = 1;
                break;
            case 'h':
                enroll_usage(stdout);
                return -1;
            case '?':
            case ':':
                enroll_usage(stderr);
                return EXIT_USAGE;
            default:
                for (i = 0; i < sizeof(opt_keys) / sizeof(opt_keys[0]); i++) {
                    if (opt_keys[i].opt == c)
                        break;
                }
                if (i == sizeof(opt_keys) / sizeof(opt_keys[0]))
                    return EXIT_USAGE;
                r = agent_config_set(cfg, err, sizeof(err), opt_keys[i].section, opt_keys[i].key,
                                     optarg);
                if (r != 0) {
                    fprintf(stderr, "%s: --%s: %s\n", prog, opts[c - OPT_CONFIG].name,
                            r == DEVID_ERR_ALLOC ? "out of memory" : err);
                    return EXIT_USAGE;
                }
                break;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "%s: %s: unexpected argument \"%s\"\n", prog, cmd, argv[optind]);
        return EXIT_USAGE;
    }
    log_init(prog, *verbose ? LOG_DEBUG : LOG_INFO);
    /* tpm2-tss logs expected failures (probing an absent handle) itself;
     * our messages name what failed, so keep its log for --verbose. */
    if (!*verbose && setenv("TSS2_LOG", "all+none", 0) != 0)
        log_warn("cannot set TSS2_LOG");
    return EXIT_OK;
}

static int exit_code(int r, const struct run_result *res)
{
    if (r == 0)
        return EXIT_OK;
    if (res->peer_untrusted)
        return EXIT_UNTRUSTED;
    if (res->gave_up)
        return EXIT_GAVE_UP;
    switch (r) {
        case DEVID_ERR_REFUSED:
            return EXIT_REFUSED;
        case DEVID_ERR_TPM:
            return EXIT_TPM;
        case DEVID_ERR_NETWORK:
        case DEVID_ERR_TLS:
        case DEVID_ERR_PROTOCOL:
        case DEVID_ERR_TOO_LARGE:
            return EXIT_GAVE_UP;
        case DEVID_ERR_CONFIG:
            return EXIT_CONFIG;
        default:
            return EXIT_LOCAL;
    }
}

static void log_failure(const char *what, int rc, int r, const struct run_result *res)
{
    log_err("%s failed (exit %d): %s%s", what, rc,
            res->peer_untrusted ? "the verifier's TLS certificate is not trusted"
            : res->gave_up      ? "deadline reached while retrying"
                                : devid_err_str(r),
            res->peer_untrusted ? ": check ca_bundle and the url's host name" : "");
}

static void print_result(const struct run_result *res)
{
    char serial[SERIAL_HEX_LEN];
    BIO *bio = BIO_new_fp(stdout, BIO_NOCLOSE);

    if (bio == NULL)
        return;
    BIO_printf(bio, "subject: ");
    X509_NAME_print_ex(bio, X509_get_subject_name(res->cert), 0, XN_FLAG_RFC2253);
    BIO_printf(bio, "\nissuer: ");
    X509_NAME_print_ex(bio, X509_get_issuer_name(res->cert), 0, XN_FLAG_RFC2253);
    BIO_printf(bio, "\n");
    if (serial_hex(serial, sizeof(serial), res->cert) == 0)
        BIO_printf(bio, "serial: %s\n", serial);
    BIO_printf(bio, "certificate: %s\n", res->cert_path);
    (void)BIO_flush(bio);
    BIO_free(bio);
}

/* run_main runs enroll or, with |renew|, renew, and prints the certificate
 * it leaves in place. */
static int run_main(int argc, char *argv[], bool renew)
{
    struct agent_config cfg;
    struct run_result res;
    char err[512];
    bool force = false;
    int r, rc, verbose;

    memset(&res, 0, sizeof(res));
    rc = load_config(&cfg, &verbose, renew ? &force : NULL, argc, argv, renew ? "renew" : "enroll");
    if (rc != EXIT_OK)
        goto out;
    if (agent_config_check(&cfg, err, sizeof(err)) != 0) {
        log_err("configuration: %s", err);
        rc = EXIT_CONFIG;
        goto out;
    }
    r = renew ? run_renew(&res, &cfg, force) : run_enroll(&res, &cfg);
    rc = exit_code(r, &res);
    if (r != 0) {
        log_failure(renew ? "renewal" : "enrollment", rc, r, &res);
        goto out;
    }
    if (!res.not_due)
        print_result(&res);
out:
    run_result_cleanup(&res);
    agent_config_cleanup(&cfg);
    return rc < 0 ? EXIT_OK : rc;
}

static int enroll_main(int argc, char *argv[])
{
    return run_main(argc, argv, false);
}

static int renew_main(int argc, char *argv[])
{
    return run_main(argc, argv, true);
}

static int status_main(int argc, char *argv[])
{
    struct agent_config cfg;
    int r, rc, verbose;

    rc = load_config(&cfg, &verbose, NULL, argc, argv, "status");
    if (rc != EXIT_OK)
        goto out;
    r = status_print(&cfg);
    rc = r == 0                     ? EXIT_OK
         : r == DEVID_ERR_NOT_FOUND ? EXIT_REFUSED
         : r == DEVID_ERR_TPM       ? EXIT_TPM
                                    : EXIT_LOCAL;
out:
    agent_config_cleanup(&cfg);
    return rc < 0 ? EXIT_OK : rc;
}

static int help_main(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    usage(stdout);
    return EXIT_OK;
}

static int version_main(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    printf("%s %s\n", prog, DEVID_VERSION);
    return EXIT_OK;
}

int main(int argc, char *argv[])
{
    size_t i;

    log_init(prog, LOG_INFO);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return help_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "--version") == 0)
        return version_main(argc - 1, argv + 1);
    for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "%s: unknown command \"%s\"\n", prog, argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
