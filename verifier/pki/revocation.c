#include "verifier/pki/revocation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/io/log.h"
#include "verifier/core/crl.h"

struct revoked_list {
    struct revoked_row {
        char serial[LEDGER_SERIAL_LEN];
        int64_t revoked_at;
        int reason;
    } * rows;
    size_t n, cap;
};

static int collect_revoked(void *arg, const struct ledger_issuance *rec)
{
    struct revoked_list *list = arg;
    struct revoked_row *grown;
    size_t cap;

    if (list->n == list->cap) {
        cap = list->cap == 0 ? 64 : list->cap * 2;
        if (cap > CRL_MAX_ENTRIES)
            cap = CRL_MAX_ENTRIES;
        if (cap <= list->n || (grown = realloc(list->rows, cap * sizeof(*grown))) == NULL)
            return DEVID_ERR_ALLOC;
        list->rows = grown;
        list->cap = cap;
    }
    snprintf(list->rows[list->n].serial, LEDGER_SERIAL_LEN, "%s", rec->cert_serial);
    list->rows[list->n].revoked_at = rec->revoked_at;
    list->rows[list->n].reason = rec->revocation_reason;
    list->n++;
    return 0;
}

int revocation_crl_issue(X509_CRL **out, struct revocation_info *info, struct ledger *l,
                         struct ca *ca, time_t now, long next_update_seconds)
{
    struct revoked_list revoked = {NULL, 0, 0};
    struct crl_entry *entries = NULL;
    struct signreq_crl contents;
    X509_CRL *crl = NULL;
    uint64_t n = 0;
    int64_t revision = 0;
    size_t i;
    int r = DEVID_ERR_INTERNAL;

    *out = NULL;
    if ((r = ledger_crl_snapshot(l, &n, &revision, (int64_t)now, CRL_MAX_ENTRIES, collect_revoked,
                                 &revoked)) != 0)
        goto out;
    if (revoked.n > 0 && (entries = calloc(revoked.n, sizeof(*entries))) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    for (i = 0; i < revoked.n; i++) {
        entries[i].serial_hex = revoked.rows[i].serial;
        entries[i].revoked_at = revoked.rows[i].revoked_at;
        entries[i].reason = revoked.rows[i].reason;
    }
    memset(&contents, 0, sizeof(contents));
    contents.number = n;
    contents.this_update = (int64_t)now;
    contents.next_update_seconds = next_update_seconds;
    contents.n = revoked.n;
    contents.entries = entries;
    if ((r = ca_sign_crl(ca, &crl, &contents)) != 0)
        goto out;
    if (info != NULL) {
        info->number = n;
        info->count = revoked.n;
        info->revision = revision;
    }
    *out = crl;
    crl = NULL;
    r = 0;
out:
    X509_CRL_free(crl);
    free(entries);
    free(revoked.rows);
    return r;
}
