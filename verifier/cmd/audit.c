/* devid-verifier audit, and show --proof: the operator's check of the
 * issuance log (docs/architecture.md, "The issuance log"). The Merkle
 * arithmetic and the encodings are the pure core's (verifier/core/merkle.h,
 * tlog.h); this file reads the ledger and files, compares, and says what
 * it found, naming each offending entry. */
#include "verifier/cmd/audit.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "common/hex.h"
#include "common/io/log.h"
#include "common/io/store.h"
#include "verifier/cmd/cmd.h"
#include "verifier/core/config.h"
#include "verifier/core/merkle.h"
#include "verifier/core/tlog.h"
#include "verifier/ledger/ledger.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
/* Problems printed in full; the rest are counted. */
#define MAX_SHOWN 50
/* Largest public key or certificate file. */
#define KEY_FILE_MAX 65536
/* Largest saved-leaves file: about 7 million entries. */
#define LEAVES_FILE_MAX ((size_t)1 << 30)

/* One entry of the log as the audit keeps it. */
struct entry {
    uint8_t hash[MERKLE_HASH_LEN];
    uint8_t cert_sha256[32];
    char serial[2 * TLOG_SERIAL_MAX + 1];
    char device[TLOG_NAME_MAX + 1];
    int64_t time;
    int64_t index; /* -1: not indexed yet */
    uint8_t type, reason, seen;
};

struct log_view {
    struct entry *e;
    size_t n, cap;
    size_t indexed; /* e[0..indexed) are indices 0..indexed-1 */
    int gap;        /* an index was missing: e[indexed] is past it */
    int64_t gap_at, gap_next;
    size_t bad;
};

struct audit {
    struct log_view v;
    struct log_view saved; /* the earlier log, from --earlier-leaves */
    int have_saved;
    size_t problems;
    size_t pending;
};

static void problem(struct audit *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct audit *a, const char *fmt, ...)
{
    va_list ap;

    if (a->problems++ < MAX_SHOWN) {
        fputs("audit: FAIL: ", stdout);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
    }
}

static void hexs(char out[2 * MERKLE_HASH_LEN + 1], const uint8_t *h)
{
    hex_encode(out, h, MERKLE_HASH_LEN);
}

static int take(void *arg, int64_t index, const uint8_t *leaf, size_t len)
{
    struct log_view *v = arg;
    struct tlog_entry te;
    struct entry *grown, *e;
    char why[128];
    size_t cap;

    if (v->n == v->cap) {
        cap = v->cap == 0 ? 4096 : v->cap * 2;
        if ((grown = realloc(v->e, cap * sizeof(*grown))) == NULL)
            return DEVID_ERR_ALLOC;
        v->e = grown;
        v->cap = cap;
    }
    e = &v->e[v->n];
    memset(e, 0, sizeof(*e));
    e->index = index;
    if (merkle_leaf_hash(e->hash, leaf, len) != 0)
        return DEVID_ERR_CRYPTO;
    if (tlog_leaf_decode(&te, leaf, len, why, sizeof(why)) != 0) {
        snprintf(e->serial, sizeof(e->serial), "?");
        v->bad++;
        printf("audit: FAIL: entry %lld is not a log entry: %s\n", (long long)index, why);
    } else {
        e->type = (uint8_t)te.type;
        e->reason = (uint8_t)te.reason;
        e->time = te.time;
        memcpy(e->cert_sha256, te.cert_sha256, 32);
        memcpy(e->serial, te.cert_serial, sizeof(e->serial));
        memcpy(e->device, te.device_serial, sizeof(e->device));
    }
    if (index >= 0 && !v->gap) {
        if (index == (int64_t)v->indexed) {
            v->indexed++;
        } else {
            v->gap = 1;
            v->gap_at = (int64_t)v->indexed;
            v->gap_next = index;
        }
    }
    v->n++;
    return 0;
}

/* read_log reads every indexed entry, then the pending ones. */
static int read_log(struct ledger *l, struct log_view *v)
{
    uint64_t before;
    int r;

    do {
        before = v->n;
        if ((r = ledger_log_read(l, v->n == 0 ? 0 : (uint64_t)v->e[v->n - 1].index + 1,
                                 LEDGER_LOG_BATCH, take, v)) != 0)
            return r;
    } while (v->n - before == LEDGER_LOG_BATCH);
    return ledger_log_pending(l, take, v);
}

static int read_file(uint8_t **out, size_t *len, const char *path, size_t max, const char *what)
{
    char why[512];
    int r;

    if ((r = store_read(out, len, path, max, why, sizeof(why))) != 0)
        fprintf(stderr, "%s: %s: %s\n", cmd_prog, what, why);
    return r;
}

