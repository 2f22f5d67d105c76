/* The enrollment transcript that binds nonce, TLS channel and CSR. */
#ifndef DEVID_COMMON_TRANSCRIPT_H
#define DEVID_COMMON_TRANSCRIPT_H

#include <stddef.h>
#include <stdint.h>

#define TRANSCRIPT_LEN 32
#define TRANSCRIPT_NONCE_LEN 32
#define TRANSCRIPT_EXPORTER_LEN 32
/* RFC 9266 exporter label for tls-exporter channel bindings. */
#define TRANSCRIPT_EXPORTER_LABEL "EXPORTER-Channel-Binding"

/*
 * transcript_compute writes T = SHA-256("devid/v1 enroll" || nonce ||
 * exporter || SHA-256(csr)) to |out|. |nonce| must be TRANSCRIPT_NONCE_LEN
 * bytes and |exporter| TRANSCRIPT_EXPORTER_LEN bytes. Returns 0 or a
 * DEVID_ERR_* code.
 */
int transcript_compute(uint8_t out[TRANSCRIPT_LEN], const uint8_t *nonce, size_t nonce_len,
                       const uint8_t *exporter, size_t exporter_len, const uint8_t *csr,
                       size_t csr_len);

#endif
