/* Group commit: write transactions that arrive together on the handles of
 * one process share one durable commit. Private to verifier/ledger/.
 *
 * A backend with one writer (SQLite) makes every transaction wait for the
 * one before it, each with its own fsync; concurrent handles thus commit no
 * faster than one. Handles that join the same group queue their
 * transactions instead: the first caller to find no commit under way leads,
 * running every queued body, each in its own savepoint, in one transaction
 * on its own handle, and commits once; every caller returns only after that
 * commit. The shared transaction runs on the group's own handle, opened
 * when the group is made. The bodies run one after the other, so each sees the writes of
 * the ones before it, exactly as separate transactions would. */
#ifndef DEVID_VERIFIER_LEDGER_GROUP_H
#define DEVID_VERIFIER_LEDGER_GROUP_H

#include "verifier/ledger/backend.h"

/* Most transactions one commit carries. */
#define GROUP_MAX_BATCH 256

struct ledger_group;

/*
 * ledger_group_join sets |*out| to the process's group for |key| (the
 * database and replica the handle writes as), made when no handle holds it
 * yet, with the handle that |open_writer|(|&writer|, |arg|) opens (the group
 * owns it); two handles share a group exactly when their keys are equal.
 * The caller holds one reference (ledger_group_leave). Returns 0,
 * DEVID_ERR_ALLOC or |open_writer|'s error.
 */
int ledger_group_join(struct ledger_group **out, const char *key,
                      int (*open_writer)(struct ledger **writer, void *arg), void *arg);

/* ledger_group_leave drops one reference to |g|; NULL is a no-op. */
void ledger_group_leave(struct ledger_group *g);

/*
 * ledger_group_transaction is sql_transaction (sql.h) for a write
 * transaction in group |g|: |body| runs on the group's handle, perhaps in
 * another thread, inside a savepoint of a transaction that other bodies
 * share. Its return has sql_transaction's
 * meaning: 0 when |body| returned 0 and the shared commit is durable; the
 * body's nonzero return (its savepoint rolled back); or DEVID_ERR_LEDGER
 * when the shared transaction failed, in which case nothing of it was
 * committed, or, when the commit itself failed, it is unknown whether it
 * was.
 */
int ledger_group_transaction(struct ledger_group *g, int (*body)(struct ledger *l, void *arg),
                             void *arg);

#endif