int audit_load_pubkey(EVP_PKEY **out, const char *path)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    X509 *x = NULL;
    int r;

    *out = NULL;
    if ((r = read_file(&buf, &len, path, KEY_FILE_MAX, "--log-key")) != 0)
        return r;
    r = DEVID_ERR_CONFIG;
    if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL)
        goto out;
    if ((*out = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) == NULL) {
        BIO_free(bio);
        if ((bio = BIO_new_mem_buf(buf, (int)len)) != NULL &&
            (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
            *out = X509_get_pubkey(x);
    }
    if (*out == NULL) {
        fprintf(stderr, "%s: --log-key %s holds neither a PEM public key nor a certificate\n",
                cmd_prog, path);
        goto out;
    }
    r = 0;
out:
    ERR_clear_error();
    X509_free(x);
    BIO_free(bio);
    free(buf);
    return r;
}

/* A signed head read and checked: its bytes and what it says. */
struct head {
    uint8_t bytes[TLOG_SIGNED_HEAD_MAX];
    size_t len;
    struct tlog_head h;
    char name[64];
};

/* load_head reads the signed head |path|, or the ledger's newest when
 * NULL, and checks its signature. Returns 0, or the exit code. */
static int load_head(struct head *out, struct ledger *l, const char *path, EVP_PKEY *pub,
                     const char *what)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char why[256];
    int r;

    memset(out, 0, sizeof(*out));
    if (path != NULL) {
        if ((r = read_file(&buf, &len, path, TLOG_SIGNED_HEAD_MAX, what)) != 0)
            return r == DEVID_ERR_TOO_LARGE ? EXIT_CONFIG : EXIT_NOINPUT;
        memcpy(out->bytes, buf, len);
        out->len = len;
        free(buf);
    } else if ((r = ledger_head_latest(l, out->bytes, &out->len, sizeof(out->bytes))) != 0) {
        if (r == DEVID_ERR_NOT_FOUND)
            fprintf(stderr,
                    "%s: the ledger holds no signed tree head (is [log] key set?); give one "
                    "with --head\n",
                    cmd_prog);
        return r == DEVID_ERR_NOT_FOUND ? EXIT_NOINPUT : EXIT_SOFTWARE;
    }
    r = tlog_signed_head_verify(&out->h, out->bytes, out->len, pub, why, sizeof(why));
    if (r == DEVID_ERR_PROTOCOL) {
        fprintf(stderr, "%s: %s %s: %s\n", cmd_prog, what, path != NULL ? path : "", why);
        return EXIT_CONFIG;
    }
    if (r != 0) {
        printf("audit: FAIL: %s%s%s: %s\naudit: FAILED: the head is not the log's\n", what,
               path != NULL ? " " : "", path != NULL ? path : " (the ledger's newest)", why);
        return EXIT_REFUSED;
    }
    snprintf(out->name, sizeof(out->name), "%s of size %llu", what,
             (unsigned long long)out->h.size);
    return 0;
}

/* ---- prefix roots --------------------------------------------------------- */

/* One stored head, checked against the ledger's log. */
struct stored {
    struct tlog_head h;
    int valid;
};

struct stored_list {
    EVP_PKEY *pub;
    struct stored *s;
    size_t n, cap;
    size_t invalid;
};

static int take_stored(void *arg, const uint8_t *head, size_t len)
{
    struct stored_list *sl = arg;
    struct stored *grown;
    char why[256];

    if (sl->n == sl->cap) {
        sl->cap = sl->cap == 0 ? 64 : sl->cap * 2;
        if ((grown = realloc(sl->s, sl->cap * sizeof(*grown))) == NULL)
            return DEVID_ERR_ALLOC;
        sl->s = grown;
    }
    sl->s[sl->n].valid =
        tlog_signed_head_verify(&sl->s[sl->n].h, head, len, sl->pub, why, sizeof(why)) == 0;
    if (!sl->s[sl->n].valid)
        sl->invalid++;
    sl->n++;
    ERR_clear_error();
    return 0;
}

/* prefix_root sets |out| to the tree hash of the first |size| entries. */
static void prefix_root(const struct log_view *v, uint64_t size, uint8_t out[MERKLE_HASH_LEN])
{
    struct merkle_compact c;
    size_t i;

    merkle_compact_init(&c);
    for (i = 0; i < size; i++)
        merkle_compact_append(&c, v->e[i].hash);
    merkle_compact_root(&c, out);
}

