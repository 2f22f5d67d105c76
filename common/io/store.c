#include "common/io/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/io/log.h"

int store_path(char *out, size_t out_size, const char *dir, const char *name)
{
    int n;

    if (out == NULL || dir == NULL || name == NULL || out_size == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    n = snprintf(out, out_size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= out_size) {
        log_err("path %s/%s is too long", dir, name);
        return DEVID_ERR_CONFIG;
    }
    return 0;
}

/* dir_of writes the directory part of |path| to |dir|. */
static int dir_of(char *dir, size_t size, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n;

    if (slash == NULL)
        return snprintf(dir, size, ".") < (int)size ? 0 : DEVID_ERR_CONFIG;
    n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= size)
        return DEVID_ERR_CONFIG;
    memcpy(dir, path, n);
    dir[n] = '\0';
    return 0;
}

static int write_all(int fd, const uint8_t *data, size_t len)
{
    ssize_t w;

    while (len > 0) {
        w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

int store_write_atomic(const char *path, const uint8_t *data, size_t len, mode_t mode)
{
    char dir[PATH_MAX], tmp[PATH_MAX];
    int fd = -1, dfd = -1, n;
    int r = DEVID_ERR_INTERNAL;

    if (path == NULL || (data == NULL && len > 0))
        return DEVID_ERR_INVALID_ARGUMENT;
    tmp[0] = '\0';
    if (dir_of(dir, sizeof(dir), path) != 0 ||
        (n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path)) < 0 || (size_t)n >= sizeof(tmp)) {
        log_err("path %s is too long", path);
        tmp[0] = '\0';
        r = DEVID_ERR_CONFIG;
        goto out;
    }
    r = DEVID_ERR_IO;
    if ((fd = mkstemp(tmp)) < 0) {
        log_err("cannot create a temporary file for %s: %s", path, strerror(errno));
        tmp[0] = '\0';
        goto out;
    }
    if (fchmod(fd, mode) != 0) {
        log_err("cannot set mode %o on %s: %s", (unsigned)mode, tmp, strerror(errno));
        goto out;
    }
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        log_err("cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        log_err("cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        log_err("cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto out;
    }
    tmp[0] = '\0';
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(dfd) != 0) {
        log_err("cannot fsync directory %s: %s", dir, strerror(errno));
        goto out;
    }
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (tmp[0] != '\0')
        unlink(tmp);
    return r;
}

int store_read(uint8_t **out, size_t *out_len, const char *path, size_t max, char *why,
               size_t why_len)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    ssize_t n;
    int fd = -1;
    int r = DEVID_ERR_IO;

    if (out == NULL || out_len == NULL || path == NULL || why == NULL || why_len == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out = NULL;
    *out_len = 0;
    why[0] = '\0';
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(why, why_len, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? DEVID_ERR_NOT_FOUND : DEVID_ERR_IO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        snprintf(why, why_len, "%s: larger than %zu bytes", path, max);
        r = DEVID_ERR_TOO_LARGE;
        goto out;
    }
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        r = DEVID_ERR_ALLOC;
        goto out;
    }
    while (got < (size_t)st.st_size) {
        n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, why_len, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = buf;
    *out_len = got;
    buf = NULL;
    r = 0;
out:
    free(buf);
    close(fd);
    return r;
}

static int new_path(char *out, size_t size, const char *path)
{
    int n = snprintf(out, size, "%s.new", path);

    if (n < 0 || (size_t)n >= size) {
        log_err("path %s is too long", path);
        return DEVID_ERR_CONFIG;
    }
    return 0;
}

int store_stage(const char *path, const uint8_t *data, size_t len, mode_t mode)
{
    char staged[PATH_MAX];
    int r;

    if (path == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if ((r = new_path(staged, sizeof(staged), path)) != 0)
        return r;
    return store_write_atomic(staged, data, len, mode);
}

static int fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    int dfd, r = 0;

    if (dir_of(dir, sizeof(dir), path) != 0)
        return DEVID_ERR_CONFIG;
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(dfd) != 0) {
        log_err("cannot fsync directory %s: %s", dir, strerror(errno));
        r = DEVID_ERR_IO;
    }
    if (dfd >= 0)
        close(dfd);
    return r;
}

int store_commit(const char *path)
{
    char staged[PATH_MAX];
    int r;

    if (path == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    if ((r = new_path(staged, sizeof(staged), path)) != 0)
        return r;
    if (rename(staged, path) != 0) {
        log_err("cannot rename %s to %s: %s", staged, path, strerror(errno));
        return DEVID_ERR_IO;
    }
    return fsync_dir_of(path);
}

/* remove_temps unlinks the temporary files ("NAME.tmp.*", "NAME.new.tmp.*")
 * a crash during store_write_atomic leaves next to |path|. */
static void remove_temps(const char *path)
{
    char dir[PATH_MAX], pre1[PATH_MAX], pre2[PATH_MAX], victim[PATH_MAX];
    const char *base = strrchr(path, '/');
    struct dirent *e;
    DIR *d;

    base = base != NULL ? base + 1 : path;
    if (dir_of(dir, sizeof(dir), path) != 0 ||
        snprintf(pre1, sizeof(pre1), "%s.tmp.", base) >= (int)sizeof(pre1) ||
        snprintf(pre2, sizeof(pre2), "%s.new.tmp.", base) >= (int)sizeof(pre2) ||
        (d = opendir(dir)) == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, pre1, strlen(pre1)) != 0 &&
            strncmp(e->d_name, pre2, strlen(pre2)) != 0)
            continue;
        if (snprintf(victim, sizeof(victim), "%s/%s", dir, e->d_name) >= (int)sizeof(victim))
            continue;
        log_info("removing %s, left by an interrupted write", victim);
        if (unlink(victim) != 0)
            log_warn("cannot remove %s: %s", victim, strerror(errno));
    }
    closedir(d);
}

int store_recover(const char *const *paths, size_t n)
{
    char staged[PATH_MAX];
    struct stat st;
    size_t i;
    int forward, r;

    if (paths == NULL || n == 0)
        return DEVID_ERR_INVALID_ARGUMENT;
    if ((r = new_path(staged, sizeof(staged), paths[n - 1])) != 0)
        return r;
    forward = stat(staged, &st) == 0;
    for (i = 0; i < n; i++) {
        remove_temps(paths[i]);
        if ((r = new_path(staged, sizeof(staged), paths[i])) != 0)
            return r;
        if (stat(staged, &st) != 0)
            continue;
        if (forward) {
            log_info("finishing an interrupted write: %s -> %s", staged, paths[i]);
            if ((r = store_commit(paths[i])) != 0)
                return r;
        } else {
            log_info("removing %s, left by an interrupted write", staged);
            if (unlink(staged) != 0) {
                log_err("cannot remove %s: %s", staged, strerror(errno));
                return DEVID_ERR_IO;
            }
        }
    }
    if (!forward)
        return fsync_dir_of(paths[0]);
    return 0;
}

int store_remove(const char *path)
{
    if (path == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    remove_temps(path);
    if (unlink(path) != 0) {
        if (errno == ENOENT)
            return 0;
        log_err("cannot remove %s: %s", path, strerror(errno));
        return DEVID_ERR_IO;
    }
    return fsync_dir_of(path);
}
