/* The issuance log's background work on each replica (docs/architecture.md,
 * "The issuance log"): one thread with its own ledger handle that, every
 * [log] poll_seconds, gives committed entries their indices
 * (ledger_log_sequence), reads the new ones, and when the tree moved (or
 * its head is [log] sign_seconds old) asks the signer to sign the new head
 * with the consistency proof from the last one, stores the signed head in
 * the ledger and serves it at GET /v1/log/head. Nothing here runs in a
 * request: enrollments only add their entry in their own transaction.
 * Private to verifier/server/. */
#ifndef DEVID_VERIFIER_SERVER_LOGCACHE_H
#define DEVID_VERIFIER_SERVER_LOGCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "verifier/core/config.h"

struct signer;
struct logcache;

/*
 * logcache_start sets |*out| to a new log thread on the ledger |cfg| names,
 * signing heads through |signer| (borrowed; NULL: sequence only, sign
 * nothing). It runs the first round before it returns. Returns 0, or the
 * DEVID_ERR_* code of what failed (logged).
 */
int logcache_start(struct logcache **out, const struct verifier_config *cfg, struct signer *signer);

/* logcache_stop stops the thread and frees |c|; NULL is a no-op. */
void logcache_stop(struct logcache *c);

/*
 * logcache_head copies the newest signed tree head this replica made to
 * |out| (|max| bytes); |*len| gets its length. Returns 0,
 * DEVID_ERR_NOT_FOUND when none was signed (no log key, or not yet), or
 * DEVID_ERR_TOO_LARGE.
 */
int logcache_head(struct logcache *c, uint8_t *out, size_t *len, size_t max);

/* logcache_signing tells whether this replica signs tree heads. */
int logcache_signing(const struct logcache *c);

/* logcache_size returns the number of entries the thread has read. */
uint64_t logcache_size(struct logcache *c);

/* logcache_failures returns how many background rounds failed. */
int64_t logcache_failures(struct logcache *c);

/* logcache_head_info sets |*size| and |*timestamp| to those of the head
 * served, and returns 1; 0 (and zeros) when none is. */
int logcache_head_info(struct logcache *c, uint64_t *size, int64_t *timestamp);

/* logcache_stopped tells whether the log stopped at an index missing from
 * the ledger (someone changed it; audit says what). */
int logcache_stopped(struct logcache *c);

#endif
