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

/* What revocation_crl_issue put into a CRL. */
struct revocation_info {
    /* Its CRL number, from the ledger. */
    uint64_t number;
    /* The revoked certificates it lists. */
    size_t count;
    /* The ledger's revocation revision it reflects (ledger_crl_revision). */
    int64_t revision;
};

/*
 * revocation_crl_issue sets |*out| to a new CRL signed by |ca|, listing every
 * certificate in |l| that is revoked and not yet expired at |now|, valid for
 * |next_update_seconds|, with the ledger's next CRL number, taken in the
 * same ledger transaction as the list (ledger_crl_snapshot). |info| (may be
 * NULL) says what it holds. The caller owns |*out|. Returns 0 or a
 * DEVID_ERR_* code.
 */
int revocation_crl_issue(X509_CRL **out, struct revocation_info *info, struct ledger *l,
                         struct ca *ca, time_t now, long next_update_seconds);

#endif