/* hashes copies the first |n| leaf hashes into a new array. */
static uint8_t (*hashes(const struct log_view *v, size_t n))[MERKLE_HASH_LEN]
{
    uint8_t(*h)[MERKLE_HASH_LEN] = malloc((n > 0 ? n : 1) * MERKLE_HASH_LEN);
    size_t i;

    if (h == NULL)
        return NULL;
    for (i = 0; i < n; i++)
        memcpy(h[i], v->e[i].hash, MERKLE_HASH_LEN);
    return h;
}

/* narrow says which entries a mismatch at |size| lies among, from the
 * stored heads that the ledger still matches. */
static void narrow(const struct log_view *v, const struct stored_list *sl, uint64_t size)
{
    uint8_t root[MERKLE_HASH_LEN];
    uint64_t good = 0;
    size_t i;

    for (i = 0; i < sl->n; i++) {
        if (!sl->s[i].valid || sl->s[i].h.size > size || sl->s[i].h.size > v->indexed ||
            sl->s[i].h.size <= good)
            continue;
        prefix_root(v, sl->s[i].h.size, root);
        if (memcmp(root, sl->s[i].h.root, MERKLE_HASH_LEN) == 0)
            good = sl->s[i].h.size;
    }
    printf(
        "audit:   the entries changed or removed are among indices %llu to %llu (the "
        "ledger still matches a signed head of size %llu)\n",
        (unsigned long long)good, (unsigned long long)size - 1, (unsigned long long)good);
}

/* check_tree compares the head with the ledger's first entries. */
static void check_tree(struct audit *a, const struct head *hd, const struct stored_list *sl)
{
    const struct log_view *v = &a->v;
    char got[65], want[65];
    uint8_t root[MERKLE_HASH_LEN];

    if (v->gap)
        problem(a,
                "entry %lld is missing from the log: the ledger jumps from index %lld to %lld "
                "(a log row was deleted)",
                (long long)v->gap_at, (long long)v->gap_at - 1, (long long)v->gap_next);
    if (hd->h.size > v->indexed) {
        problem(a,
                "the %s covers %llu entries, but the ledger's log has %zu in order: entries "
                "from %zu on were removed",
                hd->name, (unsigned long long)hd->h.size, v->indexed, v->indexed);
        return;
    }
    prefix_root(v, hd->h.size, root);
    if (memcmp(root, hd->h.root, MERKLE_HASH_LEN) != 0) {
        hexs(got, root);
        hexs(want, hd->h.root);
        problem(a, "the ledger's first %llu entries hash to %s, but the %s says %s",
                (unsigned long long)hd->h.size, got, hd->name, want);
        narrow(v, sl, hd->h.size);
    }
}

static int by_hash(const void *x, const void *y)
{
    return memcmp(x, y, MERKLE_HASH_LEN);
}

/* sorted_hashes copies the first |n| leaf hashes of |v| and sorts them. */
static uint8_t (*sorted_hashes(const struct log_view *v, size_t n))[MERKLE_HASH_LEN]
{
    uint8_t(*h)[MERKLE_HASH_LEN] = hashes(v, n);

    if (h != NULL)
        qsort(h, n, MERKLE_HASH_LEN, by_hash);
    return h;
}

static void name_entry(char *out, size_t len, const struct entry *e);

/*
 * name_rewrite names what a rewrite changed in the first |m| entries, from
 * the earlier log's own leaves: each earlier entry the ledger's log no
 * longer holds anywhere, and each entry in the ledger's first |m| that the
 * earlier log did not hold. When both sets are empty the entries were
 * reordered, and the first index that differs is named.
 */
static void name_rewrite(struct audit *a, uint64_t m)
{
    const struct log_view *v = &a->v, *s = &a->saved;
    uint8_t(*now)[MERKLE_HASH_LEN] = sorted_hashes(v, v->indexed);
    uint8_t(*then)[MERKLE_HASH_LEN] = sorted_hashes(s, (size_t)m);
    char what[CMD_TEXT_MAX + 128], t[2 * MERKLE_HASH_LEN + 1];
    size_t i, gone = 0, added = 0;

    if (now == NULL || then == NULL) {
        problem(a, "out of memory naming the rewritten entries");
        goto out;
    }
    for (i = 0; i < m; i++) {
        if (bsearch(s->e[i].hash, now, v->indexed, MERKLE_HASH_LEN, by_hash) != NULL)
            continue;
        name_entry(what, sizeof(what), &s->e[i]);
        hexs(t, s->e[i].hash);
        problem(a, "%s of the earlier log, leaf hash %.16s..., is no longer in the ledger's log",
                what, t);
        gone++;
    }
    for (i = 0; i < m && i < v->indexed; i++) {
        if (bsearch(v->e[i].hash, then, (size_t)m, MERKLE_HASH_LEN, by_hash) != NULL)
            continue;
        name_entry(what, sizeof(what), &v->e[i]);
        problem(a, "%s of the ledger's log was not in the earlier log: it was inserted or changed",
                what);
        added++;
    }
    for (i = 0; gone == 0 && added == 0 && i < m; i++) {
        if (memcmp(s->e[i].hash, v->e[i].hash, MERKLE_HASH_LEN) == 0)
            continue;
        name_entry(what, sizeof(what), &v->e[i]);
        problem(a, "%s is not at the index the earlier log had it: the entries were reordered",
                what);
        break;
    }
out:
    free(now);
    free(then);
}

