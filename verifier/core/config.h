/* devid-verifier's settings: one table of keys (config.c) is both the INI
 * file's grammar and the `serve` command line. Pure: parses text; the caller
 * reads the file. */
#ifndef DEVID_VERIFIER_CORE_CONFIG_H
#define DEVID_VERIFIER_CORE_CONFIG_H

#include <stddef.h>

/* The ledger used when none is configured. */
#define VERIFIER_CONFIG_DEFAULT_LEDGER "sqlite:/var/lib/devid/ledger.db"

/* The verifier's settings. Strings are owned by the struct (NULL when
 * unset); verifier_config_cleanup frees them. */
struct verifier_config {
    /* [server] The TLS listener for devices, host:port or [v6]:port. */
    char *listen;
    /* Plain-HTTP /healthz and /metrics; NULL or "" disables it. */
    char *metrics_listen;
    /* Worker threads; 0 means one per online core. */
    int workers;
    /* This replica's name in the ledger; NULL means the host name. */
    char *replica_id;
    /* Load balancers allowed to send a PROXY protocol v2 header on the
     * device listener (verifier/core/proxy.h syntax); NULL: none. */
    char *proxy_from;
    /* The user the serving process runs as when started as root (the
     * signer keeps root); NULL means "devid" if that user exists. */
    char *user;
    /* [tls] PEM server certificate (with chain) and key; TLS1_2_VERSION or
     * TLS1_3_VERSION. */
    char *tls_cert;
    char *tls_key;
    int tls_min;
    int tls_max;
    /* [trust] The simple form (a roots directory and an intermediates
     * file), or a manufacturers file with a policy file. */
    char *roots;
    char *intermediates;
    char *manufacturers;
    char *policy;
    /* [ca] The issuing CA certificate, its key (an OpenSSL store URI), the
     * provider holding the key and its TPM; the operational certificate
     * validity. */
    char *ca_cert;
    char *ca_key;
    char *ca_provider;
    char *ca_tcti;
    long validity_seconds;
    /* The certificatePolicies arc naming the assurance level
     * (verifier/core/assurance.h; default ASSURANCE_DEFAULT_ARC). */
    char *assurance_arc;
    /* [token] The shared token key file; the accept-only key file of a key
     * change (NULL: none; the file may be absent, meaning no such key); the
     * challenge lifetime. */
    char *token_key;
    char *token_accept_key;
    long token_ttl_seconds;
    /* [ledger] The issuance ledger's URI (each worker opens its own handle). */
    char *ledger;
    /* [limits] Connections open at once (past it, 503 and Retry-After);
     * TLS handshakes in progress at once (past it, refused); Retry-After
     * advice in seconds; request limits. */
    int max_connections;
    int max_handshakes;
    int max_handshakes_per_source;
    int retry_after_seconds;
    size_t max_body_challenge;
    size_t max_body_enroll;
    size_t max_headers_size;
    int max_header_count;
    /* [timeouts] In seconds: from accept to a complete ClientHello (PROXY
     * header included); the TLS handshake from its ClientHello; one request
     * from its first
     * byte to its answer; an idle keep-alive connection; on SIGTERM, how long
     * requests in flight may take to finish. */
    int timeout_hello;
    int timeout_handshake;
    int timeout_request;
    int timeout_idle;
    int shutdown_grace_seconds;
    /* [crl] How often each replica asks the ledger whether a certificate was
     * revoked, and rebuilds the CRL it serves at GET /v1/crl if so. */
    int crl_poll_seconds;
    /* Not a key: the lifetime of the CRL served at GET /v1/crl. */
    long crl_next_update_seconds;
    /* [log] The issuance log's signing key (an OpenSSL store URI or a PEM
     * file, mode 0600), which only the signer process opens; NULL: the log
     * is kept but no tree head is signed. How often each replica indexes
     * new entries and signs a head that moved; how often a head that did
     * not move is signed again (its timestamp says the log was live). */
    char *log_key;
    int log_poll_seconds;
    int log_sign_seconds;
};

/*
 * verifier_config_init fills |c| with the documented defaults (those of
 * deploy/config/verifier.conf.example). Returns 0, or DEVID_ERR_ALLOC (|c|
 * is then still safe to clean up).
 */
int verifier_config_init(struct verifier_config *c);

/* verifier_config_cleanup frees what |c| owns and zeroes it. */
void verifier_config_cleanup(struct verifier_config *c);

/*
 * verifier_config_parse applies the |len| bytes of INI at |buf| to |c|.
 * |file| names the buffer in messages. Unknown sections or keys, empty
 * strings and bad values are refused: |why| gets "FILE:LINE: reason" and
 * DEVID_ERR_CONFIG (or DEVID_ERR_ALLOC) is returned; keys before the bad
 * line stay applied.
 */
int verifier_config_parse(struct verifier_config *c, const char *buf, size_t len, const char *file,
                          char *why, size_t why_len);

/* The command-line option of one key. */
struct verifier_config_option {
    /* The long option, without "--" ("tls-cert"). */
    const char *name;
    /* Its argument as --help shows it ("FILE"). */
    const char *arg;
    /* What --help says, one or more lines separated by '\n'. */
    const char *help;
};

/*
 * verifier_config_get0_option returns the option of the |i|th key (a static
 * entry, borrowed), or NULL past the last key: every key has one.
 */
const struct verifier_config_option *verifier_config_get0_option(size_t i);

/*
 * verifier_config_get0_key sets |*section| and |*name| to the INI section and
 * key of the |i|th key (static strings, borrowed) and returns 0, or returns
 * DEVID_ERR_NOT_FOUND past the last key. The man page generator reads them.
 */
int verifier_config_get0_key(size_t i, const char **section, const char **name);

/*
 * verifier_config_set_option applies |value| given on the command line to
 * the |i|th key of |c|. A string may be empty there (--metrics-listen ""
 * disables the listener). Returns 0, or DEVID_ERR_CONFIG with the option and
 * the accepted values in |why|, or DEVID_ERR_ALLOC.
 */
int verifier_config_set_option(struct verifier_config *c, size_t i, const char *value, char *why,
                               size_t why_len);

#endif
