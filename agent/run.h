/* The agent's two runs, enroll and renew: plan what to do (agent/renewal.h),
 * then attempt it on a fresh TPM and TLS connection each time, retrying what
 * may pass by itself with exponential backoff and full jitter until the
 * deadline (agent/core/backoff.h). */
#ifndef DEVID_AGENT_RUN_H
#define DEVID_AGENT_RUN_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "agent/core/config.h"

/* What a run ends with, for the exit code and the summary. */
struct run_result {
    X509 *cert;          /* the LDevID certificate (owned) */
    bool already;        /* true when an existing enrollment was found */
    int reason;          /* devid.v1.Reason of a refusal, 0 otherwise */
    bool gave_up;        /* failures were retryable, but the deadline came first */
    bool peer_untrusted; /* the verifier's TLS certificate did not verify */
    unsigned attempts;
    bool renewed;   /* renew: a new key and certificate replaced a valid pair */
    bool not_due;   /* renew: the certificate is valid and renewal is not due */
    int64_t due_at; /* renew, when not_due: the first second it is (Unix time) */
    char cert_path[PATH_MAX];
};

/*
 * run_enroll enrolls the device described by |cfg|, or finds that it already
 * is: a currently valid cert.pem in |cfg->out_dir| whose key is the one in
 * key.tss2.pem, a blob this TPM loads (and, with a persist_handle, the key at
 * that handle). A mismatch is not trusted: the device enrolls again. It first
 * finishes or undoes a write (or a renewal) that a crash interrupted.
 * Retryable failures (network, HTTP 503, retryable refusals, transient TPM
 * errors) are retried with exponential backoff and full jitter, honouring
 * Retry-After, until |cfg->deadline|. Fills |res|, which the caller releases
 * with run_result_cleanup, in every case. Returns 0; DEVID_ERR_REFUSED when
 * the verifier refused (|res->reason| says why, the verifier's message is
 * logged); DEVID_ERR_TPM; DEVID_ERR_NETWORK, DEVID_ERR_TLS or
 * DEVID_ERR_PROTOCOL for the connection; or a local error (DEVID_ERR_IO,
 * DEVID_ERR_CONFIG, ...).
 */
int run_enroll(struct run_result *res, const struct agent_config *cfg);

/*
 * run_renew renews the certificate in |cfg->out_dir|. With no valid
 * certificate there (missing, expired, not for key.tss2.pem) it enrolls as
 * run_enroll does, and says so. When the elapsed fraction of the
 * certificate's lifetime is below |cfg->renew_at| and |force| is false, it
 * sets |res->not_due| and |res->due_at| and returns 0, having read only the
 * files: neither the TPM nor the verifier is contacted. Otherwise it enrolls
 * again with a new TPM key and fresh evidence, authenticated by the IDevID;
 * the verifier links the new certificate to the old one and revokes the old
 * one. The new key, chain and certificate are committed together as by
 * run_enroll, and only then does the old key leave the TPM (agent/renewal.h
 * has the order and what the next run does after a crash). Sets
 * |res->renewed| when a new certificate replaced a valid one. Returns as
 * run_enroll.
 */
int run_renew(struct run_result *res, const struct agent_config *cfg, bool force);

/* run_result_cleanup frees what |res| holds and zeroes it. NULL does
 * nothing. */
void run_result_cleanup(struct run_result *res);

#endif
