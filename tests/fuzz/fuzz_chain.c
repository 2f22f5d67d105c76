/* IDevID chains: the input is DER certificates back to back, leaf first.
 * chain_verify against the fixed store, then identity_extract on the leaf
 * (with the verdict's manufacturer, or a stand-in when the chain fails, so
 * the identity parser sees every leaf). */
#include <stddef.h>
#include <stdint.h>

#include <openssl/err.h>

#include "fuzzutil.h"
#include "verifier/core/chain.h"
#include "verifier/core/identity.h"

#define MAX_CERTS (1 + CHAIN_MAX_DEPTH + 1)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fu_world();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct fu_world *w = fu_world();
    const unsigned char *p = data, *end = data + size;
    STACK_OF(X509) *rest = NULL;
    X509 *leaf = NULL, *x;
    struct chain_verdict verdict;
    struct device_identity id;
    char why[512];
    int n = 0;

    if ((leaf = d2i_X509(NULL, &p, (long)size)) == NULL)
        goto out;
    if ((rest = sk_X509_new_null()) == NULL)
        goto out;
    while (p < end && ++n < MAX_CERTS && (x = d2i_X509(NULL, &p, (long)(end - p))) != NULL) {
        if (sk_X509_push(rest, x) <= 0) {
            X509_free(x);
            goto out;
        }
    }
    if (chain_verify(w->store, &verdict, leaf, rest, FU_NOW, why, sizeof(why)) == 0) {
        identity_extract(&id, leaf, verdict.manufacturer, why, sizeof(why));
        chain_verdict_cleanup(&verdict);
    } else {
        identity_extract(&id, leaf, "Fuzz Manufacturer", why, sizeof(why));
    }
out:
    sk_X509_pop_free(rest, X509_free);
    X509_free(leaf);
    ERR_clear_error();
    return 0;
}
