/* Unit tests for verifier/ledger: opening, the schema and its migrations,
 * URIs, durability when a writer dies, and handles used at once. They run
 * on a real SQLite file, and, given a PostgreSQL URI as argv[1]
 * (ledger_postgres.sh), on a real PostgreSQL server (ledgerdb.h). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "ledgerdb.h"
#include "verifier/ledger/ledger.h"

static void test_open_twice(void **state)
{
    struct fx *f = *state;
    struct ledger *again = NULL;

    if (f->pg)
        assert_int_equal(ledger_open(&again, f->uri, NULL), 0);
    else
        assert_int_equal(ledger_open(&again, f->path, NULL), 0); /* a plain path works too */
    assert_int_equal(ledgerdb_count(again), 0);
    ledger_free(again);
    assert_int_equal(ledgerdb_int(f, "SELECT max(version) FROM schema_version"), 5);
    assert_int_equal(ledgerdb_int(f, "SELECT count(*) FROM schema_version"), 1);
    if (!f->pg)
        assert_int_equal(ledgerdb_int(f,
                                      "SELECT count(*) FROM pragma_journal_mode WHERE "
                                      "journal_mode = 'wal'"),
                         1);
}

static void test_future_schema_refused(void **state)
{
    struct fx *f = *state;
    struct ledger *again = NULL;
    const char *log;

    ledgerdb_exec(f, "UPDATE schema_version SET version = 99");
    ledgerdb_capture_stderr(f);
    assert_int_equal(ledger_open(&again, f->uri, NULL), DEVID_ERR_CONFIG);
    log = ledgerdb_release_stderr(f);
    assert_null(again);
    assert_non_null(strstr(log, "schema version 99"));
    assert_non_null(strstr(log, "up to 5"));
    assert_int_equal(ledgerdb_int(f, "SELECT max(version) FROM schema_version"), 99);
}

/* A version 1 ledger (no device table, no revision, no assurance) is
 * migrated to 4, its devices counted from its issuances. */
static void test_migration_from_v1(void **state)
{
    struct fx *f = *state;
    struct ledger_issuance rec;

    ledgerdb_issuance(&rec, "01", "SN-1", 1, 1000);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE), 0);
    ledgerdb_issuance(&rec, "02", "SN-1", 2, 1001);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE), 0);
    ledgerdb_issuance(&rec, "03", "SN-2", 3, 1002);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE), 0);
    ledger_free(f->l);
    f->l = NULL;
    ledgerdb_exec(f,
                  "DROP TABLE log_entry; DROP TABLE log_state; DROP TABLE tree_head; "
                  "DROP TABLE device; ALTER TABLE crl_state DROP COLUMN revision; "
                  "ALTER TABLE issuance DROP COLUMN assurance; "
                  "ALTER TABLE issuance DROP COLUMN pcr_values; "
                  "UPDATE schema_version SET version = 1");
    assert_int_equal(ledger_open(&f->l, f->uri, "replica-a"), 0);
    assert_int_equal(ledgerdb_int(f, "SELECT max(version) FROM schema_version"), 5);
    assert_int_equal(ledgerdb_int(f, "SELECT count(*) FROM device"), 2);
    assert_int_equal(ledgerdb_int(f, "SELECT issuances FROM device WHERE device_serial = 'SN-1'"),
                     2);
    assert_int_equal(ledgerdb_int(f, "SELECT revision FROM crl_state"), 0);
    assert_int_equal(ledgerdb_count(f->l), 3);
}

/* A version 2 ledger gets the assurance column: rows an IAK signed read as
 * iak, every other row as none (what they were judged as), and a value
 * outside the three levels is refused by the schema itself. */
