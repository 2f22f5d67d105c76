/* What the privilege-separated signer checks before it signs: that a
 * certificate is one devid's certificate profile (verifier/core/profile.c)
 * builds, and that a CRL moves forward. Pure: the signer passes its CA
 * certificate, its limits and `now`. */
#ifndef DEVID_VERIFIER_CORE_SIGNCHECK_H
#define DEVID_VERIFIER_CORE_SIGNCHECK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "verifier/core/certview.h"
#include "verifier/core/signreq.h"

/* How far the signer's clock and the worker's may disagree. */
#define SIGNCHECK_CLOCK_SLACK 300

struct signcheck_rules {
    /* The issuing CA certificate: the issuer name and the key identifier. */
    X509 *ca_cert;
    /* The longest certificate lifetime ([ca] validity_days); notBefore may
     * be backdated by 300 s more (profile.c). */
    long max_validity_seconds;
    /* The longest CRL lifetime ([crl] next_update). */
    long max_crl_next_update_seconds;
    /* A dotted OID: every certificatePolicies OID must be it or under it.
     * NULL allows any certificatePolicies extension. */
    const char *policy_arc;
};

/*
 * signcheck_cert returns 0 when |cert| matches the operational certificate
 * profile under |rules| at |now|: version 3; issuer = the CA's subject and a
 * subject that is not; a positive serial of 8 to 20 bytes; notBefore within
 * the clock slack (and 300 s backdating) of |now|, and a lifetime of at most
 * the maximum; no unique IDs; exactly these extensions, each once:
 * basicConstraints CA:FALSE without pathLen (critical), keyUsage
 * digitalSignature only (critical), extKeyUsage clientAuth only, the subject
 * key identifier of its key, the authority key identifier of the CA (key id
 * only), and optionally a subjectAltName of hardwareModuleName otherNames
 * only and a certificatePolicies under the configured arc. Otherwise it
 * returns DEVID_ERR_REFUSED with what was wrong in |why|. The signature
 * fields are ignored (the signer replaces them).
 */
int signcheck_cert(const struct signcheck_rules *rules, const CERT_VIEW *cert, time_t now,
                   char *why, size_t why_len);

/*
 * signcheck_crl returns 0 when the CRL request |crl| may be signed at |now|:
 * its number is above |last_number| (when |have_last|), thisUpdate is within
 * the clock slack of |now|, and its lifetime at most the maximum. Otherwise
 * DEVID_ERR_REFUSED with what was wrong in |why|.
 */
int signcheck_crl(const struct signcheck_rules *rules, const struct signreq_crl *crl, int have_last,
                  uint64_t last_number, time_t now, char *why, size_t why_len);

/*
 * signcheck_tree_head returns 0 when the tree head request |req| may be
 * signed at |now| with the log key, given the last head this signer signed
 * (|last|, NULL when none since it started): the timestamp is within the
 * clock slack of |now| and not before the last one's; the size is not below
 * the last one's; the same size has the same root; a larger size comes with
 * a consistency proof (RFC 9162 2.1.4.2) that the last head's tree is a
 * prefix of this one. Otherwise DEVID_ERR_REFUSED with what was wrong in
 * |why|. With no last head, any head whose timestamp is now is signed: the
 * signer's memory starts when it does, and `devid-verifier audit --earlier`
 * checks a rewrite across restarts.
 */
int signcheck_tree_head(const struct signreq_tree_head *req, const struct tlog_head *last,
                        time_t now, char *why, size_t why_len);

#endif
