/* The device's endorsement key for credential activation (docs/protocol.md
 * section 6.1): its certificate from the TCG EK certificate NV index and the
 * persistent EK that goes with it. */
#ifndef DEVID_AGENT_EK_H
#define DEVID_AGENT_EK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "agent/core/config.h"
#include "agent/tpm.h"

/* The EK certificate indices (TCG EK Credential Profile) and the persistent
 * handles of their EKs (TCG TPM v2.0 Provisioning Guidance). */
#define EK_NV_RSA 0x01C00002u
#define EK_NV_ECC_P256 0x01C0000Au
#define EK_NV_ECC_P384 0x01C00016u
#define EK_HANDLE_RSA 0x81010001u
#define EK_HANDLE_ECC_P256 0x81010002u
#define EK_HANDLE_ECC_P384 0x81010016u

/* Where a TPM vendor's EK chain lies (TCG PC Client Platform TPM Profile:
 * one certificate per index), and how many of them the agent reads. */
#define EK_NV_CHAIN_FIRST 0x01C00100u
#define EK_NV_CHAIN_LAST 0x01C001FFu
#define EK_CHAIN_MAX 8

struct ek {
    struct tpm_key *key; /* the EK (persistent, or made from the template); NULL: none */
    X509 *cert;
    STACK_OF(X509) *chain; /* the EK's chain from NV (EK_NV_CHAIN_FIRST..); NULL: none */
    uint8_t *nv;           /* the NV index's contents (malloc) */
    size_t nv_len;
    const uint8_t *der; /* the certificate's bytes inside |nv| */
    size_t der_len;
    uint32_t nv_index;
    bool made;     /* |key| was made from the template (a transient object) */
    bool unloaded; /* ... and is flushed until ek_reload */
};

/*
 * ek_read fills |ek| as |mode| asks (CONFIG_EK_OFF: nothing, no command):
 * the NV indices defined among the EK certificate indices (one
 * TPM2_GetCapability), the first fitting certificate (nvcert_parse_ek), and
 * the persistent EK of its kind, whose key must be the certificate's; when
 * no EK is persistent, one made from the kind's TCG template (L-1, L-2 or
 * H-3; flushed by ek_cleanup). When no certificate is there, or the
 * template's EK is not the certificate's key, it logs that and leaves
 * ek->key NULL: the enrollment goes on without. The caller releases |ek| with
 * ek_cleanup. Returns 0, or DEVID_ERR_TPM for a TPM failure, a certificate
 * that does not parse, or an EK that is not the certificate's.
 *
 * With an EK, it also reads the EK's chain into ek->chain (NULL when there
 * is none): the NV indices defined in EK_NV_CHAIN_FIRST..EK_NV_CHAIN_LAST
 * (one more TPM2_GetCapability), in order, at most EK_CHAIN_MAX, each
 * exactly one certificate (nvcert_parse_one). An index that cannot be read
 * (empty, too large, refused by the TPM) or does not parse is skipped with
 * a warning naming it; more than EK_CHAIN_MAX are cut to the first
 * EK_CHAIN_MAX with a warning. Only a failing TPM2_GetCapability of the
 * range fails.
 */
int ek_read(struct ek *ek, struct tpm *tpm, enum config_ek mode);

/* ek_cleanup frees what |ek| holds and zeroes it. */
void ek_cleanup(struct ek *ek);

/* ek_unload flushes an EK made from its template (ek->made), so that its
 * object slot is free while other keys are made, on a TPM without a
 * resource manager (three slots); its public area stays. It does nothing to
 * a persistent EK or when there is none. */
void ek_unload(struct ek *ek);

/*
 * ek_reload makes an EK that ek_unload flushed again from its template (one
 * TPM2_CreatePrimary), which must give the same key. It does nothing
 * otherwise. Returns 0 or DEVID_ERR_TPM.
 */
int ek_reload(struct ek *ek, struct tpm *tpm);

#endif
