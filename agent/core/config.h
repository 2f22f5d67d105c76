/* The agent's configuration: /etc/devid/agent.conf (INI, libinih) with
 * command-line overrides. Parsing is pure: it takes a buffer, opens nothing. */
#ifndef DEVID_AGENT_CORE_CONFIG_H
#define DEVID_AGENT_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_FILE "/etc/devid/agent.conf"
#define CONFIG_DEFAULT_TCTI "device:/dev/tpmrm0"
#define CONFIG_DEFAULT_IDEVID_HANDLE 0x81020000u
#define CONFIG_DEFAULT_IDEVID_NV 0x01C90000u
#define CONFIG_DEFAULT_IAK_NV 0x01C90002u
#define CONFIG_DEFAULT_SRK_HANDLE 0x81000001u
#define CONFIG_DEFAULT_OUT_DIR "/var/lib/devid"
#define CONFIG_DEFAULT_TIMEOUT 30
#define CONFIG_DEFAULT_DEADLINE 300
#define CONFIG_DEFAULT_BACKOFF_INITIAL_MS 1000
#define CONFIG_DEFAULT_BACKOFF_MAX_MS 60000
#define CONFIG_DEFAULT_RENEW_AT 0.66
/* Largest configuration file read. */
#define CONFIG_FILE_MAX (64 * 1024)

/* TLS versions of the connection to the verifier: 0 is 1.2 to 1.3. */
enum config_tls {
    CONFIG_TLS_DEFAULT = 0,
    CONFIG_TLS_1_2 = 12,
    CONFIG_TLS_1_3 = 13,
};

/* [tpm] ek: whether and with which EK to run credential activation. */
enum config_ek {
    CONFIG_EK_OFF = 0, /* never (default) */
    CONFIG_EK_AUTO,    /* the first EK certificate in NV: ECC P-256, ECC P-384, RSA */
    CONFIG_EK_RSA,     /* the RSA EK (0x01C00002) only */
    CONFIG_EK_ECC,     /* an ECC EK (0x01C0000A, else 0x01C00016) only */
};

/* [tpm] ak: whether to create an attestation key for the boot-state gate
 * on a device without an IAK (docs/protocol.md section 6.2). */
enum config_ak {
    CONFIG_AK_OFF = 0, /* never (default) */
    CONFIG_AK_AUTO,    /* with an EK and without an IAK */
};

/* Every string is owned (malloc) by the struct and may be NULL (unset). */
struct agent_config {
    char *url;                   /* [verifier] url */
    char *ca_bundle;             /* [verifier] ca_bundle */
    char *proxy;                 /* [verifier] proxy; NULL: libcurl's environment variables */
    enum config_tls tls_version; /* [verifier] tls_version */
    char *tcti;                  /* [tpm] tcti */
    uint32_t idevid_handle;      /* [tpm] idevid_handle */
    uint32_t idevid_nv;          /* [tpm] idevid_cert_nv */
    char *idevid_cert_file;      /* [tpm] idevid_cert_file: instead of idevid_nv */
    uint32_t iak_handle;         /* [tpm] iak_handle; 0: no IAK, certify with the IDevID */
    uint32_t iak_nv;             /* [tpm] iak_cert_nv */
    char *iak_cert_file;         /* [tpm] iak_cert_file: instead of iak_nv */
    char *chain_file;            /* [tpm] chain_file: PEM intermediates */
    uint32_t chain_nv;           /* [tpm] chain_nv: DER intermediates; 0: none */
    uint32_t chain_nv_last;      /* chain_nv = FIRST-LAST: every defined index in
                                  * [chain_nv, chain_nv_last] holds one; 0: chain_nv
                                  * alone, one or more back to back */
    uint32_t srk_handle;         /* [tpm] srk_handle */
    uint32_t persist_handle;     /* [tpm] persist_handle; 0: key blob only */
    enum config_ek ek;           /* [tpm] ek */
    enum config_ak ak;           /* [tpm] ak */
    char *out_dir;               /* [output] dir */
    long timeout;                /* [retry] request_timeout, seconds */
    long deadline;               /* [retry] deadline, seconds for the whole run */
    long backoff_initial_ms;     /* [retry] backoff_initial, milliseconds */
    long backoff_max_ms;         /* [retry] backoff_max, milliseconds */
    double renew_at;             /* [renew] renew_at: fraction of the lifetime */
};

/* agent_config_init fills |cfg| with the defaults. Returns 0 or DEVID_ERR_ALLOC. */
int agent_config_init(struct agent_config *cfg);

/* agent_config_cleanup frees what |cfg| owns and zeroes it. agent_config_cleanup(NULL)
 * does nothing. */
void agent_config_cleanup(struct agent_config *cfg);

/*
 * agent_config_parse applies the INI text |buf| (NUL-terminated) to |cfg|, on top of
 * what it holds. |source| names the text in messages (a file name). On error
 * writes "SOURCE:LINE: reason" to |err| (|err_len| bytes), leaves the keys read
 * before the error applied, and returns DEVID_ERR_CONFIG; returns 0 otherwise.
 * Unknown sections and keys, and malformed values, are errors.
 */
int agent_config_parse(struct agent_config *cfg, char *err, size_t err_len, const char *buf,
                       const char *source);

/*
 * agent_config_set applies one |key| = |value| of |section| to |cfg|: what
 * agent_config_parse does per line and what command-line flags use. On error writes
 * the reason (without a location) to |err| and returns DEVID_ERR_CONFIG.
 */
int agent_config_set(struct agent_config *cfg, char *err, size_t err_len, const char *section,
                     const char *key, const char *value);

/*
 * agent_config_check verifies that |cfg| is complete and coherent for enrolling: a
 * verifier URL (https://) and CA bundle, handles of the right kinds that do not
 * collide, a deadline at least as long as one request. On error writes the
 * reason to |err| and returns DEVID_ERR_CONFIG.
 */
int agent_config_check(const struct agent_config *cfg, char *err, size_t err_len);

#endif
