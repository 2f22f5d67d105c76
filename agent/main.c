/* devid-agent: enrolls this device with a devid verifier, using the IDevID in
 * its TPM. Subcommands come from a table (WireGuard wg.c style). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/x509.h>

#include "agent/enroll.h"
#include "common/err.h"
#include "common/log.h"

enum {
    EXIT_ENROLLED = 0,
    EXIT_REFUSED = 1,
    EXIT_TPM = 2,
    EXIT_NETWORK = 3,
    EXIT_LOCAL = 4,
    EXIT_USAGE = 64,
};

static const char *prog = "devid-agent";

static int enroll_main(int argc, char *argv[]);
static int help_main(int argc, char *argv[]);
static int version_main(int argc, char *argv[]);

static const struct {
    const char *name;
    int (*fn)(int argc, char *argv[]);
    const char *description;
} subcommands[] = {
    {"enroll", enroll_main, "Enroll this device and write its LDevID certificate"},
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
    fprintf(f, "\nRun '%s enroll --help' for the enroll options and exit codes.\n", prog);
}

static void enroll_usage(FILE *f)
{
    fprintf(f,
            "Usage: %s enroll --url URL --ca-bundle FILE [options]\n"
            "\n"
            "Proves the device's IDevID (a key in the TPM and its certificate) to the\n"
            "verifier over mutual TLS, creates a new key in the TPM and writes its\n"
            "certificate. Does nothing when OUT-DIR already holds a valid enrollment.\n"
            "\n"
            "Options:\n"
            "  --url URL            verifier base URL, e.g. https://verifier:8443\n"
            "  --ca-bundle FILE     PEM CAs trusted for the verifier's certificate\n"
            "  --tcti STR           TPM TCTI (default %s; also\n"
            "                       tabrmd:bus_type=session, swtpm:host=H,port=P)\n"
            "  --idevid-handle H    persistent handle of the IDevID key (default 0x%08X)\n"
            "  --idevid-nv IDX      NV index of the IDevID certificate (default 0x%08X)\n"
            "  --idevid-cert FILE   read the IDevID certificate from FILE instead of NV\n"
            "  --chain FILE         PEM intermediates of the IDevID certificate\n"
            "  --chain-nv IDX       NV index holding DER intermediates (e.g. 0x01C90001);\n"
            "                       with --chain, both are sent\n"
            "  --out-dir DIR        where cert.pem, chain.pem, key.tss2.pem go\n"
            "                       (default %s)\n"
            "  --srk-handle H       persistent handle of the storage root key, created if\n"
            "                       absent (default 0x%08X)\n"
            "  --persist-handle H   also make the new key persistent at H (replacing\n"
            "                       whatever is there)\n"
            "  --tls-version V      1.2 or 1.3 only (default: 1.2 to 1.3)\n"
            "  --timeout SECONDS    per request (default %d)\n"
            "  -v, --verbose        debug logging\n"
            "  -h, --help           this help\n"
            "\n"
            "Exit codes:\n"
            "  0   enrolled, or already enrolled\n"
            "  1   refused by the verifier (policy, chain, evidence...)\n"
            "  2   TPM error\n"
            "  3   network or TLS error (including an untrusted verifier certificate)\n"
            "  4   local error (files, configuration)\n"
            "  64  usage error\n",
            prog, ENROLL_DEFAULT_TCTI, ENROLL_DEFAULT_IDEVID_HANDLE, ENROLL_DEFAULT_IDEVID_NV,
            ENROLL_DEFAULT_OUT_DIR, ENROLL_DEFAULT_SRK_HANDLE, ENROLL_DEFAULT_TIMEOUT);
}

static int parse_u32(uint32_t *out, const char *s, const char *opt)
{
    unsigned long long v;
    char *end = NULL;

    errno = 0;
    if (s[0] == '\0' || s[0] == '-') {
        fprintf(stderr, "%s: %s: not a number: \"%s\"\n", prog, opt, s);
        return -1;
    }
    v = strtoull(s, &end, 0);
    if (errno != 0 || end == s || *end != '\0' || v > UINT32_MAX) {
        fprintf(stderr, "%s: %s: not a 32-bit number: \"%s\"\n", prog, opt, s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static int parse_handle(uint32_t *out, const char *s, const char *opt, uint32_t type)
{
    if (parse_u32(out, s, opt) != 0)
        return -1;
    if ((*out & 0xff000000u) != type) {
        fprintf(stderr, "%s: %s: 0x%08x is not a %s handle (0x%02x......)\n", prog, opt, *out,
                type == 0x81000000u ? "persistent" : "NV index", type >> 24);
        return -1;
    }
    return 0;
}

static int exit_code(int r)
{
    switch (r) {
        case 0:
            return EXIT_ENROLLED;
        case DEVID_ERR_REFUSED:
            return EXIT_REFUSED;
        case DEVID_ERR_TPM:
            return EXIT_TPM;
        case DEVID_ERR_NETWORK:
        case DEVID_ERR_TLS:
        case DEVID_ERR_PROTOCOL:
        case DEVID_ERR_TOO_LARGE:
            return EXIT_NETWORK;
        default:
            return EXIT_LOCAL;
    }
}

static void print_name(const char *label, const X509_NAME *name)
{
    BIO *bio = BIO_new_fp(stdout, BIO_NOCLOSE);

    if (bio == NULL)
        return;
    BIO_printf(bio, "%s: ", label);
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
    BIO_printf(bio, "\n");
    BIO_free(bio);
}

static void print_result(const struct enroll_result *res)
{
    BIGNUM *bn = NULL;
    char *hex = NULL;

    print_name("subject", X509_get_subject_name(res->cert));
    print_name("issuer", X509_get_issuer_name(res->cert));
    if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(res->cert), NULL)) != NULL &&
        (hex = BN_bn2hex(bn)) != NULL) {
        for (char *p = hex; *p != '\0'; p++) {
            if (*p >= 'A' && *p <= 'F')
                *p = (char)(*p - 'A' + 'a');
        }
        printf("serial: %s\n", hex);
    }
    printf("certificate: %s\n", res->cert_path);
    fflush(stdout);
    OPENSSL_free(hex);
    BN_free(bn);
}

static int enroll_main(int argc, char *argv[])
{
    enum {
        OPT_URL = 256,
        OPT_CA,
        OPT_TCTI,
        OPT_IDEVID_HANDLE,
        OPT_IDEVID_NV,
        OPT_IDEVID_CERT,
        OPT_CHAIN,
        OPT_CHAIN_NV,
        OPT_OUT_DIR,
        OPT_SRK,
        OPT_PERSIST,
        OPT_TLS,
        OPT_TIMEOUT,
    };
    static const struct option opts[] = {
        {"url", required_argument, NULL, OPT_URL},
        {"ca-bundle", required_argument, NULL, OPT_CA},
        {"tcti", required_argument, NULL, OPT_TCTI},
        {"idevid-handle", required_argument, NULL, OPT_IDEVID_HANDLE},
        {"idevid-nv", required_argument, NULL, OPT_IDEVID_NV},
        {"idevid-cert", required_argument, NULL, OPT_IDEVID_CERT},
        {"chain", required_argument, NULL, OPT_CHAIN},
        {"chain-nv", required_argument, NULL, OPT_CHAIN_NV},
        {"out-dir", required_argument, NULL, OPT_OUT_DIR},
        {"srk-handle", required_argument, NULL, OPT_SRK},
        {"persist-handle", required_argument, NULL, OPT_PERSIST},
        {"tls-version", required_argument, NULL, OPT_TLS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct enroll_config cfg = {
        .tcti = ENROLL_DEFAULT_TCTI,
        .idevid_handle = ENROLL_DEFAULT_IDEVID_HANDLE,
        .idevid_nv = ENROLL_DEFAULT_IDEVID_NV,
        .out_dir = ENROLL_DEFAULT_OUT_DIR,
        .srk_handle = ENROLL_DEFAULT_SRK_HANDLE,
        .tls_version = HTTP_TLS_DEFAULT,
        .timeout = ENROLL_DEFAULT_TIMEOUT,
    };
    struct enroll_result res;
    uint32_t v;
    int c, r, verbose = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
            case OPT_URL:
                cfg.url = optarg;
                break;
            case OPT_CA:
                cfg.ca_bundle = optarg;
                break;
            case OPT_TCTI:
                cfg.tcti = optarg;
                break;
            case OPT_IDEVID_HANDLE:
                if (parse_handle(&cfg.idevid_handle, optarg, "--idevid-handle", 0x81000000u))
                    return EXIT_USAGE;
                break;
            case OPT_IDEVID_NV:
                if (parse_handle(&cfg.idevid_nv, optarg, "--idevid-nv", 0x01000000u))
                    return EXIT_USAGE;
                break;
            case OPT_IDEVID_CERT:
                cfg.idevid_cert_file = optarg;
                break;
            case OPT_CHAIN:
                cfg.chain_file = optarg;
                break;
            case OPT_CHAIN_NV:
                if (parse_handle(&cfg.chain_nv, optarg, "--chain-nv", 0x01000000u))
                    return EXIT_USAGE;
                break;
            case OPT_OUT_DIR:
                cfg.out_dir = optarg;
                break;
            case OPT_SRK:
                if (parse_handle(&cfg.srk_handle, optarg, "--srk-handle", 0x81000000u))
                    return EXIT_USAGE;
                break;
            case OPT_PERSIST:
                if (parse_handle(&cfg.persist_handle, optarg, "--persist-handle", 0x81000000u))
                    return EXIT_USAGE;
                break;
            case OPT_TLS:
                if (strcmp(optarg, "1.2") == 0) {
                    cfg.tls_version = HTTP_TLS_1_2;
                } else if (strcmp(optarg, "1.3") == 0) {
                    cfg.tls_version = HTTP_TLS_1_3;
                } else {
                    fprintf(stderr, "%s: --tls-version: \"%s\" is neither 1.2 nor 1.3\n", prog,
                            optarg);
                    return EXIT_USAGE;
                }
                break;
            case OPT_TIMEOUT:
                if (parse_u32(&v, optarg, "--timeout") != 0 || v == 0 || v > 3600) {
                    fprintf(stderr, "%s: --timeout: want 1 to 3600 seconds\n", prog);
                    return EXIT_USAGE;
                }
                cfg.timeout = (long)v;
                break;
            case 'v':
                verbose = 1;
                break;
            case 'h':
                enroll_usage(stdout);
                return EXIT_ENROLLED;
            default:
                enroll_usage(stderr);
                return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "%s: enroll: unexpected argument \"%s\"\n", prog, argv[optind]);
        return EXIT_USAGE;
    }
    if (cfg.url == NULL || cfg.ca_bundle == NULL) {
        fprintf(stderr, "%s: enroll: --url and --ca-bundle are required\n", prog);
        return EXIT_USAGE;
    }
    if (strncmp(cfg.url, "https://", 8) != 0) {
        fprintf(stderr, "%s: --url: \"%s\" is not an https:// URL\n", prog, cfg.url);
        return EXIT_USAGE;
    }
    if (cfg.persist_handle != 0 &&
        (cfg.persist_handle == cfg.idevid_handle || cfg.persist_handle == cfg.srk_handle)) {
        fprintf(stderr, "%s: --persist-handle 0x%08x would replace the IDevID or SRK\n", prog,
                cfg.persist_handle);
        return EXIT_USAGE;
    }
    log_init(prog, verbose ? LOG_DEBUG : LOG_INFO);
    /* tpm2-tss logs expected failures (probing an absent handle) itself;
     * our messages name what failed, so keep its log for --verbose. */
    if (!verbose && setenv("TSS2_LOG", "all+none", 0) != 0)
        log_warn("cannot set TSS2_LOG");
    r = enroll_run(&res, &cfg);
    if (r != 0) {
        log_err("enrollment failed: %s", devid_err_str(r));
        return exit_code(r);
    }
    print_result(&res);
    enroll_result_cleanup(&res);
    return EXIT_ENROLLED;
}

static int help_main(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    usage(stdout);
    return EXIT_ENROLLED;
}

static int version_main(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    printf("%s %s\n", prog, DEVID_VERSION);
    return EXIT_ENROLLED;
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
