#include "agent/device.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/objects.h>

#include "agent/core/wire.h"
#include "common/err.h"
#include "common/io/log.h"
#include "common/io/pemfile.h"
#include "common/nvcert.h"
#include "common/tpmkey.h"

/* One key of the device and where its certificate comes from. */
struct source {
    const char *what;     /* "IDevID" or "IAK" */
    const char *key_name; /* "IDevID key" or "IAK" */
    uint32_t handle;      /* its persistent handle */
    const char *file;     /* the certificate file, or NULL */
    uint32_t nv;          /* else its NV index */
    const char *nv_key;   /* the configuration key of the NV index */
};

static struct source idevid_source(const struct agent_config *cfg)
{
    struct source s = {"IDevID",       "IDevID key",    cfg->idevid_handle, cfg->idevid_cert_file,
                       cfg->idevid_nv, "idevid_cert_nv"};

    return s;
}

static struct source iak_source(const struct agent_config *cfg)
{
    struct source s = {"IAK",       "IAK",        cfg->iak_handle, cfg->iak_cert_file,
                       cfg->iak_nv, "iak_cert_nv"};

    return s;
}

/* cert_from_file reads the one certificate in |src->file|. */
static int cert_from_file(X509 **out, const struct source *src)
{
    STACK_OF(X509) *sk = NULL;
    char why[PATH_MAX + 256];
    int r;

    r = pemfile_read_certs(&sk, src->file, 1, why, sizeof(why));
    if (r == DEVID_ERR_NOT_FOUND) {
        log_err("the %s certificate file %s does not exist", src->what, src->file);
        return DEVID_ERR_CONFIG;
    }
    if (r != 0) {
        log_err("cannot read the %s certificate: %s", src->what, why);
        return r == DEVID_ERR_IO || r == DEVID_ERR_ALLOC ? r : DEVID_ERR_CONFIG;
    }
    *out = sk_X509_shift(sk);
    sk_X509_free(sk);
    return 0;
}

/* cert_from_nv reads the one certificate in NV index |src->nv|: DER, perhaps
 * padded or after a TCG header, or PEM (common/nvcert.h). */
static int cert_from_nv(X509 **out, struct tpm *tpm, const struct source *src)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char why[256];
    int r;

    if ((r = tpm_nv_read(tpm, &buf, &len, src->nv)) != 0) {
        if (r == DEVID_ERR_NOT_FOUND || r == DEVID_ERR_TOO_LARGE) {
            log_err(
                "no %s certificate in NV index 0x%08x: check that the device was provisioned, "
                "and %s (or the certificate file option) in the configuration",
                src->what, src->nv, src->nv_key);
            r = DEVID_ERR_TPM;
        }
        return r;
    }
    if ((r = nvcert_parse_one(out, buf, len, why, sizeof(why))) != 0) {
        log_err("NV index 0x%08x (%zu bytes) does not hold one %s certificate: %s", src->nv, len,
                src->what, why);
        r = r == DEVID_ERR_ALLOC ? r : DEVID_ERR_TPM;
    }
    free(buf);
    return r;
}

static int read_cert(X509 **out, struct tpm *tpm, const struct source *src)
{
    *out = NULL;
    return src->file != NULL ? cert_from_file(out, src) : cert_from_nv(out, tpm, src);
}

/* append moves the certificates of |more| to the end of |chain|. */
static int append(STACK_OF(X509) *chain, STACK_OF(X509) *more)
{
    X509 *x;

    while ((x = sk_X509_shift(more)) != NULL) {
        if (sk_X509_push(chain, x) <= 0) {
            X509_free(x);
            return DEVID_ERR_ALLOC;
        }
    }
    return 0;
}

/* chain_from_nv appends the certificates in NV index |index|, at most
 * |room|: one, or several DER certificates back to back. */
static int chain_from_nv(STACK_OF(X509) *chain, struct tpm *tpm, uint32_t index, size_t room)
{
    STACK_OF(X509) *sk = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    char why[256];
    int r;

    if ((r = tpm_nv_read(tpm, &buf, &len, index)) != 0)
        return r == DEVID_ERR_ALLOC ? r : DEVID_ERR_TPM;
    if ((r = nvcert_parse(&sk, buf, len, room, why, sizeof(why))) != 0) {
        log_err("NV index 0x%08x (%zu bytes) does not hold the intermediate certificates: %s",
                index, len, why);
        r = r == DEVID_ERR_ALLOC ? r : DEVID_ERR_TPM;
    } else {
        r = append(chain, sk);
    }
    sk_X509_pop_free(sk, X509_free);
    free(buf);
    return r;
}

