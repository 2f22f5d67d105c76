/* A disk with slower fsync, for benchmarks: preloaded (LD_PRELOAD), it adds
 * BENCH_FSYNC_DELAY_US microseconds to every fsync and fdatasync, then calls
 * the real one, and at exit prints "fsyncs=N" on stderr, the number it saw.
 * tests/bench/bench_ledger.sh uses it to show what group commit does where
 * a durable write takes as long as on the disks the issue measured, and how
 * many issuances each fsync carried.
 *
 *   cc -shared -fPIC -o slowsync.so tests/bench/slowsync.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static atomic_ulong syncs;

static void delay(void)
{
    const char *s = getenv("BENCH_FSYNC_DELAY_US");
    char *end = NULL;
    long us;
    struct timespec ts;

    atomic_fetch_add(&syncs, 1);
    if (s == NULL)
        return;
    errno = 0;
    us = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || us <= 0 || us > 1000000)
        return;
    ts.tv_sec = 0;
    ts.tv_nsec = us * 1000;
    nanosleep(&ts, NULL);
}

int fsync(int fd)
{
    static int (*real)(int);

    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "fsync");
    delay();
    return real != NULL ? real(fd) : -1;
}

int fdatasync(int fd)
{
    static int (*real)(int);

    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "fdatasync");
    delay();
    return real != NULL ? real(fd) : -1;
}

__attribute__((destructor)) static void report(void)
{
    fprintf(stderr, "fsyncs=%lu\n", atomic_load(&syncs));
}
