#include "ledgerdb.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "common/err.h"

static const char *pg_uri;
static int saved_stderr = -1;
static pthread_barrier_t start_line;

const char *ledgerdb_init(int argc, char **argv)
{
    pg_uri = argc > 1 ? argv[1] : NULL;
    return pg_uri != NULL ? "postgresql" : "sqlite";
}

int ledgerdb_pg(void)
{
    return pg_uri != NULL;
}

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

static PGconn *pg_connect(const struct fx *f)
{
    PGconn *c = PQconnectdb(f->uri);

    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to %s: %s", f->uri, PQerrorMessage(c));
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

void ledgerdb_reset(struct fx *f)
{
    if (!f->pg) {
        rm_db(f);
        return;
    }
    ledgerdb_exec(f, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
}

int ledgerdb_setup(void **state)
{
    struct fx *f = test_calloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/devid-ledger-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/ledger.db", f->dir);
    f->pg = pg_uri != NULL;
    if (f->pg)
        snprintf(f->uri, sizeof(f->uri), "%s", pg_uri);
    else
        snprintf(f->uri, sizeof(f->uri), "sqlite:%s", f->path);
    ledgerdb_reset(f);
    assert_int_equal(ledger_open(&f->l, f->uri, "replica-a"), 0);
    *state = f;
    return 0;
}

int ledgerdb_teardown(void **state)
{
    struct fx *f = *state;

    ledger_free(f->l);
    if (!f->pg)
        rm_db(f);
    rmdir(f->dir);
    test_free(f);
    return 0;
}

int64_t ledgerdb_int(const struct fx *f, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    PGconn *c;
    PGresult *res;
    const char *text;
    char *end = NULL;
    int64_t v;

    if (f->pg) {
        c = pg_connect(f);
        res = PQexec(c, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
            fail_msg("%s: %s", sql, PQresultErrorMessage(res));
        text = PQgetvalue(res, 0, 0);
        errno = 0;
        v = strtoll(text, &end, 10);
        if (errno != 0 || *end != '\0')
            fail_msg("%s: not a number: %s", sql, text);
        PQclear(res);
        PQfinish(c);
        return v;
    }
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

void ledgerdb_exec(const struct fx *f, const char *sql)
{
    sqlite3 *db = NULL;
    PGconn *c;
    PGresult *res;

    if (f->pg) {
        c = pg_connect(f);
        res = PQexec(c, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
            fail_msg("%s: %s", sql, PQresultErrorMessage(res));
        PQclear(res);
        PQfinish(c);
        return;
    }
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

int ledgerdb_try_exec(const struct fx *f, const char *sql)
{
    sqlite3 *db = NULL;
    PGconn *c;
    PGresult *res;
    int r;

    if (f->pg) {
        c = pg_connect(f);
        res = PQexec(c, sql);
        r = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK ? 0
                                                                                              : -1;
        PQclear(res);
        PQfinish(c);
        return r;
    }
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    r = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
    sqlite3_close(db);
    return r;
}

void ledgerdb_exec_and_die(const struct fx *f, const char *sql)
{
    sqlite3 *db = NULL;
    PGconn *c;
    PGresult *res;

    if (f->pg) {
        c = PQconnectdb(f->uri);
        res = PQexec(c, sql);
        if (PQstatus(c) != CONNECTION_OK || PQresultStatus(res) != PGRES_COMMAND_OK)
            _exit(2);
    } else if (sqlite3_open(f->path, &db) != SQLITE_OK ||
               sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        _exit(2);
    }
    kill(getpid(), SIGKILL);
    _exit(3);
}

void ledgerdb_issuance(struct ledger_issuance *rec, const char *serial, const char *dev, uint8_t n,
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
    snprintf(rec->assurance, sizeof(rec->assurance), "iak");
    rec->issued_at = t;
    rec->not_after = t + 86400;
}

int ledgerdb_record(struct ledger *l, const struct ledger_issuance *rec, unsigned flags)
{
    struct ledger_issuance found;
    enum ledger_recorded result = LEDGER_RECORDED;
    int r = ledger_record(l, &result, &found, rec, flags);

    ledger_issuance_cleanup(&found);
    if (r != 0)
        return r;
    switch (result) {
        case LEDGER_RECORDED:
            return 0;
        case LEDGER_SAME_REQUEST:
        case LEDGER_NONCE_TAKEN:
            return DEVID_ERR_NONCE_REPLAYED;
        case LEDGER_DEVICE_ACTIVE:
            return DEVID_ERR_POLICY_DENIED;
    }
    return DEVID_ERR_INTERNAL;
}

int64_t ledgerdb_count(struct ledger *l)
{
    int64_t n = -1;

    assert_int_equal(ledger_count(l, &n), 0);
    return n;
}

static void stderr_path(char *out, size_t len, const struct fx *f)
{
    snprintf(out, len, "%s/stderr.log", f->dir);
}

void ledgerdb_capture_stderr(const struct fx *f)
{
    char path[200];
    int fd;

    stderr_path(path, sizeof(path), f);
    fflush(stderr);
    saved_stderr = dup(2);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0 && saved_stderr >= 0);
    dup2(fd, 2);
    close(fd);
}

const char *ledgerdb_release_stderr(const struct fx *f)
{
    static char buf[4096];
    char path[200];
    size_t n;
    FILE *fp;

    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    stderr_path(path, sizeof(path), f);
    fp = fopen(path, "r");
    assert_non_null(fp);
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    unlink(path);
    return buf;
}

void ledgerdb_at_once(void *(*fn)(void *), void *items, size_t size, int n)
{
    pthread_t th[16];
    int i;

    assert_true(n > 0 && n <= 16);
    assert_int_equal(pthread_barrier_init(&start_line, NULL, (unsigned)n), 0);
    for (i = 0; i < n; i++)
        assert_int_equal(pthread_create(&th[i], NULL, fn, (char *)items + (size_t)i * size), 0);
    for (i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start_line);
}

void ledgerdb_start_line(void)
{
    pthread_barrier_wait(&start_line);
}
