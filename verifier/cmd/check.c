/* devid-verifier check-idevid: the offline IDevID check for operators. */
#include "verifier/cmd/check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/io/log.h"
#include "common/io/pemfile.h"
#include "common/io/store.h"
#include "common/nvcert.h"
#include "verifier/cmd/cmd.h"
#include "verifier/core/assurance.h"
#include "verifier/core/chain.h"
#include "verifier/core/ekcert.h"
#include "verifier/core/enroll.h"
#include "verifier/core/identity.h"
#include "verifier/core/policy.h"
#include "verifier/pki/trust.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s check-idevid --manufacturers FILE [--policy FILE] [--at UNIXTIME] CERT.pem\n"
            "       %s check-idevid --roots DIR [--intermediates FILE] [--at UNIXTIME]\n"
            "           [--allow-model M] [--deny-model M] [--deny-serial GLOB] CERT.pem\n"
            "       %s check-idevid (--manufacturers FILE ... | --roots DIR ...)\n"
            "           --nv-dump FILE [CHAIN_DUMP...]\n"
            "       %s check-idevid --manufacturers FILE [--at UNIXTIME] --ek FILE [CHAIN...]\n"
            "\n"
            "Checks an IDevID certificate offline, as the verifier would before any TPM\n"
            "evidence: the chain to a manufacturer root (algorithms, constraints, validity at\n"
            "--at, revocation), the device identity and the policy. Certificates after the\n"
            "first in CERT.pem are used as device intermediates. It prints every stage, so\n"
            "an operator sees exactly why a device would be refused.\n"
            "\n"
            "--nv-dump FILE reads the IDevID certificate as the agent reads its NV index\n"
            "(tpm2_nvread -o FILE 0x01C90000): exactly one DER certificate, perhaps after\n"
            "a TCG header (10 01 00 ..) and followed by 0x00/0xFF padding, or PEM; each\n"
            "CHAIN_DUMP is one more NV index's contents, the device's intermediates.\n"
            "\n"
            "--ek FILE checks a TPM endorsement key certificate instead, as the verifier\n"
            "does before credential activation: FILE is the EK certificate index's contents\n"
            "(tpm2_nvread -o FILE 0x01C00002) or a DER certificate; BER encodings, a TCG\n"
            "header and padding are accepted. It must chain to a [tpm_vendor] of the\n"
            "manufacturers file; each CHAIN is an EK chain certificate (NV dump or DER).\n"
            "It prints the TPM manufacturer, model and version of the certificate's SAN.\n"
            "\n"
            "Exit status: 0 accepted (prints manufacturer, model and serial), 1 refused\n"
            "(prints the reason), 64 usage error, 66 unreadable input, 78 bad configuration\n"
            "or a malformed certificate or NV dump.\n",
            cmd_prog, cmd_prog, cmd_prog, cmd_prog);
}

/* Prints why a stage refused. */
static void refused(int r, const char *why)
{
    char t[CMD_TEXT_MAX];

    printf("refused: %s: %s\n", devid_err_str(r), cmd_line(t, sizeof(t), why));
}

/* subject writes |x|'s subject to |buf|: RFC 2253 as OpenSSL escapes it,
 * then escaped for output. */
static const char *subject(char buf[CMD_TEXT_MAX], X509 *x)
{
    char name[257];

    chain_name_str(name, sizeof(name), X509_get_subject_name(x));
    return cmd_text(buf, CMD_TEXT_MAX, name);
}

/* Prints the chain: each certificate's subject and keys. */
static void print_chain(const struct enroll_idevid_report *rep)
{
    STACK_OF(X509) *path = rep->chain.path;
    char desc[200], t[CMD_TEXT_MAX];
    int i, n = sk_X509_num(path);

    printf("chain: ok, %d certificates to manufacturer \"%s\"\n", n,
           cmd_text(t, sizeof(t), rep->chain.manufacturer));
    for (i = 0; i < n; i++) {
        chain_describe(desc, sizeof(desc), sk_X509_value(path, i));
        printf("  [%d] \"%s\"%s\n      %s\n", i, subject(t, sk_X509_value(path, i)),
               i == n - 1 ? " (trust anchor)" : "", desc);
    }
    printf("revocation: %s (%s)\n", chain_revocation_str(rep->chain.revocation),
           cmd_line(t, sizeof(t), rep->chain.revocation_detail));
}

