#include "verifier/core/chain_memo.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/err.h"

void chain_memo_cleanup(struct chain_memo *memo)
{
    if (memo == NULL)
        return;
    chain_verdict_cleanup(&memo->verdict);
    sk_X509_pop_free(memo->parsed, X509_free);
    memset(memo, 0, sizeof(*memo));
}

/* forget drops the kept verdict and keeps the rest. */
static void forget(struct chain_memo *memo)
{
    chain_verdict_cleanup(&memo->verdict);
    memo->kept = 0;
    memo->store_id = 0;
    memo->from = memo->until = 0;
}

/* Whether the DER of |x| is the |len| bytes at |der|. */
static int der_is(X509 *x, const uint8_t *der, size_t len)
{
    unsigned char *enc = NULL;
    int n = i2d_X509(x, &enc), same;

    same = n > 0 && (size_t)n == len && memcmp(enc, der, len) == 0;
    OPENSSL_free(enc);
    return same;
}

/* The certificate of |sk| whose DER is |der|, or NULL. */
static X509 *find(STACK_OF(X509) *sk, const uint8_t *der, size_t len)
{
    int i;

    for (i = 0; sk != NULL && i < sk_X509_num(sk); i++)
        if (der_is(sk_X509_value(sk, i), der, len))
            return sk_X509_value(sk, i);
    return NULL;
}

X509 *chain_memo_der_cert(struct chain_memo *memo, STACK_OF(X509) *known, const uint8_t *der,
                          size_t len, size_t max)
{
    X509 *x;

    if (der == NULL || len == 0 || len > max)
        return NULL;
    if ((x = find(known, der, len)) != NULL ||
        (memo != NULL && (x = find(memo->parsed, der, len)) != NULL)) {
        if (X509_up_ref(x) != 1)
            return NULL;
        if (memo != NULL)
            memo->parse_reused++;
        return x;
    }
    if ((x = chain_der_cert(der, len, max)) == NULL || memo == NULL)
        return x;
    if (memo->parsed == NULL)
        memo->parsed = sk_X509_new_null();
    /* Kept only when there is room; the answer is the same either way. */
    if (memo->parsed == NULL || sk_X509_num(memo->parsed) >= CHAIN_MEMO_MAX_PARSED ||
        len > CHAIN_MEMO_MAX_PARSED_BYTES - memo->parsed_bytes || X509_up_ref(x) != 1)
        return x;
    if (sk_X509_push(memo->parsed, x) <= 0)
        X509_free(x);
    else
        memo->parsed_bytes += len;
    return x;
}

/* key computes SHA-256 of |leaf|'s DER and of the untrusted certificates'
 * DER in order (at most CHAIN_MAX_DEPTH, as chain_verify uses them). */
static int key(uint8_t leaf_md[32], uint8_t chain_md[32], X509 *leaf, STACK_OF(X509) *chain)
{
    EVP_MD_CTX *ctx = NULL;
    unsigned char *der = NULL;
    unsigned int len = 32;
    int i, n, dlen, r = DEVID_ERR_CRYPTO;

    if (X509_digest(leaf, EVP_sha256(), leaf_md, &len) != 1 || len != 32)
        return DEVID_ERR_CRYPTO;
    if ((ctx = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto out;
    n = chain == NULL ? 0 : sk_X509_num(chain);
    for (i = 0; i < n && i < CHAIN_MAX_DEPTH; i++) {
        if ((dlen = i2d_X509(sk_X509_value(chain, i), &der)) <= 0 ||
            EVP_DigestUpdate(ctx, der, (size_t)dlen) != 1)
            goto out;
        OPENSSL_free(der);
        der = NULL;
    }
    if (EVP_DigestFinal_ex(ctx, chain_md, &len) != 1 || len != 32)
        goto out;
    r = 0;
out:
    OPENSSL_free(der);
    EVP_MD_CTX_free(ctx);
    return r;
}

/* copy makes |dst| a verdict of its own with what |src| holds. */
static int copy(struct chain_verdict *dst, const struct chain_verdict *src)
{
    int i;

    memcpy(dst, src, sizeof(*dst));
    dst->root = NULL;
    dst->path = NULL;
    if ((dst->path = sk_X509_dup(src->path)) == NULL)
        goto fail;
    for (i = 0; i < sk_X509_num(dst->path); i++) {
        if (X509_up_ref(sk_X509_value(dst->path, i)) != 1) {
            sk_X509_free(dst->path);
            dst->path = NULL;
            goto fail;
        }
    }
    if (X509_up_ref(src->root) != 1)
        goto fail;
    dst->root = src->root;
    return 0;
fail:
    chain_verdict_cleanup(dst);
    return DEVID_ERR_ALLOC;
}

int chain_memo_verify(struct chain_memo *memo, const struct chain_store *store,
                      struct chain_verdict *verdict, X509 *leaf, STACK_OF(X509) *device_chain,
                      time_t now, char *why, size_t why_len)
{
    uint8_t leaf_md[32], chain_md[32];
    int r;

    if (memo == NULL || store == NULL || leaf == NULL)
        return chain_verify(store, verdict, leaf, device_chain, now, why, why_len);
    if (verdict == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    if ((r = key(leaf_md, chain_md, leaf, device_chain)) != 0) {
        memset(verdict, 0, sizeof(*verdict));
        snprintf(why, why_len, "cannot hash the certificates to verify");
        return r;
    }
    if (memo->kept && memo->store_id == chain_store_id(store) &&
        memcmp(memo->leaf_sha256, leaf_md, 32) == 0 &&
        memcmp(memo->chain_sha256, chain_md, 32) == 0 && now >= memo->from && now < memo->until) {
        why[0] = '\0';
        if ((r = copy(verdict, &memo->verdict)) == 0)
            memo->reused++;
        return r;
    }
    forget(memo);
    memo->verified++;
    if ((r = chain_verify(store, verdict, leaf, device_chain, now, why, why_len)) != 0)
        return r;
    if (copy(&memo->verdict, verdict) == 0) {
        memo->store_id = chain_store_id(store);
        memcpy(memo->leaf_sha256, leaf_md, 32);
        memcpy(memo->chain_sha256, chain_md, 32);
        memo->from = now;
        memo->until = verdict->valid_until;
        memo->kept = 1;
    }
    return 0;
}
