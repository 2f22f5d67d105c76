/* The device's identity: the IDevID key in the TPM, its certificate and
 * intermediates (from NV indices or files), and the optional IAK with its
 * certificate, each certificate checked against its TPM key. */
#ifndef DEVID_AGENT_DEVICE_H
#define DEVID_AGENT_DEVICE_H

#include <stddef.h>

#include <openssl/x509.h>

#include "agent/core/config.h"
#include "agent/tpm.h"

/* Longest subject serialNumber taken from the IDevID certificate. */
#define DEVICE_SERIAL_MAX 64

struct device {
    struct tpm_key *idevid;
    struct tpm_key *iak; /* NULL: TPM2_Certify is signed by the IDevID */
    X509 *idevid_cert;
    X509 *iak_cert;        /* set exactly when iak is */
    STACK_OF(X509) *chain; /* the IDevID's intermediates, at most WIRE_CHAIN_MAX */
    /* the IDevID's subject serialNumber, or "devid" without one: the CSR's CN */
    char serial[DEVICE_SERIAL_MAX + 1];
};

/*
 * device_read fills |dev| from the TPM |tpm| and |cfg|: the IDevID key at
 * |cfg->idevid_handle|, its certificate (file or NV), the chain (NV, then
 * file), and with |cfg->iak_handle| the IAK and its certificate. It checks
 * that each certificate is for its key. Every failure is logged with what
 * to check; |why| (|why_len| bytes) gets a short name of it for the
 * attempt's log line. The caller releases |dev| with device_cleanup in
 * every case. Returns 0, DEVID_ERR_TPM (key missing, NV index empty,
 * certificate and key disagree, TPM failure), DEVID_ERR_CONFIG (a file
 * named in |cfg| is missing or malformed), or another read error.
 */
int device_read(struct device *dev, struct tpm *tpm, const struct agent_config *cfg, char *why,
                size_t why_len);

/* device_cleanup frees what |dev| holds and zeroes it. */
void device_cleanup(struct device *dev);

/* device_get0_signer returns the key that signs TPM2_Certify, the IAK or else the
 * IDevID, borrowed from |dev|. */
struct tpm_key *device_get0_signer(const struct device *dev);

/*
 * device_read_idevid_cert sets |*out| to the IDevID certificate, which the
 * caller owns: from |cfg->idevid_cert_file| when set (|tpm| may then be
 * NULL), else from NV index |cfg->idevid_nv|. Returns 0 or the error of
 * device_read, logged.
 */
int device_read_idevid_cert(X509 **out, struct tpm *tpm, const struct agent_config *cfg);

#endif
