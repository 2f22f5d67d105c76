/* Loading the manufacturer trust store from files: the shell around chain.h. */
#ifndef DEVID_VERIFIER_TRUST_H
#define DEVID_VERIFIER_TRUST_H

#include "verifier/chain.h"

/* Most root certificates one trust directory may hold. */
#define TRUST_MAX_ROOTS 256

/*
 * trust_load sets |*out| to a new store holding every certificate in the
 * *.pem and *.crt files of directory |roots_dir| as trust anchors, plus the
 * certificates of PEM file |intermediates| (may be NULL) as untrusted
 * intermediates. Each root must be a self-signed CA; anything else is refused
 * naming the file and subject. Logs each root loaded. The caller owns |*out|.
 * Returns 0 or a DEVID_ERR_* code.
 */
int trust_load(struct chain_store **out, const char *roots_dir, const char *intermediates);

#endif
