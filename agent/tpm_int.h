/* Inside the TPM shell: what tpm.c (the connection, its errors, persistent
 * handles and NV indices) and tpm_key.c (keys) share. Nothing else includes
 * it. */
#ifndef DEVID_AGENT_TPM_INT_H
#define DEVID_AGENT_TPM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_esys.h>

#include "agent/tpm.h"

/* Persistent handles and NV indices one connection remembers: the SRK, the
 * IDevID, the IAK, the persist_handle, the EK, and the NV indices of the
 * configuration are all a run ever opens. */
#define TPM_HANDLES_MAX 12

/* A persistent object or NV index this connection has read, with the public
 * area that TPM2_ReadPublic or TPM2_NV_ReadPublic returned, once. */
struct tpm_handle {
    uint32_t handle;
    ESYS_TR tr;
    TPMT_PUBLIC pub;       /* an object */
    TPMS_NV_PUBLIC nv_pub; /* an NV index */
};

struct tpm {
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    bool startup_sent;     /* TPM2_Startup was sent on this connection */
    bool no_create_loaded; /* the TPM answered that it lacks TPM2_CreateLoaded */
    uint16_t nv_chunk;     /* bytes asked of one TPM2_NV_Read */
    struct tpm_handle handles[TPM_HANDLES_MAX];
    size_t handles_len;
};

struct tpm_key {
    struct tpm *tpm;
    ESYS_TR tr;      /* borrowed from tpm->handles for a persistent key */
    uint32_t handle; /* persistent handle, or 0 for a transient object */
    TPMT_PUBLIC pub;
    TPM2B_PUBLIC *pub2b;
    TPM2B_PRIVATE *priv;
};

/* tpm_fail logs the TSS failure |rc| of operation |op| on |handle| (0: none),
 * notes whether it is transient, and returns DEVID_ERR_TPM. */
int tpm_fail(const char *op, uint32_t handle, TSS2_RC rc);

/* tpm_rc_is reports whether |rc| is the TPM format-one or format-zero code
 * |code| from the TPM, tpm2-abrmd or the kernel's resource manager, whatever
 * its handle or parameter number. */
bool tpm_rc_is(TSS2_RC rc, TSS2_RC code);

/*
 * tpm_handle_get sets |*out| to what |tpm| knows of the persistent object or
 * NV index |handle|, reading it from the TPM on first use (one
 * TPM2_ReadPublic or TPM2_NV_ReadPublic per connection). |what| names it in
 * messages. |*out| is borrowed from |tpm| until tpm_handle_forget or
 * tpm_free. Returns 0, DEVID_ERR_NOT_FOUND when nothing is at |handle|, or
 * DEVID_ERR_TPM.
 */
int tpm_handle_get(const struct tpm_handle **out, struct tpm *tpm, uint32_t handle,
                   const char *what);

/* tpm_handle_set takes |tr|, the object that TPM2_EvictControl has just put
 * at persistent |handle| with public area |pub|, so that the next
 * tpm_handle_get of |handle| needs no command. Where no room is left it
 * closes |tr| instead. */
void tpm_handle_set(struct tpm *tpm, uint32_t handle, ESYS_TR tr, const TPMT_PUBLIC *pub);

/* tpm_handle_forget drops what |tpm| knows of |handle| (evicted), if
 * anything. Keys borrowing it must not be used any more. */
void tpm_handle_forget(struct tpm *tpm, uint32_t handle);

#endif
