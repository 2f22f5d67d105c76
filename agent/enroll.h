/* One enrollment, in the order of its steps: read the device's identity,
 * connect, ask for a challenge, create the new key, build its CSR, compute
 * the transcript, sign it, certify the new key, enroll, write the files. */
#ifndef DEVID_AGENT_ENROLL_H
#define DEVID_AGENT_ENROLL_H

#include <limits.h>

#include <openssl/x509.h>

#include "agent/core/config.h"
#include "agent/exchange.h"
#include "agent/tpm.h"

/* What one enrollment attempt hands back to the run that retries it. */
struct enroll_attempt {
    X509 *cert; /* the issued certificate, once the files are written (owned) */
    char cert_path[PATH_MAX];
    struct tpm_key *ldevid;          /* the new key (owned), still loaded with a persist_handle */
    struct exchange_refusal refusal; /* what the verifier said, for the retry decision */
    char why[160];                   /* the step that failed, for the attempt's log line */
};

/*
 * enroll_attempt runs one enrollment over the open TPM |tpm| on a fresh TLS
 * connection whose requests are each bounded by |timeout| seconds, and, when
 * the verifier issues a certificate, writes key.tss2.pem, chain.pem and
 * cert.pem together (agent/fileset.h). Fills |a| in every case; the caller
 * frees it with enroll_attempt_cleanup before it closes |tpm|. Returns 0,
 * DEVID_ERR_REFUSED (the verifier's Error, logged), DEVID_ERR_TPM,
 * DEVID_ERR_NETWORK, DEVID_ERR_TLS, DEVID_ERR_PROTOCOL, or a local error;
 * each failure is logged where it happens.
 */
int enroll_attempt(struct enroll_attempt *a, struct tpm *tpm, const struct agent_config *cfg,
                   long timeout);

/* enroll_attempt_cleanup frees what |a| holds (flushing the new key) and
 * zeroes it. */
void enroll_attempt_cleanup(struct enroll_attempt *a);

#endif
