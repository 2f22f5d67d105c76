/* Unit tests for verifier/ledger: recording issuances and the decisions
 * made inside that transaction (nonce single-use, the same request again,
 * reenroll = deny, supersede), revocation, listings and CRL snapshots. On a
 * real SQLite file, or a real PostgreSQL server given as argv[1]
 * (ledgerdb.h). */
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
#include "verifier/ledger/ledger.h"

static void test_record_and_lookup(void **state)
{
    struct fx *f = *state;
    struct ledger_issuance rec, got;
    uint8_t nonce[32];

    ledgerdb_issuance(&rec, "0A1B2C", "SN-1", 0xa1, 1000);
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), 0);
    assert_int_equal(ledgerdb_count(f->l), 1);

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
    assert_string_equal(got.assurance, "iak");
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

    ledgerdb_issuance(&rec, "not-hex", "SN-1", 1, 1000);
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), DEVID_ERR_INVALID_ARGUMENT);
    ledgerdb_issuance(&rec, "01", "", 1, 1000);
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), DEVID_ERR_INVALID_ARGUMENT);
    ledgerdb_issuance(&rec, "01", "SN-1", 1, 1000);
    rec.cert_der_len = 0;
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), DEVID_ERR_INVALID_ARGUMENT);
    ledgerdb_issuance(&rec, "01", "SN-1", 1, 1000);
    rec.revoked_at = 5;
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), DEVID_ERR_INVALID_ARGUMENT);
    ledgerdb_issuance(&rec, "01", "SN-1", 1, 1000);
    snprintf(rec.assurance, sizeof(rec.assurance), "high");
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), DEVID_ERR_INVALID_ARGUMENT);
    rec.assurance[0] = '\0';
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), DEVID_ERR_INVALID_ARGUMENT);
    assert_int_equal(ledgerdb_count(f->l), 0);
}

/* ledger_record reports what it found with the nonce, and changes nothing. */
static void test_nonce_single_use(void **state)
{
    struct fx *f = *state;
    struct ledger *other = NULL;
    struct ledger_issuance rec, got, found;
    enum ledger_recorded result = LEDGER_RECORDED;

    ledgerdb_issuance(&rec, "01", "SN-1", 0x42, 1000);
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), 0);
    /* the byte-identical request again: the stored issuance */
    assert_int_equal(ledger_record(f->l, &result, &found, &rec, LEDGER_SUPERSEDE), 0);
    assert_int_equal(result, LEDGER_SAME_REQUEST);
    assert_string_equal(found.cert_serial, "01");
    assert_non_null(found.cert_der);
    ledger_issuance_cleanup(&found);
    /* another request with the nonce, through another handle as well */
    ledgerdb_issuance(&rec, "02", "SN-1", 0x42, 1001);
    rec.request_sha256[0] ^= 1;
    assert_int_equal(ledger_record(f->l, &result, &found, &rec, LEDGER_SUPERSEDE), 0);
    assert_int_equal(result, LEDGER_NONCE_TAKEN);
    assert_string_equal(found.cert_serial, "01");
    ledger_issuance_cleanup(&found);
    assert_int_equal(ledger_open(&other, f->uri, "replica-b"), 0);
    assert_int_equal(ledgerdb_record(other, &rec, 0), DEVID_ERR_NONCE_REPLAYED);
    ledger_free(other);

    assert_int_equal(ledgerdb_count(f->l), 1);
    assert_int_equal(ledger_show(f->l, &got, "02"), DEVID_ERR_NOT_FOUND);
    assert_int_equal(ledger_show(f->l, &got, "01"), 0);
    assert_int_equal(got.revoked_at, 0); /* no supersede happened */
    ledger_issuance_cleanup(&got);
    assert_int_equal(ledgerdb_int(f, "SELECT issuances FROM device"), 1);
}

static void test_supersede(void **state)
{
    struct fx *f = *state;
    struct ledger_issuance rec, got;
    int active = -1;

    ledgerdb_issuance(&rec, "aa01", "SN-1", 1, 1000);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE), 0);
    ledgerdb_issuance(&rec, "bb01", "SN-2", 2, 1100);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE), 0);
    ledgerdb_issuance(&rec, "aa02", "SN-1", 3, 2000);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE), 0);

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
    assert_int_equal(ledgerdb_int(f, "SELECT issuances FROM device WHERE device_serial = 'SN-1'"),
                     2);
}

/* reenroll = deny, decided in the transaction: refused while the device's
 * certificate is active, recorded once it expired or was revoked. */
