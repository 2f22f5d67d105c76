#include "agent/tpm.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "agent/tpm_int.h"
#include "common/err.h"
#include "common/io/log.h"

/* Bytes asked of the first TPM2_NV_Read: the NV buffer of most TPMs (swtpm
 * and the PC Client TPMs that report TPM2_PT_NV_BUFFER_MAX 1024). A TPM with
 * a smaller buffer refuses it; it is then asked half as much, down to
 * NV_CHUNK_MIN. Asking TPM2_GetCapability first would cost a command on
 * every TPM. */
#define NV_CHUNK_FIRST 1024
#define NV_CHUNK_MIN 64

/* Esys_TR_Serialize's resource types (tpm2-tss src/tss2-esys/esys_types.h). */
#define IESYS_KEY_RSRC 1
#define IESYS_NV_RSRC 2

/* Whether the last failure may go away when tried again (see tpm.h). */
static bool last_transient;

static bool rc_transient(TSS2_RC rc)
{
    TSS2_RC base = rc & ~TSS2_RC_LAYER_MASK;
    TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;

    if (layer == TSS2_TPM_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER)
        return base == TPM2_RC_RETRY || base == TPM2_RC_YIELDED || base == TPM2_RC_TESTING;
    return base == TSS2_BASE_RC_IO_ERROR || base == TSS2_BASE_RC_TRY_AGAIN ||
           base == TSS2_BASE_RC_NO_CONNECTION || base == TSS2_BASE_RC_NO_DECRYPT_PARAM ||
           base == TSS2_BASE_RC_MALFORMED_RESPONSE || base == TSS2_BASE_RC_INSUFFICIENT_RESPONSE;
}

int tpm_last_error_transient(void)
{
    return last_transient;
}

int tpm_fail(const char *op, uint32_t handle, TSS2_RC rc)
{
    last_transient = rc_transient(rc);
    if (handle != 0)
        log_err("TPM %s on handle 0x%08x failed: %s", op, handle, Tss2_RC_Decode(rc));
    else
        log_err("TPM %s failed: %s", op, Tss2_RC_Decode(rc));
    return DEVID_ERR_TPM;
}

bool tpm_rc_is(TSS2_RC rc, TSS2_RC code)
{
    TSS2_RC base = rc & ~TSS2_RC_LAYER_MASK;
    TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;

    /* Linux's /dev/tpmrm0 answers for the TPM in layer 11, which it calls
     * TSS2_RESMGR_TPM_RC_LAYER and tpm2-tss calls TSS2_RESMGR_RC_LAYER;
     * tpm2-abrmd's own codes there (TSS2_BASE_RC_*, 0x800 and up) are no
     * TPM code. */
    if (layer != TSS2_TPM_RC_LAYER && layer != TSS2_RESMGR_TPM_RC_LAYER &&
        layer != TSS2_RESMGR_RC_LAYER)
        return false;
    if (base & TPM2_RC_FMT1)
        return (base & (TPM2_RC_FMT1 | 0x3f)) == code;
    return base == code;
}

int tpm_open(struct tpm **out, const char *tcti)
{
    struct tpm *tpm = NULL;
    TSS2_RC rc;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || tcti == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((tpm = calloc(1, sizeof(*tpm))) == NULL)
        return DEVID_ERR_ALLOC;
    tpm->nv_chunk = NV_CHUNK_FIRST;
    last_transient = false;
    if ((rc = Tss2_TctiLdr_Initialize(tcti, &tpm->tcti)) != TSS2_RC_SUCCESS) {
        /* At first boot the device node or tpm2-abrmd may still be coming up. */
        last_transient = true;
        log_err("cannot open TPM TCTI \"%s\" (is the TPM device or tpm2-abrmd there?): %s", tcti,
                Tss2_RC_Decode(rc));
        r = DEVID_ERR_TPM;
        goto out;
    }
    if ((rc = Esys_Initialize(&tpm->esys, tpm->tcti, NULL)) != TSS2_RC_SUCCESS) {
        last_transient = rc_transient(rc);
        log_err("TPM Esys_Initialize over TCTI \"%s\" failed: %s", tcti, Tss2_RC_Decode(rc));
        r = DEVID_ERR_TPM;
        goto out;
    }
    log_debug("TPM opened over TCTI \"%s\"", tcti);
    *out = tpm;
    tpm = NULL;
    r = 0;
out:
    tpm_free(tpm);
    return r;
}

