#include "agent/tpm.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

#include "agent/tpm_int.h"
#include "common/err.h"
#include "common/io/log.h"

static struct tpm_key *key_new(struct tpm *tpm)
{
    struct tpm_key *key = calloc(1, sizeof(*key));

    if (key == NULL)
        return NULL;
    key->tpm = tpm;
    key->tr = ESYS_TR_NONE;
    return key;
}

/* flush flushes |key|'s transient object, if it has one loaded. */
static void flush(struct tpm_key *key)
{
    TSS2_RC rc;

    if (key->handle != 0 || key->tr == ESYS_TR_NONE)
        return;
    rc = Esys_FlushContext(key->tpm->esys, key->tr);
    if (rc != TSS2_RC_SUCCESS)
        log_warn("TPM FlushContext of a transient key failed: %s", Tss2_RC_Decode(rc));
    key->tr = ESYS_TR_NONE;
}

void tpm_key_free(struct tpm_key *key)
{
    if (key == NULL)
        return;
    flush(key);
    Esys_Free(key->pub2b);
    Esys_Free(key->priv);
    free(key);
}

void tpm_key_unload(struct tpm_key *key)
{
    if (key != NULL)
        flush(key);
}

const TPMT_PUBLIC *tpm_key_get0_public(const struct tpm_key *key)
{
    return &key->pub;
}