static void report(const struct enroll_idevid_report *rep, X509 *leaf, STACK_OF(X509) *device,
                   int r)
{
    const struct device_identity *id = &rep->id;
    char desc[200], t[CMD_TEXT_MAX], model[CMD_TEXT_MAX], serial[CMD_TEXT_MAX], pcrs[80];

    chain_describe(desc, sizeof(desc), leaf);
    printf("certificate: \"%s\"\n  %s\n", subject(t, leaf), desc);
    if (!rep->chain_ok) {
        printf("chain: FAILED (%d device intermediates given)\n", sk_X509_num(device));
        refused(r, rep->why);
        return;
    }
    print_chain(rep);
    if (!rep->identity_ok) {
        printf("identity: FAILED\n");
        refused(r, rep->why);
        return;
    }
    cmd_text(model, sizeof(model), id->model);
    cmd_text(serial, sizeof(serial), id->serial);
    printf("identity: model \"%s\", serial \"%s\"%s%s\n  fingerprint (SHA-256): %s\n", model,
           serial, id->hw_type[0] ? ", hwType " : "", cmd_text(t, sizeof(t), id->hw_type),
           id->fingerprint);
    printf("assurance: minimum %s (%s)\n  %s\n", assurance_str(rep->minimum),
           cmd_line(t, sizeof(t), rep->minimum_rule),
           rep->minimum == ASSURANCE_NONE
               ? "IDevID-signed evidence is accepted: it proves possession of the IDevID, not "
                 "where the new key lives"
               : "the device must certify its new key with its IAK");
    if (rep->pcrs != 0)
        printf("boot-state gate: SHA-256 PCRs %s, quoted by the IAK (%s)\n",
               quote_selection_str(pcrs, sizeof(pcrs), rep->pcrs),
               cmd_line(t, sizeof(t), rep->pcr_rule));
    if (!rep->policy_ok) {
        printf("policy: denied\n");
        refused(r, rep->why);
        return;
    }
    printf("policy: allowed\n");
    printf("accepted\nmanufacturer: %s\nmodel: %s\nserial: %s\n",
           cmd_text(t, sizeof(t), id->manufacturer), model, serial);
}

/* What check-idevid's options set. */
struct check_args {
    const char *roots, *inter, *mfrs, *policy_file, *nv_dump, *ek;
    unsigned long at;
    struct policy *policy;
    int policy_opts;
};

static int on_policy_option(void *ctx, int id, const char *arg)
{
    struct check_args *a = ctx;

    a->policy_opts = 1;
    if (policy_add(a->policy, (enum policy_list)id, arg) != 0) {
        fprintf(stderr, "%s: bad policy value \"%s\"\n", cmd_prog, arg);
        return -1;
    }
    return 0;
}

/* Loads the trust state the options name; returns 0 or an exit code. */
static int load(struct trust **trust, struct check_args *a)
{
    char why[1024] = "";
    int r;

    if (a->mfrs != NULL) {
        policy_free(a->policy);
        r = trust_new_from_files(trust, a->mfrs, a->policy_file, why, sizeof(why));
    } else {
        r = trust_new_from_roots(trust, a->roots, a->inter, a->policy, why, sizeof(why));
    }
    a->policy = NULL;
    if (r != 0) {
        fprintf(stderr, "%s: %s\n", cmd_prog, why);
        return cmd_exit_for(r);
    }
    return 0;
}

/* Largest NV dump read: far above any NV index. */
#define NV_DUMP_MAX (64 * 1024)

/* read_nv_dump appends the certificates of the NV dump |path| to |certs|: one,
 * or with |max| > 1 as many as an NV index may hold (common/nvcert.h).
 * Returns 0 or an exit code, the reason printed. */
static int read_nv_dump(STACK_OF(X509) *certs, const char *path, size_t max)
{
    STACK_OF(X509) *sk = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    char why[1024] = "";
    X509 *x;
    int r;

    if ((r = store_read(&buf, &len, path, NV_DUMP_MAX, why, sizeof(why))) != 0) {
        fprintf(stderr, "%s: %s\n", cmd_prog, why);
        return cmd_exit_for(r == DEVID_ERR_TOO_LARGE ? DEVID_ERR_CONFIG : r);
    }
    if ((r = nvcert_parse(&sk, buf, len, max, why, sizeof(why))) != 0) {
        fprintf(stderr, "%s: NV dump %s (%zu bytes): %s\n", cmd_prog, path, len, why);
        free(buf);
        return cmd_exit_for(r);
    }
    free(buf);
    while ((x = sk_X509_shift(sk)) != NULL) {
        if (sk_X509_push(certs, x) <= 0) {
            X509_free(x);
            sk_X509_pop_free(sk, X509_free);
            return EXIT_SOFTWARE;
        }
    }
    sk_X509_free(sk);
    return 0;
}

