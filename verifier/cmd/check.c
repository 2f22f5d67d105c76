/* devid-verifier check-idevid: the offline IDevID check for operators. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "common/err.h"
#include "common/io/log.h"
#include "common/io/pemfile.h"
#include "verifier/core/chain.h"
#include "verifier/cmd/cmd.h"
#include "verifier/core/enroll.h"
#include "verifier/core/identity.h"
#include "verifier/core/policy.h"
#include "verifier/pki/trust.h"

static void check_usage(FILE *f)
{
    fprintf(f,
            "usage: %s check-idevid --manufacturers FILE [--policy FILE] [--at UNIXTIME] CERT.pem\n"
            "       %s check-idevid --roots DIR [--intermediates FILE] [--at UNIXTIME]\n"
            "           [--allow-model M] [--deny-model M] [--deny-serial GLOB] CERT.pem\n"
            "\n"
            "Checks an IDevID certificate offline, as the verifier would before any TPM\n"
            "evidence: the chain to a manufacturer root (algorithms, constraints, validity at\n"
            "--at, revocation), the device identity and the policy. Certificates after the\n"
            "first in CERT.pem are used as device intermediates. It prints every stage, so\n"
            "an operator sees exactly why a device would be refused.\n"
            "\n"
            "Exit status: 0 accepted (prints manufacturer, model and serial), 1 refused\n"
            "(prints the reason), 64 usage error, 66 unreadable input, 78 bad configuration.\n",
            cmd_prog, cmd_prog);
}

static void report(const struct enroll_idevid_report *rep, X509 *leaf, STACK_OF(X509) *device,
                   int r)
{
    STACK_OF(X509) *path = rep->chain.path;
    char subject[300], desc[200];
    int i, n;

    chain_subject(subject, sizeof(subject), leaf);
    chain_describe(desc, sizeof(desc), leaf);
    printf("certificate: %s\n  %s\n", subject, desc);
    if (!rep->chain_ok) {
        printf("chain: FAILED (%d device intermediates given)\n", sk_X509_num(device));
        printf("refused: %s: %s\n", devid_err_str(r), rep->why);
        return;
    }
    n = sk_X509_num(path);
    printf("chain: ok, %d certificates to manufacturer \"%s\"\n", n, rep->chain.manufacturer);
    for (i = 0; i < n; i++) {
        chain_subject(subject, sizeof(subject), sk_X509_value(path, i));
        chain_describe(desc, sizeof(desc), sk_X509_value(path, i));
        printf("  [%d] %s%s\n      %s\n", i, subject, i == n - 1 ? " (trust anchor)" : "", desc);
    }
    printf("revocation: %s (%s)\n", chain_revocation_str(rep->chain.revocation),
           rep->chain.revocation_detail);
    if (!rep->identity_ok) {
        printf("identity: FAILED\nrefused: %s: %s\n", devid_err_str(r), rep->why);
        return;
    }
    printf("identity: model \"%s\", serial \"%s\"%s%s\n  fingerprint (SHA-256): %s\n",
           rep->id.model, rep->id.serial, rep->id.hw_type[0] ? ", hwType " : "", rep->id.hw_type,
           rep->id.fingerprint);
    if (!rep->policy_ok) {
        printf("policy: denied\nrefused: %s: %s\n", devid_err_str(r), rep->why);
        return;
    }
    printf("policy: allowed\n");
    printf("accepted\nmanufacturer: %s\nmodel: %s\nserial: %s\n", rep->id.manufacturer,
           rep->id.model, rep->id.serial);
}

int check_idevid_main(int argc, char **argv)
{
    enum {
        O_ROOTS = 256,
        O_INTER,
        O_AT,
        O_ALLOW_MODEL,
        O_DENY_MODEL,
        O_DENY_SERIAL,
        O_MFRS,
        O_POLICY
    };
    static const struct option opts[] = {
        {"roots", required_argument, NULL, O_ROOTS},
        {"intermediates", required_argument, NULL, O_INTER},
        {"manufacturers", required_argument, NULL, O_MFRS},
        {"policy", required_argument, NULL, O_POLICY},
        {"at", required_argument, NULL, O_AT},
        {"allow-model", required_argument, NULL, O_ALLOW_MODEL},
        {"deny-model", required_argument, NULL, O_DENY_MODEL},
        {"deny-serial", required_argument, NULL, O_DENY_SERIAL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *roots = NULL, *inter = NULL, *mfrs = NULL, *policy_file = NULL;
    struct enroll_idevid_report rep = {0};
    struct trust *trust = NULL;
    struct policy *policy = NULL;
    STACK_OF(X509) *certs = NULL;
    X509 *leaf = NULL;
    time_t now = time(NULL);
    unsigned long v;
    char why[1024] = "";
    int c, r, rc = EXIT_USAGE, policy_opts = 0;

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
            case O_MFRS:
                mfrs = optarg;
                break;
            case O_POLICY:
                policy_file = optarg;
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
                policy_opts = 1;
                if (policy_add(policy,
                               c == O_ALLOW_MODEL  ? POLICY_ALLOW_MODEL
                               : c == O_DENY_MODEL ? POLICY_DENY_MODEL
                                                   : POLICY_DENY_SERIAL,
                               optarg) != 0) {
                    fprintf(stderr, "%s: bad policy value \"%s\"\n", cmd_prog, optarg);
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
    if ((roots == NULL) == (mfrs == NULL) || optind != argc - 1 ||
        (mfrs != NULL && (inter != NULL || policy_opts)) ||
        (roots != NULL && policy_file != NULL)) {
        check_usage(stderr);
        goto out;
    }
    if (mfrs != NULL) {
        policy_free(policy);
        r = trust_load_files(&trust, mfrs, policy_file, why, sizeof(why));
    } else {
        r = trust_load_roots(&trust, roots, inter, policy, why, sizeof(why));
    }
    policy = NULL;
    if (r != 0) {
        fprintf(stderr, "%s: %s\n", cmd_prog, why);
        rc = cmd_exit_for(r);
        goto out;
    }
    if ((r = pemfile_read_certs(&certs, argv[optind], 1 + CHAIN_MAX_INTERMEDIATES, why,
                                sizeof(why))) != 0) {
        fprintf(stderr, "%s: %s\n", cmd_prog, why);
        rc = cmd_exit_for(r);
        goto out;
    }
    leaf = sk_X509_shift(certs);
    r = enroll_check_idevid(&rep, trust_get0_store(trust), trust_get0_policy(trust), leaf, certs,
                            now);
    report(&rep, leaf, certs, r);
    rc = r == 0 ? 0 : EXIT_REFUSED;
out:
    enroll_idevid_report_cleanup(&rep);
    X509_free(leaf);
    sk_X509_pop_free(certs, X509_free);
    trust_free(trust);
    policy_free(policy);
    return rc;
}