void tpm_free(struct tpm *tpm)
{
    if (tpm == NULL)
        return;
    if (tpm->esys != NULL)
        Esys_Finalize(&tpm->esys);
    if (tpm->tcti != NULL)
        Tss2_TctiLdr_Finalize(&tpm->tcti);
    free(tpm);
}

/* started_now sends TPM2_Startup(CLEAR), once per connection, when |rc| says
 * that nothing has started the TPM since power-on (firmware and the kernel
 * start real TPMs; a simulator may wait for its first client). Returns true
 * when the caller should send its command again. */
static bool started_now(struct tpm *tpm, TSS2_RC rc)
{
    TSS2_RC r;

    if (tpm->startup_sent || !tpm_rc_is(rc, TPM2_RC_INITIALIZE))
        return false;
    tpm->startup_sent = true;
    r = Esys_Startup(tpm->esys, TPM2_SU_CLEAR);
    if (r != TSS2_RC_SUCCESS && !tpm_rc_is(r, TPM2_RC_INITIALIZE)) {
        tpm_fail("Startup(CLEAR)", 0, r);
        return false;
    }
    log_info("the TPM was not started: sent TPM2_Startup(CLEAR)");
    return true;
}

/* tr_from_handle sets |*tr| for the persistent object or NV index |handle|:
 * one TPM2_ReadPublic or TPM2_NV_ReadPublic, which ESAPI keeps. Every run's
 * first command goes through here, so this is where a TPM that needs
 * TPM2_Startup gets it. Returns 0, DEVID_ERR_NOT_FOUND when nothing is
 * there, or DEVID_ERR_TPM. */
static int tr_from_handle(struct tpm *tpm, ESYS_TR *tr, uint32_t handle, const char *what)
{
    TSS2_RC rc;

    do {
        *tr = ESYS_TR_NONE;
        rc = Esys_TR_FromTPMPublic(tpm->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, tr);
    } while (rc != TSS2_RC_SUCCESS && started_now(tpm, rc));
    if (rc == TSS2_RC_SUCCESS)
        return 0;
    *tr = ESYS_TR_NONE;
    if (tpm_rc_is(rc, TPM2_RC_HANDLE)) {
        log_debug("no %s at handle 0x%08x: %s", what, handle, Tss2_RC_Decode(rc));
        return DEVID_ERR_NOT_FOUND;
    }
    return tpm_fail("TR_FromTPMPublic", handle, rc);
}

static bool is_nv(uint32_t handle)
{
    return handle >= TPM2_NV_INDEX_FIRST && handle <= TPM2_NV_INDEX_LAST;
}

/* public_from_esys fills |h|'s public area from ESAPI's record of |h->tr|,
 * which holds what Esys_TR_FromTPMPublic read: Esys_TR_Serialize writes the
 * handle, the Name, the resource type and the TPM2B public area. Returns
 * false when the record is not that (another tpm2-tss layout). */
static bool public_from_esys(struct tpm *tpm, struct tpm_handle *h)
{
    TPM2B_PUBLIC pub = {0};
    TPM2B_NV_PUBLIC nv_pub = {0};
    TPM2B_NAME name = {0};
    TPM2_HANDLE handle = 0;
    uint32_t type = 0;
    uint8_t *buf = NULL;
    size_t len = 0, off = 0;
    bool ok;

    if (Esys_TR_Serialize(tpm->esys, h->tr, &buf, &len) != TSS2_RC_SUCCESS)
        return false;
    ok = Tss2_MU_TPM2_HANDLE_Unmarshal(buf, len, &off, &handle) == TSS2_RC_SUCCESS &&
         Tss2_MU_TPM2B_NAME_Unmarshal(buf, len, &off, &name) == TSS2_RC_SUCCESS &&
         Tss2_MU_UINT32_Unmarshal(buf, len, &off, &type) == TSS2_RC_SUCCESS && handle == h->handle;
    if (ok && is_nv(h->handle))
        ok = type == IESYS_NV_RSRC &&
             Tss2_MU_TPM2B_NV_PUBLIC_Unmarshal(buf, len, &off, &nv_pub) == TSS2_RC_SUCCESS &&
             nv_pub.nvPublic.nvIndex == h->handle;
    else if (ok)
        ok = type == IESYS_KEY_RSRC &&
             Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &off, &pub) == TSS2_RC_SUCCESS;
    free(buf);
    if (!ok || off != len)
        return false;
    h->pub = pub.publicArea;
    h->nv_pub = nv_pub.nvPublic;
    return true;
}

