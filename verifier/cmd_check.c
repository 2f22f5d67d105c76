/* devid-verifier check-idevid: the offline IDevID check for operators. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/pemfile.h"
#include "verifier/chain.h"
#include "verifier/cmd.h"
#include "verifier/identity.h"
#include "verifier/policy.h"
#include "verifier/trust.h"

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
            cmd_prog);
}

int check_idevid_main(int argc, char **argv)
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

    log_init(cmd_prog, LOG_WARNING);
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
                if (cmd_parse_ulong(optarg, 0, (unsigned long)INT64_MAX, &v) != 0) {
                    fprintf(stderr, "%s: --at wants seconds since the epoch\n", cmd_prog);
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
        rc = cmd_exit_for(r);
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