static void test_migration_from_v2(void **state)
{
    struct fx *f = *state;
    struct ledger_issuance rec, got;

    ledgerdb_issuance(&rec, "01", "SN-1", 1, 1000);
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), 0);
    ledgerdb_issuance(&rec, "02", "SN-2", 2, 1001);
    rec.signer_kind = 1;
    snprintf(rec.assurance, sizeof(rec.assurance), "none");
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), 0);
    ledger_free(f->l);
    f->l = NULL;
    ledgerdb_exec(f,
                  "DROP TABLE log_entry; DROP TABLE log_state; DROP TABLE tree_head; "
                  "ALTER TABLE issuance DROP COLUMN assurance; "
                  "ALTER TABLE issuance DROP COLUMN pcr_values; "
                  "UPDATE schema_version SET version = 2");
    assert_int_equal(ledger_open(&f->l, f->uri, "replica-a"), 0);
    assert_int_equal(ledgerdb_int(f, "SELECT max(version) FROM schema_version"), 5);
    assert_int_equal(ledger_show(f->l, &got, "01"), 0);
    assert_string_equal(got.assurance, "iak");
    ledger_issuance_cleanup(&got);
    assert_int_equal(ledger_show(f->l, &got, "02"), 0);
    assert_string_equal(got.assurance, "none");
    ledger_issuance_cleanup(&got);
    ledgerdb_capture_stderr(f);
    assert_int_not_equal(
        ledgerdb_try_exec(f, "UPDATE issuance SET assurance = 'high' WHERE cert_serial = '01'"), 0);
    ledgerdb_release_stderr(f);
    assert_int_equal(ledger_show(f->l, &got, "01"), 0);
    assert_string_equal(got.assurance, "iak");
    ledger_issuance_cleanup(&got);
}

/* A version 3 ledger gets the log: the first sequencer run adds the
 * issuances and revocations recorded before it, issuances first, and
 * indexes them; later records are logged as they happen. */
static void test_migration_from_v3(void **state)
{
    struct fx *f = *state;
    struct ledger_issuance rec;
    uint64_t size = 0, added = 0;
    int64_t index = 0;

    ledgerdb_issuance(&rec, "01", "SN-1", 1, 1000);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE), 0);
    ledgerdb_issuance(&rec, "02", "SN-1", 2, 1001);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE), 0);
    ledger_free(f->l);
    f->l = NULL;
    ledgerdb_exec(f,
                  "DROP TABLE log_entry; DROP TABLE log_state; DROP TABLE tree_head; "
                  "ALTER TABLE issuance DROP COLUMN pcr_values; "
                  "UPDATE schema_version SET version = 3");
    assert_int_equal(ledger_open(&f->l, f->uri, "replica-a"), 0);
    assert_int_equal(ledgerdb_int(f, "SELECT max(version) FROM schema_version"), 5);
    assert_int_equal(ledgerdb_int(f, "SELECT count(*) FROM log_entry"), 0);
    ledgerdb_issuance(&rec, "03", "SN-2", 3, 1002);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE), 0);
    assert_int_equal(ledger_log_sequence(f->l, &size, &added), 0);
    /* 01 and 02 issued, 01 superseded (before), 03 issued (since). */
    assert_int_equal(size, 4);
    assert_int_equal(added, 4);
    assert_int_equal(ledger_log_find(f->l, &index, "01", 1), 0);
    assert_int_equal(ledger_log_find(f->l, &index, "02", 1), 0);
    assert_int_equal(ledger_log_find(f->l, &index, "01", 2), 0);
    assert_int_equal(ledger_log_find(f->l, &index, "02", 2), DEVID_ERR_NOT_FOUND);
    assert_int_equal(ledger_log_sequence(f->l, &size, &added), 0);
    assert_int_equal(size, 4);
    assert_int_equal(added, 0);
    assert_int_equal(ledgerdb_int(f, "SELECT backfilled FROM log_state"), 1);
}

/* A version 4 ledger gets the quoted PCR values: rows recorded before read
 * as "" (no quote was asked for); rows recorded since keep theirs. */
