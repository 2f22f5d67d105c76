#include "agent/status.h"

#include <limits.h>
#include <stdio.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "agent/device.h"
#include "agent/fileset.h"
#include "agent/ldevid.h"
#include "agent/tpm.h"
#include "common/err.h"
#include "common/serial.h"

static void print_name(BIO *bio, const char *label, const X509_NAME *name)
{
    BIO_printf(bio, "%s: ", label);
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
    BIO_printf(bio, "\n");
}

static void print_entry(BIO *bio, const char *label, const X509_NAME *name, int nid)
{
    const ASN1_STRING *s;
    unsigned char *utf8 = NULL;
    int i, n;

    if ((i = X509_NAME_get_index_by_NID(name, nid, -1)) < 0) {
        BIO_printf(bio, "%s: (none)\n", label);
        return;
    }
    s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    if ((n = ASN1_STRING_to_UTF8(&utf8, s)) >= 0)
        BIO_printf(bio, "%s: %.*s\n", label, n, (const char *)utf8);
    OPENSSL_free(utf8);
}

/* print_device prints who the device is, from its IDevID certificate. */
static void print_device(BIO *bio, struct tpm *tpm, const struct agent_config *cfg)
{
    X509 *idevid = NULL;

    if ((tpm != NULL || cfg->idevid_cert_file != NULL) &&
        device_read_idevid_cert(&idevid, tpm, cfg) == 0) {
        BIO_printf(bio, "device:\n");
        print_entry(bio, "  serial", X509_get_subject_name(idevid), NID_serialNumber);
        print_entry(bio, "  model", X509_get_subject_name(idevid), NID_commonName);
        print_entry(bio, "  manufacturer", X509_get_subject_name(idevid), NID_organizationName);
    } else {
        BIO_printf(bio, "device: unknown (the IDevID certificate could not be read)\n");
    }
    X509_free(idevid);
}

/* print_ldevid prints the operational certificate |cert| at |path| and where
 * its key lives. */
static void print_ldevid(BIO *bio, X509 *cert, const char *path, const struct agent_config *cfg)
{
    char serial[SERIAL_HEX_LEN];

    BIO_printf(bio, "operational certificate: %s\n", path);
    print_name(bio, "  subject", X509_get_subject_name(cert));
    print_name(bio, "  issuer", X509_get_issuer_name(cert));
    if (serial_hex(serial, sizeof(serial), cert) == 0)
        BIO_printf(bio, "  serial: %s\n", serial);
    BIO_printf(bio, "  not after: ");
    ASN1_TIME_print(bio, X509_get0_notAfter(cert));
    BIO_printf(bio, "\nkey:\n  blob: %s/%s\n", cfg->out_dir, FILESET_KEY);
    if (cfg->persist_handle != 0)
        BIO_printf(bio, "  persistent handle: 0x%08x\n", cfg->persist_handle);
    else
        BIO_printf(bio, "  persistent handle: none\n");
}

int status_print(const struct agent_config *cfg)
{
    char path[PATH_MAX];
    struct tpm *tpm = NULL;
    X509 *cert = NULL;
    BIO *bio = NULL;
    int r;

    if ((bio = BIO_new_fp(stdout, BIO_NOCLOSE)) == NULL)
        return DEVID_ERR_ALLOC;
    if (tpm_open(&tpm, cfg->tcti) != 0)
        tpm = NULL;
    print_device(bio, tpm, cfg);
    if ((r = ldevid_check(&cert, path, sizeof(path), cfg, tpm)) != 0)
        BIO_printf(bio, "operational certificate: none valid in %s\n", cfg->out_dir);
    else
        print_ldevid(bio, cert, path, cfg);
    (void)BIO_flush(bio);
    BIO_free(bio);
    X509_free(cert);
    tpm_free(tpm);
    return r;
}
