#include "agent/ek.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/err.h"
#include "common/io/log.h"
#include "common/nvcert.h"
#include "common/tpmkey.h"

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
    free(ek->nv);
    memset(ek, 0, sizeof(*ek));
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

int ek_read(struct ek *ek, struct tpm *tpm, enum config_ek mode)
{
    uint32_t nv[32];
    struct nvcert_span span;
    EVP_PKEY *pk = NULL;
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
        log_warn(
            "an %s EK certificate is at NV 0x%08x but no EK at handle 0x%08x: enrolling "
            "without the EK",
            slots[s].what, ek->nv_index, slots[s].handle);
        r = 0;
        goto out;
    }
    if (r != 0)
        goto out;
    if (tpmkey_public_to_pkey(&pk, tpm_key_get0_public(ek->key)) != 0 ||
        EVP_PKEY_eq(pk, X509_get0_pubkey(ek->cert)) != 1) {
        log_err(
            "the EK at handle 0x%08x does not hold the key of the EK certificate at NV "
            "0x%08x",
            slots[s].handle, ek->nv_index);
        tpm_key_free(ek->key);
        ek->key = NULL;
        r = DEVID_ERR_TPM;
        goto out;
    }
    log_debug("EK: %s, certificate at NV 0x%08x, key at 0x%08x", slots[s].what, ek->nv_index,
              slots[s].handle);
out:
    EVP_PKEY_free(pk);
    return r;
}