/* check_earlier checks that the earlier head is a prefix of the later one
 * and of the ledger: the consistency proof from the ledger's entries. */
static void check_earlier(struct audit *a, const struct head *later, const struct head *earlier,
                          const struct stored_list *sl)
{
    const struct log_view *v = &a->v;
    uint8_t proof[MERKLE_MAX_PROOF][MERKLE_HASH_LEN], root[MERKLE_HASH_LEN];
    uint8_t(*h)[MERKLE_HASH_LEN] = NULL;
    char got[65], want[65];
    size_t len = 0;

    if (earlier->h.size > later->h.size) {
        problem(a,
                "the earlier head has %llu entries, more than the later one's %llu: the log lost "
                "entries since",
                (unsigned long long)earlier->h.size, (unsigned long long)later->h.size);
        return;
    }
    if (earlier->h.size > v->indexed) {
        problem(a, "the %s covers more entries than the ledger's log holds (%zu)", earlier->name,
                v->indexed);
        return;
    }
    prefix_root(v, earlier->h.size, root);
    if (memcmp(root, earlier->h.root, MERKLE_HASH_LEN) != 0) {
        hexs(got, root);
        hexs(want, earlier->h.root);
        problem(a,
                "the %s (signed at %lld) is not a prefix of the ledger's log: its first %llu "
                "entries hash to %s, the earlier head says %s: the log was rewritten",
                earlier->name, (long long)earlier->h.timestamp, (unsigned long long)earlier->h.size,
                got, want);
        if (a->have_saved)
            name_rewrite(a, earlier->h.size);
        else
            narrow(v, sl, earlier->h.size);
        return;
    }
    if (later->h.size > v->indexed || (h = hashes(v, later->h.size)) == NULL ||
        merkle_consistency_proof(proof, &len, (const uint8_t(*)[MERKLE_HASH_LEN])h, later->h.size,
                                 earlier->h.size) != 0 ||
        merkle_consistency_verify(earlier->h.size, later->h.size, earlier->h.root, later->h.root,
                                  (const uint8_t(*)[MERKLE_HASH_LEN])proof, len) != 0)
        problem(a, "the %s does not extend the %s: the consistency proof fails", later->name,
                earlier->name);
    free(h);
}

/* ---- the ledger's rows against the log ------------------------------------ */

static int by_serial(const void *x, const void *y)
{
    const struct entry *const *a = x, *const *b = y;
    int c = strcmp((*a)->serial, (*b)->serial);

    return c != 0 ? c : (int)(*a)->type - (int)(*b)->type;
}

struct cross {
    struct audit *a;
    struct entry **sorted;
    size_t n;
    uint64_t covered;
};

/* find returns the entry of |type| for |serial|, or NULL. */
static struct entry *find(const struct cross *x, const char *serial, int type)
{
    struct entry key, *k = &key, **hit;

    memset(&key, 0, sizeof(key));
    snprintf(key.serial, sizeof(key.serial), "%s", serial);
    key.type = (uint8_t)type;
    hit = bsearch(&k, x->sorted, x->n, sizeof(*x->sorted), by_serial);
    return hit != NULL ? *hit : NULL;
}

static void name_entry(char *out, size_t len, const struct entry *e)
{
    char t[CMD_TEXT_MAX];

    if (e->index >= 0)
        snprintf(out, len, "entry %lld (%s, certificate %s, device %s)", (long long)e->index,
                 tlog_type_name(e->type), e->serial, cmd_text(t, sizeof(t), e->device));
    else
        snprintf(out, len, "a pending entry (%s, certificate %s, device %s)",
                 tlog_type_name(e->type), e->serial, cmd_text(t, sizeof(t), e->device));
}

