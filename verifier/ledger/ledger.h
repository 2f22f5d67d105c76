/* The issuance ledger: every operational certificate the verifier signed,
 * with its evidence, single-use nonces and revocation. One interface, two
 * backends chosen by URI: SQLite (one machine) and PostgreSQL (replicas
 * sharing one database). The statements and the decisions are the same on
 * both (sql.c); each backend only drives its library (backend.h).
 *
 * Threads: a handle is used by one thread at a time. Each server worker opens
 * its own handle with ledger_open; the database arbitrates between them, and
 * between replicas. */
#ifndef DEVID_VERIFIER_LEDGER_LEDGER_H
#define DEVID_VERIFIER_LEDGER_LEDGER_H

#include <stddef.h>
#include <stdint.h>

/* Most rows any listing returns, whatever limit the caller asks for. */
#define LEDGER_LIST_MAX 100000

/* Largest certificate (DER) the ledger stores or returns. */
#define LEDGER_CERT_MAX 16384

/* Lengths of the fixed-size fields, NUL included. */
#define LEDGER_SERIAL_LEN 64   /* lowercase hex, at most 20 bytes (RFC 5280) */
#define LEDGER_NAME_LEN 128    /* manufacturer, model, device serial, replica */
#define LEDGER_ASSURANCE_LEN 8 /* "iak", "ek" or "none" */
#define LEDGER_PCRS_LEN 640    /* at least QUOTE_PCRS_STR_LEN (verifier/core/quote.h) */

/* Revocation reasons: the RFC 5280 CRLReason values the ledger accepts. */
enum ledger_reason {
    LEDGER_REASON_UNSPECIFIED = 0,
    LEDGER_REASON_KEY_COMPROMISE = 1,
    LEDGER_REASON_AFFILIATION_CHANGED = 3,
    LEDGER_REASON_SUPERSEDED = 4,
    LEDGER_REASON_CESSATION_OF_OPERATION = 5,
};

/* One issuance. Filled by the caller for ledger_record; filled by the ledger
 * for lookups and listings. */
struct ledger_issuance {
    /* The certificate serial, hex (case, "0x", colons and leading zero bytes
     * are normalized away on input; output is lowercase). */
    char cert_serial[LEDGER_SERIAL_LEN];
    /* The certificate, DER. Borrowed from the caller by ledger_record; owned
     * by the record when the ledger filled it (free with
     * ledger_issuance_cleanup); borrowed from the ledger, valid during the
     * call only, in listing callbacks. */
    uint8_t *cert_der;
    size_t cert_der_len;
    char manufacturer[LEDGER_NAME_LEN];
    char model[LEDGER_NAME_LEN];
    char device_serial[LEDGER_NAME_LEN];
    /* SHA-256 of the IDevID certificate DER and of the CSR DER. */
    uint8_t idevid_sha256[32];
    uint8_t csr_sha256[32];
    /* The challenge nonce: single use across the whole ledger. */
    uint8_t nonce[32];
    /* SHA-256 of the enroll request body, to tell a retry of the same
     * request from a replay of its nonce. */
    uint8_t request_sha256[32];
    /* devid.v1.SignerKind of the certify signer. */
    int signer_kind;
    /* How residency of the key was shown: "iak", "ek" or "none"
     * (verifier/core/assurance.h); ledger_record refuses anything else.
     * Records from before schema version 3 read as "iak" when an IAK
     * signed, else "none". */
    char assurance[LEDGER_ASSURANCE_LEN];
    /* The boot-state gate: the quoted PCR values, "7=sha256:HEX,..."
     * (quote_pcrs_str), or "" when the policy asked for no quote and in
     * records from before schema version 5. */
    char pcr_values[LEDGER_PCRS_LEN];
    /* Seconds since the epoch. */
    int64_t issued_at;
    int64_t not_after;
    /* The replica that issued it; set by the ledger from its handle. */
    char replica_id[LEDGER_NAME_LEN];
    /* Serial of the certificate this one replaced, or "". */
    char supersedes[LEDGER_SERIAL_LEN];
    /* 0 when not revoked; else the revocation time and enum ledger_reason. */
    int64_t revoked_at;
    int revocation_reason;
};

/* What ledger_list returns. NULL strings match anything. */
struct ledger_filter {
    const char *manufacturer;
    const char *device_serial;
};

/* A listing callback: |rec| is borrowed for the call. A nonzero return stops
 * the listing, and the listing function returns it. */
typedef int (*ledger_list_fn)(void *arg, const struct ledger_issuance *rec);

struct ledger;

