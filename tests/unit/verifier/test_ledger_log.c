/* The issuance log in the ledger (verifier/ledger/log.c), on SQLite and on
 * PostgreSQL (ledger_postgres.sh): each issuance and revocation adds one
 * entry in its own transaction, a refused record adds none, the sequencer
 * indexes committed entries 0, 1, 2, ... once each, sequencers on several
 * handles at once never give one index twice nor leave a gap, and signed
 * heads are stored and read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "ledgerdb.h"
#include "verifier/core/tlog.h"
#include "verifier/ledger/ledger.h"

#define MAX_SEEN 512

struct seen {
    size_t n;
    int64_t index[MAX_SEEN];
    struct tlog_entry e[MAX_SEEN];
};

static int take(void *arg, int64_t index, const uint8_t *leaf, size_t len)
{
    struct seen *s = arg;
    char why[128];

    assert_true(s->n < MAX_SEEN);
    assert_int_equal(tlog_leaf_decode(&s->e[s->n], leaf, len, why, sizeof(why)), 0);
    s->index[s->n++] = index;
    return 0;
}

static void test_log_follows_records(void **state)
{
    struct fx *f = *state;
    struct ledger_issuance rec, found;
    enum ledger_recorded result;
    struct seen pending, indexed;
    uint64_t size = 1, added = 0;
    int64_t index = 0;
    int n = 0;
    size_t i;

    memset(&pending, 0, sizeof(pending));
    memset(&indexed, 0, sizeof(indexed));
    ledgerdb_issuance(&rec, "0a01", "SN-1", 1, 1000);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE), 0);
    ledgerdb_issuance(&rec, "0a02", "SN-1", 2, 1001);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE), 0);
    /* The nonce used before: nothing recorded, nothing logged. */
    ledgerdb_issuance(&rec, "0a03", "SN-2", 2, 1002);
    assert_int_equal(ledger_record(f->l, &result, &found, &rec, 0), 0);
    assert_int_not_equal(result, LEDGER_RECORDED);
    ledger_issuance_cleanup(&found);
    ledgerdb_issuance(&rec, "0a04", "SN-3", 4, 1003);
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), 0);
    assert_int_equal(
        ledger_revoke(f->l, &n, "0a04", NULL, NULL, LEDGER_REASON_KEY_COMPROMISE, 1500), 0);
    /* Already revoked: no second entry. */
    assert_int_equal(ledger_revoke(f->l, &n, "0a04", NULL, NULL, LEDGER_REASON_UNSPECIFIED, 1600),
                     0);

    assert_int_equal(ledger_log_size(f->l, &size), 0);
    assert_int_equal(size, 0);
    assert_int_equal(ledger_log_pending(f->l, take, &pending), 0);
    assert_int_equal(pending.n, 5);
    assert_int_equal(ledger_log_find(f->l, &index, "0a01", TLOG_ISSUED), 0);
    assert_int_equal(index, -1);

    assert_int_equal(ledger_log_sequence(f->l, &size, &added), 0);
    assert_int_equal(size, 5);
    assert_int_equal(added, 5);
    assert_int_equal(ledger_log_read(f->l, 0, 100, take, &indexed), 0);
    assert_int_equal(indexed.n, 5);
    for (i = 0; i < indexed.n; i++)
        assert_int_equal(indexed.index[i], (int64_t)i);
    /* In the order the transactions committed. */
    assert_int_equal(indexed.e[0].type, TLOG_ISSUED);
    assert_string_equal(indexed.e[0].cert_serial, "0a01");
    assert_int_equal(indexed.e[0].time, 1000);
    assert_int_equal(indexed.e[1].type, TLOG_REVOKED);
    assert_string_equal(indexed.e[1].cert_serial, "0a01");
    assert_int_equal(indexed.e[1].reason, LEDGER_REASON_SUPERSEDED);
    assert_int_equal(indexed.e[1].time, 1001);
    assert_int_equal(indexed.e[2].type, TLOG_ISSUED);
    assert_string_equal(indexed.e[2].cert_serial, "0a02");
    assert_string_equal(indexed.e[3].cert_serial, "0a04");
    assert_int_equal(indexed.e[4].type, TLOG_REVOKED);
    assert_int_equal(indexed.e[4].reason, LEDGER_REASON_KEY_COMPROMISE);
    assert_int_equal(indexed.e[4].time, 1500);
    assert_string_equal(indexed.e[4].manufacturer, "Acme Devices");
    assert_string_equal(indexed.e[4].device_serial, "SN-3");
    assert_int_equal(ledger_log_find(f->l, &index, "0a04", TLOG_REVOKED), 0);
    assert_int_equal(index, 4);
    assert_int_equal(ledger_log_find(f->l, &index, "0a03", TLOG_ISSUED), DEVID_ERR_NOT_FOUND);

    memset(&indexed, 0, sizeof(indexed));
    assert_int_equal(ledger_log_read(f->l, 3, 1, take, &indexed), 0);
    assert_int_equal(indexed.n, 1);
    assert_int_equal(indexed.index[0], 3);
    assert_int_equal(ledger_log_sequence(f->l, &size, &added), 0);
    assert_int_equal(size, 5);
    assert_int_equal(added, 0);
}

