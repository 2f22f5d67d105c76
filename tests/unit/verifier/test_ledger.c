/* Unit tests for verifier/ledger with the SQLite backend, on a real database
 * file in a fresh temporary directory (no mock). */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "common/err.h"
#include "verifier/ledger/ledger.h"

struct fx {
    char dir[64];
    char path[128];
    char uri[160];
    struct ledger *l;
};

static void rm_db(const struct fx *f)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[200];
    size_t i;

    for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
}

static int setup(void **state)
{
    struct fx *f = test_calloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/devid-ledger-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/ledger.db", f->dir);
    snprintf(f->uri, sizeof(f->uri), "sqlite:%s", f->path);
    assert_int_equal(ledger_open(&f->l, f->uri, "replica-a"), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    ledger_free(f->l);
    rm_db(f);
    rmdir(f->dir);
    test_free(f);
    return 0;
}

/* issuance fills |rec| for certificate |serial| of device |dev| with nonce
 * byte |n|, issued at |t|, valid for a day. */
static void issuance(struct ledger_issuance *rec, const char *serial, const char *dev, uint8_t n,
                     int64_t t)
{
    static uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x2a};

    memset(rec, 0, sizeof(*rec));
    snprintf(rec->cert_serial, sizeof(rec->cert_serial), "%s", serial);
    rec->cert_der = der;
    rec->cert_der_len = sizeof(der);
    snprintf(rec->manufacturer, sizeof(rec->manufacturer), "Acme Devices");
    snprintf(rec->model, sizeof(rec->model), "Gateway X1");
    snprintf(rec->device_serial, sizeof(rec->device_serial), "%s", dev);
    memset(rec->idevid_sha256, 0x11, 32);
    memset(rec->csr_sha256, 0x22, 32);
    memset(rec->nonce, n, 32);
    memset(rec->request_sha256, 0x33, 32);
    rec->signer_kind = 2;
    rec->issued_at = t;
    rec->not_after = t + 86400;
}

static int64_t count(struct ledger *l)
{
    int64_t n = -1;

    assert_int_equal(ledger_count(l, &n), 0);
    return n;
}

/* raw_int runs |sql| on the database file directly and returns column 0. */
static int64_t raw_int(const struct fx *f, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v;

    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void raw_exec(const struct fx *f, const char *sql)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_open_twice_and_wal(void **state)
{
    struct fx *f = *state;
    struct ledger *again = NULL;

    assert_int_equal(ledger_open(&again, f->path, NULL), 0); /* a plain path works too */
    assert_int_equal(count(again), 0);
    ledger_free(again);
    assert_int_equal(raw_int(f, "SELECT max(version) FROM schema_version"), 1);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM schema_version"), 1);
    assert_int_equal(raw_int(f,
                             "SELECT count(*) FROM pragma_journal_mode WHERE "
                             "journal_mode = 'wal'"),
                     1);
}

static void test_future_schema_refused(void **state)
{
    struct fx *f = *state;
    struct ledger *again = NULL;
    char log_path[200], buf[1024] = "";
    FILE *fp;
    int fd, saved;

    raw_exec(f, "UPDATE schema_version SET version = 99");
    snprintf(log_path, sizeof(log_path), "%s/stderr.log", f->dir);
    fflush(stderr);
    saved = dup(2);
    fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, 2);
    close(fd);
    assert_int_equal(ledger_open(&again, f->uri, NULL), DEVID_ERR_CONFIG);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_null(again);
    fp = fopen(log_path, "r");
    assert_non_null(fp);
    assert_true(fread(buf, 1, sizeof(buf) - 1, fp) > 0);
    fclose(fp);
    unlink(log_path);
    assert_non_null(strstr(buf, "schema version 99"));
    assert_non_null(strstr(buf, "up to 1"));
    assert_int_equal(raw_int(f, "SELECT max(version) FROM schema_version"), 99);
}

