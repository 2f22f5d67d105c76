/* devid-verifier's configuration file (INI). Pure: parses text; the caller
 * reads the file. */
#ifndef DEVID_VERIFIER_CORE_CONFIG_H
#define DEVID_VERIFIER_CORE_CONFIG_H

#include <stddef.h>

#include "verifier/server/server.h"

/* The verifier's settings: the server's, and the files it loads. Strings are
 * owned by the struct (see config_set_str). */
struct verifier_config {
    struct server_config server;
    char *listen;
    char *metrics_listen;
    char *tls_cert;
    char *tls_key;
    char *roots;
    char *intermediates;
    char *manufacturers;
    char *policy;
    char *ca_cert;
    char *ca_key;
    char *ca_provider;
    char *ca_tcti;
    char *token_key;
    char *ledger;
    char *replica_id;
};

/* config_init fills |c| with the documented defaults. */
void config_init(struct verifier_config *c);

/* config_cleanup frees what |c| owns. */
void config_cleanup(struct verifier_config *c);

/*
 * config_set_str replaces the string at |*field| with a copy of |value| and
 * points the server settings at the copies. Returns 0 or DEVID_ERR_ALLOC.
 */
int config_set_str(struct verifier_config *c, char **field, const char *value);

/*
 * config_parse applies the INI |text| to |c|. |name| is the file name used in
 * messages. Unknown sections or keys and bad values are refused: |err| gets
 * "NAME:LINE: reason" and DEVID_ERR_CONFIG is returned.
 */
int config_parse(struct verifier_config *c, const char *text, const char *name, char *err,
                 size_t err_len);

#endif
