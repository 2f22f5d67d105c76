/* Revocation checking of a validated IDevID path against its manufacturer's
 * CRLs: the last step of chain_verify. Pure: the CRLs come from the store,
 * the time from the caller. */
#ifndef DEVID_VERIFIER_CORE_CHAIN_CRL_H
#define DEVID_VERIFIER_CORE_CHAIN_CRL_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "verifier/core/chain.h"

/*
 * chain_crl_check checks every certificate below the anchor of |path| (leaf
 * first, anchor last) against the newest CRL of |crls| its issuer signed
 * (issuer name and key, cRLSign, no delta, no unknown critical extension,
 * an issuingDistributionPoint that covers it), at |now|, for manufacturer
 * |mfr| in |mode|: a listed serial is refused; a missing or stale CRL for
 * the leaf refuses in hard mode and is recorded in soft mode. Sets
 * v->revocation and v->revocation_detail. Returns 0, or with the reason in
 * |why| DEVID_ERR_CHAIN_REVOKED (a listed serial) or
 * DEVID_ERR_REVOCATION_UNKNOWN (hard mode: no CRL from the leaf's issuer,
 * or a stale CRL).
 */
int chain_crl_check(struct chain_verdict *v, const char *mfr, enum chain_revocation_mode mode,
                    STACK_OF(X509_CRL) *crls, STACK_OF(X509) *path, time_t now, char *why,
                    size_t why_len);

#endif