static int check_row(void *arg, const struct ledger_issuance *rec)
{
    struct cross *x = arg;
    struct entry *issued = find(x, rec->cert_serial, TLOG_ISSUED);
    struct entry *revoked = find(x, rec->cert_serial, TLOG_REVOKED);
    uint8_t sha[32];
    unsigned int n = 0;
    char name[512], t[CMD_TEXT_MAX], got[65], want[65];

    if (issued == NULL) {
        problem(x->a,
                "certificate %s of device %s is in the ledger but not in the log: it was "
                "recorded outside devid",
                rec->cert_serial, cmd_text(t, sizeof(t), rec->device_serial));
        return 0;
    }
    issued->seen = 1;
    name_entry(name, sizeof(name), issued);
    if (EVP_Digest(rec->cert_der, rec->cert_der_len, sha, &n, EVP_sha256(), NULL) != 1)
        return DEVID_ERR_CRYPTO;
    if (memcmp(sha, issued->cert_sha256, 32) != 0) {
        hexs(got, sha);
        hexs(want, issued->cert_sha256);
        problem(x->a,
                "%s: the ledger's certificate has SHA-256 %s, the log says %s: the certificate "
                "was replaced",
                name, got, want);
    }
    if (issued->time != rec->issued_at)
        problem(x->a, "%s: the ledger says issued at %lld, the log %lld", name,
                (long long)rec->issued_at, (long long)issued->time);
    if (issued->index < 0 || (uint64_t)issued->index >= x->covered)
        x->a->pending++;
    if (revoked != NULL) {
        revoked->seen = 1;
        name_entry(name, sizeof(name), revoked);
        if (rec->revoked_at == 0)
            problem(x->a,
                    "%s logs the revocation (reason %s, at %lld), but the ledger says the "
                    "certificate is not revoked: the revocation was removed",
                    name,
                    ledger_reason_name(revoked->reason) ? ledger_reason_name(revoked->reason) : "?",
                    (long long)revoked->time);
        else if (rec->revoked_at != revoked->time || rec->revocation_reason != revoked->reason)
            problem(x->a,
                    "%s: the ledger says revoked at %lld with reason %d, the log at %lld with "
                    "reason %d",
                    name, (long long)rec->revoked_at, rec->revocation_reason,
                    (long long)revoked->time, revoked->reason);
    } else if (rec->revoked_at != 0) {
        problem(x->a,
                "certificate %s is revoked in the ledger (at %lld) but the log has no "
                "revocation of it",
                rec->cert_serial, (long long)rec->revoked_at);
    }
    return 0;
}

/* cross_check compares every issuance row with the log's entries. */
static int cross_check(struct audit *a, struct ledger *l, uint64_t covered)
{
    struct log_view *v = &a->v;
    struct cross x = {a, NULL, 0, covered};
    char name[512];
    size_t i;
    int r;

    if ((x.sorted = malloc((v->n > 0 ? v->n : 1) * sizeof(*x.sorted))) == NULL)
        return DEVID_ERR_ALLOC;
    for (i = 0; i < v->n; i++)
        x.sorted[i] = &v->e[i];
    x.n = v->n;
    qsort(x.sorted, x.n, sizeof(*x.sorted), by_serial);
    for (i = 1; i < x.n; i++) {
        if (by_serial(&x.sorted[i - 1], &x.sorted[i]) == 0 && x.sorted[i]->serial[0] != '?') {
            name_entry(name, sizeof(name), x.sorted[i]);
            problem(a, "%s repeats entry %lld: a certificate is logged twice", name,
                    (long long)x.sorted[i - 1]->index);
        }
    }
    if ((r = ledger_scan(l, check_row, &x)) != 0)
        goto out;
    for (i = 0; i < v->n; i++) {
        if (v->e[i].seen || v->e[i].serial[0] == '?')
            continue;
        name_entry(name, sizeof(name), &v->e[i]);
        problem(a, "%s is in the log, but the ledger has no row for certificate %s: it was deleted",
                name, v->e[i].serial);
    }
out:
    free(x.sorted);
    return r;
}

/* ---- saved leaves ----------------------------------------------------------- */

/*
 * load_leaves reads the earlier log's leaves (--earlier-leaves) into
 * a->saved and checks them against the earlier head: as many as it covers,
 * hashing to its root. Returns 0 or the exit code.
 */