/* public_from_tpm asks the TPM again for |h|'s public area: only where
 * public_from_esys cannot read ESAPI's record. */
static int public_from_tpm(struct tpm *tpm, struct tpm_handle *h)
{
    TPM2B_PUBLIC *pub = NULL;
    TPM2B_NV_PUBLIC *nv_pub = NULL;
    bool nv = is_nv(h->handle);
    TSS2_RC rc;

    log_debug("cannot read ESAPI's record of handle 0x%08x: asking the TPM", h->handle);
    if (nv)
        rc = Esys_NV_ReadPublic(tpm->esys, h->tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv_pub,
                                NULL);
    else
        rc = Esys_ReadPublic(tpm->esys, h->tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL,
                             NULL);
    if (rc == TSS2_RC_SUCCESS && nv)
        h->nv_pub = nv_pub->nvPublic;
    else if (rc == TSS2_RC_SUCCESS)
        h->pub = pub->publicArea;
    Esys_Free(pub);
    Esys_Free(nv_pub);
    return rc == TSS2_RC_SUCCESS ? 0 : tpm_fail(nv ? "NV_ReadPublic" : "ReadPublic", h->handle, rc);
}

static struct tpm_handle *handle_find(struct tpm *tpm, uint32_t handle)
{
    size_t i;

    for (i = 0; i < tpm->handles_len; i++) {
        if (tpm->handles[i].handle == handle)
            return &tpm->handles[i];
    }
    return NULL;
}

/* handle_new returns a fresh entry for |handle|, or NULL (logged) when all
 * are taken. */
static struct tpm_handle *handle_new(struct tpm *tpm, uint32_t handle)
{
    struct tpm_handle *h;

    if (tpm->handles_len == TPM_HANDLES_MAX) {
        log_err("TPM: more than %d persistent handles and NV indices in one run", TPM_HANDLES_MAX);
        return NULL;
    }
    h = &tpm->handles[tpm->handles_len];
    memset(h, 0, sizeof(*h));
    h->handle = handle;
    h->tr = ESYS_TR_NONE;
    return h;
}

int tpm_handle_get(const struct tpm_handle **out, struct tpm *tpm, uint32_t handle,
                   const char *what)
{
    struct tpm_handle *h;
    int r;

    *out = handle_find(tpm, handle);
    if (*out != NULL)
        return 0;
    if ((h = handle_new(tpm, handle)) == NULL)
        return DEVID_ERR_INTERNAL;
    if ((r = tr_from_handle(tpm, &h->tr, handle, what)) != 0)
        return r;
    if (!public_from_esys(tpm, h) && (r = public_from_tpm(tpm, h)) != 0) {
        Esys_TR_Close(tpm->esys, &h->tr);
        return r;
    }
    tpm->handles_len++;
    *out = h;
    return 0;
}

void tpm_handle_set(struct tpm *tpm, uint32_t handle, ESYS_TR tr, const TPMT_PUBLIC *pub)
{
    struct tpm_handle *h = handle_find(tpm, handle);

    if (h == NULL) {
        if ((h = handle_new(tpm, handle)) == NULL) {
            Esys_TR_Close(tpm->esys, &tr);
            return;
        }
        tpm->handles_len++;
    } else if (h->tr != tr) {
        Esys_TR_Close(tpm->esys, &h->tr);
    }
    h->tr = tr;
    h->pub = *pub;
}

void tpm_handle_forget(struct tpm *tpm, uint32_t handle)
{
    struct tpm_handle *h = handle_find(tpm, handle);

    if (h == NULL)
        return;
    /* ESAPI keeps an evicted object's ESYS_TR; a later TR_FromTPMPublic of
     * |handle| in this context would find it and fail on the Name. */
    Esys_TR_Close(tpm->esys, &h->tr);
    *h = tpm->handles[--tpm->handles_len];
}

/* nv_size_refused reports whether |rc| is TPM_RC_VALUE on TPM2_NV_Read's
 * first parameter, its size: more than the TPM's NV buffer holds. */
static bool nv_size_refused(TSS2_RC rc)
{
    return tpm_rc_is(rc, TPM2_RC_VALUE) &&
           (rc & (TPM2_RC_P | TPM2_RC_N_MASK)) == (TPM2_RC_P | TPM2_RC_1);
}