static void test_bad_uris(void **state)
{
    struct fx *f = *state;
    struct ledger *l = NULL;
    char missing[200];

    assert_int_equal(ledger_open(&l, "postgresql://db/devid", NULL), DEVID_ERR_CONFIG);
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

static void test_record_and_lookup(void **state)
{
    struct fx *f = *state;
    struct ledger_issuance rec, got;
    uint8_t nonce[32];

    issuance(&rec, "0A1B2C", "SN-1", 0xa1, 1000);
    assert_int_equal(ledger_record(f->l, &rec, 0), 0);
    assert_int_equal(count(f->l), 1);

    memset(nonce, 0xa1, sizeof(nonce));
    assert_int_equal(ledger_lookup_nonce(f->l, &got, nonce), 0);
    assert_string_equal(got.cert_serial, "0a1b2c");
    assert_int_equal(got.cert_der_len, rec.cert_der_len);
    assert_memory_equal(got.cert_der, rec.cert_der, rec.cert_der_len);
    assert_string_equal(got.manufacturer, "Acme Devices");
    assert_string_equal(got.model, "Gateway X1");
    assert_string_equal(got.device_serial, "SN-1");
    assert_memory_equal(got.idevid_sha256, rec.idevid_sha256, 32);
    assert_memory_equal(got.csr_sha256, rec.csr_sha256, 32);
    assert_memory_equal(got.request_sha256, rec.request_sha256, 32);
    assert_memory_equal(got.nonce, nonce, 32);
    assert_int_equal(got.signer_kind, 2);
    assert_int_equal(got.issued_at, 1000);
    assert_int_equal(got.not_after, 1000 + 86400);
    assert_string_equal(got.replica_id, "replica-a");
    assert_string_equal(got.supersedes, "");
    assert_int_equal(got.revoked_at, 0);
    ledger_issuance_cleanup(&got);

    assert_int_equal(ledger_show(f->l, &got, "0x0A:1B:2C"), 0);
    assert_string_equal(got.device_serial, "SN-1");
    ledger_issuance_cleanup(&got);
    assert_int_equal(ledger_show(f->l, &got, "000a1b2c"), 0);
    ledger_issuance_cleanup(&got);
    assert_int_equal(ledger_show(f->l, &got, "0a1b2d"), DEVID_ERR_NOT_FOUND);
    assert_null(got.cert_der);
    assert_int_equal(ledger_show(f->l, &got, "xyz"), DEVID_ERR_INVALID_ARGUMENT);

    memset(nonce, 0xa2, sizeof(nonce));
    assert_int_equal(ledger_lookup_nonce(f->l, &got, nonce), DEVID_ERR_NOT_FOUND);
}

static void test_record_refuses_malformed(void **state)
{
    struct fx *f = *state;
    struct ledger_issuance rec;

    issuance(&rec, "not-hex", "SN-1", 1, 1000);
    assert_int_equal(ledger_record(f->l, &rec, 0), DEVID_ERR_INVALID_ARGUMENT);
    issuance(&rec, "01", "", 1, 1000);
    assert_int_equal(ledger_record(f->l, &rec, 0), DEVID_ERR_INVALID_ARGUMENT);
    issuance(&rec, "01", "SN-1", 1, 1000);
    rec.cert_der_len = 0;
    assert_int_equal(ledger_record(f->l, &rec, 0), DEVID_ERR_INVALID_ARGUMENT);
    issuance(&rec, "01", "SN-1", 1, 1000);
    rec.revoked_at = 5;
    assert_int_equal(ledger_record(f->l, &rec, 0), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(count(f->l), 0);
}

static void test_nonce_single_use(void **state)
{
    struct fx *f = *state;
    struct ledger *other = NULL;
    struct ledger_issuance rec, got;

    issuance(&rec, "01", "SN-1", 0x42, 1000);
    assert_int_equal(ledger_record(f->l, &rec, 0), 0);
    issuance(&rec, "02", "SN-2", 0x42, 1001);
    assert_int_equal(ledger_record(f->l, &rec, 1), DEVID_ERR_NONCE_REPLAYED);
    /* through another handle (another worker, another replica) as well */
    assert_int_equal(ledger_open(&other, f->uri, "replica-b"), 0);
    assert_int_equal(ledger_record(other, &rec, 0), DEVID_ERR_NONCE_REPLAYED);
    ledger_free(other);

    assert_int_equal(count(f->l), 1);
    assert_int_equal(ledger_show(f->l, &got, "02"), DEVID_ERR_NOT_FOUND);
    assert_int_equal(ledger_show(f->l, &got, "01"), 0);
    assert_string_equal(got.device_serial, "SN-1");
    assert_int_equal(got.revoked_at, 0);
    ledger_issuance_cleanup(&got);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM issuance"), 1);
}

static void test_supersede(void **state)
{
    struct fx *f = *state;
    struct ledger_issuance rec, got;
    int active = -1;

    issuance(&rec, "aa01", "SN-1", 1, 1000);
    assert_int_equal(ledger_record(f->l, &rec, 1), 0);
    issuance(&rec, "bb01", "SN-2", 2, 1100);
    assert_int_equal(ledger_record(f->l, &rec, 1), 0);
    issuance(&rec, "aa02", "SN-1", 3, 2000);
    assert_int_equal(ledger_record(f->l, &rec, 1), 0);

    assert_int_equal(ledger_show(f->l, &got, "aa01"), 0);
    assert_int_equal(got.revoked_at, 2000);
    assert_int_equal(got.revocation_reason, LEDGER_REASON_SUPERSEDED);
    ledger_issuance_cleanup(&got);
    assert_int_equal(ledger_show(f->l, &got, "aa02"), 0);
    assert_string_equal(got.supersedes, "aa01");
    assert_int_equal(got.revoked_at, 0);
    ledger_issuance_cleanup(&got);
    assert_int_equal(ledger_show(f->l, &got, "bb01"), 0);
    assert_int_equal(got.revoked_at, 0);
    assert_string_equal(got.supersedes, "");
    ledger_issuance_cleanup(&got);

    assert_int_equal(ledger_device_active(f->l, &active, "Acme Devices", "SN-1", 2500), 0);
    assert_int_equal(active, 1);
    assert_int_equal(ledger_device_active(f->l, &active, "Acme Devices", "SN-1", 2000 + 86400), 0);
    assert_int_equal(active, 0); /* expired */
    assert_int_equal(ledger_device_active(f->l, &active, "Other Corp", "SN-1", 2500), 0);
    assert_int_equal(active, 0);
    assert_int_equal(ledger_device_active(f->l, &active, "Acme Devices", "SN-9", 2500), 0);
    assert_int_equal(active, 0);
}

static void test_revoke_by_serial(void **state)
{
    struct fx *f = *state;
    struct ledger_issuance rec, got;
    int n = -1, active = -1;

    issuance(&rec, "c0ffee", "SN-1", 1, 1000);
    assert_int_equal(ledger_record(f->l, &rec, 0), 0);
    assert_int_equal(
        ledger_revoke(f->l, &n, "C0FFEE", NULL, NULL, LEDGER_REASON_KEY_COMPROMISE, 1500), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ledger_show(f->l, &got, "c0ffee"), 0);
    assert_int_equal(got.revoked_at, 1500);
    assert_int_equal(got.revocation_reason, LEDGER_REASON_KEY_COMPROMISE);
    ledger_issuance_cleanup(&got);

    /* a second revocation changes nothing */
    assert_int_equal(ledger_revoke(f->l, &n, "c0ffee", NULL, NULL, LEDGER_REASON_UNSPECIFIED, 1600),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(ledger_show(f->l, &got, "c0ffee"), 0);
    assert_int_equal(got.revoked_at, 1500);
    assert_int_equal(got.revocation_reason, LEDGER_REASON_KEY_COMPROMISE);
    ledger_issuance_cleanup(&got);

    assert_int_equal(ledger_device_active(f->l, &active, "Acme Devices", "SN-1", 1700), 0);
    assert_int_equal(active, 0);
    assert_int_equal(ledger_revoke(f->l, &n, "dead", NULL, NULL, LEDGER_REASON_UNSPECIFIED, 1),
                     DEVID_ERR_NOT_FOUND);
    assert_int_equal(ledger_revoke(f->l, &n, "c0ffee", NULL, NULL, 7, 1),
                     DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(ledger_revoke(f->l, &n, NULL, NULL, NULL, 0, 1), DEVID_ERR_INVALID_ARGUMENT);
}

static void test_revoke_by_device(void **state)
{
    struct fx *f = *state;
    struct ledger_issuance rec, got;
    int n = -1;

    issuance(&rec, "d1", "SN-1", 1, 1000);
    assert_int_equal(ledger_record(f->l, &rec, 0), 0);
    issuance(&rec, "d2", "SN-1", 2, 1001);
    assert_int_equal(ledger_record(f->l, &rec, 0), 0);
    issuance(&rec, "e1", "SN-2", 3, 1002);
    assert_int_equal(ledger_record(f->l, &rec, 0), 0);

    assert_int_equal(ledger_revoke(f->l, &n, NULL, "Other Corp", "SN-1",
                                   LEDGER_REASON_CESSATION_OF_OPERATION, 1500),
                     DEVID_ERR_NOT_FOUND);
    assert_int_equal(n, 0);
    assert_int_equal(ledger_revoke(f->l, &n, NULL, "Acme Devices", "SN-1",
                                   LEDGER_REASON_CESSATION_OF_OPERATION, 1500),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(
        ledger_revoke(f->l, &n, NULL, NULL, "SN-1", LEDGER_REASON_KEY_COMPROMISE, 1600), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ledger_show(f->l, &got, "d2"), 0);
    assert_int_equal(got.revocation_reason, LEDGER_REASON_CESSATION_OF_OPERATION);
    ledger_issuance_cleanup(&got);
    assert_int_equal(ledger_show(f->l, &got, "e1"), 0);
    assert_int_equal(got.revoked_at, 0);
    ledger_issuance_cleanup(&got);
}

/* A record whose insert fails after the supersede update ran leaves the
 * ledger exactly as it was: no new row, the old certificate not revoked. */
static void test_failed_transaction_leaves_nothing(void **state)
{
    struct fx *f = *state;
    struct ledger_issuance rec, got;
    uint8_t nonce[32];

    issuance(&rec, "f1", "SN-1", 1, 1000);
    assert_int_equal(ledger_record(f->l, &rec, 0), 0);
    issuance(&rec, "f1", "SN-1", 2, 2000); /* same certificate serial, new nonce */
    assert_int_equal(ledger_record(f->l, &rec, 1), DEVID_ERR_LEDGER);
    assert_int_equal(count(f->l), 1);
    assert_int_equal(ledger_show(f->l, &got, "f1"), 0);
    assert_int_equal(got.revoked_at, 0);
    assert_int_equal(got.issued_at, 1000);
    ledger_issuance_cleanup(&got);
    memset(nonce, 2, sizeof(nonce));
    assert_int_equal(ledger_lookup_nonce(f->l, &got, nonce), DEVID_ERR_NOT_FOUND);
    /* the handle is usable afterwards: no transaction left open */
    issuance(&rec, "f2", "SN-1", 2, 2000);
    assert_int_equal(ledger_record(f->l, &rec, 1), 0);
    assert_int_equal(count(f->l), 2);
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

    issuance(&rec, "01", "SN-1", 1, 1000);
    assert_int_equal(ledger_record(f->l, &rec, 0), 0);
    ledger_free(f->l); /* no SQLite connection may cross fork() */
    f->l = NULL;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct ledger *child = NULL;
        sqlite3 *db = NULL;

        issuance(&rec, "02", "SN-2", 2, 1001);
        if (ledger_open(&child, f->uri, "child") != 0 || ledger_record(child, &rec, 0) != 0)
            _exit(1);
        if (sqlite3_open(f->path, &db) != SQLITE_OK ||
            sqlite3_exec(db,
                         "BEGIN IMMEDIATE; UPDATE issuance SET revoked_at = 5, "
                         "revocation_reason = 1; INSERT INTO issuance SELECT NULL, '03', "
                         "cert_der, manufacturer, model, device_serial, idevid_sha256, "
                         "csr_sha256, '0303030303030303030303030303030303030303030303030303030303"
                         "030303', request_sha256, signer_kind, issued_at, not_after, "
                         "replica_id, NULL, NULL, NULL FROM issuance WHERE cert_serial = '01'",
                         NULL, NULL, NULL) != SQLITE_OK)
            _exit(2);
        kill(getpid(), SIGKILL);
        _exit(3);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    assert_int_equal(ledger_open(&f->l, f->uri, "replica-a"), 0);
    assert_int_equal(count(f->l), 2);
    assert_int_equal(ledger_show(f->l, &got, "03"), DEVID_ERR_NOT_FOUND);
    assert_int_equal(ledger_show(f->l, &got, "02"), 0);
    assert_string_equal(got.replica_id, "child");
    assert_int_equal(got.revoked_at, 0);
    ledger_issuance_cleanup(&got);
    memset(nonce, 3, sizeof(nonce));
    assert_int_equal(ledger_lookup_nonce(f->l, &got, nonce), DEVID_ERR_NOT_FOUND);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM issuance WHERE revoked_at IS NOT NULL"), 0);
    assert_int_equal(raw_int(f,
                             "SELECT count(*) FROM pragma_integrity_check WHERE "
                             "integrity_check = 'ok'"),
                     1);
}

struct collected {
    char serials[8][LEDGER_SERIAL_LEN];
    size_t n;
    int saw_der;
};

static int collect(void *arg, const struct ledger_issuance *rec)
{
    struct collected *c = arg;

    if (c->n >= 8)
        return DEVID_ERR_TOO_LARGE;
    snprintf(c->serials[c->n++], LEDGER_SERIAL_LEN, "%s", rec->cert_serial);
    c->saw_der |= rec->cert_der != NULL;
    return 0;
}

static int stop_at_two(void *arg, const struct ledger_issuance *rec)
{
    struct collected *c = arg;

    collect(arg, rec);
    return c->n == 2 ? 42 : 0;
}

static void test_list_bounded(void **state)
{
    struct fx *f = *state;
    struct ledger_filter by_dev = {NULL, "SN-1"};
    struct ledger_issuance rec;
    struct collected c;
    char serial[8];
    int i;

    for (i = 0; i < 6; i++) {
        snprintf(serial, sizeof(serial), "%02x", i + 1);
        issuance(&rec, serial, i % 2 == 0 ? "SN-1" : "SN-2", (uint8_t)(i + 1), 1000 + i);
        assert_int_equal(ledger_record(f->l, &rec, 0), 0);
    }
    memset(&c, 0, sizeof(c));
    assert_int_equal(ledger_list(f->l, NULL, 3, collect, &c), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.serials[0], "06");
    assert_string_equal(c.serials[1], "05");
    assert_string_equal(c.serials[2], "04");
    assert_false(c.saw_der);

    memset(&c, 0, sizeof(c));
    assert_int_equal(ledger_list(f->l, &by_dev, 100, collect, &c), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.serials[0], "05");
    assert_string_equal(c.serials[2], "01");

    memset(&c, 0, sizeof(c));
    assert_int_equal(ledger_list(f->l, NULL, 0, collect, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(ledger_list(f->l, NULL, 100, stop_at_two, &c), 42);
    assert_int_equal(c.n, 2);
}

static void test_list_revoked(void **state)
{
    struct fx *f = *state;
    struct ledger_issuance rec;
    struct collected c;
    int n;

    issuance(&rec, "0b", "SN-1", 1, 1000);
    assert_int_equal(ledger_record(f->l, &rec, 0), 0);
    issuance(&rec, "0a", "SN-2", 2, 1000);
    assert_int_equal(ledger_record(f->l, &rec, 0), 0);
    issuance(&rec, "0c", "SN-3", 3, 1000);
    rec.not_after = 1200; /* expires early: drops off the CRL */
    assert_int_equal(ledger_record(f->l, &rec, 0), 0);
    issuance(&rec, "0d", "SN-4", 4, 1000);
    assert_int_equal(ledger_record(f->l, &rec, 0), 0);
    assert_int_equal(ledger_revoke(f->l, &n, "0b", NULL, NULL, LEDGER_REASON_KEY_COMPROMISE, 1100),
                     0);
    assert_int_equal(ledger_revoke(f->l, &n, "0a", NULL, NULL, LEDGER_REASON_UNSPECIFIED, 1100), 0);
    assert_int_equal(ledger_revoke(f->l, &n, "0c", NULL, NULL, LEDGER_REASON_UNSPECIFIED, 1100), 0);

    memset(&c, 0, sizeof(c));
    assert_int_equal(ledger_list_revoked(f->l, 1100, 10, collect, &c), 0);
    assert_int_equal(c.n, 3);
    memset(&c, 0, sizeof(c));
    assert_int_equal(ledger_list_revoked(f->l, 1300, 10, collect, &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.serials[0], "0a");
    assert_string_equal(c.serials[1], "0b");
    memset(&c, 0, sizeof(c));
    assert_int_equal(ledger_list_revoked(f->l, 1300, 1, collect, &c), DEVID_ERR_TOO_LARGE);
    assert_int_equal(c.n, 0);
}

static void test_crl_number(void **state)
{
    struct fx *f = *state;
    uint64_t n = 0;

    assert_int_equal(ledger_next_crl_number(f->l, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ledger_next_crl_number(f->l, &n), 0);
    assert_int_equal(n, 2);
    ledger_free(f->l);
    assert_int_equal(ledger_open(&f->l, f->uri, NULL), 0);
    assert_int_equal(ledger_next_crl_number(f->l, &n), 0);
    assert_int_equal(n, 3);
}

struct worker {
    const char *uri;
    int id;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct ledger *l = NULL;
    struct ledger_issuance rec;
    char serial[16], dev[16];
    int i;

    if (ledger_open(&l, w->uri, "worker") != 0) {
        w->failures = 100;
        return NULL;
    }
    for (i = 0; i < 25; i++) {
        snprintf(serial, sizeof(serial), "%02x%02x", w->id + 1, i + 1);
        snprintf(dev, sizeof(dev), "SN-%d", i);
        issuance(&rec, serial, dev, 0, 1000 + i);
        rec.nonce[0] = (uint8_t)w->id;
        rec.nonce[1] = (uint8_t)i;
        if (ledger_record(l, &rec, 0) != 0)
            w->failures++;
    }
    ledger_free(l);
    return NULL;
}

/* Worker threads, each with its own handle, record concurrently. */
static void test_concurrent_handles(void **state)
{
    struct fx *f = *state;
    pthread_t th[4];
    struct worker w[4];
    int i;

    for (i = 0; i < 4; i++) {
        w[i].uri = f->uri;
        w[i].id = i;
        w[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    assert_int_equal(count(f->l), 100);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_twice_and_wal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_future_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_uris, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_and_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_refuses_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonce_single_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_supersede, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_by_serial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_by_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_transaction_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_revoked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_handles, setup, teardown),
        cmocka_unit_test(test_serial_normalize),
        cmocka_unit_test(test_reason_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
