#include "agent/tpm.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "common/err.h"
#include "common/io/log.h"

#define NV_CHUNK 512

struct tpm {
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
};

struct tpm_key {
    struct tpm *tpm;
    ESYS_TR tr;
    uint32_t handle; /* persistent handle, or 0 for a transient object */
    TPMT_PUBLIC pub;
    TPM2B_PUBLIC *pub2b;
    TPM2B_PRIVATE *priv;
};

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

static int tss_fail(const char *op, uint32_t handle, TSS2_RC rc)
{
    last_transient = rc_transient(rc);
    if (handle != 0)
        log_err("TPM %s on handle 0x%08x failed: %s", op, handle, Tss2_RC_Decode(rc));
    else
        log_err("TPM %s failed: %s", op, Tss2_RC_Decode(rc));
    return DEVID_ERR_TPM;
}

/* is_rc reports whether |rc| is the TPM format-one or format-zero code |code|,
 * whatever its layer, handle or parameter number. */
static bool is_rc(TSS2_RC rc, TSS2_RC code)
{
    TSS2_RC base = rc & ~TSS2_RC_LAYER_MASK;

    if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER &&
        (rc & TSS2_RC_LAYER_MASK) != TSS2_RESMGR_TPM_RC_LAYER)
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
    rc = Esys_Startup(tpm->esys, TPM2_SU_CLEAR);
    if (rc != TSS2_RC_SUCCESS && !is_rc(rc, TPM2_RC_INITIALIZE)) {
        last_transient = rc_transient(rc);
        log_err("TPM Startup(CLEAR) over TCTI \"%s\" failed: %s", tcti, Tss2_RC_Decode(rc));
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

/* tr_from_handle sets |*tr| for the persistent object or NV index |handle|.
 * Returns 0, DEVID_ERR_NOT_FOUND when nothing is there, or DEVID_ERR_TPM. */
static int tr_from_handle(struct tpm *tpm, ESYS_TR *tr, uint32_t handle, const char *what)
{
    TSS2_RC rc;

    *tr = ESYS_TR_NONE;
    rc = Esys_TR_FromTPMPublic(tpm->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, tr);
    if (rc == TSS2_RC_SUCCESS)
        return 0;
    *tr = ESYS_TR_NONE;
    if (is_rc(rc, TPM2_RC_HANDLE)) {
        log_debug("no %s at handle 0x%08x: %s", what, handle, Tss2_RC_Decode(rc));
        return DEVID_ERR_NOT_FOUND;
    }
    return tss_fail("TR_FromTPMPublic", handle, rc);
}

int tpm_nv_read(struct tpm *tpm, uint8_t **out, size_t *out_len, uint32_t index)
{
    TPM2B_NV_PUBLIC *nvpub = NULL;
    TPM2B_MAX_NV_BUFFER *chunk = NULL;
    ESYS_TR tr = ESYS_TR_NONE;
    uint8_t *buf = NULL;
    size_t size, off;
    TSS2_RC rc;
    int r = DEVID_ERR_INTERNAL;

    if (tpm == NULL || out == NULL || out_len == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    *out_len = 0;
    if ((r = tr_from_handle(tpm, &tr, index, "NV index")) != 0) {
        if (r == DEVID_ERR_NOT_FOUND)
            log_err("NV index 0x%08x is not defined", index);
        goto out;
    }
    rc = Esys_NV_ReadPublic(tpm->esys, tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nvpub, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        r = tss_fail("NV_ReadPublic", index, rc);
        goto out;
    }
    size = nvpub->nvPublic.dataSize;
    if (size == 0) {
        log_err("NV index 0x%08x is empty", index);
        r = DEVID_ERR_NOT_FOUND;
        goto out;
    }
    if (size > TPM_NV_CERT_MAX) {
        log_err("NV index 0x%08x holds %zu bytes, more than the %d accepted", index, size,
                TPM_NV_CERT_MAX);
        r = DEVID_ERR_TOO_LARGE;
        goto out;
    }
    if ((buf = malloc(size)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    for (off = 0; off < size; off += chunk->size) {
        size_t want = size - off < NV_CHUNK ? size - off : NV_CHUNK;

        Esys_Free(chunk);
        chunk = NULL;
        rc = Esys_NV_Read(tpm->esys, tr, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                          (UINT16)want, (UINT16)off, &chunk);
        if (rc != TSS2_RC_SUCCESS) {
            r = tss_fail("NV_Read", index, rc);
            goto out;
        }
        if (chunk->size == 0 || chunk->size > want) {
            log_err("TPM NV_Read on NV index 0x%08x returned %u bytes at offset %zu, asked %zu",
                    index, chunk->size, off, want);
            r = DEVID_ERR_TPM;
            goto out;
        }
        memcpy(buf + off, chunk->buffer, chunk->size);
    }
    *out = buf;
    *out_len = size;
    buf = NULL;
    r = 0;
out:
    if (tr != ESYS_TR_NONE)
        Esys_TR_Close(tpm->esys, &tr);
    Esys_Free(nvpub);
    Esys_Free(chunk);
    free(buf);
    return r;
}

static struct tpm_key *key_new(struct tpm *tpm)
{
    struct tpm_key *key = calloc(1, sizeof(*key));

    if (key == NULL)
        return NULL;
    key->tpm = tpm;
    key->tr = ESYS_TR_NONE;
    return key;
}

void tpm_key_free(struct tpm_key *key)
{
    TSS2_RC rc;

    if (key == NULL)
        return;
    if (key->tr != ESYS_TR_NONE) {
        if (key->handle != 0) {
            Esys_TR_Close(key->tpm->esys, &key->tr);
        } else {
            rc = Esys_FlushContext(key->tpm->esys, key->tr);
            if (rc != TSS2_RC_SUCCESS)
                log_warn("TPM FlushContext of a transient key failed: %s", Tss2_RC_Decode(rc));
        }
    }
    Esys_Free(key->pub2b);
    Esys_Free(key->priv);
    free(key);
}

const TPMT_PUBLIC *tpm_key_get0_public(const struct tpm_key *key)
{
    return &key->pub;
}

int tpm_key_persistent(struct tpm_key **out, struct tpm *tpm, uint32_t handle)
{
    struct tpm_key *key = NULL;
    TPM2B_PUBLIC *pub = NULL;
    TSS2_RC rc;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || tpm == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((key = key_new(tpm)) == NULL)
        return DEVID_ERR_ALLOC;
    key->handle = handle;
    if ((r = tr_from_handle(tpm, &key->tr, handle, "key")) != 0)
        goto out;
    rc = Esys_ReadPublic(tpm->esys, key->tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL,
                         NULL);
    if (rc != TSS2_RC_SUCCESS) {
        r = tss_fail("ReadPublic", handle, rc);
        goto out;
    }
    key->pub = pub->publicArea;
    *out = key;
    key = NULL;
    r = 0;
out:
    Esys_Free(pub);
    tpm_key_free(key);
    return r;
}

static const TPMT_PUBLIC srk_template = {
    .type = TPM2_ALG_ECC,
    .nameAlg = TPM2_ALG_SHA256,
    .objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM |
                        TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                        TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA,
    .parameters.eccDetail =
        {
            .symmetric = {.algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB},
            .scheme = {.scheme = TPM2_ALG_NULL},
            .curveID = TPM2_ECC_NIST_P256,
            .kdf = {.scheme = TPM2_ALG_NULL},
        },
};

static const TPMT_PUBLIC ldevid_template = {
    .type = TPM2_ALG_ECC,
    .nameAlg = TPM2_ALG_SHA256,
    .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                        TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                        TPMA_OBJECT_SIGN_ENCRYPT,
    .parameters.eccDetail =
        {
            .symmetric = {.algorithm = TPM2_ALG_NULL},
            .scheme = {.scheme = TPM2_ALG_NULL},
            .curveID = TPM2_ECC_NIST_P256,
            .kdf = {.scheme = TPM2_ALG_NULL},
        },
};

int tpm_key_srk(struct tpm_key **out, struct tpm *tpm, uint32_t handle)
{
    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_PUBLIC in_pub = {.publicArea = srk_template};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcrs = {0};
    TPM2B_PUBLIC *pub = NULL;
    ESYS_TR primary = ESYS_TR_NONE, persistent = ESYS_TR_NONE;
    TSS2_RC rc;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || tpm == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    r = tpm_key_persistent(out, tpm, handle);
    if (r != DEVID_ERR_NOT_FOUND)
        return r;
    log_info("no storage root key at handle 0x%08x: creating one", handle);
    rc = Esys_CreatePrimary(tpm->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                            ESYS_TR_NONE, &sens, &in_pub, &outside, &pcrs, &primary, &pub, NULL,
                            NULL, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        r = tss_fail("CreatePrimary (owner hierarchy, SRK)", 0, rc);
        goto out;
    }
    rc = Esys_EvictControl(tpm->esys, ESYS_TR_RH_OWNER, primary, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, handle, &persistent);
    if (rc != TSS2_RC_SUCCESS) {
        r = tss_fail("EvictControl (persist SRK)", handle, rc);
        goto out;
    }
    Esys_TR_Close(tpm->esys, &persistent);
    r = tpm_key_persistent(out, tpm, handle);
out:
    if (primary != ESYS_TR_NONE && (rc = Esys_FlushContext(tpm->esys, primary)) != TSS2_RC_SUCCESS)
        log_warn("TPM FlushContext of the transient SRK failed: %s", Tss2_RC_Decode(rc));
    Esys_Free(pub);
    return r;
}

/* load loads |key|'s blob under |parent|; |what| names it in messages. */
static int load(struct tpm_key *key, struct tpm_key *parent, const char *what)
{
    TSS2_RC rc;

    rc = Esys_Load(parent->tpm->esys, parent->tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                   key->priv, key->pub2b, &key->tr);
    if (rc != TSS2_RC_SUCCESS) {
        key->tr = ESYS_TR_NONE;
        return tss_fail(what, parent->handle, rc);
    }
    key->pub = key->pub2b->publicArea;
    return 0;
}

int tpm_key_create_ldevid(struct tpm_key **out, struct tpm_key *parent)
{
    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_PUBLIC in_pub = {.publicArea = ldevid_template};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcrs = {0};
    struct tpm_key *key = NULL;
    TSS2_RC rc;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || parent == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((key = key_new(parent->tpm)) == NULL)
        return DEVID_ERR_ALLOC;
    rc = Esys_Create(parent->tpm->esys, parent->tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                     &sens, &in_pub, &outside, &pcrs, &key->priv, &key->pub2b, NULL, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        r = tss_fail("Create (LDevID key under SRK)", parent->handle, rc);
        goto out;
    }
    if ((r = load(key, parent, "Load (LDevID key under SRK)")) != 0)
        goto out;
    *out = key;
    key = NULL;
    r = 0;
out:
    tpm_key_free(key);
    return r;
}

int tpm_key_get0_blob(const struct tpm_key *key, const TPM2B_PUBLIC **pub,
                      const TPM2B_PRIVATE **priv)
{
    if (key == NULL || pub == NULL || priv == NULL || key->pub2b == NULL || key->priv == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *pub = key->pub2b;
    *priv = key->priv;
    return 0;
}

/* sig_scheme picks the signing scheme for |pub|: its own, or ECDSA/RSASSA
 * with SHA-256. Returns 0 or DEVID_ERR_CONFIG. */
static int sig_scheme(TPMT_SIG_SCHEME *scheme, const TPMT_PUBLIC *pub, uint32_t handle)
{
    const TPMT_ECC_SCHEME *ecc = &pub->parameters.eccDetail.scheme;
    const TPMT_RSA_SCHEME *rsa = &pub->parameters.rsaDetail.scheme;

    memset(scheme, 0, sizeof(*scheme));
    scheme->details.any.hashAlg = TPM2_ALG_SHA256;
    if (pub->type == TPM2_ALG_ECC) {
        scheme->scheme = TPM2_ALG_ECDSA;
        if (ecc->scheme != TPM2_ALG_NULL) {
            scheme->scheme = ecc->scheme;
            scheme->details.any.hashAlg = ecc->details.anySig.hashAlg;
        }
    } else if (pub->type == TPM2_ALG_RSA) {
        scheme->scheme = TPM2_ALG_RSASSA;
        if (rsa->scheme != TPM2_ALG_NULL) {
            scheme->scheme = rsa->scheme;
            scheme->details.any.hashAlg = rsa->details.anySig.hashAlg;
        }
    } else {
        log_err("the key at handle 0x%08x is neither ECC nor RSA (type 0x%04x)", handle, pub->type);
        return DEVID_ERR_CONFIG;
    }
    if (scheme->details.any.hashAlg != TPM2_ALG_SHA256 ||
        (scheme->scheme != TPM2_ALG_ECDSA && scheme->scheme != TPM2_ALG_RSASSA &&
         scheme->scheme != TPM2_ALG_RSAPSS)) {
        log_err(
            "the key at handle 0x%08x has signing scheme 0x%04x with hash 0x%04x; "
            "devid needs ECDSA, RSASSA or RSAPSS with SHA-256",
            handle, scheme->scheme, scheme->details.any.hashAlg);
        return DEVID_ERR_CONFIG;
    }
    return 0;
}

/* sign runs TPM2_Sign of |digest| with |key| in |scheme|; |what| names the
 * signature in messages. */
static int sign(struct tpm_key *key, TPMT_SIGNATURE *sig, const TPMT_SIG_SCHEME *scheme,
                const uint8_t *digest, size_t digest_len, const char *what)
{
    TPM2B_DIGEST d = {.size = (UINT16)digest_len};
    TPMT_TK_HASHCHECK ticket = {.tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL};
    TPMT_SIGNATURE *s = NULL;
    TSS2_RC rc;

    memcpy(d.buffer, digest, digest_len);
    rc = Esys_Sign(key->tpm->esys, key->tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &d,
                   scheme, &ticket, &s);
    if (rc != TSS2_RC_SUCCESS)
        return tss_fail(what, key->handle, rc);
    *sig = *s;
    Esys_Free(s);
    return 0;
}

int tpm_sign_sha256(struct tpm_key *key, TPMT_SIGNATURE *sig,
                    const uint8_t digest[TPM2_SHA256_DIGEST_SIZE])
{
    TPMT_SIG_SCHEME scheme;
    int r;

    if (key == NULL || sig == NULL || digest == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(sig, 0, sizeof(*sig));
    if ((r = sig_scheme(&scheme, &key->pub, key->handle)) != 0)
        return r;
    return sign(key, sig, &scheme, digest, TPM2_SHA256_DIGEST_SIZE,
                key->handle != 0 ? "Sign" : "Sign (LDevID key)");
}

int tpm_sign_scheme(struct tpm_key *key, TPMT_SIGNATURE *sig, TPMI_ALG_SIG_SCHEME scheme,
                    TPMI_ALG_HASH hash, const uint8_t *digest, size_t digest_len)
{
    TPMT_SIG_SCHEME sch = {.scheme = scheme};

    if (key == NULL || sig == NULL || digest == NULL || digest_len == 0 ||
        digest_len > sizeof(((TPM2B_DIGEST *)NULL)->buffer))
        return DEVID_ERR_INVALID_ARGUMENT;
    memset(sig, 0, sizeof(*sig));
    sch.details.any.hashAlg = hash;
    return sign(key, sig, &sch, digest, digest_len, "Sign (TLS handshake)");
}

int tpm_certify(uint8_t **attest, size_t *attest_len, TPMT_SIGNATURE *sig, struct tpm_key *object,
                struct tpm_key *signer, const uint8_t *qualifying, size_t qualifying_len)
{
    TPMT_SIG_SCHEME scheme;
    TPM2B_DATA qual = {0};
    TPM2B_ATTEST *info = NULL;
    TPMT_SIGNATURE *s = NULL;
    uint8_t *ab = NULL;
    TSS2_RC rc;
    int r = DEVID_ERR_INTERNAL;

    if (attest == NULL || attest_len == NULL || sig == NULL || object == NULL || signer == NULL ||
        qualifying == NULL || qualifying_len > sizeof(qual.buffer))
        return DEVID_ERR_INVALID_ARGUMENT;
    *attest = NULL;
    *attest_len = 0;
    memset(sig, 0, sizeof(*sig));
    if ((r = sig_scheme(&scheme, &signer->pub, signer->handle)) != 0)
        return r;
    qual.size = (UINT16)qualifying_len;
    memcpy(qual.buffer, qualifying, qualifying_len);
    rc = Esys_Certify(object->tpm->esys, object->tr, signer->tr, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD,
                      ESYS_TR_NONE, &qual, &scheme, &info, &s);
    if (rc != TSS2_RC_SUCCESS) {
        r = tss_fail("Certify (LDevID key by the signer)", signer->handle, rc);
        goto out;
    }
    if (info->size == 0 || (ab = OPENSSL_memdup(info->attestationData, info->size)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    *attest = ab;
    *attest_len = info->size;
    *sig = *s;
    r = 0;
out:
    Esys_Free(info);
    Esys_Free(s);
    return r;
}

int tpm_key_persist(struct tpm_key *key, uint32_t handle)
{
    struct tpm *tpm;
    ESYS_TR old = ESYS_TR_NONE, none = ESYS_TR_NONE, added = ESYS_TR_NONE;
    TSS2_RC rc;
    int r = DEVID_ERR_INTERNAL;

    if (key == NULL || key->handle != 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    tpm = key->tpm;
    r = tr_from_handle(tpm, &old, handle, "object");
    if (r == 0) {
        log_info("evicting the object at persistent handle 0x%08x", handle);
        rc = Esys_EvictControl(tpm->esys, ESYS_TR_RH_OWNER, old, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                               ESYS_TR_NONE, handle, &none);
        /* ESAPI keeps the evicted object's ESYS_TR; a later TR_FromTPMPublic
         * of |handle| in this context would find it and fail on the name. */
        Esys_TR_Close(tpm->esys, &old);
        if (rc != TSS2_RC_SUCCESS) {
            r = tss_fail("EvictControl (evict the old object)", handle, rc);
            goto out;
        }
    } else if (r != DEVID_ERR_NOT_FOUND) {
        goto out;
    }
    rc = Esys_EvictControl(tpm->esys, ESYS_TR_RH_OWNER, key->tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, handle, &added);
    if (rc != TSS2_RC_SUCCESS) {
        r = tss_fail("EvictControl (persist the LDevID key)", handle, rc);
        goto out;
    }
    Esys_TR_Close(tpm->esys, &added);
    r = 0;
out:
    return r;
}

int tpm_key_load(struct tpm_key **out, struct tpm_key *parent, const TPMT_PUBLIC *pub,
                 const uint8_t *priv, size_t priv_len)
{
    struct tpm_key *key = NULL;
    size_t off = 0;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || parent == NULL || pub == NULL || priv == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((key = key_new(parent->tpm)) == NULL)
        return DEVID_ERR_ALLOC;
    if ((key->pub2b = calloc(1, sizeof(*key->pub2b))) == NULL ||
        (key->priv = calloc(1, sizeof(*key->priv))) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    key->pub2b->publicArea = *pub;
    if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(priv, priv_len, &off, key->priv) != TSS2_RC_SUCCESS ||
        off != priv_len) {
        log_err("the key blob's private area is malformed");
        r = DEVID_ERR_BAD_REQUEST;
        goto out;
    }
    if ((r = load(key, parent, "Load (key blob under the SRK)")) != 0)
        goto out;
    *out = key;
    key = NULL;
    r = 0;
out:
    tpm_key_free(key);
    return r;
}