static int load_leaves(struct audit *a, const char *path, const struct head *earlier)
{
    uint8_t *buf = NULL, root[MERKLE_HASH_LEN];
    uint64_t count = 0;
    size_t len = 0;
    char why[256];
    int r, rc = EXIT_CONFIG;

    if ((r = read_file(&buf, &len, path, LEAVES_FILE_MAX, "--earlier-leaves")) != 0)
        return r == DEVID_ERR_TOO_LARGE ? EXIT_CONFIG : EXIT_NOINPUT;
    if ((r = tlog_leaves_parse(buf, len, &count, take, &a->saved, why, sizeof(why))) != 0) {
        if (r == DEVID_ERR_PROTOCOL)
            fprintf(stderr, "%s: --earlier-leaves %s: %s\n", cmd_prog, path, why);
        else
            rc = EXIT_SOFTWARE;
        goto out;
    }
    prefix_root(&a->saved, count, root);
    if (count != earlier->h.size || a->saved.bad > 0 ||
        memcmp(root, earlier->h.root, MERKLE_HASH_LEN) != 0) {
        fprintf(stderr,
                "%s: --earlier-leaves %s: its %llu leaves are not the ones the %s signed (%s)\n",
                cmd_prog, path, (unsigned long long)count, earlier->name,
                count != earlier->h.size ? "another count"
                : a->saved.bad > 0       ? "a leaf that is not a log entry"
                                         : "another root");
        goto out;
    }
    a->have_saved = 1;
    rc = 0;
out:
    free(buf);
    return rc;
}

/* A growing buffer of saved leaves. */
struct leaves_out {
    uint8_t *b;
    size_t len, cap;
    uint64_t want, n;
};

static int put_leaf(void *arg, int64_t index, const uint8_t *leaf, size_t len)
{
    struct leaves_out *o = arg;
    uint8_t *grown;
    size_t cap;

    if (o->n >= o->want || index != (int64_t)o->n)
        return 0;
    if (o->cap - o->len < 2 + len) {
        cap = o->cap * 2 + 2 + len;
        if ((grown = realloc(o->b, cap)) == NULL)
            return DEVID_ERR_ALLOC;
        o->b = grown;
        o->cap = cap;
    }
    tlog_leaves_frame(o->b + o->len, len);
    memcpy(o->b + o->len + 2, leaf, len);
    o->len += 2 + len;
    o->n++;
    return 0;
}

/* save_leaves writes the first |size| leaves of the ledger's log to
 * |path|, for --earlier-leaves later. Returns 0 or the exit code. */
static int save_leaves(struct ledger *l, const char *path, uint64_t size)
{
    struct leaves_out o = {NULL, 0, 0, size, 0};
    uint64_t before;
    int r, rc = EXIT_SOFTWARE;

    if ((o.b = malloc(TLOG_LEAVES_HEADER_LEN)) == NULL)
        return EXIT_SOFTWARE;
    o.len = o.cap = TLOG_LEAVES_HEADER_LEN;
    tlog_leaves_header(o.b, size);
    do {
        before = o.n;
        if ((r = ledger_log_read(l, o.n, LEDGER_LOG_BATCH, put_leaf, &o)) != 0) {
            fprintf(stderr, "%s: reading the log for --save-leaves failed: %s\n", cmd_prog,
                    devid_err_str(r));
            goto out;
        }
    } while (o.n < size && o.n > before);
    if (o.n != size) {
        fprintf(stderr, "%s: --save-leaves: the log changed while it was read\n", cmd_prog);
        goto out;
    }
    rc = store_write_atomic(path, o.b, o.len, 0644) == 0 ? 0 : EXIT_NOINPUT;
out:
    free(o.b);
    return rc;
}

/* ---- the command ----------------------------------------------------------- */

static void usage_audit(FILE *f)
{
    fprintf(f,
            "usage: %s audit [--ledger URI] --log-key FILE [--head FILE]\n"
            "           [--earlier FILE [--earlier-leaves FILE]] [--save-head FILE]\n"
            "           [--save-leaves FILE]\n"
            "\n"
            "Checks the ledger against a signed tree head of its issuance log: the head's\n"
            "signature with the log's public key; that the ledger's log entries hash to\n"
            "the head's root (no entry changed, removed or reordered); that every\n"
            "certificate in the ledger has its issuance entry with the SHA-256 of its DER,\n"
            "and every revocation its revocation entry, and no entry names a row that is\n"
            "gone. With --earlier, a head saved before (GET /v1/log/head, or --save-head)\n"
            "must be a prefix of the later one: its tree is rebuilt from the ledger and\n"
            "the consistency proof (RFC 6962 2.1.2) checked, so a rewritten log is seen\n"
            "even when it was signed again. A head carries only a root: to have a rewrite\n"
            "named entry by entry, keep the leaves with it (--save-leaves) and give them\n"
            "back (--earlier-leaves). Each failure names the entry.\n"
            "\n"
            "  --ledger URI       the ledger (default %s)\n"
            "  --log-key FILE     the log's public key or certificate (PEM)\n"
            "  --head FILE        the signed head to check against (default: the newest\n"
            "                     one stored in the ledger)\n"
            "  --earlier FILE     an earlier signed head that must be a prefix\n"
            "  --earlier-leaves FILE\n"
            "                     the earlier head's leaves (--save-leaves); a rewrite is\n"
            "                     then named by each entry removed, changed or moved\n"
            "                     (about 100 bytes per entry)\n"
            "  --save-head FILE   write the head checked here, to pass as --earlier later\n"
            "  --save-leaves FILE write the leaves it covers, to pass as --earlier-leaves\n"
            "\n"
            "Exit status: 0 the ledger matches the head, 1 the audit failed (each reason\n"
            "printed), 64 usage error, 66 ledger, key or head unreadable, 78 a malformed\n"
            "key or head, 70 internal failure.\n",
            cmd_prog, VERIFIER_CONFIG_DEFAULT_LEDGER);
}

