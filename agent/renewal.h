/* The renewal flow around enrollments: what a run must do before it starts
 * (decided by the core, agent/core/renew.h, from what the output directory
 * holds), the marker a renewal keeps, and the TPM side after the new files
 * are committed.
 *
 * A renewal writes the marker (the serial of the certificate it replaces)
 * before it creates the new key, and removes it only after the old key is
 * out of the TPM. The order, and what the next run does when the agent
 * stops in between:
 *   1. marker written                 crash: marker names the serial in cert.pem
 *   2. new key, challenge, enroll       -> the verifier may already have issued
 *      (the verifier stores the new        a successor and revoked the old
 *      certificate, then revokes the       certificate, so it is not trusted:
 *      old one as superseded)              enroll again with a new key (REDO)
 *   3. key, chain, cert staged, then
 *      committed (fileset_write)
 *   4. persist_handle: the old key     crash: cert.pem is no longer the one the
 *      there is evicted and the new        marker names, so the new set is in
 *      one persisted (renewal_commit)      place: load key.tss2.pem and persist it
 *                                          at the handle, evicting the old key
 *                                          (FINISH); no new enrollment
 *   5. marker removed
 * Without a persist_handle the old key was never in the TPM (a blob, replaced
 * in step 3), so step 4 is empty. A renewal that fails (not crashes) before any
 * POST /v1/enroll could have been answered with a certificate removes the
 * marker it wrote: the old certificate is still good, nothing was revoked. */
#ifndef DEVID_AGENT_RENEWAL_H
#define DEVID_AGENT_RENEWAL_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/core/config.h"
#include "agent/tpm.h"

/* What a run does besides enrolling, decided before it starts. */
struct renewal {
    bool fresh;     /* enroll with a new key even over a valid enrollment */
    bool finish;    /* step 4 of an interrupted renewal is still to do */
    bool marker;    /* a renewal marker is in place: remove it when done */
    bool started;   /* this run wrote the marker (step 1) */
    bool not_due;   /* renew: the certificate is valid and renewal is not due */
    int64_t due_at; /* renew, with a valid certificate: the first due second */
};

/*
 * renewal_plan prepares the output directory (fileset_prepare), gathers what
 * it holds (the marker; for |renew| without one, the certificate and its
 * validity, from the files only: neither TPM nor network) and fills |plan|
 * with what this run must do (renew_decide), logging it. For a renewal that
 * is due (or |force|d) it writes the marker (step 1). Returns 0 or the error
 * that stops the run.
 */
int renewal_plan(struct renewal *plan, const struct agent_config *cfg, bool renew, bool force);

/*
 * renewal_begin does, on the open TPM |tpm| at the start of an attempt,
 * step 4 and 5 of an interrupted renewal when |plan| says so, once. Returns 0
 * or DEVID_ERR_TPM / DEVID_ERR_IO.
 */
int renewal_begin(struct renewal *plan, struct tpm *tpm, const struct agent_config *cfg);

/*
 * renewal_commit does, once the new files are committed, steps 4 and 5: with
 * a persist_handle the new key |ldevid| replaces the old one there (crash
 * points "renew-evict" during a renewal, then "persist"), then the marker is
 * removed. Returns 0 or DEVID_ERR_TPM / DEVID_ERR_IO.
 */
int renewal_commit(struct renewal *plan, struct tpm_key *ldevid, const struct agent_config *cfg);

/*
 * renewal_abandon ends a renewal this run started and that failed before the
 * verifier could have issued a certificate (|maybe_issued| false): the
 * marker goes, the old certificate stays.
 */
void renewal_abandon(struct renewal *plan, const struct agent_config *cfg, bool maybe_issued);

#endif
