/* A chain verdict kept with one TLS connection, so that the challenge and
 * the enroll on that connection verify the device's chain once.
 *
 * A kept verdict is reused only when chain_verify would reach the same
 * verdict again: the same trust store (a reload makes a new store, with a new
 * id, so a verdict from before it is never reused), the same leaf, the same
 * untrusted certificates in the same order, and a time inside the window the
 * verdict holds for (from when it was reached to the first notAfter on the
 * path or the first lastUpdate or nextUpdate of the manufacturer's CRLs that
 * lies ahead). Only successes are kept; a refusal is verified afresh. */
#ifndef DEVID_VERIFIER_CORE_CHAIN_MEMO_H
#define DEVID_VERIFIER_CORE_CHAIN_MEMO_H

#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "verifier/core/chain.h"

struct chain_memo {
    uint64_t store_id;
    uint8_t leaf_sha256[32];
    uint8_t chain_sha256[32];
    time_t from, until;
    int kept;
    struct chain_verdict verdict;
    /* Verifications done and verdicts reused, for tests and metrics. */
    unsigned verified, reused;
    /* Certificates parsed from this connection's requests (see
     * chain_memo_der_cert), and how many were answered without a parse. */
    STACK_OF(X509) *parsed;
    size_t parsed_bytes;
    unsigned parse_reused;
};

/* The most certificates one connection keeps parsed, and the most DER bytes
 * they may hold together: a connection cannot pin more than this. */
#define CHAIN_MEMO_MAX_PARSED 16
#define CHAIN_MEMO_MAX_PARSED_BYTES 16384

/*
 * chain_memo_verify is chain_verify(store, verdict, leaf, device_chain, now,
 * why, why_len), answered from |memo| when it holds this verdict (see above)
 * and kept in |memo| when it succeeds. |memo| may be NULL: then it is
 * chain_verify. |verdict| is the caller's own either way.
 */
int chain_memo_verify(struct chain_memo *memo, const struct chain_store *store,
                      struct chain_verdict *verdict, X509 *leaf, STACK_OF(X509) *device_chain,
                      time_t now, char *why, size_t why_len);

/*
 * chain_memo_der_cert returns a new reference to the certificate whose DER
 * is the |len| bytes at |der| (1..|max| bytes): one of |known| (the chain
 * TLS parsed at the handshake; may be NULL) or one |memo| parsed before on
 * this connection, when its DER is these bytes; else it parses them
 * (chain_der_cert) and keeps the result in |memo| for the connection's next
 * request. Equal bytes parse to an equal certificate, so the answer is the
 * one chain_der_cert would give; only the parse is saved (under OpenSSL 3.0,
 * each decodes the public key through the provider decoders). |memo| may be
 * NULL: then it is chain_der_cert, |known| aside. NULL when the bytes are
 * not exactly one DER certificate.
 */
X509 *chain_memo_der_cert(struct chain_memo *memo, STACK_OF(X509) *known, const uint8_t *der,
                          size_t len, size_t max);

/* chain_memo_cleanup frees what |memo| keeps and zeroes it; NULL is a no-op. */
void chain_memo_cleanup(struct chain_memo *memo);

#endif
