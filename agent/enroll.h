/* One enrollment, from the IDevID in the TPM to the LDevID files on disk. */
#ifndef DEVID_AGENT_ENROLL_H
#define DEVID_AGENT_ENROLL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "agent/http.h"

#define ENROLL_DEFAULT_TCTI "device:/dev/tpmrm0"
#define ENROLL_DEFAULT_IDEVID_HANDLE 0x81020000u
#define ENROLL_DEFAULT_IDEVID_NV 0x01C90000u
#define ENROLL_DEFAULT_SRK_HANDLE 0x81000001u
#define ENROLL_DEFAULT_OUT_DIR "/var/lib/devid"
#define ENROLL_DEFAULT_TIMEOUT 30
/* How many times a retryable refusal or overload is tried again. */
#define ENROLL_MAX_RETRIES 4

struct enroll_config {
    const char *url;
    const char *ca_bundle;
    const char *tcti;
    uint32_t idevid_handle;
    uint32_t idevid_nv;
    const char *idevid_cert_file; /* instead of idevid_nv when not NULL */
    const char *chain_file;       /* PEM intermediates, optional */
    uint32_t chain_nv;            /* NV index of DER intermediates, 0: none */
    const char *out_dir;
    uint32_t srk_handle;
    uint32_t persist_handle; /* 0: do not persist the LDevID key */
    enum http_tls_version tls_version;
    long timeout;
};

struct enroll_result {
    X509 *cert;   /* the LDevID certificate (owned) */
    bool already; /* true when an existing enrollment was found */
    int reason;   /* devid.v1.Reason of a refusal, 0 otherwise */
    char cert_path[PATH_MAX];
};

/*
 * enroll_run enrolls the device described by |cfg|, or finds that it already
 * is (a currently valid cert.pem in |cfg->out_dir| whose key is the one in
 * key.tss2.pem). On success fills |res|, which the caller releases with
 * enroll_result_cleanup. Returns 0; DEVID_ERR_REFUSED when the verifier
 * refused (|res->reason| says why, the verifier's message is logged);
 * DEVID_ERR_TPM; DEVID_ERR_NETWORK, DEVID_ERR_TLS or DEVID_ERR_PROTOCOL for
 * the connection; or a local error (DEVID_ERR_IO, DEVID_ERR_CONFIG, ...).
 */
int enroll_run(struct enroll_result *res, const struct enroll_config *cfg);

/* enroll_result_cleanup frees what |res| holds and zeroes it. */
void enroll_result_cleanup(struct enroll_result *res);

#endif