static void test_migration_from_v4(void **state)
{
    static const char pcrs[] =
        "7=sha256:dc2fca0a8d215a67ebebf7180e8d345e8b031780dbac8974faab8e6cebf92b94";
    struct fx *f = *state;
    struct ledger_issuance rec, got;

    ledgerdb_issuance(&rec, "01", "SN-1", 1, 1000);
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), 0);
    ledger_free(f->l);
    f->l = NULL;
    ledgerdb_exec(f,
                  "ALTER TABLE issuance DROP COLUMN pcr_values; "
                  "UPDATE schema_version SET version = 4");
    assert_int_equal(ledger_open(&f->l, f->uri, "replica-a"), 0);
    assert_int_equal(ledgerdb_int(f, "SELECT max(version) FROM schema_version"), 5);
    assert_int_equal(ledger_show(f->l, &got, "01"), 0);
    assert_string_equal(got.pcr_values, "");
    ledger_issuance_cleanup(&got);
    ledgerdb_issuance(&rec, "02", "SN-2", 2, 1001);
    snprintf(rec.pcr_values, sizeof(rec.pcr_values), "%s", pcrs);
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), 0);
    assert_int_equal(ledger_show(f->l, &got, "02"), 0);
    assert_string_equal(got.pcr_values, pcrs);
    ledger_issuance_cleanup(&got);
}

static void test_bad_uris(void **state)
{
    struct fx *f = *state;
    struct ledger *l = NULL;
    char missing[200];

    /* Nothing listens on port 1: refused at once, named without password. */
    ledgerdb_capture_stderr(f);
    assert_int_equal(ledger_open(&l, "postgresql://devid:s3cret@127.0.0.1:1/devid", NULL),
                     DEVID_ERR_IO);
    assert_int_equal(ledger_open(&l, "pg:host=127.0.0.1 port=1 password=s3cret", NULL),
                     DEVID_ERR_IO);
    assert_int_equal(ledger_open(&l, "host=127.0.0.1 port=1 dbname=x", NULL), DEVID_ERR_IO);
    assert_null(strstr(ledgerdb_release_stderr(f), "s3cret"));
    assert_int_equal(ledger_open(&l, "mysql:x", NULL), DEVID_ERR_CONFIG);
    assert_int_equal(ledger_open(&l, "sqlite:", NULL), DEVID_ERR_CONFIG);
    snprintf(missing, sizeof(missing), "sqlite:%s/nothere.db", f->dir);
    assert_int_equal(ledger_open_existing(&l, missing), DEVID_ERR_IO);
    snprintf(missing, sizeof(missing), "sqlite:%s/no/such/dir.db", f->dir);
    assert_int_equal(ledger_open(&l, missing, NULL), DEVID_ERR_IO);
    assert_null(l);
    assert_int_equal(ledger_open_existing(&l, f->uri), 0);
    ledger_free(l);
}

/* An operator tool never turns an empty database into a ledger. */
static void test_open_existing_empty(void **state)
{
    struct fx *f = *state;
    struct ledger *l = NULL;

    ledger_free(f->l);
    f->l = NULL;
    ledgerdb_reset(f);
    if (!f->pg)
        ledgerdb_exec(f, "CREATE TABLE unrelated (x INTEGER)");
    ledgerdb_capture_stderr(f);
    assert_int_equal(ledger_open_existing(&l, f->uri), DEVID_ERR_IO);
    assert_non_null(strstr(ledgerdb_release_stderr(f), "holds no devid ledger"));
    assert_null(l);
    assert_int_equal(ledger_open(&f->l, f->uri, "replica-a"), 0);
}

/* A process killed inside an open write transaction leaves no trace; a
 * process killed right after ledger_record returned keeps its row. */
