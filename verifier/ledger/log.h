/* The issuance log's statements that run inside ledger.c's transactions:
 * adding the entry of an issuance and of each revocation. Private to
 * verifier/ledger/. */
#ifndef DEVID_VERIFIER_LEDGER_LOG_H
#define DEVID_VERIFIER_LEDGER_LOG_H

#include <stdint.h>

#include "verifier/ledger/ledger.h"
#include "verifier/ledger/sql.h"

/* log_add_issued adds the log entry of issuance |rec| (its serial
 * normalized). In the caller's transaction. Returns 0,
 * DEVID_ERR_INVALID_ARGUMENT or DEVID_ERR_LEDGER. */
int log_add_issued(struct ledger *l, const struct ledger_issuance *rec);

/*
 * log_add_revoked adds a revocation entry (at |at|, |reason|) for each
 * unrevoked issuance matching |where| ("WHERE ..." over the issuance table
 * with |params|); call it just before the UPDATE that revokes them, in the
 * same transaction. Returns 0 or DEVID_ERR_LEDGER.
 */
int log_add_revoked(struct ledger *l, const char *where, const struct sql_param *params, size_t n,
                    int64_t at, int reason);

#endif