/* read_certs sets |*certs| to the device's certificates, the IDevID first:
 * from the NV dumps (|a->nv_dump|, then each of |more|, |n_more| of them), or
 * else from the certificate file |more[0]|. Returns 0 or an exit code. */
static int read_certs(STACK_OF(X509) **certs, const struct check_args *a, char **more, int n_more)
{
    char why[1024] = "";
    size_t have;
    int i, r;

    if (a->nv_dump == NULL) {
        if ((r = pemfile_read_certs(certs, more[0], 1 + CHAIN_MAX_DEPTH, why, sizeof(why))) != 0) {
            fprintf(stderr, "%s: %s\n", cmd_prog, why);
            return cmd_exit_for(r);
        }
        return 0;
    }
    if ((*certs = sk_X509_new_null()) == NULL)
        return EXIT_SOFTWARE;
    r = read_nv_dump(*certs, a->nv_dump, 1);
    for (i = 0; r == 0 && i < n_more; i++) {
        have = (size_t)sk_X509_num(*certs);
        if (have >= 1 + CHAIN_MAX_DEPTH) {
            fprintf(stderr, "%s: more than %d intermediates in the NV dumps\n", cmd_prog,
                    CHAIN_MAX_DEPTH);
            r = EXIT_CONFIG;
            break;
        }
        r = read_nv_dump(*certs, more[i], 1 + CHAIN_MAX_DEPTH - have);
    }
    if (r != 0) {
        sk_X509_pop_free(*certs, X509_free);
        *certs = NULL;
    }
    return r;
}

/* Reads the device's certificates and checks the first; returns the exit
 * code. */
static int check_file(const struct trust *trust, const struct check_args *a, char **more,
                      int n_more, time_t now)
{
    struct enroll_idevid_report rep = {0};
    STACK_OF(X509) *certs = NULL;
    X509 *leaf = NULL;
    int r;

    if ((r = read_certs(&certs, a, more, n_more)) != 0)
        return r;
    leaf = sk_X509_shift(certs);
    r = enroll_check_idevid(&rep, trust_get0_store(trust), trust_get0_policy(trust), leaf, certs,
                            now, NULL);
    report(&rep, leaf, certs, r);
    enroll_idevid_report_cleanup(&rep);
    X509_free(leaf);
    sk_X509_pop_free(certs, X509_free);
    return r == 0 ? 0 : EXIT_REFUSED;
}

/* read_ek reads the EK certificate file |path| as the agent reads the EK
 * index (nvcert_parse_ek). Returns 0 or an exit code, the reason printed. */
static int read_ek(X509 **out, const char *path)
{
    struct nvcert_span span;
    uint8_t *buf = NULL;
    size_t len = 0;
    char why[1024] = "";
    int r;

    if ((r = store_read(&buf, &len, path, NV_DUMP_MAX, why, sizeof(why))) != 0) {
        fprintf(stderr, "%s: %s\n", cmd_prog, why);
        return cmd_exit_for(r == DEVID_ERR_TOO_LARGE ? DEVID_ERR_CONFIG : r);
    }
    r = nvcert_parse_ek(out, &span, buf, len, why, sizeof(why));
    free(buf);
    if (r != 0) {
        fprintf(stderr, "%s: EK certificate %s (%zu bytes): %s\n", cmd_prog, path, len, why);
        return cmd_exit_for(r);
    }
    return 0;
}

/* check_ek checks the EK certificate |a->ek| with the chain files |more|;
 * returns the exit code. */
