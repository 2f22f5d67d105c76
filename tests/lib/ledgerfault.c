/* A ledger fault for tests, where no real one can be made safely: preloaded
 * into devid-verifier (LD_PRELOAD), it makes every sqlite3_step fail with
 * SQLITE_IOERR while the file named by DEVID_LEDGER_FAULT exists, and is
 * SQLite's own sqlite3_step otherwise. tests/integration/test_wire.sh uses it
 * to check that GET /v1/crl answers a ledger fault with an Error.
 *
 *   cc -shared -fPIC -o ledgerfault.so tests/lib/ledgerfault.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include <sqlite3.h>

int sqlite3_step(sqlite3_stmt *stmt)
{
    static int (*real)(sqlite3_stmt *);
    const char *fault = getenv("DEVID_LEDGER_FAULT");

    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "sqlite3_step");
    if (real == NULL || (fault != NULL && access(fault, F_OK) == 0))
        return SQLITE_IOERR;
    return real(stmt);
}
