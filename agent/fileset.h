/* The agent's file set in its output directory: cert.pem, chain.pem and
 * key.tss2.pem, replaced together (staged, then committed, recovered after a
 * crash), and the renew.pending marker of a renewal in progress. The one
 * place the agent writes files; errors are logged here with the path. */
#ifndef DEVID_AGENT_FILESET_H
#define DEVID_AGENT_FILESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "agent/core/config.h"

#define FILESET_CERT "cert.pem"
#define FILESET_CHAIN "chain.pem"
#define FILESET_KEY "key.tss2.pem"
/* The file a renewal keeps from its start until the old key is out of the
 * TPM (agent/renewal.h). */
#define FILESET_MARKER "renew.pending"
/* Largest file of the set read back. */
#define FILESET_FILE_MAX (64 * 1024)

/*
 * fileset_prepare creates the output directory |cfg->out_dir| when it is
 * missing and finishes or undoes a replacement of the three files that a
 * crash interrupted (store_recover), so the set is whole: all old or all new.
 * Returns 0, DEVID_ERR_IO or DEVID_ERR_CONFIG.
 */
int fileset_prepare(const struct agent_config *cfg);

/*
 * fileset_path writes the path of the file |name| of the set to |out|
 * (|out_size| bytes). Returns 0 or DEVID_ERR_CONFIG when it does not fit.
 */
int fileset_path(char *out, size_t out_size, const struct agent_config *cfg, const char *name);

/*
 * fileset_read sets |*out| (malloc, NUL-terminated) to the contents of the
 * file |name| of the set, at most FILESET_FILE_MAX bytes, and |*out_len| to
 * its length. Returns 0, DEVID_ERR_NOT_FOUND (not logged) when it does not
 * exist, or the store_read error, logged.
 */
int fileset_read(uint8_t **out, size_t *out_len, const struct agent_config *cfg, const char *name);

/*
 * fileset_read_cert sets |*out| to the certificate in cert.pem, which the
 * caller owns. Returns 0, DEVID_ERR_NOT_FOUND when there is none, or
 * DEVID_ERR_CONFIG (not logged) when it does not parse; a read error is
 * logged and returned.
 */
int fileset_read_cert(X509 **out, const struct agent_config *cfg);

/*
 * fileset_write replaces key.tss2.pem (|key_pem|, mode 0600), chain.pem
 * (|chain| as PEM, mode 0644) and cert.pem (|cert|, mode 0644) together:
 * each is staged (written and fsynced as NAME.new), the certificate last, and
 * then renamed in that order. A crash before the certificate is staged leaves
 * the old set; after, the new one (fileset_prepare of the next run). Writes
 * the path of cert.pem to |cert_path| (|cert_path_size| bytes). Crash points
 * "write" (after the key is staged) and "commit" (after it is committed).
 * Returns 0, DEVID_ERR_IO, DEVID_ERR_CONFIG or DEVID_ERR_ALLOC.
 */
int fileset_write(char *cert_path, size_t cert_path_size, const struct agent_config *cfg,
                  const char *key_pem, size_t key_pem_len, X509 *cert, STACK_OF(X509) *chain);

/*
 * fileset_marker_read sets |*present| to whether the renewal marker is
 * there, and |serial| (|serial_size| bytes, at least RENEW_SERIAL_HEX_MAX +
 * 1) to the serial it names, or to "" when it is malformed (logged). Returns
 * 0, or the error that kept it from being read.
 */
int fileset_marker_read(bool *present, char *serial, size_t serial_size,
                        const struct agent_config *cfg);

/*
 * fileset_marker_write writes the renewal marker naming |serial_hex|, the
 * serial of the certificate being renewed, atomically. Returns 0,
 * DEVID_ERR_INVALID_ARGUMENT for a serial the marker cannot hold,
 * DEVID_ERR_IO or DEVID_ERR_CONFIG.
 */
int fileset_marker_write(const struct agent_config *cfg, const char *serial_hex);

/*
 * fileset_marker_remove removes the renewal marker durably. A missing marker
 * is not an error. Returns 0, DEVID_ERR_IO or DEVID_ERR_CONFIG.
 */
int fileset_marker_remove(const struct agent_config *cfg);

#endif
