/* Device identity from an IDevID certificate. Pure. */
#ifndef DEVID_VERIFIER_CORE_IDENTITY_H
#define DEVID_VERIFIER_CORE_IDENTITY_H

#include <stddef.h>

#include <openssl/x509.h>

/* OID of the hardwareModuleName otherName (RFC 4108). */
#define IDENTITY_OID_HWMODULENAME "1.3.6.1.5.5.7.8.4"

/* Size of each name field of struct device_identity, NUL included. */
#define IDENTITY_NAME_LEN 128

struct device_identity {
    /* From the trust anchor (chain_verdict.manufacturer). */
    char manufacturer[IDENTITY_NAME_LEN];
    /* Subject commonName of the IDevID. */
    char model[IDENTITY_NAME_LEN];
    /* Subject serialNumber; must equal the hardwareModuleName hwSerialNum when
     * that SAN is present. */
    char serial[IDENTITY_NAME_LEN];
    /* hwType OID of the hardwareModuleName, dotted, or "" when absent. */
    char hw_type[IDENTITY_NAME_LEN];
    /* SHA-256 of the certificate's DER, lowercase hex (the deny list's
     * fingerprint form). */
    char fingerprint[65];
};

/*
 * identity_extract fills |id| from |idevid| and |manufacturer|. The serial is
 * the subject serialNumber and the hwSerialNum of the hardwareModuleName SAN:
 * either may be absent (802.1AR allows an empty subject), both absent is
 * refused, and when both are present they must be equal. The model is the
 * subject CN, else the hardwareModuleName hwType OID. Printable ASCII only.
 * Returns 0, or DEVID_ERR_IDENTITY with a reason naming the field (and both
 * values on a mismatch) in |why|.
 */
int identity_extract(struct device_identity *id, X509 *idevid, const char *manufacturer, char *why,
                     size_t why_len);

/*
 * identity_extract_serial writes the device serial of |cert| (an IDevID or
 * IAK certificate; same rules as identity_extract) to |serial| (|len| bytes).
 * Returns 0 or DEVID_ERR_IDENTITY with the reason in |why|, which names |what|
 * ("IDevID", "IAK certificate").
 */
int identity_extract_serial(char *serial, size_t len, X509 *cert, const char *what, char *why,
                            size_t why_len);

#endif
