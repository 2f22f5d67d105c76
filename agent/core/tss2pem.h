/* The "TSS2 PRIVATE KEY" PEM file that OpenSSL's tpm2 provider (and the
 * tpm2-tss engine) load: a TPM key blob under a persistent parent. Pure. */
#ifndef DEVID_AGENT_CORE_TSS2PEM_H
#define DEVID_AGENT_CORE_TSS2PEM_H

#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

#define TSS2PEM_LABEL "TSS2 PRIVATE KEY"
/* OID of a loadable key (TCG key file format). */
#define TSS2PEM_OID_LOADABLE "2.23.133.10.1.3"

/*
 * tss2pem_encode sets |*out| (OPENSSL_malloc, NUL-terminated) to the PEM of
 * TPMKey { loadableKey, emptyAuth TRUE, |parent|, |pub|, |priv| }, where |pub|
 * is a marshalled TPM2B_PUBLIC and |priv| a marshalled TPM2B_PRIVATE, and
 * |*out_len| to its length without the NUL. Returns 0, DEVID_ERR_ALLOC or
 * DEVID_ERR_CRYPTO.
 */
int tss2pem_encode(char **out, size_t *out_len, uint32_t parent, const uint8_t *pub, size_t pub_len,
                   const uint8_t *priv, size_t priv_len);

/*
 * tss2pem_encode_blob is tss2pem_encode of the blob |pub| and |priv| as the
 * TPM returned them (TPM2_Create), marshalled here. Returns as tss2pem_encode,
 * or DEVID_ERR_INVALID_ARGUMENT for a blob that does not marshal.
 */
int tss2pem_encode_blob(char **out, size_t *out_len, uint32_t parent, const TPM2B_PUBLIC *pub,
                        const TPM2B_PRIVATE *priv);

/*
 * tss2pem_decode parses the PEM at |pem| (|pem_len| bytes). Sets |*parent|,
 * |*pub| to the TPMT_PUBLIC inside the TPM2B_PUBLIC, and, when |priv| is not
 * NULL, |*priv| (OPENSSL_malloc) to the marshalled TPM2B_PRIVATE. Returns 0 or
 * DEVID_ERR_BAD_REQUEST for anything that is not a loadable TSS2 key with
 * empty auth.
 */
int tss2pem_decode(uint32_t *parent, TPMT_PUBLIC *pub, uint8_t **priv, size_t *priv_len,
                   const char *pem, size_t pem_len);

#endif
