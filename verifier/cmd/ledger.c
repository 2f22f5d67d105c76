/* devid-verifier revoke, crl, list and show: the operator's view of the
 * issuance ledger. */
#include "verifier/cmd/ledger.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "common/hex.h"
#include "common/io/log.h"
#include "common/io/store.h"
#include "devid/v1/enroll.pb-c.h"
#include "verifier/cmd/audit.h"
#include "verifier/cmd/cmd.h"
#include "verifier/core/chain.h"
#include "verifier/core/config.h"
#include "verifier/core/crl.h"
#include "verifier/ledger/ledger.h"
#include "verifier/pki/ca.h"
#include "verifier/pki/revocation.h"

/* Rows `list` prints when --limit is not given. */
#define LIST_DEFAULT_LIMIT 100

/* The longest CRL validity `crl` accepts, in hours (one year). */
#define CRL_MAX_HOURS 8760

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void fmt_time(char *out, size_t len, int64_t seconds)
{
    struct tm tm;
    time_t when = (time_t)seconds;

    if (gmtime_r(&when, &tm) == NULL || strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, len, "%lld", (long long)seconds);
}

static const char *signer_name(int kind)
{
    switch (kind) {
        case DEVID__V1__SIGNER_KIND__SIGNER_KIND_IDEVID:
            return "idevid";
        case DEVID__V1__SIGNER_KIND__SIGNER_KIND_IAK:
            return "iak";
        default:
            return "unspecified";
    }
}

/* What assurance level |level| (as the ledger holds it) says of the key. */
static const char *assurance_meaning(const char *level)
{
    if (strcmp(level, "iak") == 0)
        return "certified by the device's restricted IAK: the key is in its TPM";
    if (strcmp(level, "ek") == 0)
        return "shown by credential activation with the endorsement key";
    return "certified by the unrestricted IDevID: proves possession of the IDevID, not where "
           "the key lives";
}

static void fmt_status(char *out, size_t len, const struct ledger_issuance *rec, int64_t now)
{
    const char *reason = ledger_reason_name(rec->revocation_reason);
    char when[32];

    if (rec->revoked_at != 0) {
        fmt_time(when, sizeof(when), rec->revoked_at);
        snprintf(out, len, "revoked %s (%s)", when, reason != NULL ? reason : "unknown reason");
    } else if (rec->not_after <= now) {
        snprintf(out, len, "expired");
    } else {
        snprintf(out, len, "active");
    }
}

/* ------------------------------------------------------------------ revoke */

static void usage_revoke(FILE *f)
{
    fprintf(f,
            "usage: %s revoke [--ledger URI] (--serial HEX | --device SERIAL\n"
            "           [--manufacturer NAME]) --reason REASON\n"
            "\n"
            "Marks operational certificates revoked in the ledger: one certificate by its\n"
            "serial (hex, as `openssl x509 -serial` prints it), or every certificate of a\n"
            "device. REASON is keyCompromise, superseded, cessationOfOperation,\n"
            "affiliationChanged or unspecified. Certificates already revoked keep their\n"
            "first revocation. Every verifier on the ledger serves the change at\n"
            "GET /v1/crl within its [crl] poll_seconds; `%s crl` writes a CRL\n"
            "file.\n"
            "\n"
            "  --ledger URI   the ledger (default %s)\n"
            "\n"
            "Exit status: 0 revoked (or already revoked), 1 no such certificate or device,\n"
            "64 usage error, 66 ledger missing, 78 bad ledger, 70 internal failure.\n",
            cmd_prog, cmd_prog, VERIFIER_CONFIG_DEFAULT_LEDGER);
}

