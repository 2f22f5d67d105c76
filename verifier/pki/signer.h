/* The privilege-separated signer: a process `serve` forks before anything
 * else, which alone opens the issuing key (ca.c) and answers a fixed request
 * table (verifier/core/signreq.h) over a socketpair: sign an operational
 * certificate, sign a CRL, and, with the issuance log's own key, sign a tree
 * head. It checks each request first
 * (verifier/core/signcheck.h), refuses and logs what is outside the profile,
 * remembers every serial it signed, the last CRL number and the last tree
 * head. The serving
 * process keeps only the CA certificate and its chain. The pattern is
 * OpenSSH's monitor (monitor.c, mm_answer_sign). */
#ifndef DEVID_VERIFIER_PKI_SIGNER_H
#define DEVID_VERIFIER_PKI_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include "verifier/core/signreq.h"

struct runas;

/* What the signer process needs: where the key is and its limits. */
struct signer_config {
    const char *ca_cert;
    const char *ca_key;
    const char *ca_provider; /* may be NULL */
    const char *ca_tcti;     /* may be NULL */
    long max_validity_seconds;
    long max_crl_next_update_seconds;
    /* certificatePolicies OIDs must be under it; NULL allows any. */
    const char *policy_arc;
    /* The issuance log's key ([log] key), or NULL: tree heads are then
     * refused. */
    const char *log_key;
    /* The account the signer becomes once its keys are loaded, or NULL to
     * keep its credentials. */
    const struct runas *run_as;
};

/* The serving process's end of the signer. */
struct signer;

/*
 * signer_start forks the signer process, which loads the provider (when
 * configured) and the key and answers requests until its socket closes, and
 * sets |*out| to the handle on it. Call before any thread starts. It returns
 * once the signer holds the key; when it cannot load it, the signer logs
 * why and exits, and signer_start returns DEVID_ERR_CONFIG.
 */
int signer_start(struct signer **out, const struct signer_config *cfg);

/*
 * signer_call sends a request of |type| with |body| and waits for the
 * answer: |*out| gets the signed DER (malloc'd, |*out_len| bytes; the caller
 * frees it). Thread-safe: one request at a time. Returns 0;
 * DEVID_ERR_REFUSED when the signer refused (its reason in |why|);
 * DEVID_ERR_CRYPTO when its key failed; DEVID_ERR_INTERNAL when the signer
 * is gone, timed out or broke the framing (it is then killed, and every
 * later call fails the same way).
 */
int signer_call(struct signer *s, uint8_t **out, size_t *out_len, enum signreq_type type,
                const uint8_t *body, size_t len, char *why, size_t why_len);

/* What signer_answers counts: by request type (SIGNREQ_CERT, _CRL and
 * _TREE_HEAD, at 0..2) and by result. */
#define SIGNER_TYPES 3
enum signer_result { SIGNER_SIGNED, SIGNER_REFUSED, SIGNER_FAILED, SIGNER_RESULTS };

/* signer_answers copies how many calls signer_call made, by type and result
 * (refused: outside the profile; failed: the key failed, or the signer is
 * gone); all zero for NULL. */
void signer_answers(struct signer *s, uint64_t out[SIGNER_TYPES][SIGNER_RESULTS]);

/* signer_watch_fd returns a descriptor that becomes readable when the
 * signer process exits (a pidfd), owned by |s|; -1 if there is none. */
int signer_watch_fd(const struct signer *s);

/* signer_pid returns the signer's process id. */
int signer_pid(const struct signer *s);

/* signer_free closes the signer's socket, which ends it, waits for it and
 * logs how it ended when that was not a clean exit; NULL is a no-op. */
void signer_free(struct signer *s);

#endif
