/* Dropping root for good. */
#include "common/io/runas.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/io/log.h"

int runas_lookup(struct runas *out, const char *name)
{
    const struct passwd *pw;
    int n, h;

    memset(out, 0, sizeof(*out));
    errno = 0;
    if ((pw = getpwnam(name)) == NULL)
        return DEVID_ERR_NOT_FOUND;
    n = snprintf(out->name, sizeof(out->name), "%s", pw->pw_name);
    h = snprintf(out->home, sizeof(out->home), "%s", pw->pw_dir != NULL ? pw->pw_dir : "/");
    if (n < 0 || (size_t)n >= sizeof(out->name) || h < 0 || (size_t)h >= sizeof(out->home))
        return DEVID_ERR_CONFIG;
    out->uid = pw->pw_uid;
    out->gid = pw->pw_gid;
    return 0;
}

int runas_become(const struct runas *ra)
{
    if (setgroups(1, &ra->gid) != 0 || setgid(ra->gid) != 0 || setuid(ra->uid) != 0) {
        log_err("cannot become user %s: %s", ra->name, strerror(errno));
        return DEVID_ERR_INTERNAL;
    }
    if (ra->uid != 0 && (setuid(0) == 0 || geteuid() == 0 || (ra->gid != 0 && setgid(0) == 0))) {
        log_err("user %s: root could be regained after dropping it", ra->name);
        return DEVID_ERR_INTERNAL;
    }
    if (setenv("HOME", ra->home, 1) != 0 || setenv("USER", ra->name, 1) != 0 ||
        setenv("LOGNAME", ra->name, 1) != 0) {
        log_err("user %s: cannot set HOME, USER and LOGNAME", ra->name);
        return DEVID_ERR_INTERNAL;
    }
    return 0;
}
