#include "verifier/core/quote.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <tss2/tss2_mu.h>

#include "common/err.h"
#include "common/tpmkey.h"

const char *quote_selection_str(char *out, size_t len, uint32_t selection)
{
    size_t off = 0;
    unsigned i;
    int n;

    if (len == 0)
        return out;
    out[0] = '\0';
    for (i = 0; i < QUOTE_PCR_COUNT; i++) {
        if ((selection & (1u << i)) == 0)
            continue;
        n = snprintf(out + off, len - off, "%s%u", off > 0 ? "," : "", i);
        if (n < 0 || (size_t)n >= len - off)
            break;
        off += (size_t)n;
    }
    return out;
}

const char *quote_pcrs_str(char *out, size_t len, const struct quote_pcr *pcrs, size_t n)
{
    static const char hexd[] = "0123456789abcdef";
    char hex[2 * QUOTE_PCR_LEN + 1];
    size_t off = 0, i, j;
    int w;

    if (len == 0)
        return out;
    out[0] = '\0';
    for (i = 0; i < n; i++) {
        for (j = 0; j < QUOTE_PCR_LEN; j++) {
            hex[2 * j] = hexd[pcrs[i].sha256[j] >> 4];
            hex[2 * j + 1] = hexd[pcrs[i].sha256[j] & 0xf];
        }
        hex[2 * QUOTE_PCR_LEN] = '\0';
        w = snprintf(out + off, len - off, "%s%u=sha256:%s", i > 0 ? "," : "",
                     (unsigned)pcrs[i].index, hex);
        if (w < 0 || (size_t)w >= len - off)
            break;
        off += (size_t)w;
    }
    return out;
}

static int check_structure(TPMS_ATTEST *att, const struct quote_input *in, char *why,
                           size_t why_len)
{
    size_t off = 0;
    TSS2_RC rc;

    memset(att, 0, sizeof(*att));
    rc = Tss2_MU_TPMS_ATTEST_Unmarshal(in->info, in->info_len, &off, att);
    if (rc != TSS2_RC_SUCCESS)
        return devid_why(DEVID_ERR_QUOTE_MALFORMED, why, why_len,
                         "quote_info: TPMS_ATTEST does not parse (tss2-mu error 0x%x)",
                         (unsigned)rc);
    if (off != in->info_len)
        return devid_why(DEVID_ERR_QUOTE_MALFORMED, why, why_len,
                         "quote_info: %zu trailing bytes after TPMS_ATTEST", in->info_len - off);
    if (att->magic != TPM2_GENERATED_VALUE)
        return devid_why(DEVID_ERR_QUOTE_MALFORMED, why, why_len,
                         "quote_info: magic 0x%08x is not TPM_GENERATED_VALUE",
                         (unsigned)att->magic);
    if (att->type != TPM2_ST_ATTEST_QUOTE)
        return devid_why(DEVID_ERR_QUOTE_MALFORMED, why, why_len,
                         "quote_info: type 0x%04x is not TPM_ST_ATTEST_QUOTE", (unsigned)att->type);
    return 0;
}

/* The PCRs the quote selects, as a mask; -1 when it selects another bank,
 * several, or PCRs past QUOTE_PCR_COUNT. */
static int64_t quoted_mask(const TPML_PCR_SELECTION *sel)
{
    const TPMS_PCR_SELECTION *s;
    uint32_t mask = 0;
    unsigned i;

    if (sel->count != 1)
        return -1;
    s = &sel->pcrSelections[0];
    if (s->hash != TPM2_ALG_SHA256 || s->sizeofSelect > sizeof(s->pcrSelect))
        return -1;
    for (i = 0; i < 8u * s->sizeofSelect; i++) {
        if ((s->pcrSelect[i / 8] & (1u << (i % 8))) == 0)
            continue;
        if (i >= QUOTE_PCR_COUNT)
            return -1;
        mask |= 1u << i;
    }
    return mask;
}

static int check_selection(const TPMS_ATTEST *att, const struct quote_input *in, char *why,
                           size_t why_len)
{
    char want[80], got[80];
    int64_t mask = quoted_mask(&att->attested.quote.pcrSelect);
    uint32_t seen = 0;
    size_t i;

    quote_selection_str(want, sizeof(want), in->selection);
    if (mask != (int64_t)in->selection) {
        if (mask < 0)
            return devid_why(DEVID_ERR_QUOTE_SELECTION, why, why_len,
                             "quote_info: the PCR selection is not one SHA-256 bank of PCRs 0-23 "
                             "(asked for SHA-256 PCRs %s)",
                             want);
        quote_selection_str(got, sizeof(got), (uint32_t)mask);
        return devid_why(DEVID_ERR_QUOTE_SELECTION, why, why_len,
                         "quote_info: quotes SHA-256 PCRs %s, the verifier asked for %s",
                         got[0] != '\0' ? got : "(none)", want);
    }
    for (i = 0; i < in->n_pcrs; i++) {
        uint32_t bit = in->pcrs[i].index < QUOTE_PCR_COUNT ? 1u << in->pcrs[i].index : 0;
        if (bit == 0 || (in->selection & bit) == 0 || (seen & ~(bit - 1)) != 0)
            return devid_why(DEVID_ERR_QUOTE_SELECTION, why, why_len,
                             "quote.pcrs: PCR %u is reported out of order, twice or without "
                             "being asked for (asked for %s, ascending)",
                             (unsigned)in->pcrs[i].index, want);
        seen |= bit;
    }
    if (seen != in->selection) {
        quote_selection_str(got, sizeof(got), seen);
        return devid_why(DEVID_ERR_QUOTE_SELECTION, why, why_len,
                         "quote.pcrs: reports PCRs %s, the quote covers %s",
                         got[0] != '\0' ? got : "(none)", want);
    }
    return 0;
}