/*
 * ledger_open sets |*out| to a new handle on the ledger at |uri|:
 * - "sqlite:/path/ledger.db", "sqlite:///path", or a plain path (SQLite,
 *   created when missing);
 * - "postgresql://..." or "postgres://..." (a libpq connection URI), or a
 *   libpq keyword string, bare ("host=db dbname=devid": it starts with a
 *   keyword and "=") or after "pg:" ("pg:service=devid").
 * |replica_id| names this replica in every record it writes; NULL means the
 * host name. The schema is created or migrated to the version this program
 * knows, once even when several handles open at once; a database with a
 * newer version is refused with both versions logged. Errors are logged
 * with the ledger's name and the database's reason, never a password. The
 * caller owns |*out| (ledger_free). Returns 0, DEVID_ERR_CONFIG for an
 * unknown scheme or a newer schema, DEVID_ERR_IO when the database cannot
 * be opened or reached, or DEVID_ERR_LEDGER.
 */
int ledger_open(struct ledger **out, const char *uri, const char *replica_id);

/*
 * ledger_open_existing is ledger_open for operator tools: the ledger must
 * already exist and hold a devid schema (DEVID_ERR_IO naming it otherwise),
 * so a mistyped path or database does not become an empty ledger.
 */
int ledger_open_existing(struct ledger **out, const char *uri);

/* ledger_free closes |l|; NULL is a no-op. */
void ledger_free(struct ledger *l);

/* ledger_issuance_cleanup frees the certificate a lookup put into |rec| and
 * zeroes |rec|. */
void ledger_issuance_cleanup(struct ledger_issuance *rec);

/* ledger_record's flags. */
/* Revoke the device's earlier unrevoked certificates (reason superseded). */
#define LEDGER_SUPERSEDE 1u
/* Record nothing when the device holds an active certificate
 * (reenroll = deny). */
#define LEDGER_DENY_ACTIVE 2u

/* What ledger_record found and did. */
enum ledger_recorded {
    /* The issuance is committed. */
    LEDGER_RECORDED = 0,
    /* The same device's byte-identical request was recorded before: a retry
     * after a lost answer. Nothing changed; |found| holds that issuance. */
    LEDGER_SAME_REQUEST,
    /* Another request (or another device) used the nonce. Nothing changed;
     * |found| holds that issuance. */
    LEDGER_NONCE_TAKEN,
    /* LEDGER_DENY_ACTIVE and the device holds a certificate neither revoked
     * nor expired at rec->issued_at. Nothing changed; |found| holds it. */
    LEDGER_DEVICE_ACTIVE,
};

/*
 * ledger_record decides and records |rec| in one durable transaction, in
 * which the device's row is locked, so that two enrollments of one device,
 * on any worker or replica, are decided one after the other. In order: the
 * nonce (unused, used by this very request, or used by another one), then
 * with LEDGER_DENY_ACTIVE whether the device holds an active certificate,
 * then with LEDGER_SUPERSEDE the device's (manufacturer and serial) earlier
 * unrevoked certificates are revoked with reason superseded at
 * rec->issued_at and the new row's supersedes names the newest of them;
 * then the row is inserted and the transaction committed. The call returns
 * only after the commit reached stable storage. On SQLite, which has one
 * writer, the calls that handles of one process (same database, same
 * replica id) make at once share one commit and its fsync (group commit):
 * each runs in its own savepoint, one after the other, so each sees what
 * the ones before it recorded, and each returns after the shared commit. |*result| says what
 * happened; for anything but LEDGER_RECORDED nothing changed and |found|
 * holds the issuance that decided it (free with ledger_issuance_cleanup;
 * zeroed otherwise). rec->replica_id is ignored (the handle's is used) and
 * rec->revoked_at must be 0. Returns 0 whenever the ledger answered;
 * DEVID_ERR_INVALID_ARGUMENT for a malformed record; DEVID_ERR_LEDGER on a
 * database error (logged with its message; then nothing was recorded, or,
 * when the commit itself failed, it is unknown whether it was).
 */
int ledger_record(struct ledger *l, enum ledger_recorded *result, struct ledger_issuance *found,
                  const struct ledger_issuance *rec, unsigned flags);

/*
 * ledger_lookup_nonce fills |out| with the issuance that used |nonce|.
 * The caller frees it with ledger_issuance_cleanup. Returns 0,
 * DEVID_ERR_NOT_FOUND, or DEVID_ERR_LEDGER.
 */
int ledger_lookup_nonce(struct ledger *l, struct ledger_issuance *out, const uint8_t nonce[32]);

/* What the ledger holds for a challenge nonce (ledger_nonce_use). */
enum ledger_nonce_use {
    /* No issuance used the nonce. */
    LEDGER_NONCE_UNUSED = 0,
    /* The same device sent the byte-identical request before and its
     * certificate was recorded: a retry after a lost answer. */
    LEDGER_NONCE_SAME_REQUEST,
    /* Another request (or another device) used the nonce. */
    LEDGER_NONCE_OTHER_REQUEST,
};