static int check_ek(const struct trust *trust, const struct check_args *a, char **more, int n_more,
                    time_t now)
{
    struct chain_verdict v = {0};
    struct ekcert_tpm tpm;
    STACK_OF(X509) *chain = NULL;
    X509 *ek = NULL, *x = NULL;
    char why[1024] = "", desc[200], t[CMD_TEXT_MAX];
    int i, r;

    if ((r = read_ek(&ek, a->ek)) != 0)
        return r;
    if ((chain = sk_X509_new_null()) == NULL) {
        r = EXIT_SOFTWARE;
        goto out;
    }
    for (i = 0; i < n_more && i < CHAIN_MAX_DEPTH; i++) {
        if ((r = read_ek(&x, more[i])) != 0)
            goto out;
        if (sk_X509_push(chain, x) <= 0) {
            X509_free(x);
            r = EXIT_SOFTWARE;
            goto out;
        }
    }
    chain_describe(desc, sizeof(desc), ek);
    printf("EK certificate: \"%s\"%s\n  %s\n", subject(t, ek),
           X509_NAME_entry_count(X509_get_subject_name(ek)) == 0 ? " (empty subject)" : "", desc);
    r = ekcert_verify(&v, &tpm, trust_get0_ek_store(trust), ek, chain, now, why, sizeof(why));
    if (r != 0) {
        printf("chain: FAILED (%d chain certificates given)\n", sk_X509_num(chain));
        refused(r, why);
        r = EXIT_REFUSED;
        goto out;
    }
    printf("chain: ok, %d certificates to TPM vendor \"%s\"\n", sk_X509_num(v.path),
           cmd_text(t, sizeof(t), v.manufacturer));
    for (i = 0; i < sk_X509_num(v.path); i++) {
        chain_describe(desc, sizeof(desc), sk_X509_value(v.path, i));
        printf("  [%d] \"%s\"%s\n      %s\n", i, subject(t, sk_X509_value(v.path, i)),
               i == sk_X509_num(v.path) - 1 ? " (trust anchor)" : "", desc);
    }
    printf("revocation: %s (%s)\n", chain_revocation_str(v.revocation),
           cmd_line(t, sizeof(t), v.revocation_detail));
    printf("tpm manufacturer: %s\n", tpm.manufacturer[0] ? tpm.manufacturer : "(none)");
    printf("tpm model: %s\n", tpm.model[0] ? tpm.model : "(none)");
    printf("tpm version: %s\n", tpm.version[0] ? tpm.version : "(none)");
    printf("subjectAltName: %s\n", tpm.san_critical ? "critical" : "not critical or absent");
    printf("accepted\ntpm vendor: %s\n", cmd_text(t, sizeof(t), v.manufacturer));
    r = 0;
out:
    chain_verdict_cleanup(&v);
    sk_X509_pop_free(chain, X509_free);
    X509_free(ek);
    return r;
}

int cmd_check_idevid_main(int argc, char **argv)
{
    struct check_args a = {0};
    const struct cmd_option opts[] = {
        {.name = "roots", .kind = CMD_OPT_STRING, .dest = &a.roots},
        {.name = "intermediates", .kind = CMD_OPT_STRING, .dest = &a.inter},
        {.name = "manufacturers", .kind = CMD_OPT_STRING, .dest = &a.mfrs},
        {.name = "policy", .kind = CMD_OPT_STRING, .dest = &a.policy_file},
        {.name = "nv-dump", .kind = CMD_OPT_STRING, .dest = &a.nv_dump},
        {.name = "ek", .kind = CMD_OPT_STRING, .dest = &a.ek},
        {.name = "at",
         .kind = CMD_OPT_ULONG,
         .dest = &a.at,
         .max = (unsigned long)INT64_MAX,
         .want = "seconds since the epoch"},
        {.name = "allow-model", .kind = CMD_OPT_CALL, .id = POLICY_ALLOW_MODEL},
        {.name = "deny-model", .kind = CMD_OPT_CALL, .id = POLICY_DENY_MODEL},
        {.name = "deny-serial", .kind = CMD_OPT_CALL, .id = POLICY_DENY_SERIAL},
    };
    struct trust *trust = NULL;
    enum cmd_parse_result parsed;
    int rc = EXIT_USAGE;

    log_init(cmd_prog, LOG_WARNING);
    a.at = (unsigned long)time(NULL);
    if ((a.policy = policy_new()) == NULL)
        return EXIT_SOFTWARE;
    parsed =
        cmd_parse_options(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), on_policy_option, &a);
    if (parsed != CMD_PARSED) {
        rc = cmd_usage_exit(parsed, usage);
        goto out;
    }
    if (a.ek != NULL) {
        if (a.mfrs == NULL || a.nv_dump != NULL || a.policy_file != NULL || a.policy_opts) {
            usage(stderr);
            goto out;
        }
        if ((rc = load(&trust, &a)) == 0)
            rc = check_ek(trust, &a, argv + optind, argc - optind, (time_t)a.at);
        goto out;
    }
    if ((a.roots == NULL) == (a.mfrs == NULL) || (a.nv_dump == NULL && optind != argc - 1) ||
        (a.mfrs != NULL && (a.inter != NULL || a.policy_opts)) ||
        (a.roots != NULL && a.policy_file != NULL)) {
        usage(stderr);
        goto out;
    }
    if ((rc = load(&trust, &a)) == 0)
        rc = check_file(trust, &a, argv + optind, argc - optind, (time_t)a.at);
out:
    trust_free(trust);
    policy_free(a.policy);
    return rc;
}