int cmd_revoke_main(int argc, char **argv)
{
    const char *uri = VERIFIER_CONFIG_DEFAULT_LEDGER, *serial = NULL, *device = NULL,
               *manufacturer = NULL, *reason_name = NULL;
    const struct cmd_option opts[] = {
        {.name = "ledger", .kind = CMD_OPT_STRING, .dest = &uri},
        {.name = "serial", .kind = CMD_OPT_STRING, .dest = &serial},
        {.name = "device", .kind = CMD_OPT_STRING, .dest = &device},
        {.name = "manufacturer", .kind = CMD_OPT_STRING, .dest = &manufacturer},
        {.name = "reason", .kind = CMD_OPT_STRING, .dest = &reason_name},
    };
    struct ledger *l = NULL;
    char norm[LEDGER_SERIAL_LEN];
    int r, reason = 0, count = 0, rc = EXIT_USAGE;

    log_init(cmd_prog, LOG_WARNING);
    if ((r = cmd_parse_options(argc, argv, opts, N(opts), NULL, NULL)) != CMD_PARSED)
        return cmd_usage_exit(r, usage_revoke);
    if (optind != argc || reason_name == NULL || (serial == NULL) == (device == NULL) ||
        (manufacturer != NULL && device == NULL)) {
        usage_revoke(stderr);
        goto out;
    }
    if (ledger_reason_parse(&reason, reason_name) != 0) {
        fprintf(stderr,
                "%s: unknown reason \"%s\"; use keyCompromise, superseded, "
                "cessationOfOperation, affiliationChanged or unspecified\n",
                cmd_prog, reason_name);
        goto out;
    }
    if (serial != NULL && ledger_serial_normalize(norm, serial) != 0) {
        fprintf(stderr, "%s: --serial \"%s\" is not a hex certificate serial\n", cmd_prog, serial);
        goto out;
    }
    if ((r = ledger_open_existing(&l, uri)) != 0) {
        rc = cmd_exit_for(r);
        goto out;
    }
    r = ledger_revoke(l, &count, serial != NULL ? norm : NULL, manufacturer, device, reason,
                      (int64_t)time(NULL));
    if (r == DEVID_ERR_NOT_FOUND) {
        if (serial != NULL)
            fprintf(stderr, "%s: no certificate with serial %s in %s\n", cmd_prog, norm, uri);
        else
            fprintf(stderr, "%s: no certificate for device \"%s\"%s%s%s in %s\n", cmd_prog, device,
                    manufacturer != NULL ? " of \"" : "", manufacturer != NULL ? manufacturer : "",
                    manufacturer != NULL ? "\"" : "", uri);
        rc = EXIT_REFUSED;
        goto out;
    }
    if (r != 0) {
        fprintf(stderr, "%s: revoking failed: %s\n", cmd_prog, devid_err_str(r));
        rc = cmd_exit_for(r);
        goto out;
    }
    if (count == 0)
        printf("already revoked; nothing changed\n");
    else
        printf(
            "revoked %d certificate%s (%s); verifiers serve it at GET /v1/crl within their "
            "[crl] poll_seconds\n",
            count, count == 1 ? "" : "s", reason_name);
    rc = 0;
out:
    ledger_free(l);
    return rc;
}

/* --------------------------------------------------------------------- crl */

static void usage_crl(FILE *f)
{
    fprintf(f,
            "usage: %s crl [--ledger URI] --ca-cert FILE --ca-key URI --out FILE\n"
            "           [--next-update-hours N]\n"
            "\n"
            "Writes a signed version 2 CRL (PEM) of every revoked operational certificate\n"
            "that has not expired, with reason codes, the authority key identifier and the\n"
            "next CRL number from the ledger. The file is replaced atomically.\n"
            "\n"
            "  --ledger URI             the ledger (default %s)\n"
            "  --ca-cert FILE           the operational CA certificate (PEM)\n"
            "  --ca-key URI             its private key (OpenSSL store URI or path)\n"
            "  --out FILE               where to write the CRL\n"
            "  --next-update-hours N    nextUpdate = now + N hours (default 24, max %d)\n"
            "\n"
            "Exit status: 0 written, 64 usage error, 66 unreadable input, ledger missing or\n"
            "unwritable output, 78 bad configuration, 70 internal failure.\n",
            cmd_prog, VERIFIER_CONFIG_DEFAULT_LEDGER, CRL_MAX_HOURS);
}

