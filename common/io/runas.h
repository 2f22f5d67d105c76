/* Dropping root for good: the service account is looked up once, as root,
 * and each process that parses or signs switches to it once everything it
 * needs root for is open (the signer after loading its keys, the serving
 * process after binding its sockets and reading its TLS key). */
#ifndef DEVID_COMMON_IO_RUNAS_H
#define DEVID_COMMON_IO_RUNAS_H

#include <sys/types.h>

struct runas {
    uid_t uid;
    gid_t gid;
    char name[64];
    char home[256];
};

/*
 * runas_lookup fills |out| with the account called |name|. Returns 0,
 * DEVID_ERR_NOT_FOUND when there is no such user, or DEVID_ERR_CONFIG when
 * its name or home directory does not fit.
 */
int runas_lookup(struct runas *out, const char *name);

/*
 * runas_become sets the process's groups to |ra|'s group alone, then its
 * group and user, and checks that root cannot be regained. It sets HOME,
 * USER and LOGNAME to the account's, so that libraries that look there
 * (libpq's .pgpass) find the account's files. Returns 0 or
 * DEVID_ERR_INTERNAL, logged with the reason.
 */
int runas_become(const struct runas *ra);

#endif
