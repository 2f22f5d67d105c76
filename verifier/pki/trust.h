/* The verifier's whole trust state, loaded from files: the manufacturer trust
 * store (roots, intermediates, CRLs, algorithm settings) and the enrollment
 * policy. The file shell around chain.h, mfrconf.h and policy.h. */
#ifndef DEVID_VERIFIER_PKI_TRUST_H
#define DEVID_VERIFIER_PKI_TRUST_H

#include <stddef.h>

#include "verifier/core/chain.h"
#include "verifier/core/policy.h"

/* Most root certificates one trust directory may hold. */
#define TRUST_MAX_ROOTS 256

struct trust;

/*
 * trust_new_from_files sets |*out| to the trust state described by
 * |manufacturers_conf| (required) and |policy_conf| (NULL: every configured
 * manufacturer's devices may enroll, re-enrollment allowed, minimum assurance none).
 * Files the manufacturers file names are read relative to its directory
 * unless absolute. Every policy manufacturer must be configured. On any
 * failure nothing is kept: |*out| stays NULL and |why| gets the file, the line
 * where there is one, and the reason. Logs each root loaded. The caller owns
 * |*out|; free with trust_free. Returns 0, DEVID_ERR_IO (unreadable file),
 * DEVID_ERR_CONFIG or DEVID_ERR_ALLOC.
 */
int trust_new_from_files(struct trust **out, const char *manufacturers_conf,
                         const char *policy_conf, char *why, size_t why_len);

/*
 * trust_new_from_roots sets |*out| to a trust state in the simple form: every
 * root in the *.pem and *.crt files of |roots_dir| becomes (part of) a
 * manufacturer named from its subject O, else CN, with default settings and
 * no CRL; |intermediates| (may be NULL) is a PEM file of config
 * intermediates. |policy| (may be NULL for policy_new()) is taken over, also
 * on failure. Same failure and ownership rules as trust_new_from_files.
 */
int trust_new_from_roots(struct trust **out, const char *roots_dir, const char *intermediates,
                         struct policy *policy, char *why, size_t why_len);

/* trust_free frees |trust| and everything it holds; NULL is a no-op. */
void trust_free(struct trust *trust);

/* trust_get0_store returns |trust|'s trust store (borrowed). */
const struct chain_store *trust_get0_store(const struct trust *trust);

/* trust_get0_ek_store returns |trust|'s TPM vendor trust store (borrowed),
 * for EK certificates: empty (no vendor) unless the manufacturers file has
 * [tpm_vendor "NAME"] sections; trust_new_from_roots makes it empty. */
const struct chain_store *trust_get0_ek_store(const struct trust *trust);

/* trust_get0_policy returns |trust|'s policy (borrowed). */
const struct policy *trust_get0_policy(const struct trust *trust);

#endif