/*
 * ledger_nonce_use sets |*use| to what the ledger holds for |nonce|, given
 * the SHA-256 of the request body now presented (|request_sha256|) and of
 * the presenting IDevID (|idevid_sha256|). For LEDGER_NONCE_SAME_REQUEST and
 * LEDGER_NONCE_OTHER_REQUEST, |stored| gets the recorded issuance (free with
 * ledger_issuance_cleanup); otherwise it is zeroed. Returns 0 or
 * DEVID_ERR_LEDGER.
 */
int ledger_nonce_use(struct ledger *l, enum ledger_nonce_use *use, struct ledger_issuance *stored,
                     const uint8_t nonce[32], const uint8_t request_sha256[32],
                     const uint8_t idevid_sha256[32]);

/*
 * ledger_show fills |out| with the issuance of certificate serial
 * |cert_serial| (hex). The caller frees it with ledger_issuance_cleanup.
 * Returns 0, DEVID_ERR_NOT_FOUND, DEVID_ERR_INVALID_ARGUMENT for a serial that
 * is not hex, or DEVID_ERR_LEDGER.
 */
int ledger_show(struct ledger *l, struct ledger_issuance *out, const char *cert_serial);

/*
 * ledger_device_active sets |*active| to 1 when device |manufacturer| /
 * |device_serial| holds a certificate that is neither revoked nor expired at
 * |now|, else 0. Returns 0 or DEVID_ERR_LEDGER.
 */
int ledger_device_active(struct ledger *l, int *active, const char *manufacturer,
                         const char *device_serial, int64_t now);

/*
 * ledger_revoke revokes, at |now| with |reason| (enum ledger_reason), either
 * the certificate with serial |cert_serial| (hex) or, when |cert_serial| is
 * NULL, every certificate of device |device_serial| (of |manufacturer|, or of
 * any manufacturer when NULL). Certificates already revoked keep their first
 * revocation. |*count| gets the number newly revoked. One transaction.
 * Returns 0; DEVID_ERR_NOT_FOUND when nothing matches at all;
 * DEVID_ERR_INVALID_ARGUMENT for a bad serial or reason; DEVID_ERR_LEDGER.
 */
int ledger_revoke(struct ledger *l, int *count, const char *cert_serial, const char *manufacturer,
                  const char *device_serial, int reason, int64_t now);

/*
 * ledger_list calls |fn| for at most |limit| (capped at LEDGER_LIST_MAX)
 * issuances matching |filter| (NULL for all), newest first. The records
 * carry no certificate (cert_der NULL). Returns 0, |fn|'s nonzero return, or
 * DEVID_ERR_LEDGER.
 */
int ledger_list(struct ledger *l, const struct ledger_filter *filter, size_t limit,
                ledger_list_fn fn, void *arg);

/*
 * ledger_crl_snapshot takes the next CRL number (1, 2, ...; each once across
 * every replica sharing the ledger) into |*number| and, in the same
 * transaction, calls |fn| for the revoked certificates that have not expired
 * at |now| (what the CRL must list), ordered by serial text, with only
 * cert_serial, not_after, revoked_at and revocation_reason filled. Numbers
 * are taken one transaction after the other, so a CRL with a higher number
 * lists every revocation that one with a lower number lists. |*revision|
 * gets the revocation revision the snapshot saw (ledger_crl_revision). More
 * than |limit| (capped at LEDGER_LIST_MAX) is DEVID_ERR_TOO_LARGE before any
 * call, and then no number is used up. Returns 0, |fn|'s nonzero return,
 * DEVID_ERR_TOO_LARGE or DEVID_ERR_LEDGER.
 */
int ledger_crl_snapshot(struct ledger *l, uint64_t *number, int64_t *revision, int64_t now,
                        size_t limit, ledger_list_fn fn, void *arg);

/*
 * ledger_crl_revision sets |*revision| to the ledger's revocation revision,
 * which every transaction that revokes a certificate (ledger_revoke, or a
 * supersede in ledger_record) advances: a CRL built at another revision is
 * stale. Returns 0 or DEVID_ERR_LEDGER.
 */
int ledger_crl_revision(struct ledger *l, int64_t *revision);

/* ledger_count sets |*issued| to the number of recorded issuances. Returns 0
 * or DEVID_ERR_LEDGER. */
int ledger_count(struct ledger *l, int64_t *issued);

/* ---- the issuance log (verifier/ledger/log.c) ------------------------------
 *
 * Every ledger_record and every revocation (ledger_revoke, a supersede) adds
 * one log entry per certificate in its own transaction: its leaf
 * (verifier/core/tlog.h). The entry has no index yet; ledger_log_sequence,
 * run in the background, gives the committed entries the next indices, so
 * that the log's order is the database's commit order seen by one
 * sequencer at a time, and no enrollment waits for it. */

