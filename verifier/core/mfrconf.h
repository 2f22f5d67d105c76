/* The manufacturers file (deploy/config/manufacturers.conf.example): which
 * manufacturers (and which TPM vendors, for EK certificates) are trusted, the files holding their
 * roots, intermediates and CRLs, and their algorithm and revocation settings. Pure: parses a
 * buffer; trust.c reads the files it names. */
#ifndef DEVID_VERIFIER_CORE_MFRCONF_H
#define DEVID_VERIFIER_CORE_MFRCONF_H

#include <stddef.h>

#include "verifier/core/chain.h"

/* Most files of one kind one manufacturer may name. */
#define MFRCONF_MAX_FILES 32

/* The two kinds of trust entry. */
enum mfrconf_kind {
    /* [manufacturer "NAME"]: roots of IDevID (and IAK) chains. */
    MFRCONF_MANUFACTURER = 0,
    /* [tpm_vendor "NAME"]: roots of TPM endorsement key certificates (TCG
     * EK Credential Profile), for credential activation. */
    MFRCONF_TPM_VENDOR,
};

struct mfrconf_entry {
    enum mfrconf_kind kind;
    char name[CHAIN_NAME_MAX];
    struct chain_mfr_settings settings;
    /* Paths as written (relative ones are relative to the file's directory). */
    char *roots[MFRCONF_MAX_FILES];
    size_t n_roots;
    char *intermediates[MFRCONF_MAX_FILES];
    size_t n_intermediates;
    char *crls[MFRCONF_MAX_FILES];
    size_t n_crls;
};

struct mfrconf {
    struct mfrconf_entry *entries[CHAIN_MAX_MANUFACTURERS];
    size_t n;
};

/*
 * mfrconf_parse sets |*out| to the manufacturers described by the |len| bytes
 * at |buf| (|file| names it in messages). Sections are
 * [manufacturer "NAME"] and [tpm_vendor "NAME"] (the same keys; names are
 * unique within each kind; at least one manufacturer); every entry needs at
 * least one roots file;
 * revocation defaults to soft when CRLs are named and none otherwise, and
 * "none" with CRLs is refused. Unknown sections and keys and bad values are
 * refused with "FILE:LINE: reason" in |why|; returns DEVID_ERR_CONFIG (or
 * DEVID_ERR_ALLOC) and leaves |*out| NULL. The caller owns |*out|.
 */
int mfrconf_parse(struct mfrconf **out, const char *buf, size_t len, const char *file, char *why,
                  size_t why_len);

/* mfrconf_free frees |c|; NULL is a no-op. */
void mfrconf_free(struct mfrconf *c);

#endif