/* chain_from_nv_range appends the certificate in each NV index defined in
 * |first|..|last|, one per index, in index order. */
static int chain_from_nv_range(STACK_OF(X509) *chain, struct tpm *tpm, uint32_t first,
                               uint32_t last)
{
    uint32_t idx[WIRE_CHAIN_MAX];
    size_t i, n = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    char why[256];
    X509 *x = NULL;
    int r;

    if ((r = tpm_nv_list(tpm, idx, WIRE_CHAIN_MAX, &n, first, last)) != 0)
        return r == DEVID_ERR_ALLOC ? r : DEVID_ERR_TPM;
    if (n == 0) {
        log_err("no NV index is defined in 0x%08x-0x%08x (chain_nv): check the configuration",
                first, last);
        return DEVID_ERR_TPM;
    }
    for (i = 0; i < n; i++) {
        if ((r = tpm_nv_read(tpm, &buf, &len, idx[i])) != 0)
            return r == DEVID_ERR_ALLOC ? r : DEVID_ERR_TPM;
        r = nvcert_parse_one(&x, buf, len, why, sizeof(why));
        free(buf);
        if (r != 0) {
            log_err(
                "NV index 0x%08x (%zu bytes, in chain_nv 0x%08x-0x%08x) does not hold one "
                "intermediate certificate: %s",
                idx[i], len, first, last, why);
            return r == DEVID_ERR_ALLOC ? r : DEVID_ERR_TPM;
        }
        if (sk_X509_push(chain, x) <= 0) {
            X509_free(x);
            return DEVID_ERR_ALLOC;
        }
    }
    log_debug("%zu intermediate certificate(s) from NV 0x%08x-0x%08x", n, first, last);
    return 0;
}

/* chain_from_file appends the certificates of |path|, at most |room|. */
static int chain_from_file(STACK_OF(X509) *chain, const char *path, size_t room)
{
    STACK_OF(X509) *sk = NULL;
    char why[PATH_MAX + 256];
    int r;

    if ((r = pemfile_read_certs(&sk, path, room, why, sizeof(why))) != 0) {
        if (r == DEVID_ERR_NOT_FOUND)
            log_err("chain file %s does not exist", path);
        else
            log_err("cannot read the chain file: %s", why);
        return r == DEVID_ERR_ALLOC ? r : DEVID_ERR_CONFIG;
    }
    r = append(chain, sk);
    sk_X509_pop_free(sk, X509_free);
    return r;
}

static int read_chain(STACK_OF(X509) **out, struct tpm *tpm, const struct agent_config *cfg)
{
    STACK_OF(X509) *chain = NULL;
    int r = 0;

    *out = NULL;
    if ((chain = sk_X509_new_null()) == NULL)
        return DEVID_ERR_ALLOC;
    if (cfg->chain_nv != 0 && cfg->chain_nv_last != 0)
        r = chain_from_nv_range(chain, tpm, cfg->chain_nv, cfg->chain_nv_last);
    else if (cfg->chain_nv != 0)
        r = chain_from_nv(chain, tpm, cfg->chain_nv, WIRE_CHAIN_MAX);
    if (r == 0 && cfg->chain_file != NULL)
        r = chain_from_file(chain, cfg->chain_file, WIRE_CHAIN_MAX - (size_t)sk_X509_num(chain));
    if (r != 0) {
        sk_X509_pop_free(chain, X509_free);
        return r;
    }
    *out = chain;
    return 0;
}

/* read_key opens the key of |src| at its persistent handle. */
static int read_key(struct tpm_key **out, struct tpm *tpm, const struct source *src,
                    const char *hint)
{
    int r = tpm_key_persistent(out, tpm, src->handle);

    if (r == DEVID_ERR_NOT_FOUND) {
        log_err("no %s at persistent handle 0x%08x: check %s", src->key_name, src->handle, hint);
        r = DEVID_ERR_TPM;
    }
    return r;
}

