#include "agent/ek.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/err.h"
#include "common/io/log.h"
#include "common/nvcert.h"
#include "common/tpmkey.h"

/* The authPolicy of the TCG EK templates: PolicySecret(TPM_RH_ENDORSEMENT)
 * (SHA-256, templates L-1 and L-2), and PolicyOR of it and PolicyAuthorizeNV
 * (SHA-384, template H-3); TCG EK Credential Profile 2.0, annex B. */
static const uint8_t policy_a_sha256[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
    0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa};
static const uint8_t policy_b_sha384[48] = {
    0xb2, 0x6e, 0x7d, 0x28, 0xd1, 0x1a, 0x50, 0xbc, 0x53, 0xd8, 0x82, 0xbc, 0xf5, 0xfd, 0x3a, 0x1a,
    0x07, 0x41, 0x48, 0xbb, 0x35, 0xd3, 0xb4, 0xe4, 0xcb, 0x1c, 0x0a, 0xd9, 0xbd, 0xe4, 0x19, 0xca,
    0xcb, 0x47, 0xba, 0x09, 0x69, 0x96, 0x46, 0x15, 0x0f, 0x9f, 0xc0, 0x00, 0xf3, 0xf8, 0x0e, 0x12};

#define EK_ATTRS                                                                        \
    (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
     TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)

/* template_for fills |t| with the TCG EK template of |nv|'s certificate: L-1
 * (RSA 2048), L-2 (ECC P-256) or H-3 (ECC P-384). */
static void template_for(TPMT_PUBLIC *t, uint32_t nv)
{
    memset(t, 0, sizeof(*t));
    t->nameAlg = TPM2_ALG_SHA256;
    t->objectAttributes = EK_ATTRS;
    t->authPolicy.size = sizeof(policy_a_sha256);
    memcpy(t->authPolicy.buffer, policy_a_sha256, sizeof(policy_a_sha256));
    if (nv == EK_NV_RSA) {
        t->type = TPM2_ALG_RSA;
        t->parameters.rsaDetail.symmetric =
            (TPMT_SYM_DEF_OBJECT){TPM2_ALG_AES, {.aes = 128}, {.aes = TPM2_ALG_CFB}};
        t->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
        t->parameters.rsaDetail.keyBits = 2048;
        t->unique.rsa.size = 256;
        return;
    }
    t->type = TPM2_ALG_ECC;
    t->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    t->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    if (nv == EK_NV_ECC_P256) {
        t->parameters.eccDetail.symmetric =
            (TPMT_SYM_DEF_OBJECT){TPM2_ALG_AES, {.aes = 128}, {.aes = TPM2_ALG_CFB}};
        t->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        t->unique.ecc.x.size = 32;
        t->unique.ecc.y.size = 32;
        return;
    }
    t->nameAlg = TPM2_ALG_SHA384;
    t->objectAttributes |= TPMA_OBJECT_USERWITHAUTH;
    t->authPolicy.size = sizeof(policy_b_sha384);
    memcpy(t->authPolicy.buffer, policy_b_sha384, sizeof(policy_b_sha384));
    t->parameters.eccDetail.symmetric =
        (TPMT_SYM_DEF_OBJECT){TPM2_ALG_AES, {.aes = 256}, {.aes = TPM2_ALG_CFB}};
    t->parameters.eccDetail.curveID = TPM2_ECC_NIST_P384;
}

/* The EK certificate indices ek_read looks at, in the order of auto. */
static const struct {
    uint32_t nv, handle;
    enum config_ek kind;
    const char *what;
} slots[] = {
    {EK_NV_ECC_P256, EK_HANDLE_ECC_P256, CONFIG_EK_ECC, "ECC P-256"},
    {EK_NV_ECC_P384, EK_HANDLE_ECC_P384, CONFIG_EK_ECC, "ECC P-384"},
    {EK_NV_RSA, EK_HANDLE_RSA, CONFIG_EK_RSA, "RSA"},
};

#define NSLOTS (sizeof(slots) / sizeof(slots[0]))

void ek_cleanup(struct ek *ek)
{
    if (ek == NULL)
        return;
    tpm_key_free(ek->key);
    X509_free(ek->cert);
    sk_X509_pop_free(ek->chain, X509_free);
    free(ek->nv);
    memset(ek, 0, sizeof(*ek));
}

void ek_unload(struct ek *ek)
{
    if (ek == NULL || ek->key == NULL || !ek->made || ek->unloaded)
        return;
    tpm_key_unload(ek->key);
    ek->unloaded = true;
}

int ek_reload(struct ek *ek, struct tpm *tpm)
{
    struct tpm_key *key = NULL;
    const TPMT_PUBLIC *a, *b;
    TPMT_PUBLIC tmpl;
    int r;

    if (ek == NULL || ek->key == NULL || !ek->unloaded)
        return 0;
    template_for(&tmpl, ek->nv_index);
    if ((r = tpm_key_create_ek(&key, tpm, &tmpl)) != 0)
        return r;
    a = tpm_key_get0_public(key);
    b = tpm_key_get0_public(ek->key);
    if (a->type != b->type ||
        (a->type == TPM2_ALG_ECC
             ? (a->unique.ecc.x.size != b->unique.ecc.x.size ||
                memcmp(a->unique.ecc.x.buffer, b->unique.ecc.x.buffer, a->unique.ecc.x.size) != 0)
             : (a->unique.rsa.size != b->unique.rsa.size ||
                memcmp(a->unique.rsa.buffer, b->unique.rsa.buffer, a->unique.rsa.size) != 0))) {
        log_err("the EK made again from its template is another key");
        tpm_key_free(key);
        return DEVID_ERR_TPM;
    }
    tpm_key_free(ek->key);
    ek->key = key;
    ek->unloaded = false;
    return 0;
}