static int check_digest(const TPMS_ATTEST *att, const struct quote_input *in, char *why,
                        size_t why_len)
{
    const TPM2B_DIGEST *d = &att->attested.quote.pcrDigest;
    uint8_t md[32];
    EVP_MD_CTX *ctx = NULL;
    unsigned int mdlen = 0;
    size_t i;
    int r = DEVID_ERR_CRYPTO;

    if ((ctx = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto out;
    for (i = 0; i < in->n_pcrs; i++) {
        if (EVP_DigestUpdate(ctx, in->pcrs[i].sha256, QUOTE_PCR_LEN) != 1)
            goto out;
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != sizeof(md))
        goto out;
    if (d->size != sizeof(md) || CRYPTO_memcmp(d->buffer, md, sizeof(md)) != 0) {
        r = devid_why(DEVID_ERR_QUOTE_DIGEST, why, why_len,
                      "quote_info: pcrDigest (%u bytes) is not SHA-256 of the reported PCR values: "
                      "a PCR changed between TPM2_PCR_Read and TPM2_Quote, or a value is not the "
                      "TPM's",
                      (unsigned)d->size);
        goto out;
    }
    r = 0;
out:
    if (r == DEVID_ERR_CRYPTO)
        snprintf(why, why_len, "hashing the PCR values failed");
    EVP_MD_CTX_free(ctx);
    return r;
}

static int check_signature(const struct quote_input *in, char *why, size_t why_len)
{
    TPMT_SIGNATURE sig;
    const EVP_MD *md;
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    int r;

    if (tpmkey_unmarshal_signature(&sig, in->sig, in->sig_len) != 0)
        return devid_why(DEVID_ERR_QUOTE_MALFORMED, why, why_len,
                         "quote_signature: TPMT_SIGNATURE does not parse");
    if ((md = tpmkey_hash_md(tpmkey_signature_hash(&sig))) == NULL)
        return devid_why(DEVID_ERR_QUOTE_SIGNATURE, why, why_len,
                         "quote_signature: unsupported scheme 0x%04x or hash algorithm",
                         (unsigned)sig.sigAlg);
    if (EVP_Digest(in->info, in->info_len, digest, &dlen, md, NULL) != 1)
        return devid_why(DEVID_ERR_CRYPTO, why, why_len, "quote_info: hashing failed");
    r = tpmkey_verify_digest(in->signer, &sig, digest, dlen);
    ERR_clear_error();
    if (r != 0)
        return devid_why(DEVID_ERR_QUOTE_SIGNATURE, why, why_len,
                         "quote_signature: does not verify over quote_info with the IAK's key "
                         "(the quote must be signed by the IAK, a restricted key)");
    return 0;
}

int quote_check(const struct quote_input *in, char *why, size_t why_len)
{
    TPMS_ATTEST att;
    int r;

    if (in == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    why[0] = '\0';
    if (in->info == NULL || in->info_len == 0 || in->sig == NULL || in->signer == NULL ||
        in->qualifying == NULL || in->selection == 0 || in->n_pcrs > QUOTE_MAX_PCRS ||
        (in->pcrs == NULL && in->n_pcrs > 0))
        return devid_why(DEVID_ERR_QUOTE_MALFORMED, why, why_len, "PCR quote incomplete");
    if ((r = check_structure(&att, in, why, why_len)) != 0)
        return r;
    if (att.extraData.size != in->qualifying_len ||
        CRYPTO_memcmp(att.extraData.buffer, in->qualifying, in->qualifying_len) != 0)
        return devid_why(DEVID_ERR_QUOTE_NONCE, why, why_len,
                         "quote_info: extraData (%u bytes) is not the transcript T",
                         (unsigned)att.extraData.size);
    if ((r = check_selection(&att, in, why, why_len)) != 0 ||
        (r = check_digest(&att, in, why, why_len)) != 0 ||
        (r = check_signature(in, why, why_len)) != 0)
        return r;
    return 0;
}
