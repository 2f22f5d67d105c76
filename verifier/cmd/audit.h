#ifndef DEVID_VERIFIER_CMD_AUDIT_H
#define DEVID_VERIFIER_CMD_AUDIT_H

#include <openssl/evp.h>

#include "verifier/ledger/ledger.h"

/* cmd_audit_main runs `devid-verifier audit`; returns the exit code. */
int cmd_audit_main(int argc, char **argv);

/*
 * audit_print_proof prints, for `show --proof`, the inclusion proof of the
 * issuance entry of certificate |cert_serial| (normalized hex) under the
 * newest signed head stored in |l|: the entry's index and leaf, the tree
 * size, the root, the signed head and the audit path, one "name: hex" line
 * each (docs/protocol.md, "Checking an inclusion proof"). Returns the exit
 * code: 0, 1 when there is no such entry or head yet, or 70.
 */
int audit_print_proof(struct ledger *l, const char *cert_serial);

/* audit_load_pubkey sets |*out| to the PEM public key, or the key of the
 * PEM certificate, in file |path| (caller frees). Returns 0,
 * DEVID_ERR_CONFIG for a file that holds neither, or the store_read code. */
int audit_load_pubkey(EVP_PKEY **out, const char *path);

#endif
