/* The simulated factory line: a manufacturer's IDevID intermediate CA (read
 * from the files `devid-factory ca` writes) issuing software IDevIDs with the
 * same certificate profile as deploy/factory/devid-factory. */
#ifndef DEVID_TESTS_FLEETSIM_FACTORY_H
#define DEVID_TESTS_FLEETSIM_FACTORY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/tpmkey.h"

/* Longest serialNumber (X.520 ub-serial-number) and model (ub-common-name). */
#define FACTORY_SERIAL_MAX 64
#define FACTORY_MODEL_MAX 64
#define FACTORY_NAME_MAX 64
/* A marshalled ECC P-256 TPMT_PUBLIC is 88 bytes; leave room. */
#define FACTORY_TPM_PUBLIC_MAX 256

struct factory;

/* A simulated device: its IDevID key and certificate, and what its TPM would
 * report about the IDevID key. The key never leaves the simulator. */
struct device {
    char serial[FACTORY_SERIAL_MAX + 1];
    EVP_PKEY *key;
    X509 *cert;
    /* The IDevID key's TPMT_PUBLIC (marshalled) and its Name and qualified
     * Name (a primary key in the endorsement hierarchy). */
    uint8_t pub[FACTORY_TPM_PUBLIC_MAX];
    size_t pub_len;
    uint8_t qualified_name[TPMKEY_NAME_MAX];
    size_t qualified_name_len;
    /* Qualified Name of the storage key the LDevID keys are created under. */
    uint8_t srk_qualified_name[TPMKEY_NAME_MAX];
    size_t srk_qualified_name_len;
    /* TPMS_CLOCK_INFO and firmware version of this device's TPM. */
    uint64_t clock_ms;
    uint32_t reset_count;
    uint32_t restart_count;
    uint64_t firmware_version;
};

/*
 * factory_load reads DIR/intermediate.pem, DIR/intermediate.key and the
 * manufacturer name (DIR/name, else the intermediate's subject O) and sets
 * |*out| to a new factory the caller owns. Errors are printed, naming the
 * file. Returns 0, DEVID_ERR_IO for an unreadable file or DEVID_ERR_CONFIG.
 */
int factory_load(struct factory **out, const char *dir);

/* factory_free frees |f|; factory_free(NULL) does nothing. */
void factory_free(struct factory *f);

/* factory_get0_intermediate returns the intermediate CA certificate (borrowed). */
X509 *factory_get0_intermediate(const struct factory *f);

/* factory_get0_intermediate_der returns the intermediate's DER (borrowed). */
const uint8_t *factory_get0_intermediate_der(const struct factory *f, size_t *len);

/* factory_get0_name returns the manufacturer name (subject O of IDevIDs). */
const char *factory_get0_name(const struct factory *f);

/*
 * factory_device_new makes a device: a fresh P-256 IDevID key and a
 * certificate for it issued by |f| with subject O=<manufacturer>, CN=|model|,
 * serialNumber=|serial|, the hardwareModuleName SAN (hwType
 * 1.3.6.1.4.1.32473.1.1, hwSerialNum |serial|), keyUsage digitalSignature
 * (critical), basicConstraints CA:FALSE (critical), SKI and AKI. Safe to call
 * from several threads on one |f|. Sets |*out| to a device the caller frees
 * with factory_device_free. Returns 0 or a DEVID_ERR_* code.
 */
int factory_device_new(struct device **out, const struct factory *f, const char *model,
                       const char *serial);

/* factory_device_free frees |d|; factory_device_free(NULL) does nothing. */
void factory_device_free(struct device *d);

/*
 * factory_check_serial returns 0 when |s| is a serial the factory accepts
 * (1-64 characters from [A-Za-z0-9.:()?-], as devid-factory, less the space),
 * else DEVID_ERR_INVALID_ARGUMENT.
 */
int factory_check_serial(const char *s);

/*
 * factory_check_model returns 0 when |s| is a model the factory accepts (1-64
 * characters from [A-Za-z0-9 ._:()&'?-], no leading or trailing space), else
 * DEVID_ERR_INVALID_ARGUMENT.
 */
int factory_check_model(const char *s);

#endif
