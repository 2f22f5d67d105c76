/* Issuing the operational CA's CRL from the ledger: the shell that joins the
 * ledger, the pure CRL builder and the CA key. Used by `devid-verifier crl`
 * and by GET /v1/crl. */
#ifndef DEVID_VERIFIER_PKI_REVOCATION_H
#define DEVID_VERIFIER_PKI_REVOCATION_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "verifier/ledger/ledger.h"
#include "verifier/pki/ca.h"

/*
 * revocation_crl_issue sets |*out| to a new CRL signed by |ca|, listing every
 * certificate in |l| that is revoked and not yet expired at |now|, valid for
 * |next_update_seconds|, with the ledger's next CRL number. |*number| and
 * |*count| (either may be NULL) receive the CRL number and the entry count.
 * The caller owns |*out|. Returns 0 or a DEVID_ERR_* code.
 */
int revocation_crl_issue(X509_CRL **out, struct ledger *l, struct ca *ca, time_t now,
                         long next_update_seconds, uint64_t *number, size_t *count);

#endif
