/* Issuance: what the ledger says about a request, and carrying out an
 * ENROLL_ISSUE verdict: build the certificate, sign it through the CA,
 * record it in the ledger. Private to verifier/server/. */
#ifndef DEVID_VERIFIER_SERVER_ISSUE_H
#define DEVID_VERIFIER_SERVER_ISSUE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "verifier/core/enroll.h"
#include "verifier/ledger/ledger.h"
#include "verifier/server/state.h"

/* The certificate an enrollment is answered with. */
struct issued {
    /* DER (malloc), owned; free with issued_cleanup. */
    uint8_t *der;
    size_t der_len;
    char serial[LEDGER_SERIAL_LEN];
};

/* issued_cleanup frees what |out| owns and zeroes it. */
void issued_cleanup(struct issued *out);

/*
 * issue_ask_ledger fills |facts| with the worker's ledger's answers about
 * the request |query| names (from enroll_peek; NULL when the peek refused:
 * nothing is asked): what the nonce was used for, given the request body's
 * SHA-256 |request_sha256|, and, when it is unused, whether the device holds
 * an active certificate at |now|. |stored| gets the issuance recorded with
 * the nonce, if any (the caller frees it with ledger_issuance_cleanup);
 * facts->nonce_cert_serial borrows from it. Returns 0, or DEVID_ERR_LEDGER
 * with |why| and the error counted.
 */
int issue_ask_ledger(struct worker *w, struct enroll_ledger_facts *facts,
                     struct ledger_issuance *stored, const struct enroll_ledger_query *query,
                     const uint8_t request_sha256[32], time_t now, char *why, size_t why_len);

/*
 * issue_certificate carries out ENROLL_ISSUE verdict |v| for the device with
 * IDevID |idevid| on worker |w|: builds the operational certificate
 * (notBefore and notAfter from |now|), signs it through the CA and records
 * it in the ledger with issued_at |now| and not_after |now| + validity,
 * superseding the device's earlier certificates, durably, before it returns.
 * The ledger decides the nonce and (reenroll = deny) the device's active
 * certificate again inside its transaction; when another worker or replica
 * recorded something meanwhile, enroll_decide_conflict decides: |v| then
 * says ENROLL_RETURN_STORED and |out| holds the stored certificate, or |v|
 * is the refusal (nonce replayed, policy denied). Returns 0 with |out|
 * filled, or a DEVID_ERR_* code with |why|.
 */
int issue_certificate(struct issued *out, struct worker *w, struct enroll_verdict *v, X509 *idevid,
                      const uint8_t request_sha256[32], time_t now, char *why, size_t why_len);

/* issue_take_stored moves the certificate of ledger record |stored| into
 * |out|. */
void issue_take_stored(struct issued *out, struct ledger_issuance *stored);

#endif