int cmd_audit_main(int argc, char **argv)
{
    const char *uri = VERIFIER_CONFIG_DEFAULT_LEDGER, *key_path = NULL, *head_path = NULL,
               *earlier_path = NULL, *save_path = NULL, *leaves_path = NULL,
               *save_leaves_path = NULL;
    const struct cmd_option opts[] = {
        {.name = "ledger", .kind = CMD_OPT_STRING, .dest = &uri},
        {.name = "log-key", .kind = CMD_OPT_STRING, .dest = &key_path},
        {.name = "head", .kind = CMD_OPT_STRING, .dest = &head_path},
        {.name = "earlier", .kind = CMD_OPT_STRING, .dest = &earlier_path},
        {.name = "save-head", .kind = CMD_OPT_STRING, .dest = &save_path},
        {.name = "earlier-leaves", .kind = CMD_OPT_STRING, .dest = &leaves_path},
        {.name = "save-leaves", .kind = CMD_OPT_STRING, .dest = &save_leaves_path},
    };
    static struct head head, earlier;
    struct stored_list sl = {NULL, NULL, 0, 0, 0};
    struct audit a;
    struct ledger *l = NULL;
    EVP_PKEY *pub = NULL;
    char root[65];
    int r, rc = EXIT_USAGE;

    memset(&a, 0, sizeof(a));
    log_init(cmd_prog, LOG_WARNING);
    if ((r = cmd_parse_options(argc, argv, opts, N(opts), NULL, NULL)) != CMD_PARSED)
        return cmd_usage_exit(r, usage_audit);
    if (optind != argc || key_path == NULL || (leaves_path != NULL && earlier_path == NULL)) {
        usage_audit(stderr);
        goto out;
    }
    if ((r = audit_load_pubkey(&pub, key_path)) != 0) {
        rc = r == DEVID_ERR_CONFIG ? EXIT_CONFIG : EXIT_NOINPUT;
        goto out;
    }
    if ((r = ledger_open_existing(&l, uri)) != 0) {
        rc = cmd_exit_for(r);
        goto out;
    }
    if ((rc = load_head(&head, l, head_path, pub, "tree head")) != 0 ||
        (earlier_path != NULL &&
         (rc = load_head(&earlier, l, earlier_path, pub, "earlier head")) != 0) ||
        (leaves_path != NULL && (rc = load_leaves(&a, leaves_path, &earlier)) != 0))
        goto out;
    rc = EXIT_SOFTWARE;
    sl.pub = pub;
    if ((r = read_log(l, &a.v)) != 0 || (r = ledger_heads(l, take_stored, &sl)) != 0) {
        fprintf(stderr, "%s: reading the log failed: %s\n", cmd_prog, devid_err_str(r));
        goto out;
    }
    a.problems += a.v.bad;
    check_tree(&a, &head, &sl);
    if (earlier_path != NULL)
        check_earlier(&a, &head, &earlier, &sl);
    if (sl.invalid > 0)
        problem(&a, "%zu tree heads stored in the ledger are not signed by this log key",
                sl.invalid);
    if ((r = cross_check(&a, l, head.h.size)) != 0) {
        fprintf(stderr, "%s: reading the ledger failed: %s\n", cmd_prog, devid_err_str(r));
        goto out;
    }
    hexs(root, head.h.root);
    if (a.problems > MAX_SHOWN)
        printf("audit: ... and %zu more\n", a.problems - MAX_SHOWN);
    printf("audit: tree head: size %llu, root %s, signed at %lld\n",
           (unsigned long long)head.h.size, root, (long long)head.h.timestamp);
    printf(
        "audit: %zu log entries (%zu indexed), %zu signed heads in the ledger, %zu "
        "certificates not yet under the head\n",
        a.v.n, a.v.indexed, sl.n, a.pending);
    if (a.problems > 0) {
        printf("audit: FAILED: %zu problem%s\n", a.problems, a.problems == 1 ? "" : "s");
        rc = EXIT_REFUSED;
        goto out;
    }
    if (save_path != NULL && store_write_atomic(save_path, head.bytes, head.len, 0644) != 0) {
        rc = EXIT_NOINPUT;
        goto out;
    }
    if (save_leaves_path != NULL && (rc = save_leaves(l, save_leaves_path, head.h.size)) != 0)
        goto out;
    printf("audit: ok\n");
    rc = 0;
out:
    free(a.v.e);
    free(a.saved.e);
    free(sl.s);
    EVP_PKEY_free(pub);
    ledger_free(l);
    return rc;
}