#define THREADS 4
#define EACH 25

struct worker {
    const char *uri;
    int id;
    int failures;
};

static void *recording_worker(void *arg)
{
    struct worker *w = arg;
    struct ledger_issuance rec;
    struct ledger *l = NULL;
    char serial[16], dev[16];
    uint64_t size, added;
    int i;

    if (ledger_open(&l, w->uri, w->id % 2 == 0 ? "replica-a" : "replica-b") != 0) {
        w->failures++;
        return NULL;
    }
    ledgerdb_start_line();
    for (i = 0; i < EACH; i++) {
        snprintf(serial, sizeof(serial), "%02x%02x", w->id + 1, i + 1);
        snprintf(dev, sizeof(dev), "SN-%d-%d", w->id, i);
        ledgerdb_issuance(&rec, serial, dev, (uint8_t)(w->id * EACH + i + 1), 1000 + i);
        if (ledgerdb_record(l, &rec, LEDGER_SUPERSEDE) != 0 ||
            ledger_log_sequence(l, &size, &added) != 0)
            w->failures++;
    }
    ledger_free(l);
    return NULL;
}

/* Handles recording and sequencing at once, as workers and replicas do:
 * every entry gets one index, and the indices are 0..N-1. */
static void test_concurrent_sequencers(void **state)
{
    struct fx *f = *state;
    struct worker w[THREADS];
    struct seen indexed;
    uint64_t size = 0, added = 0;
    size_t i;

    memset(&indexed, 0, sizeof(indexed));
    for (i = 0; i < THREADS; i++)
        w[i] = (struct worker){f->uri, (int)i, 0};
    ledgerdb_at_once(recording_worker, w, sizeof(w[0]), THREADS);
    for (i = 0; i < THREADS; i++)
        assert_int_equal(w[i].failures, 0);
    assert_int_equal(ledger_log_sequence(f->l, &size, &added), 0);
    assert_int_equal(size, THREADS * EACH);
    assert_int_equal(ledger_log_read(f->l, 0, 1000, take, &indexed), 0);
    assert_int_equal(indexed.n, THREADS * EACH);
    for (i = 0; i < indexed.n; i++)
        assert_int_equal(indexed.index[i], (int64_t)i);
    assert_int_equal(ledgerdb_int(f, "SELECT count(*) FROM log_entry WHERE log_index IS NULL"), 0);
    assert_int_equal(ledgerdb_int(f, "SELECT count(DISTINCT log_index) FROM log_entry"),
                     THREADS * EACH);
}

static int take_head(void *arg, const uint8_t *head, size_t len)
{
    size_t *n = arg;

    assert_true(len == 3);
    assert_int_equal(head[0], 'a' + (int)*n);
    (*n)++;
    return 0;
}

static void test_heads(void **state)
{
    struct fx *f = *state;
    uint8_t root[32] = {0}, out[16];
    size_t len = 0, n = 0;

    assert_int_equal(ledger_head_latest(f->l, out, &len, sizeof(out)), DEVID_ERR_NOT_FOUND);
    assert_int_equal(ledger_head_store(f->l, 5, 1000, root, (const uint8_t *)"bbb", 3), 0);
    assert_int_equal(ledger_head_store(f->l, 2, 2000, root, (const uint8_t *)"aaa", 3), 0);
    assert_int_equal(ledger_head_store(f->l, 5, 3000, root, (const uint8_t *)"ccc", 3), 0);
    assert_int_equal(ledger_head_latest(f->l, out, &len, sizeof(out)), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(out, "ccc", 3);
    assert_int_equal(ledger_head_latest(f->l, out, &len, 2), DEVID_ERR_TOO_LARGE);
    assert_int_equal(ledger_heads(f->l, take_head, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ledger_head_store(f->l, 5, 3000, root, NULL, 0), DEVID_ERR_INVALID_ARGUMENT);
}

#define T(t) cmocka_unit_test_setup_teardown(t, ledgerdb_setup, ledgerdb_teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_log_follows_records),
        T(test_concurrent_sequencers),
        T(test_heads),
    };

    return cmocka_run_group_tests_name(ledgerdb_init(argc, argv), tests, NULL, NULL);
}
