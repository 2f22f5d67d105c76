/* The rules chain_verify applies to the path X509_verify_cert built, beyond
 * OpenSSL's: every key and signature below the anchor meets the
 * manufacturer's algorithm settings, and the leaf's keyUsage and critical
 * SAN fit an IDevID. Pure. */
#ifndef DEVID_VERIFIER_CORE_CHAIN_RULES_H
#define DEVID_VERIFIER_CORE_CHAIN_RULES_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "verifier/core/chain.h"

/*
 * chain_rules_check_path checks |path| (leaf first, anchor last) for
 * manufacturer |mfr| with settings |set|: each key (RSA and EC sizes, no
 * explicit EC parameters, RSA, EC or EdDSA only), each signature below the
 * anchor (no MD2/4/5, SHA-1 only when allowed), that the leaf is an end
 * entity (no basicConstraints cA TRUE, no keyUsage keyCertSign or cRLSign),
 * the leaf's keyUsage (when present, must allow digitalSignature for
 * CHAIN_LEAF_IDEVID, keyEncipherment or keyAgreement for CHAIN_LEAF_EK) and
 * a critical SAN
 * (hardwareModuleName and permanentIdentifier otherNames only). Returns 0, or
 * DEVID_ERR_CHAIN_INVALID with chain_refuse's message in |why|.
 */
int chain_rules_check_path(const struct chain_mfr_settings *set, const char *mfr,
                           enum chain_leaf leaf, STACK_OF(X509) *path, char *why, size_t why_len);

/* chain_rules_key_str writes a short description of |pk| ("EC P-256 (256
 * bits)", "RSA 2048 bits") to |buf|. */
void chain_rules_key_str(char *buf, size_t len, EVP_PKEY *pk);

#endif