/* ---- show --proof ---------------------------------------------------------- */

static int print_leaf(void *arg, int64_t index, const uint8_t *leaf, size_t len)
{
    char hex[2 * LEDGER_LEAF_MAX + 1];

    (void)arg;
    (void)index;
    hex_encode(hex, leaf, len);
    printf("leaf: %s\n", hex);
    return 0;
}

int audit_print_proof(struct ledger *l, const char *cert_serial)
{
    static struct head head;
    uint8_t proof[MERKLE_MAX_PROOF][MERKLE_HASH_LEN], root[MERKLE_HASH_LEN];
    uint8_t(*h)[MERKLE_HASH_LEN] = NULL;
    struct log_view v;
    char hex[2 * TLOG_SIGNED_HEAD_MAX + 1], why[256];
    const uint8_t *sig;
    size_t sig_len, len = 0, i;
    int64_t index = -1;
    int r, rc = EXIT_SOFTWARE;

    memset(&v, 0, sizeof(v));
    if ((r = ledger_log_find(l, &index, cert_serial, TLOG_ISSUED)) != 0 || index < 0) {
        fprintf(stderr, "%s: certificate %s has %s in the log yet\n", cmd_prog, cert_serial,
                r == DEVID_ERR_NOT_FOUND ? "no issuance entry" : "no index");
        return r == DEVID_ERR_NOT_FOUND || index < 0 ? EXIT_REFUSED : cmd_exit_for(r);
    }
    if ((r = ledger_head_latest(l, head.bytes, &head.len, sizeof(head.bytes))) != 0 ||
        tlog_signed_head_parse(&head.h, &sig, &sig_len, head.bytes, head.len, why, sizeof(why)) !=
            0) {
        fprintf(stderr, "%s: the ledger holds no signed tree head\n", cmd_prog);
        return EXIT_REFUSED;
    }
    if ((uint64_t)index >= head.h.size) {
        fprintf(stderr,
                "%s: entry %lld of certificate %s is not under the newest head (size %llu) yet; "
                "retry later\n",
                cmd_prog, (long long)index, cert_serial, (unsigned long long)head.h.size);
        return EXIT_REFUSED;
    }
    if ((r = read_log(l, &v)) != 0 || v.indexed < head.h.size ||
        (h = hashes(&v, head.h.size)) == NULL) {
        fprintf(stderr, "%s: the ledger's log does not hold the head's %llu entries\n", cmd_prog,
                (unsigned long long)head.h.size);
        goto out;
    }
    merkle_root(root, (const uint8_t(*)[MERKLE_HASH_LEN])h, head.h.size);
    if (memcmp(root, head.h.root, MERKLE_HASH_LEN) != 0) {
        fprintf(stderr, "%s: the ledger's log does not match its newest head; run `%s audit`\n",
                cmd_prog, cmd_prog);
        rc = EXIT_REFUSED;
        goto out;
    }
    if (merkle_inclusion_proof(proof, &len, (const uint8_t(*)[MERKLE_HASH_LEN])h, head.h.size,
                               (size_t)index) != 0)
        goto out;
    printf("log index: %lld\n", (long long)index);
    printf("tree size: %llu\n", (unsigned long long)head.h.size);
    hexs(hex, v.e[index].hash);
    printf("leaf hash: %s\n", hex);
    if ((r = ledger_log_read(l, (uint64_t)index, 1, print_leaf, NULL)) != 0)
        goto out;
    hexs(hex, head.h.root);
    printf("root hash: %s\n", hex);
    hex_encode(hex, head.bytes, head.len);
    printf("signed head: %s\n", hex);
    for (i = 0; i < len; i++) {
        hexs(hex, proof[i]);
        printf("proof: %s\n", hex);
    }
    rc = 0;
out:
    free(h);
    free(v.e);
    return rc;
}