/* nv_read_into reads |size| bytes of NV index |index| (|tr|) into |buf|, as
 * few TPM2_NV_Read as the TPM's NV buffer allows. */
static int nv_read_into(struct tpm *tpm, uint8_t *buf, size_t size, ESYS_TR tr, uint32_t index)
{
    TPM2B_MAX_NV_BUFFER *chunk = NULL;
    size_t off = 0, want;
    TSS2_RC rc;

    while (off < size) {
        want = size - off < tpm->nv_chunk ? size - off : tpm->nv_chunk;
        rc = Esys_NV_Read(tpm->esys, tr, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                          (UINT16)want, (UINT16)off, &chunk);
        if (rc != TSS2_RC_SUCCESS && nv_size_refused(rc) && want > NV_CHUNK_MIN) {
            tpm->nv_chunk = (uint16_t)(want / 2);
            log_debug("TPM NV_Read of %zu bytes refused: reading %u at a time", want,
                      tpm->nv_chunk);
            continue;
        }
        if (rc != TSS2_RC_SUCCESS)
            return tpm_fail("NV_Read", index, rc);
        if (chunk->size == 0 || chunk->size > want) {
            log_err("TPM NV_Read on NV index 0x%08x returned %u bytes at offset %zu, asked %zu",
                    index, chunk->size, off, want);
            Esys_Free(chunk);
            return DEVID_ERR_TPM;
        }
        memcpy(buf + off, chunk->buffer, chunk->size);
        off += chunk->size;
        Esys_Free(chunk);
        chunk = NULL;
    }
    return 0;
}

int tpm_nv_list(struct tpm *tpm, uint32_t *out, size_t max, size_t *n, uint32_t first,
                uint32_t last)
{
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more = TPM2_NO;
    uint32_t next = first, count, h, i;
    bool done = false;
    TSS2_RC rc;

    if (tpm == NULL || out == NULL || n == NULL || last < first || !is_nv(first) || !is_nv(last))
        return DEVID_ERR_INVALID_ARGUMENT;
    *n = 0;
    while (!done) {
        do {
            rc = Esys_GetCapability(tpm->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                    TPM2_CAP_HANDLES, next, TPM2_MAX_CAP_HANDLES, &more, &cap);
        } while (rc != TSS2_RC_SUCCESS && started_now(tpm, rc));
        if (rc != TSS2_RC_SUCCESS)
            return tpm_fail("GetCapability(HANDLES)", next, rc);
        count = cap->capability == TPM2_CAP_HANDLES ? cap->data.handles.count : 0;
        done = more != TPM2_YES || count == 0;
        for (i = 0; i < count && i < TPM2_MAX_CAP_HANDLES; i++) {
            h = cap->data.handles.handle[i];
            if (h < next || h > last) {
                done = true;
                break;
            }
            if (*n == max) {
                Esys_Free(cap);
                log_err("more than %zu NV indices are defined in 0x%08x-0x%08x", max, first, last);
                *n = 0;
                return DEVID_ERR_TOO_LARGE;
            }
            out[(*n)++] = h;
            if (h == last)
                done = true;
            next = h + 1;
        }
        Esys_Free(cap);
        cap = NULL;
    }
    return 0;
}

int tpm_nv_read(struct tpm *tpm, uint8_t **out, size_t *out_len, uint32_t index)
{
    const struct tpm_handle *h = NULL;
    uint8_t *buf = NULL;
    size_t size;
    int r;

    if (tpm == NULL || out == NULL || out_len == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    *out_len = 0;
    if ((r = tpm_handle_get(&h, tpm, index, "NV index")) != 0) {
        if (r == DEVID_ERR_NOT_FOUND)
            log_err("NV index 0x%08x is not defined", index);
        return r;
    }
    size = h->nv_pub.dataSize;
    if (size == 0) {
        log_err("NV index 0x%08x is empty", index);
        return DEVID_ERR_NOT_FOUND;
    }
    if (size > TPM_NV_CERT_MAX) {
        log_err("NV index 0x%08x holds %zu bytes, more than the %d accepted", index, size,
                TPM_NV_CERT_MAX);
        return DEVID_ERR_TOO_LARGE;
    }
    if ((buf = malloc(size)) == NULL)
        return DEVID_ERR_ALLOC;
    if ((r = nv_read_into(tpm, buf, size, h->tr, index)) != 0) {
        free(buf);
        return r;
    }
    *out = buf;
    *out_len = size;
    return 0;
}
