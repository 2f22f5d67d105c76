/* The ledger's backend-neutral SQL: statement parameters, reading rows into
 * issuance records, transactions and the schema with its migrations. The
 * statements use $1, $2, ... placeholders, which both backends bind. Private
 * to verifier/ledger/; built on the driver of backend.h. */
#ifndef DEVID_VERIFIER_LEDGER_SQL_H
#define DEVID_VERIFIER_LEDGER_SQL_H

#include <stddef.h>
#include <stdint.h>

#include "verifier/ledger/backend.h"
#include "verifier/ledger/ledger.h"

/* Most parameters one statement takes. */
#define SQL_MAX_PARAMS 16

/* One parameter: text (NULL binds NULL), an integer, a blob, or bytes bound
 * as lowercase hex text (at most 64 bytes). */
struct sql_param {
    enum { SQL_TEXT, SQL_INT, SQL_BLOB, SQL_HEX } type;
    const void *data;
    size_t len;
    int64_t i;
};

#define TEXT(s) ((struct sql_param){SQL_TEXT, (s), 0, 0})
#define INT(v) ((struct sql_param){SQL_INT, NULL, 0, (int64_t)(v)})
#define BLOB(p, n) ((struct sql_param){SQL_BLOB, (p), (n), 0})
#define HEX(p, n) ((struct sql_param){SQL_HEX, (p), (n), 0})
/* The two arguments a helper takes for its parameters: array and count. */
#define PARAMS(...)                          \
    (const struct sql_param[]){__VA_ARGS__}, \
        sizeof((const struct sql_param[]){__VA_ARGS__}) / sizeof(struct sql_param)
#define NO_PARAMS NULL, 0

/* An issuance row, in the order sql_find reads it. */
#define SQL_COLUMNS                                                                          \
    "cert_serial, cert_der, manufacturer, model, device_serial, idevid_sha256, csr_sha256, " \
    "nonce, request_sha256, signer_kind, issued_at, not_after, replica_id, supersedes, "     \
    "revoked_at, revocation_reason, assurance, pcr_values"

/* SQL_COLUMNS without the certificate, for listings. */
#define SQL_LISTING_COLUMNS                                                              \
    "cert_serial, NULL, manufacturer, model, device_serial, idevid_sha256, csr_sha256, " \
    "nonce, request_sha256, signer_kind, issued_at, not_after, replica_id, supersedes, " \
    "revoked_at, revocation_reason, assurance, pcr_values"

/* sql_run runs |sql|, which returns no rows; |*changes| (may be NULL) gets
 * the rows it changed. Returns 0 or DEVID_ERR_LEDGER. */
int sql_run(struct ledger *l, int64_t *changes, const char *sql, const char *what,
            const struct sql_param *params, size_t n);

/* sql_rows runs |sql| and calls |fn| with each row as the driver read it
 * (borrowed for the call). No other statement may run on |l| from |fn|.
 * Returns 0, |fn|'s nonzero return, or DEVID_ERR_LEDGER. */
int sql_rows(struct ledger *l, const char *sql, const char *what, const struct sql_param *params,
             size_t n, ledger_row_fn fn, void *arg);

/* sql_int runs one-row |sql| and reads its column 0 into |*v|. Returns 0 or
 * DEVID_ERR_LEDGER (also when there is no row). */
int sql_int(struct ledger *l, int64_t *v, const char *sql, const char *what,
            const struct sql_param *params, size_t n);

/* sql_text copies column 0 of the first row of |sql| to |out| (|len| bytes)
 * and sets |*found|; |*found| is 0 when there is no row. Returns 0 or
 * DEVID_ERR_LEDGER. */
int sql_text(struct ledger *l, char *out, size_t len, int *found, const char *sql, const char *what,
             const struct sql_param *params, size_t n);

/* sql_find fills |out| from the first SQL_COLUMNS row of |sql|, certificate
 * included (free with ledger_issuance_cleanup). Returns 0,
 * DEVID_ERR_NOT_FOUND, DEVID_ERR_ALLOC or DEVID_ERR_LEDGER. */
int sql_find(struct ledger *l, struct ledger_issuance *out, const char *sql, const char *what,
             const struct sql_param *params, size_t n);

/* How sql_each reads a row: SQL_LISTING_COLUMNS, SQL_COLUMNS with the
 * certificate (SQL_ROW_FULL), or the four columns cert_serial, not_after,
 * revoked_at, revocation_reason. */
enum sql_row_kind { SQL_ROW_LISTING, SQL_ROW_REVOKED, SQL_ROW_FULL };

/* sql_each calls |fn| with each of the first |limit| rows of |sql|, read as
 * |kind| into a record borrowed for the call. Returns 0, |fn|'s nonzero
 * return, or DEVID_ERR_LEDGER. */
int sql_each(struct ledger *l, enum sql_row_kind kind, size_t limit, ledger_list_fn fn, void *arg,
             const char *sql, const char *what, const struct sql_param *params, size_t n);

/* sql_transaction runs |body| in a transaction (|write|: one that writes)
 * and commits it when |body| returns 0; otherwise, or when the commit fails,
 * it rolls back and returns that code. A body that returns a positive value
 * (an answer, not an error) is rolled back too and that value returned. */
int sql_transaction(struct ledger *l, int write, int (*body)(struct ledger *l, void *arg),
                    void *arg);

/* sql_transaction_grouped is sql_transaction for a write transaction that
 * may share its commit with other handles' (group.h) when the handle is in
 * a group; the same returns. */
int sql_transaction_grouped(struct ledger *l, int (*body)(struct ledger *l, void *arg), void *arg);

/*
 * sql_migrate brings the schema to the version this program knows, in one
 * transaction. A database without a devid schema is given one when
 * |create| is set, else refused with DEVID_ERR_NOT_FOUND. A newer schema is
 * refused with DEVID_ERR_CONFIG, both versions logged. Returns 0 or a
 * DEVID_ERR_* code.
 */
int sql_migrate(struct ledger *l, int create);

/* sql_schema_version returns the schema version this program knows. */
int sql_schema_version(void);

#endif
