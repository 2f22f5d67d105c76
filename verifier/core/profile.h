/* The operational (LDevID) certificate profile. Pure: builds the unsigned
 * certificate; signing is the CA module's job. */
#ifndef DEVID_VERIFIER_CORE_PROFILE_H
#define DEVID_VERIFIER_CORE_PROFILE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "verifier/core/identity.h"

#define PROFILE_SERIAL_LEN 16

struct profile_input {
    /* Issuing CA certificate (issuer name and AKI come from it). */
    X509 *ca_cert;
    /* The subject's SubjectPublicKeyInfo (the checked CSR's), copied as
     * encoded: its algorithm, parameters and key bits. The certificate holds
     * no decoded key until it is parsed again (X509_get0_pubkey of the
     * unsigned certificate is NULL); encoding the key afresh would cost an
     * encoder and a decoder round under OpenSSL 3.0. */
    const X509_PUBKEY *subject_key;
    /* Identity for the subject: serialNumber, CN = model, O = manufacturer. */
    const struct device_identity *id;
    /* The IDevID: its hardwareModuleName SAN is carried over. */
    X509 *idevid;
    /* Serial number bytes (random, PROFILE_SERIAL_LEN). */
    const uint8_t *serial;
    size_t serial_len;
    /* notBefore = now - 300 s; notAfter = now + validity. */
    time_t now;
    long validity_seconds;
    /* The certificatePolicies OID naming the enrollment's assurance level
     * (assurance_policy_oid), dotted decimal. */
    const char *assurance_oid;
};

/*
 * profile_build sets |*out| to a new unsigned X509 with: version 3, the
 * serial (high bit cleared so it is positive), the subject, keyUsage
 * digitalSignature (critical), extKeyUsage clientAuth, basicConstraints CA:FALSE
 * (critical), SKI, AKI (from the CA's SKI), the hardwareModuleName SAN copied
 * from the IDevID, and certificatePolicies (not critical) holding the one
 * policy in->assurance_oid, without qualifiers. The caller owns |*out|. Returns 0 or a DEVID_ERR_*
 * code.
 */
int profile_build(X509 **out, const struct profile_input *in);

/*
 * profile_response_chain sets |*out| to a new stack of what
 * EnrollResponse.chain carries for certificates issued by |issuer|: |issuer|
 * and then the certificates of |above| (issuer's issuer first, may be NULL),
 * up to but not including the first self-signed one (the root, which the
 * client has out of band). Empty when |issuer| is itself self-signed. The
 * stack holds a reference to each (free with sk_X509_pop_free). Returns 0,
 * DEVID_ERR_INVALID_ARGUMENT or DEVID_ERR_ALLOC.
 */
int profile_response_chain(STACK_OF(X509) **out, X509 *issuer, STACK_OF(X509) *above);

#endif