/* Most entries one ledger_log_sequence call indexes. */
#define LEDGER_LOG_BATCH 10000

/* Largest leaf and signed head the ledger stores or returns. */
#define LEDGER_LEAF_MAX 512
#define LEDGER_HEAD_MAX 2048

/*
 * ledger_log_sequence gives the committed entries without an index the next
 * indices (at most LEDGER_LOG_BATCH, oldest insertion first), under the lock
 * of the log's state row, in one transaction: every replica's sequencer
 * takes turns. The first call on a ledger from before the log (schema
 * version 3) first adds the entries of the issuances and revocations
 * recorded before it. |*size| gets the log's size after the call and
 * |*added| how many entries it indexed. Returns 0 or DEVID_ERR_LEDGER.
 */
int ledger_log_sequence(struct ledger *l, uint64_t *size, uint64_t *added);

/* ledger_log_size sets |*size| to the number of indexed entries. Returns 0
 * or DEVID_ERR_LEDGER. */
int ledger_log_size(struct ledger *l, uint64_t *size);

/* A log callback: |index| is the entry's index, or -1 for one not yet
 * indexed; |leaf| is borrowed for the call. A nonzero return stops. */
typedef int (*ledger_log_fn)(void *arg, int64_t index, const uint8_t *leaf, size_t len);

/*
 * ledger_log_read calls |fn| for at most |limit| indexed entries from index
 * |from| on, in index order (an index missing from the ledger is skipped:
 * the caller sees the gap). Returns 0, |fn|'s nonzero return, or
 * DEVID_ERR_LEDGER.
 */
int ledger_log_read(struct ledger *l, uint64_t from, uint64_t limit, ledger_log_fn fn, void *arg);

/* ledger_log_pending calls |fn| (index -1) for each entry not yet indexed.
 * Returns 0, |fn|'s nonzero return, or DEVID_ERR_LEDGER. */
int ledger_log_pending(struct ledger *l, ledger_log_fn fn, void *arg);

/*
 * ledger_log_find sets |*index| to the index of the entry of |kind|
 * (TLOG_ISSUED or TLOG_REVOKED) for certificate |cert_serial| (normalized
 * hex), or -1 when it is not indexed yet. Returns 0, DEVID_ERR_NOT_FOUND,
 * or DEVID_ERR_LEDGER.
 */
int ledger_log_find(struct ledger *l, int64_t *index, const char *cert_serial, int kind);

/*
 * ledger_head_store records the signed tree head |head| (|len| bytes) of
 * |size| entries with root |root|, signed at |signed_at|, as this handle's
 * replica's. Returns 0, DEVID_ERR_INVALID_ARGUMENT or DEVID_ERR_LEDGER.
 */
int ledger_head_store(struct ledger *l, uint64_t size, int64_t signed_at, const uint8_t root[32],
                      const uint8_t *head, size_t len);

/*
 * ledger_head_latest copies the stored signed head of the largest size (the
 * newest of those) to |out| (|max| bytes); |*len| gets its length. Returns
 * 0, DEVID_ERR_NOT_FOUND when none is stored, DEVID_ERR_TOO_LARGE, or
 * DEVID_ERR_LEDGER.
 */
int ledger_head_latest(struct ledger *l, uint8_t *out, size_t *len, size_t max);

/* A head callback: |head| is borrowed for the call. */
typedef int (*ledger_head_fn)(void *arg, const uint8_t *head, size_t len);

/* ledger_heads calls |fn| for every stored signed head, smallest size
 * first. Returns 0, |fn|'s nonzero return, or DEVID_ERR_LEDGER. */
int ledger_heads(struct ledger *l, ledger_head_fn fn, void *arg);

/* ledger_scan calls |fn| for every issuance, certificate included
 * (borrowed for the call), in insertion order. Returns 0, |fn|'s nonzero
 * return, or DEVID_ERR_LEDGER. */
int ledger_scan(struct ledger *l, ledger_list_fn fn, void *arg);

/* ledger_reason_name returns the RFC 5280 name ("keyCompromise", ...) of
 * |reason|, or NULL when the ledger does not accept it. */
const char *ledger_reason_name(int reason);

/* ledger_reason_parse sets |*reason| from RFC 5280 name |name|. Returns 0 or
 * DEVID_ERR_INVALID_ARGUMENT. */
int ledger_reason_parse(int *reason, const char *name);

/*
 * ledger_serial_normalize writes |in| (hex, optional "0x" and colons, any
 * case) to |out| in lowercase without leading zero bytes. Returns 0, or
 * DEVID_ERR_INVALID_ARGUMENT when it is not 1 to 20 bytes of hex.
 */
int ledger_serial_normalize(char out[LEDGER_SERIAL_LEN], const char *in);

#endif