static void test_killed_writer(void **state)
{
    struct fx *f = *state;
    struct ledger_issuance rec, got;
    uint8_t nonce[32];
    pid_t pid;
    int status;

    ledgerdb_issuance(&rec, "01", "SN-1", 1, 1000);
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), 0);
    ledger_free(f->l); /* no database connection may cross fork() */
    f->l = NULL;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct ledger *child = NULL;

        ledgerdb_issuance(&rec, "02", "SN-2", 2, 1001);
        if (ledger_open(&child, f->uri, "child") != 0 || ledgerdb_record(child, &rec, 0) != 0)
            _exit(1);
        ledgerdb_exec_and_die(
            f,
            "BEGIN; UPDATE issuance SET revoked_at = 5, revocation_reason = 1; "
            "INSERT INTO issuance (cert_serial, cert_der, manufacturer, model, device_serial, "
            "idevid_sha256, csr_sha256, nonce, request_sha256, signer_kind, issued_at, "
            "not_after, replica_id) SELECT '03', cert_der, manufacturer, model, device_serial, "
            "idevid_sha256, csr_sha256, "
            "'0303030303030303030303030303030303030303030303030303030303030303', "
            "request_sha256, signer_kind, issued_at, not_after, replica_id FROM issuance WHERE "
            "cert_serial = '01'");
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    assert_int_equal(ledger_open(&f->l, f->uri, "replica-a"), 0);
    assert_int_equal(ledgerdb_count(f->l), 2);
    assert_int_equal(ledger_show(f->l, &got, "03"), DEVID_ERR_NOT_FOUND);
    assert_int_equal(ledger_show(f->l, &got, "02"), 0);
    assert_string_equal(got.replica_id, "child");
    assert_int_equal(got.revoked_at, 0);
    ledger_issuance_cleanup(&got);
    memset(nonce, 3, sizeof(nonce));
    assert_int_equal(ledger_lookup_nonce(f->l, &got, nonce), DEVID_ERR_NOT_FOUND);
    /* The killed transaction's lock is gone: the ledger takes writes. */
    ledgerdb_issuance(&rec, "04", "SN-4", 4, 1002);
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), 0);
    assert_int_equal(ledgerdb_int(f, "SELECT count(*) FROM issuance WHERE revoked_at IS NOT NULL"),
                     0);
    if (!f->pg)
        assert_int_equal(ledgerdb_int(f,
                                      "SELECT count(*) FROM pragma_integrity_check WHERE "
                                      "integrity_check = 'ok'"),
                         1);
}

#define THREADS 4

struct worker {
    const char *uri;
    int id;
    int failures;
};

static void *recording_worker(void *arg)
{
    struct worker *w = arg;
    struct ledger *l = NULL;
    struct ledger_issuance rec;
    char serial[16], dev[16];
    int i;

    ledgerdb_start_line();
    if (ledger_open(&l, w->uri, "worker") != 0) {
        w->failures = 100;
        return NULL;
    }
    for (i = 0; i < 25; i++) {
        snprintf(serial, sizeof(serial), "%02x%02x", w->id + 1, i + 1);
        snprintf(dev, sizeof(dev), "SN-%d", i);
        ledgerdb_issuance(&rec, serial, dev, 0, 1000 + i);
        rec.nonce[0] = (uint8_t)w->id;
        rec.nonce[1] = (uint8_t)i;
        if (ledgerdb_record(l, &rec, 0) != 0)
            w->failures++;
    }
    ledger_free(l);
    return NULL;
}

/* Worker threads, each with its own handle, record concurrently. */
static void test_concurrent_handles(void **state)
{
    struct fx *f = *state;
    struct worker w[THREADS];
    int i;

    for (i = 0; i < THREADS; i++)
        w[i] = (struct worker){f->uri, i, 0};
    ledgerdb_at_once(recording_worker, w, sizeof(w[0]), THREADS);
    for (i = 0; i < THREADS; i++)
        assert_int_equal(w[i].failures, 0);
    assert_int_equal(ledgerdb_count(f->l), 100);
}