int cmd_crl_main(int argc, char **argv)
{
    const char *uri = VERIFIER_CONFIG_DEFAULT_LEDGER, *ca_cert = NULL, *ca_key = NULL,
               *out_path = NULL;
    unsigned long hours = 24;
    const struct cmd_option opts[] = {
        {.name = "ledger", .kind = CMD_OPT_STRING, .dest = &uri},
        {.name = "ca-cert", .kind = CMD_OPT_STRING, .dest = &ca_cert},
        {.name = "ca-key", .kind = CMD_OPT_STRING, .dest = &ca_key},
        {.name = "out", .kind = CMD_OPT_STRING, .dest = &out_path},
        {.name = "next-update-hours",
         .kind = CMD_OPT_ULONG,
         .dest = &hours,
         .min = 1,
         .max = CRL_MAX_HOURS},
    };
    struct ledger *l = NULL;
    struct ca *ca = NULL;
    X509_CRL *crl = NULL;
    BIO *mem = NULL;
    char *pem = NULL;
    struct revocation_info info = {0, 0, 0};
    time_t now = time(NULL);
    long pem_len;
    int r, rc = EXIT_USAGE;

    log_init(cmd_prog, LOG_WARNING);
    if ((r = cmd_parse_options(argc, argv, opts, N(opts), NULL, NULL)) != CMD_PARSED)
        return cmd_usage_exit(r, usage_crl);
    if (optind != argc || ca_cert == NULL || ca_key == NULL || out_path == NULL) {
        usage_crl(stderr);
        goto out;
    }
    if ((r = ca_new(&ca, ca_cert, ca_key)) != 0 || (r = ledger_open_existing(&l, uri)) != 0) {
        rc = cmd_exit_for(r);
        goto out;
    }
    if ((r = revocation_crl_issue(&crl, &info, l, ca, now, (long)hours * 3600)) != 0) {
        fprintf(stderr, "%s: building the CRL failed: %s\n", cmd_prog, devid_err_str(r));
        rc = cmd_exit_for(r);
        goto out;
    }
    rc = EXIT_SOFTWARE;
    if ((mem = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_X509_CRL(mem, crl) != 1 ||
        (pem_len = BIO_get_mem_data(mem, &pem)) <= 0) {
        fprintf(stderr, "%s: encoding the CRL failed\n", cmd_prog);
        goto out;
    }
    if ((r = store_write_atomic(out_path, (const uint8_t *)pem, (size_t)pem_len, 0644)) != 0) {
        rc = r == DEVID_ERR_CONFIG ? EXIT_USAGE : EXIT_NOINPUT;
        goto out;
    }
    printf("CRL number %llu with %zu revoked certificate%s written to %s\n",
           (unsigned long long)info.number, info.count, info.count == 1 ? "" : "s", out_path);
    rc = 0;
out:
    BIO_free(mem);
    X509_CRL_free(crl);
    ledger_free(l);
    ca_free(ca);
    return rc;
}

/* -------------------------------------------------------------------- list */

struct list_state {
    int64_t now;
    size_t n;
};

static int print_row(void *arg, const struct ledger_issuance *rec)
{
    struct list_state *st = arg;
    char issued[32], status[96], t[CMD_TEXT_MAX];

    if (st->n == 0)
        printf("ISSUED\tSERIAL\tSTATUS\tMANUFACTURER\tMODEL\tDEVICE\n");
    fmt_time(issued, sizeof(issued), rec->issued_at);
    fmt_status(status, sizeof(status), rec, st->now);
    printf("%s\t%s\t%s\t", issued, rec->cert_serial, status);
    printf("%s\t", cmd_text(t, sizeof(t), rec->manufacturer));
    printf("%s\t", cmd_text(t, sizeof(t), rec->model));
    printf("%s\n", cmd_text(t, sizeof(t), rec->device_serial));
    st->n++;
    return 0;
}

static void usage_list(FILE *f)
{
    fprintf(f,
            "usage: %s list [--ledger URI] [--device SERIAL] [--manufacturer NAME]\n"
            "           [--limit N]\n"
            "\n"
            "Lists recorded issuances, newest first, one tab-separated line each: issue\n"
            "time, certificate serial, status (active, expired, revoked), manufacturer,\n"
            "model, device serial.\n"
            "\n"
            "  --ledger URI   the ledger (default %s)\n"
            "  --limit N      at most N lines (default %d, max %d)\n"
            "\n"
            "Exit status: 0 listed, 1 no issuance matches, 64 usage error, 66 ledger\n"
            "missing, 78 bad ledger, 70 internal failure.\n",
            cmd_prog, VERIFIER_CONFIG_DEFAULT_LEDGER, LIST_DEFAULT_LIMIT, LEDGER_LIST_MAX);
}

int cmd_list_main(int argc, char **argv)
{
    const char *uri = VERIFIER_CONFIG_DEFAULT_LEDGER;
    struct ledger_filter filter = {NULL, NULL};
    unsigned long limit = LIST_DEFAULT_LIMIT;
    const struct cmd_option opts[] = {
        {.name = "ledger", .kind = CMD_OPT_STRING, .dest = &uri},
        {.name = "device", .kind = CMD_OPT_STRING, .dest = &filter.device_serial},
        {.name = "manufacturer", .kind = CMD_OPT_STRING, .dest = &filter.manufacturer},
        {.name = "limit", .kind = CMD_OPT_ULONG, .dest = &limit, .min = 1, .max = LEDGER_LIST_MAX},
    };
    struct list_state st = {(int64_t)time(NULL), 0};
    struct ledger *l = NULL;
    int r, rc = EXIT_USAGE;

    log_init(cmd_prog, LOG_WARNING);
    if ((r = cmd_parse_options(argc, argv, opts, N(opts), NULL, NULL)) != CMD_PARSED)
        return cmd_usage_exit(r, usage_list);
    if (optind != argc) {
        usage_list(stderr);
        goto out;
    }
    if ((r = ledger_open_existing(&l, uri)) != 0 ||
        (r = ledger_list(l, &filter, limit, print_row, &st)) != 0) {
        rc = cmd_exit_for(r);
        goto out;
    }
    if (st.n == 0) {
        fprintf(stderr, "%s: no issuance matches in %s\n", cmd_prog, uri);
        rc = EXIT_REFUSED;
        goto out;
    }
    rc = 0;
out:
    ledger_free(l);
    return rc;
}

/* -------------------------------------------------------------------- show */

static void print_name(const char *label, const X509_NAME *name)
{
    char text[257], t[CMD_TEXT_MAX];

    chain_name_str(text, sizeof(text), name);
    printf("%s: %s\n", label, cmd_text(t, sizeof(t), text));
}

static void print_time(const char *label, const ASN1_TIME *at)
{
    char when[32];
    struct tm tm;
    time_t seconds;

    if (ASN1_TIME_to_tm(at, &tm) == 1 && (seconds = timegm(&tm)) != -1) {
        fmt_time(when, sizeof(when), (int64_t)seconds);
        printf("%s: %s\n", label, when);
    }
}

static void print_cert(X509 *cert)
{
    print_name("subject", X509_get_subject_name(cert));
    print_name("issuer", X509_get_issuer_name(cert));
    print_time("not before", X509_get0_notBefore(cert));
    print_time("not after", X509_get0_notAfter(cert));
}

static void usage_show(FILE *f)
{
    fprintf(f,
            "usage: %s show [--ledger URI] --serial HEX [--pem | --proof]\n"
            "\n"
            "Prints one recorded issuance: the certificate's subject, issuer and\n"
            "validity, the device identity, the evidence recorded with it and its\n"
            "revocation state. With --pem, prints only the certificate (PEM). With\n"
            "--proof, prints the inclusion proof of its issuance in the issuance log\n"
            "under the newest signed tree head: index, leaf, tree size, root, signed head\n"
            "and audit path, one \"name: hex\" line each, which docs/protocol.md shows\n"
            "how to check.\n"
            "\n"
            "  --ledger URI   the ledger (default %s)\n"
            "\n"
            "Exit status: 0 shown, 1 no such certificate (or, with --proof, not in the\n"
            "log under a signed head yet), 64 usage error, 66 ledger\n"
            "missing, 78 bad ledger, 70 internal failure.\n",
            cmd_prog, VERIFIER_CONFIG_DEFAULT_LEDGER);
}

int cmd_show_main(int argc, char **argv)
{
    const char *uri = VERIFIER_CONFIG_DEFAULT_LEDGER, *serial = NULL;
    int pem = 0, proof = 0;
    const struct cmd_option opts[] = {
        {.name = "ledger", .kind = CMD_OPT_STRING, .dest = &uri},
        {.name = "serial", .kind = CMD_OPT_STRING, .dest = &serial},
        {.name = "pem", .kind = CMD_OPT_FLAG, .dest = &pem},
        {.name = "proof", .kind = CMD_OPT_FLAG, .dest = &proof},
    };
    struct ledger_issuance rec;
    struct ledger *l = NULL;
    const uint8_t *p;
    X509 *cert = NULL;
    char norm[LEDGER_SERIAL_LEN], hex[65], when[32], status[96], t[CMD_TEXT_MAX];
    int r, rc = EXIT_USAGE;

    memset(&rec, 0, sizeof(rec));
    log_init(cmd_prog, LOG_WARNING);
    if ((r = cmd_parse_options(argc, argv, opts, N(opts), NULL, NULL)) != CMD_PARSED)
        return cmd_usage_exit(r, usage_show);
    if (optind != argc || serial == NULL || (pem && proof)) {
        usage_show(stderr);
        goto out;
    }
    if (ledger_serial_normalize(norm, serial) != 0) {
        fprintf(stderr, "%s: --serial \"%s\" is not a hex certificate serial\n", cmd_prog, serial);
        goto out;
    }
    if ((r = ledger_open_existing(&l, uri)) != 0) {
        rc = cmd_exit_for(r);
        goto out;
    }
    if ((r = ledger_show(l, &rec, norm)) == DEVID_ERR_NOT_FOUND) {
        fprintf(stderr, "%s: no certificate with serial %s in %s\n", cmd_prog, norm, uri);
        rc = EXIT_REFUSED;
        goto out;
    }
    if (r != 0) {
        rc = cmd_exit_for(r);
        goto out;
    }
    p = rec.cert_der;
    if ((cert = d2i_X509(NULL, &p, (long)rec.cert_der_len)) == NULL ||
        p != rec.cert_der + rec.cert_der_len) {
        fprintf(stderr, "%s: the ledger's certificate %s does not parse\n", cmd_prog, norm);
        rc = EXIT_SOFTWARE;
        goto out;
    }
    if (pem) {
        rc = PEM_write_X509(stdout, cert) == 1 ? 0 : EXIT_SOFTWARE;
        goto out;
    }
    if (proof) {
        rc = audit_print_proof(l, rec.cert_serial);
        goto out;
    }
    printf("certificate: %s\n", rec.cert_serial);
    print_cert(cert);
    fmt_status(status, sizeof(status), &rec, (int64_t)time(NULL));
    printf("status: %s\n", status);
    printf("manufacturer: %s\n", cmd_text(t, sizeof(t), rec.manufacturer));
    printf("model: %s\n", cmd_text(t, sizeof(t), rec.model));
    printf("device serial: %s\n", cmd_text(t, sizeof(t), rec.device_serial));
    fmt_time(when, sizeof(when), rec.issued_at);
    printf("issued at: %s\nreplica: %s\n", when, cmd_text(t, sizeof(t), rec.replica_id));
    printf("supersedes: %s\n", rec.supersedes[0] != '\0' ? rec.supersedes : "-");
    printf("attestation signer: %s\n", signer_name(rec.signer_kind));
    printf("assurance: %s (%s)\n", rec.assurance, assurance_meaning(rec.assurance));
    printf("quoted pcrs: %s\n", rec.pcr_values[0] != '\0' ? rec.pcr_values : "-");
    hex_encode(hex, rec.idevid_sha256, 32);
    printf("idevid sha256: %s\n", hex);
    hex_encode(hex, rec.csr_sha256, 32);
    printf("csr sha256: %s\n", hex);
    hex_encode(hex, rec.nonce, 32);
    printf("nonce: %s\n", hex);
    hex_encode(hex, rec.request_sha256, 32);
    printf("request sha256: %s\n", hex);
    rc = 0;
out:
    X509_free(cert);
    ledger_issuance_cleanup(&rec);
    ledger_free(l);
    return rc;
}