static void test_deny_active(void **state)
{
    struct fx *f = *state;
    struct ledger_issuance rec, found;
    enum ledger_recorded result = LEDGER_RECORDED;
    int n = 0;

    ledgerdb_issuance(&rec, "c1", "SN-1", 1, 1000);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE | LEDGER_DENY_ACTIVE), 0);
    ledgerdb_issuance(&rec, "c2", "SN-1", 2, 1500);
    assert_int_equal(
        ledger_record(f->l, &result, &found, &rec, LEDGER_SUPERSEDE | LEDGER_DENY_ACTIVE), 0);
    assert_int_equal(result, LEDGER_DEVICE_ACTIVE);
    assert_string_equal(found.cert_serial, "c1");
    ledger_issuance_cleanup(&found);
    assert_int_equal(ledgerdb_count(f->l), 1);
    /* a used nonce is reported as such before the device's state */
    ledgerdb_issuance(&rec, "c2", "SN-1", 1, 1500);
    rec.request_sha256[0] ^= 1;
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_DENY_ACTIVE), DEVID_ERR_NONCE_REPLAYED);
    /* expired: recorded, superseding the expired one */
    ledgerdb_issuance(&rec, "c3", "SN-1", 3, 1000 + 86400);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE | LEDGER_DENY_ACTIVE), 0);
    /* revoked: recorded */
    assert_int_equal(ledger_revoke(f->l, &n, "c3", NULL, NULL, LEDGER_REASON_KEY_COMPROMISE, 90000),
                     0);
    ledgerdb_issuance(&rec, "c4", "SN-1", 4, 90001);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE | LEDGER_DENY_ACTIVE), 0);
    assert_int_equal(ledgerdb_count(f->l), 3);
}

#define RACERS 6

struct racer {
    const char *uri;
    int id;
    int r;
};

static void *race(void *arg)
{
    struct racer *x = arg;
    struct ledger *l = NULL;
    struct ledger_issuance rec;
    char serial[8];

    x->r = DEVID_ERR_INTERNAL;
    snprintf(serial, sizeof(serial), "d%d", x->id);
    ledgerdb_issuance(&rec, serial, "SN-RACE", (uint8_t)(0x70 + x->id), 5000);
    if (ledger_open(&l, x->uri, "racer") != 0) {
        ledgerdb_start_line();
        return NULL;
    }
    ledgerdb_start_line();
    x->r = ledgerdb_record(l, &rec, LEDGER_SUPERSEDE | LEDGER_DENY_ACTIVE);
    ledger_free(l);
    return NULL;
}

/* Enrollments of one device on separate handles at once (workers, replicas)
 * under reenroll = deny: exactly one is recorded. */
static void test_deny_active_race(void **state)
{
    struct fx *f = *state;
    struct racer x[RACERS];
    int i, recorded = 0, denied = 0;

    for (i = 0; i < RACERS; i++)
        x[i] = (struct racer){f->uri, i, 0};
    ledgerdb_at_once(race, x, sizeof(x[0]), RACERS);
    for (i = 0; i < RACERS; i++) {
        recorded += x[i].r == 0;
        denied += x[i].r == DEVID_ERR_POLICY_DENIED;
    }
    assert_int_equal(recorded, 1);
    assert_int_equal(denied, RACERS - 1);
    assert_int_equal(ledgerdb_int(f,
                                  "SELECT count(*) FROM issuance WHERE device_serial = "
                                  "'SN-RACE'"),
                     1);
}

static void test_revoke_by_serial(void **state)
{
    struct fx *f = *state;
    struct ledger_issuance rec, got;
    int n = -1, active = -1;

    ledgerdb_issuance(&rec, "c0ffee", "SN-1", 1, 1000);
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), 0);
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

    ledgerdb_issuance(&rec, "d1", "SN-1", 1, 1000);
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), 0);
    ledgerdb_issuance(&rec, "d2", "SN-1", 2, 1001);
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), 0);
    ledgerdb_issuance(&rec, "e1", "SN-2", 3, 1002);
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), 0);

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
    int64_t revision = -1;

    ledgerdb_issuance(&rec, "f1", "SN-1", 1, 1000);
    assert_int_equal(ledgerdb_record(f->l, &rec, 0), 0);
    ledgerdb_issuance(&rec, "f1", "SN-1", 2, 2000); /* same certificate serial, new nonce */
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE), DEVID_ERR_LEDGER);
    assert_int_equal(ledgerdb_count(f->l), 1);
    assert_int_equal(ledger_show(f->l, &got, "f1"), 0);
    assert_int_equal(got.revoked_at, 0);
    assert_int_equal(got.issued_at, 1000);
    ledger_issuance_cleanup(&got);
    assert_int_equal(ledger_crl_revision(f->l, &revision), 0);
    assert_int_equal(revision, 0);
    memset(nonce, 2, sizeof(nonce));
    assert_int_equal(ledger_lookup_nonce(f->l, &got, nonce), DEVID_ERR_NOT_FOUND);
    /* the handle is usable afterwards: no transaction left open */
    ledgerdb_issuance(&rec, "f2", "SN-1", 2, 2000);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE), 0);
    assert_int_equal(ledgerdb_count(f->l), 2);
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
        ledgerdb_issuance(&rec, serial, i % 2 == 0 ? "SN-1" : "SN-2", (uint8_t)(i + 1), 1000 + i);
        assert_int_equal(ledgerdb_record(f->l, &rec, 0), 0);
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