/* pick returns the first slot |mode| accepts whose index is among the |n|
 * defined |nv|, or -1 when none. */
static int pick(const uint32_t *nv, size_t n, enum config_ek mode)
{
    size_t i, j;

    for (i = 0; i < NSLOTS; i++) {
        if (mode != CONFIG_EK_AUTO && mode != slots[i].kind)
            continue;
        for (j = 0; j < n; j++)
            if (nv[j] == slots[i].nv)
                return (int)i;
    }
    return -1;
}

/* read_chain sets |*out| to a new stack of the certificates in the EK chain
 * indices (see ek_read); NULL when there are none. */
static int read_chain(STACK_OF(X509) **out, struct tpm *tpm)
{
    uint32_t nv[EK_NV_CHAIN_LAST - EK_NV_CHAIN_FIRST + 1];
    STACK_OF(X509) *sk = NULL;
    uint8_t *buf = NULL;
    size_t n = 0, len = 0, i;
    X509 *x = NULL;
    char why[256];
    int r = DEVID_ERR_INTERNAL;

    *out = NULL;
    if ((r = tpm_nv_list(tpm, nv, sizeof(nv) / sizeof(nv[0]), &n, EK_NV_CHAIN_FIRST,
                         EK_NV_CHAIN_LAST)) != 0)
        goto out;
    for (i = 0; i < n; i++) {
        if (sk != NULL && sk_X509_num(sk) == EK_CHAIN_MAX) {
            log_warn("more than %d EK chain certificates in NV: ignoring 0x%08x and after",
                     EK_CHAIN_MAX, nv[i]);
            break;
        }
        free(buf);
        buf = NULL;
        if ((r = tpm_nv_read(tpm, &buf, &len, nv[i])) == DEVID_ERR_ALLOC)
            goto out;
        if (r != 0) {
            log_warn("skipping EK chain NV index 0x%08x: %s", nv[i], devid_err_str(r));
            continue;
        }
        if (nvcert_parse_one(&x, buf, len, why, sizeof(why)) != 0) {
            log_warn("skipping EK chain NV index 0x%08x: not one certificate: %s", nv[i], why);
            continue;
        }
        if ((sk == NULL && (sk = sk_X509_new_null()) == NULL) || sk_X509_push(sk, x) <= 0) {
            r = DEVID_ERR_ALLOC;
            goto out;
        }
        x = NULL;
    }
    *out = sk;
    sk = NULL;
    r = 0;
out:
    X509_free(x);
    free(buf);
    sk_X509_pop_free(sk, X509_free);
    return r;
}

int ek_read(struct ek *ek, struct tpm *tpm, enum config_ek mode)
{
    uint32_t nv[32];
    struct nvcert_span span;
    EVP_PKEY *pk = NULL;
    TPMT_PUBLIC tmpl;
    bool made = false;
    char why[256];
    size_t n = 0;
    int r, s;

    memset(ek, 0, sizeof(*ek));
    if (mode == CONFIG_EK_OFF)
        return 0;
    if ((r = tpm_nv_list(tpm, nv, sizeof(nv) / sizeof(nv[0]), &n, EK_NV_RSA, EK_NV_ECC_P384)) != 0)
        return r;
    if ((s = pick(nv, n, mode)) < 0) {
        log_info("no EK certificate in NV (0x%08x-0x%08x): enrolling without the EK", EK_NV_RSA,
                 EK_NV_ECC_P384);
        return 0;
    }
    ek->nv_index = slots[s].nv;
    if ((r = tpm_nv_read(tpm, &ek->nv, &ek->nv_len, ek->nv_index)) != 0)
        goto out;
    if (nvcert_parse_ek(&ek->cert, &span, ek->nv, ek->nv_len, why, sizeof(why)) != 0) {
        log_err("the %s EK certificate at NV 0x%08x does not parse: %s", slots[s].what,
                ek->nv_index, why);
        r = DEVID_ERR_TPM;
        goto out;
    }
    ek->der = ek->nv + span.off;
    ek->der_len = span.len;
    r = tpm_key_persistent(&ek->key, tpm, slots[s].handle);
    if (r == DEVID_ERR_NOT_FOUND) {
        log_info("no EK at handle 0x%08x: creating the %s EK from its TCG template",
                 slots[s].handle, slots[s].what);
        template_for(&tmpl, slots[s].nv);
        made = true;
        r = tpm_key_create_ek(&ek->key, tpm, &tmpl);
    }
    if (r != 0)
        goto out;
    ek->made = made;
    if (tpmkey_public_to_pkey(&pk, tpm_key_get0_public(ek->key)) != 0 ||
        EVP_PKEY_eq(pk, X509_get0_pubkey(ek->cert)) != 1) {
        tpm_key_free(ek->key);
        ek->key = NULL;
        if (made) {
            /* The vendor used another template (or another unique): no EK. */
            log_warn(
                "the %s EK made from the TCG template is not the key of the EK "
                "certificate at NV 0x%08x: enrolling without the EK",
                slots[s].what, ek->nv_index);
            r = 0;
            goto out;
        }
        log_err(
            "the EK at handle 0x%08x does not hold the key of the EK certificate at NV "
            "0x%08x",
            slots[s].handle, ek->nv_index);
        r = DEVID_ERR_TPM;
        goto out;
    }
    if ((r = read_chain(&ek->chain, tpm)) != 0)
        goto out;
    log_debug("EK: %s, certificate at NV 0x%08x, key %s 0x%08x, %d chain certificates in NV",
              slots[s].what, ek->nv_index,
              made ? "made from the template, not persistent at" : "at", slots[s].handle,
              ek->chain != NULL ? sk_X509_num(ek->chain) : 0);
out:
    EVP_PKEY_free(pk);
    return r;
}