int tpm_key_persistent(struct tpm_key **out, struct tpm *tpm, uint32_t handle)
{
    const struct tpm_handle *h = NULL;
    struct tpm_key *key;
    int r;

    if (out == NULL || tpm == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((r = tpm_handle_get(&h, tpm, handle, "key")) != 0)
        return r;
    if ((key = key_new(tpm)) == NULL)
        return DEVID_ERR_ALLOC;
    key->handle = handle;
    key->tr = h->tr;
    key->pub = h->pub;
    *out = key;
    return 0;
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

/* The boot-state gate's AK (docs/protocol.md section 6.2): a restricted
 * ECC P-256 signing key with ECDSA-SHA256, as the TCG AK templates. */
static const TPMT_PUBLIC ak_template = {
    .type = TPM2_ALG_ECC,
    .nameAlg = TPM2_ALG_SHA256,
    .objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
                        TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                        TPMA_OBJECT_USERWITHAUTH,
    .parameters.eccDetail =
        {
            .symmetric = {.algorithm = TPM2_ALG_NULL},
            .scheme = {.scheme = TPM2_ALG_ECDSA, .details.ecdsa.hashAlg = TPM2_ALG_SHA256},
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
        r = tpm_fail("CreatePrimary (owner hierarchy, SRK)", 0, rc);
        goto out;
    }
    rc = Esys_EvictControl(tpm->esys, ESYS_TR_RH_OWNER, primary, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, handle, &persistent);
    if (rc != TSS2_RC_SUCCESS) {
        r = tpm_fail("EvictControl (persist SRK)", handle, rc);
        goto out;
    }
    tpm_handle_set(tpm, handle, persistent, &pub->publicArea);
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
        return tpm_fail(what, parent->handle, rc);
    }
    key->pub = key->pub2b->publicArea;
    return 0;
}

/* create_loaded creates |key| under |parent| and loads it, in one
 * TPM2_CreateLoaded. Returns 0, DEVID_ERR_NOT_FOUND when the TPM lacks the
 * command (TPM_RC_COMMAND_CODE, from the TPM or from the kernel's resource
 * manager, which answers so for a command the TPM does not list), or
 * DEVID_ERR_TPM. */
static int create_loaded(struct tpm_key *key, struct tpm_key *parent, const TPMT_PUBLIC *tp,
                         const char *what)
{
    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_TEMPLATE tmpl = {0};
    size_t off = 0;
    TSS2_RC rc;

    if (Tss2_MU_TPMT_PUBLIC_Marshal(tp, tmpl.buffer, sizeof(tmpl.buffer), &off) != TSS2_RC_SUCCESS)
        return DEVID_ERR_INTERNAL;
    tmpl.size = (UINT16)off;
    rc = Esys_CreateLoaded(parent->tpm->esys, parent->tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, &sens, &tmpl, &key->tr, &key->priv, &key->pub2b);
    if (rc == TSS2_RC_SUCCESS) {
        key->pub = key->pub2b->publicArea;
        return 0;
    }
    key->tr = ESYS_TR_NONE;
    if (tpm_rc_is(rc, TPM2_RC_COMMAND_CODE)) {
        log_info("the TPM does not implement TPM2_CreateLoaded: using TPM2_Create, TPM2_Load");
        parent->tpm->no_create_loaded = true;
        return DEVID_ERR_NOT_FOUND;
    }
    return tpm_fail(what, parent->handle, rc);
}

/* create_then_load creates |key| under |parent| with TPM2_Create, then
 * loads it: for a TPM without TPM2_CreateLoaded. */
static int create_then_load(struct tpm_key *key, struct tpm_key *parent, const TPMT_PUBLIC *tp,
                            const char *what)
{
    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_PUBLIC in_pub = {.publicArea = *tp};
    char load_what[96];
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcrs = {0};
    TSS2_RC rc;

    rc = Esys_Create(parent->tpm->esys, parent->tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                     &sens, &in_pub, &outside, &pcrs, &key->priv, &key->pub2b, NULL, NULL, NULL);
    snprintf(load_what, sizeof(load_what), "Create (%s under SRK)", what);
    if (rc != TSS2_RC_SUCCESS)
        return tpm_fail(load_what, parent->handle, rc);
    snprintf(load_what, sizeof(load_what), "Load (%s under SRK)", what);
    return load(key, parent, load_what);
}

/* create_key creates a key of template |tp| under |parent| and loads it;
 * |what| names it in messages. */
static int create_key(struct tpm_key **out, struct tpm_key *parent, const TPMT_PUBLIC *tp,
                      const char *what)
{
    struct tpm_key *key = NULL;
    char loaded_what[96];
    int r = DEVID_ERR_NOT_FOUND;

    if (out == NULL || parent == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((key = key_new(parent->tpm)) == NULL)
        return DEVID_ERR_ALLOC;
    snprintf(loaded_what, sizeof(loaded_what), "CreateLoaded (%s under SRK)", what);
    if (!parent->tpm->no_create_loaded)
        r = create_loaded(key, parent, tp, loaded_what);
    if (r == DEVID_ERR_NOT_FOUND)
        r = create_then_load(key, parent, tp, what);
    if (r != 0) {
        tpm_key_free(key);
        return r;
    }
    *out = key;
    return 0;
}

int tpm_key_create_ldevid(struct tpm_key **out, struct tpm_key *parent)
{
    return create_key(out, parent, &ldevid_template, "LDevID key");
}

int tpm_key_create_ak(struct tpm_key **out, struct tpm_key *parent)
{
    return create_key(out, parent, &ak_template, "AK");
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
        return tpm_fail(what, key->handle, rc);
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
        r = tpm_fail("Certify (LDevID key by the signer)", signer->handle, rc);
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

/* The SHA-256 bank's selection of the PCRs of |mask|. */
static TPML_PCR_SELECTION pcr_selection(uint32_t mask)
{
    TPML_PCR_SELECTION sel = {.count = 1};
    unsigned i;

    sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel.pcrSelections[0].sizeofSelect = 3;
    for (i = 0; i < 24; i++) {
        if ((mask & (1u << i)) != 0)
            sel.pcrSelections[0].pcrSelect[i / 8] |= (BYTE)(1u << (i % 8));
    }
    return sel;
}

int tpm_pcr_read(struct tpm *tpm, uint8_t (*values)[TPM2_SHA256_DIGEST_SIZE], size_t max, size_t *n,
                 uint32_t mask)
{
    TPML_PCR_SELECTION sel, *out_sel = NULL;
    TPML_DIGEST *digests = NULL;
    uint32_t left = mask, got;
    size_t k = 0, i, j;
    TSS2_RC rc;
    int r = DEVID_ERR_TPM;

    if (tpm == NULL || values == NULL || n == NULL || mask == 0 || (mask >> 24) != 0 ||
        (size_t)__builtin_popcount(mask) > max)
        return DEVID_ERR_INVALID_ARGUMENT;
    *n = 0;
    while (left != 0) {
        sel = pcr_selection(left);
        rc = Esys_PCR_Read(tpm->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, NULL,
                           &out_sel, &digests);
        if (rc != TSS2_RC_SUCCESS) {
            r = tpm_fail("PCR_Read (SHA-256 bank)", 0, rc);
            goto out;
        }
        got = 0;
        for (i = 0; i < out_sel->count; i++) {
            const TPMS_PCR_SELECTION *s = &out_sel->pcrSelections[i];
            for (j = 0; s->hash == TPM2_ALG_SHA256 && j < 8u * s->sizeofSelect && j < 24; j++) {
                if ((s->pcrSelect[j / 8] & (1u << (j % 8))) != 0)
                    got |= 1u << j;
            }
        }
        /* The TPM returns the digests of the PCRs it selected, ascending. */
        if (got == 0 || (got & ~left) != 0 || (size_t)__builtin_popcount(got) != digests->count) {
            log_err(
                "TPM2_PCR_Read returned PCRs 0x%06x with %u digests for PCRs 0x%06x of the "
                "SHA-256 bank: does the TPM have that bank?",
                (unsigned)got, (unsigned)digests->count, (unsigned)left);
            goto out;
        }
        for (i = 0, j = 0; j < 24; j++) {
            if ((got & (1u << j)) == 0)
                continue;
            if (digests->digests[i].size != TPM2_SHA256_DIGEST_SIZE) {
                log_err("TPM2_PCR_Read returned a %u-byte value for SHA-256 PCR %zu",
                        (unsigned)digests->digests[i].size, j);
                goto out;
            }
            memcpy(values[k++], digests->digests[i].buffer, TPM2_SHA256_DIGEST_SIZE);
            i++;
        }
        left &= ~got;
        Esys_Free(out_sel);
        Esys_Free(digests);
        out_sel = NULL;
        digests = NULL;
    }
    *n = k;
    r = 0;
out:
    Esys_Free(out_sel);
    Esys_Free(digests);
    return r;
}

int tpm_quote(uint8_t **attest, size_t *attest_len, TPMT_SIGNATURE *sig, struct tpm_key *signer,
              uint32_t mask, const uint8_t *qualifying, size_t qualifying_len)
{
    TPMT_SIG_SCHEME scheme;
    TPML_PCR_SELECTION sel;
    TPM2B_DATA qual = {0};
    TPM2B_ATTEST *info = NULL;
    TPMT_SIGNATURE *s = NULL;
    uint8_t *ab = NULL;
    TSS2_RC rc;
    int r = DEVID_ERR_INTERNAL;

    if (attest == NULL || attest_len == NULL || sig == NULL || signer == NULL || mask == 0 ||
        qualifying == NULL || qualifying_len > sizeof(qual.buffer))
        return DEVID_ERR_INVALID_ARGUMENT;
    *attest = NULL;
    *attest_len = 0;
    memset(sig, 0, sizeof(*sig));
    if ((r = sig_scheme(&scheme, &signer->pub, signer->handle)) != 0)
        return r;
    qual.size = (UINT16)qualifying_len;
    memcpy(qual.buffer, qualifying, qualifying_len);
    sel = pcr_selection(mask);
    rc = Esys_Quote(signer->tpm->esys, signer->tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                    &qual, &scheme, &sel, &info, &s);
    if (rc != TSS2_RC_SUCCESS) {
        r = tpm_fail("Quote (SHA-256 PCRs by the IAK or AK)", signer->handle, rc);
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
    const struct tpm_handle *old = NULL;
    struct tpm *tpm;
    ESYS_TR none = ESYS_TR_NONE, added = ESYS_TR_NONE;
    TSS2_RC rc;
    int r;

    if (key == NULL || key->handle != 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    tpm = key->tpm;
    r = tpm_handle_get(&old, tpm, handle, "object");
    if (r == 0) {
        log_info("evicting the object at persistent handle 0x%08x", handle);
        rc = Esys_EvictControl(tpm->esys, ESYS_TR_RH_OWNER, old->tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                               ESYS_TR_NONE, handle, &none);
        tpm_handle_forget(tpm, handle);
        if (rc != TSS2_RC_SUCCESS)
            return tpm_fail("EvictControl (evict the old object)", handle, rc);
    } else if (r != DEVID_ERR_NOT_FOUND) {
        return r;
    }
    rc = Esys_EvictControl(tpm->esys, ESYS_TR_RH_OWNER, key->tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, handle, &added);
    if (rc != TSS2_RC_SUCCESS)
        return tpm_fail("EvictControl (persist the LDevID key)", handle, rc);
    tpm_handle_set(tpm, handle, added, &key->pub);
    return 0;
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

/* policy_secret_endorsement starts a policy session with |hash| and runs
 * TPM2_PolicySecret(TPM_RH_ENDORSEMENT) in it (the empty endorsement
 * authorization): the standard EK's authPolicy. The session is not
 * continued: the command that uses it flushes it. */
static int policy_secret_endorsement(struct tpm *tpm, ESYS_TR *session, TPMI_ALG_HASH hash)
{
    TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
    TSS2_RC rc;

    *session = ESYS_TR_NONE;
    rc = Esys_StartAuthSession(tpm->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                               ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym, hash, session);
    if (rc != TSS2_RC_SUCCESS) {
        *session = ESYS_TR_NONE;
        return tpm_fail("StartAuthSession (policy, for the EK)", 0, rc);
    }
    rc = Esys_PolicySecret(tpm->esys, ESYS_TR_RH_ENDORSEMENT, *session, ESYS_TR_PASSWORD,
                           ESYS_TR_NONE, ESYS_TR_NONE, NULL, NULL, NULL, 0, NULL, NULL);
    if (rc == TSS2_RC_SUCCESS)
        rc = Esys_TRSess_SetAttributes(tpm->esys, *session, 0, TPMA_SESSION_CONTINUESESSION);
    if (rc != TSS2_RC_SUCCESS) {
        Esys_FlushContext(tpm->esys, *session);
        *session = ESYS_TR_NONE;
        return tpm_fail("PolicySecret (TPM_RH_ENDORSEMENT)", 0, rc);
    }
    return 0;
}

int tpm_activate_credential(uint8_t *out, size_t *out_len, size_t out_max, struct tpm_key *object,
                            struct tpm_key *ek, const uint8_t *id_object, size_t id_object_len,
                            const uint8_t *secret, size_t secret_len)
{
    TPM2B_ID_OBJECT blob = {0};
    TPM2B_ENCRYPTED_SECRET enc = {0};
    TPM2B_DIGEST *cert_info = NULL;
    ESYS_TR session = ESYS_TR_PASSWORD;
    size_t off = 0;
    TSS2_RC rc;
    int r = DEVID_ERR_INTERNAL;

    if (out == NULL || out_len == NULL || object == NULL || ek == NULL ||
        object->tr == ESYS_TR_NONE || ek->tr == ESYS_TR_NONE)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out_len = 0;
    if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(id_object, id_object_len, &off, &blob) !=
            TSS2_RC_SUCCESS ||
        off != id_object_len ||
        (off = 0, Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(secret, secret_len, &off, &enc)) !=
            TSS2_RC_SUCCESS ||
        off != secret_len) {
        log_err(
            "the verifier's credential is not a TPM2B_ID_OBJECT and a "
            "TPM2B_ENCRYPTED_SECRET");
        return DEVID_ERR_PROTOCOL;
    }
    if (!(ek->pub.objectAttributes & TPMA_OBJECT_USERWITHAUTH) &&
        (r = policy_secret_endorsement(ek->tpm, &session, ek->pub.nameAlg)) != 0)
        return r;
    rc = Esys_ActivateCredential(ek->tpm->esys, object->tr, ek->tr, ESYS_TR_PASSWORD, session,
                                 ESYS_TR_NONE, &blob, &enc, &cert_info);
    if (rc != TSS2_RC_SUCCESS) {
        if (session != ESYS_TR_PASSWORD)
            Esys_FlushContext(ek->tpm->esys, session);
        r = tpm_fail("ActivateCredential (new key or AK, EK)", ek->handle, rc);
        goto out;
    }
    if (cert_info->size > out_max) {
        r = DEVID_ERR_TOO_LARGE;
        goto out;
    }
    memcpy(out, cert_info->buffer, cert_info->size);
    *out_len = cert_info->size;
    r = 0;
out:
    if (cert_info != NULL) {
        OPENSSL_cleanse(cert_info, sizeof(*cert_info));
        Esys_Free(cert_info);
    }
    return r;
}

int tpm_key_create_ek(struct tpm_key **out, struct tpm *tpm, const TPMT_PUBLIC *tmpl)
{
    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_PUBLIC in_pub = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcrs = {0};
    struct tpm_key *key = NULL;
    TSS2_RC rc;

    if (out == NULL || tpm == NULL || tmpl == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    in_pub.publicArea = *tmpl;
    if ((key = key_new(tpm)) == NULL)
        return DEVID_ERR_ALLOC;
    rc = Esys_CreatePrimary(tpm->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                            ESYS_TR_NONE, &sens, &in_pub, &outside, &pcrs, &key->tr, &key->pub2b,
                            NULL, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        key->tr = ESYS_TR_NONE;
        tpm_key_free(key);
        return tpm_fail("CreatePrimary (endorsement hierarchy, EK template)", 0, rc);
    }
    key->pub = key->pub2b->publicArea;
    *out = key;
    return 0;
}