/* The CRL snapshot: the revoked and unexpired, with a number that rises and
 * a revision that moves with each revocation. */
static void test_crl_snapshot(void **state)
{
    struct fx *f = *state;
    struct ledger_issuance rec;
    struct collected c;
    uint64_t number = 0;
    int64_t revision = -1, now_revision = -1;
    int n;

    ledgerdb_issuance(&rec, "0b", "SN-1", 1, 1000);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE), 0);
    ledgerdb_issuance(&rec, "0a", "SN-2", 2, 1000);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE), 0);
    ledgerdb_issuance(&rec, "0c", "SN-3", 3, 1000);
    rec.not_after = 1200; /* expires early: drops off the CRL */
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE), 0);
    memset(&c, 0, sizeof(c));
    assert_int_equal(ledger_crl_snapshot(f->l, &number, &revision, 1100, 10, collect, &c), 0);
    assert_int_equal(number, 1);
    assert_int_equal(revision, 0); /* first enrollments revoke nothing */
    assert_int_equal(c.n, 0);

    assert_int_equal(ledger_revoke(f->l, &n, "0b", NULL, NULL, LEDGER_REASON_KEY_COMPROMISE, 1100),
                     0);
    assert_int_equal(ledger_revoke(f->l, &n, "0c", NULL, NULL, LEDGER_REASON_UNSPECIFIED, 1100), 0);
    assert_int_equal(ledger_crl_revision(f->l, &now_revision), 0);
    assert_int_equal(now_revision, 2);
    /* a supersede is a revocation too */
    ledgerdb_issuance(&rec, "0d", "SN-2", 4, 1150);
    assert_int_equal(ledgerdb_record(f->l, &rec, LEDGER_SUPERSEDE), 0);
    assert_int_equal(ledger_crl_revision(f->l, &now_revision), 0);
    assert_int_equal(now_revision, 3);

    memset(&c, 0, sizeof(c));
    assert_int_equal(ledger_crl_snapshot(f->l, &number, &revision, 1100, 10, collect, &c), 0);
    assert_int_equal(number, 2);
    assert_int_equal(revision, 3);
    assert_int_equal(c.n, 3);
    memset(&c, 0, sizeof(c));
    assert_int_equal(ledger_crl_snapshot(f->l, &number, &revision, 1300, 10, collect, &c), 0);
    assert_int_equal(number, 3);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.serials[0], "0a");
    assert_string_equal(c.serials[1], "0b");
    /* too many: refused before any call, and no number used up */
    memset(&c, 0, sizeof(c));
    assert_int_equal(ledger_crl_snapshot(f->l, &number, &revision, 1300, 1, collect, &c),
                     DEVID_ERR_TOO_LARGE);
    assert_int_equal(c.n, 0);
    ledger_free(f->l);
    assert_int_equal(ledger_open(&f->l, f->uri, NULL), 0);
    memset(&c, 0, sizeof(c));
    assert_int_equal(ledger_crl_snapshot(f->l, &number, &revision, 1300, 10, collect, &c), 0);
    assert_int_equal(number, 4);
}

#define T(t) cmocka_unit_test_setup_teardown(t, ledgerdb_setup, ledgerdb_teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_record_and_lookup),
        T(test_record_refuses_malformed),
        T(test_nonce_single_use),
        T(test_supersede),
        T(test_deny_active),
        T(test_deny_active_race),
        T(test_revoke_by_serial),
        T(test_revoke_by_device),
        T(test_failed_transaction_leaves_nothing),
        T(test_list_bounded),
        T(test_crl_snapshot),
    };

    return cmocka_run_group_tests_name(ledgerdb_init(argc, argv), tests, NULL, NULL);
}