static void *opening_worker(void *arg)
{
    struct worker *w = arg;
    struct ledger *l = NULL;

    ledgerdb_start_line();
    if (ledger_open(&l, w->uri, "replica") != 0)
        w->failures++;
    ledger_free(l);
    return NULL;
}

/* Replicas starting at once on an empty database migrate it once: the
 * others wait for it and find the schema in place. */
static void test_concurrent_migration(void **state)
{
    struct fx *f = *state;
    struct worker w[THREADS];
    const char *log;
    int i, migrated = 0;

    ledger_free(f->l);
    f->l = NULL;
    ledgerdb_reset(f);
    for (i = 0; i < THREADS; i++)
        w[i] = (struct worker){f->uri, i, 0};
    ledgerdb_capture_stderr(f);
    ledgerdb_at_once(opening_worker, w, sizeof(w[0]), THREADS);
    log = ledgerdb_release_stderr(f);
    for (i = 0; i < THREADS; i++)
        assert_int_equal(w[i].failures, 0);
    while ((log = strstr(log, "schema migrated to version 5")) != NULL) {
        migrated++;
        log++;
    }
    assert_int_equal(migrated, 1);
    assert_int_equal(ledgerdb_int(f, "SELECT count(*) FROM schema_version"), 1);
    assert_int_equal(ledgerdb_int(f, "SELECT max(version) FROM schema_version"), 5);
    assert_int_equal(ledger_open(&f->l, f->uri, "replica-a"), 0);
}

static void test_serial_normalize(void **state)
{
    char out[LEDGER_SERIAL_LEN];

    (void)state;
    assert_int_equal(ledger_serial_normalize(out, "0A1B"), 0);
    assert_string_equal(out, "0a1b");
    assert_int_equal(ledger_serial_normalize(out, "A1B"), 0);
    assert_string_equal(out, "0a1b");
    assert_int_equal(ledger_serial_normalize(out, "0x00FF"), 0);
    assert_string_equal(out, "ff");
    assert_int_equal(ledger_serial_normalize(out, "00"), 0);
    assert_string_equal(out, "00");
    assert_int_equal(ledger_serial_normalize(out, "7f:01:02"), 0);
    assert_string_equal(out, "7f0102");
    assert_int_equal(ledger_serial_normalize(out, "0102030405060708090a0b0c0d0e0f1011121314"), 0);
    assert_int_equal(ledger_serial_normalize(out, "ff0102030405060708090a0b0c0d0e0f1011121314"),
                     DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(ledger_serial_normalize(out, ""), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(ledger_serial_normalize(out, "-1"), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(ledger_serial_normalize(out, "12 34"), DEVID_ERR_INVALID_ARGUMENT);
}

static void test_reason_names(void **state)
{
    int r = -1;

    (void)state;
    assert_int_equal(ledger_reason_parse(&r, "keyCompromise"), 0);
    assert_int_equal(r, 1);
    assert_int_equal(ledger_reason_parse(&r, "superseded"), 0);
    assert_int_equal(r, 4);
    assert_int_equal(ledger_reason_parse(&r, "certificateHold"), DEVID_ERR_INVALID_ARGUMENT);
    assert_string_equal(ledger_reason_name(5), "cessationOfOperation");
    assert_null(ledger_reason_name(7));
}

#define T(t) cmocka_unit_test_setup_teardown(t, ledgerdb_setup, ledgerdb_teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_open_twice),
        T(test_future_schema_refused),
        T(test_migration_from_v1),
        T(test_migration_from_v2),
        T(test_migration_from_v3),
        T(test_migration_from_v4),
        T(test_bad_uris),
        T(test_open_existing_empty),
        T(test_killed_writer),
        T(test_concurrent_handles),
        T(test_concurrent_migration),
        cmocka_unit_test(test_serial_normalize),
        cmocka_unit_test(test_reason_names),
    };

    return cmocka_run_group_tests_name(ledgerdb_init(argc, argv), tests, NULL, NULL);
}
