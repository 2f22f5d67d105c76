/* What a ledger backend implements; private to verifier/ledger/. A backend
 * embeds struct ledger first in its own handle and fills struct ledger_ops;
 * ledger.c checks arguments before calling an op, so ops see non-NULL
 * pointers, normalized serials and a capped limit. */
#ifndef DEVID_VERIFIER_LEDGER_BACKEND_H
#define DEVID_VERIFIER_LEDGER_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "verifier/ledger/ledger.h"

struct ledger_ops {
    const char *name;
    void (*free)(struct ledger *l);
    int (*record)(struct ledger *l, const struct ledger_issuance *rec, int supersede_previous);
    int (*lookup_nonce)(struct ledger *l, struct ledger_issuance *out, const uint8_t nonce[32]);
    int (*show)(struct ledger *l, struct ledger_issuance *out, const char *cert_serial);
    int (*device_active)(struct ledger *l, int *active, const char *manufacturer,
                         const char *device_serial, int64_t now);
    int (*revoke)(struct ledger *l, int *count, const char *cert_serial, const char *manufacturer,
                  const char *device_serial, int reason, int64_t now);
    int (*list)(struct ledger *l, const struct ledger_filter *filter, size_t limit,
                ledger_list_fn fn, void *arg);
    int (*list_revoked)(struct ledger *l, int64_t now, size_t limit, ledger_list_fn fn, void *arg);
    int (*count)(struct ledger *l, int64_t *issued);
    int (*next_crl_number)(struct ledger *l, uint64_t *number);
};

struct ledger {
    const struct ledger_ops *ops;
    /* This replica's name, filled by ledger.c after the backend opened. */
    char replica_id[LEDGER_NAME_LEN];
};

/*
 * ledger_sqlite_open (sqlite.c) sets |*out| to a SQLite ledger at file
 * |path| (WAL, synchronous=FULL, busy timeout), creating it when |create| is
 * set, and migrates its schema. Returns as ledger_open.
 */
int ledger_sqlite_open(struct ledger **out, const char *path, int create);

#endif
