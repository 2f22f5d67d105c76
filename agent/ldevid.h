/* The operational identity already on the device: the certificate and key
 * blob in the output directory, and the key they name in the TPM. Whether
 * the device is enrolled, and the TPM side of an interrupted renewal. */
#ifndef DEVID_AGENT_LDEVID_H
#define DEVID_AGENT_LDEVID_H

#include <stddef.h>

#include <openssl/x509.h>

#include "agent/core/config.h"
#include "agent/tpm.h"

/*
 * ldevid_check sets |*cert| (owned by the caller) to the certificate of a
 * complete, currently valid enrollment in |cfg->out_dir| and writes its path
 * to |cert_path| (|cert_path_size| bytes): cert.pem is for the key in
 * key.tss2.pem and, when |tpm| is not NULL, that blob loads in this TPM
 * under the parent it names and (with a persist_handle) the key at the
 * handle is the same. With |tpm| NULL only the files are read. Returns 0,
 * DEVID_ERR_NOT_FOUND (the reason is logged: the device must enroll), a
 * transient TPM error, or DEVID_ERR_CONFIG for a path that does not fit.
 */
int ldevid_check(X509 **cert, char *cert_path, size_t cert_path_size,
                 const struct agent_config *cfg, struct tpm *tpm);

/*
 * ldevid_persist_blob makes the key of key.tss2.pem the one at
 * |cfg->persist_handle|, evicting the key that was there, unless it already
 * is: the TPM side of a renewal whose new files are committed. Without a
 * persist_handle, or when the blob is missing or does not load (the next
 * ldevid_check then says why and the device enrolls), it does nothing.
 * Returns 0 or DEVID_ERR_TPM.
 */
int ldevid_persist_blob(struct tpm *tpm, const struct agent_config *cfg);

#endif