/* check_pair checks that |cert| is the certificate of the TPM key |key|. */
static int check_pair(X509 *cert, struct tpm_key *key, const struct source *src)
{
    EVP_PKEY *pkey = NULL;
    char from[PATH_MAX + 32];
    int r = DEVID_ERR_TPM;

    if (src->file != NULL)
        snprintf(from, sizeof(from), "file %s", src->file);
    else
        snprintf(from, sizeof(from), "NV index 0x%08x", src->nv);
    if (tpmkey_public_to_pkey(&pkey, tpm_key_get0_public(key)) != 0) {
        log_err("the %s key at handle 0x%08x is of an unsupported type", src->what, src->handle);
        goto out;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(cert), pkey) != 1) {
        log_err(
            "the %s certificate from %s does not match the key at handle 0x%08x: check that "
            "the handle and the certificate source belong together (another device's "
            "certificate? a re-provisioned TPM?)",
            src->what, from, src->handle);
        goto out;
    }
    r = 0;
out:
    EVP_PKEY_free(pkey);
    return r;
}

/* subject_serial writes the subject serialNumber of |cert| to |out|, or
 * "devid" when it has none that fits. */
static void subject_serial(char out[DEVICE_SERIAL_MAX + 1], X509 *cert)
{
    const X509_NAME *name = X509_get_subject_name(cert);
    unsigned char *utf8 = NULL;
    int i, n;

    snprintf(out, DEVICE_SERIAL_MAX + 1, "devid");
    if ((i = X509_NAME_get_index_by_NID(name, NID_serialNumber, -1)) < 0)
        return;
    n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n > 0 && n < DEVICE_SERIAL_MAX && memchr(utf8, '\0', (size_t)n) == NULL)
        snprintf(out, DEVICE_SERIAL_MAX + 1, "%.*s", n, (const char *)utf8);
    OPENSSL_free(utf8);
}

/* read_one reads the key and the certificate of |src|; on failure it names
 * what failed in |why|. */
static int read_one(struct tpm_key **key, X509 **cert, struct tpm *tpm, const struct source *src,
                    const char *hint, char *why, size_t why_len)
{
    int r;

    if ((r = read_key(key, tpm, src, hint)) != 0)
        snprintf(why, why_len, "the %s is missing or unreadable", src->key_name);
    else if ((r = read_cert(cert, tpm, src)) != 0)
        snprintf(why, why_len, "the %s certificate is missing or unreadable", src->what);
    return r;
}

/* check_one checks that the certificate of |src| is for its key. */
static int check_one(X509 *cert, struct tpm_key *key, const struct source *src, char *why,
                     size_t why_len)
{
    int r = check_pair(cert, key, src);

    if (r != 0)
        snprintf(why, why_len, "the %s certificate does not match its TPM key", src->what);
    return r;
}

int device_read(struct device *dev, struct tpm *tpm, const struct agent_config *cfg, char *why,
                size_t why_len)
{
    struct source idevid = idevid_source(cfg), iak = iak_source(cfg);
    int r;

    memset(dev, 0, sizeof(*dev));
    if ((r = read_one(&dev->idevid, &dev->idevid_cert, tpm, &idevid,
                      "that the device was provisioned and idevid_handle in the configuration", why,
                      why_len)) != 0)
        return r;
    if ((r = read_chain(&dev->chain, tpm, cfg)) != 0) {
        snprintf(why, why_len, "the IDevID's intermediates are missing or unreadable");
        return r;
    }
    if ((r = check_one(dev->idevid_cert, dev->idevid, &idevid, why, why_len)) != 0)
        return r;
    subject_serial(dev->serial, dev->idevid_cert);
    if (cfg->iak_handle == 0)
        return 0;
    if ((r = read_one(&dev->iak, &dev->iak_cert, tpm, &iak,
                      "iak_handle in the configuration (set it to none on a device without an "
                      "IAK)",
                      why, why_len)) != 0)
        return r;
    return check_one(dev->iak_cert, dev->iak, &iak, why, why_len);
}

void device_cleanup(struct device *dev)
{
    tpm_key_free(dev->iak);
    tpm_key_free(dev->idevid);
    X509_free(dev->idevid_cert);
    X509_free(dev->iak_cert);
    sk_X509_pop_free(dev->chain, X509_free);
    memset(dev, 0, sizeof(*dev));
}

struct tpm_key *device_get0_signer(const struct device *dev)
{
    return dev->iak != NULL ? dev->iak : dev->idevid;
}

int device_read_idevid_cert(X509 **out, struct tpm *tpm, const struct agent_config *cfg)
{
    struct source idevid = idevid_source(cfg);

    *out = NULL;
    if (idevid.file == NULL && tpm == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    return read_cert(out, tpm, &idevid);
}
