#include "agent/fileset.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "agent/core/renew.h"
#include "agent/crash.h"
#include "common/err.h"
#include "common/io/log.h"
#include "common/io/store.h"
#include "common/pem.h"

/* Largest marker read: "renewing " and the longest serial. */
#define MARKER_MAX 256

/* The three files in the order they are staged and committed: the
 * certificate last, as the commit mark. */
static const char *const set_names[3] = {FILESET_KEY, FILESET_CHAIN, FILESET_CERT};

int fileset_path(char *out, size_t out_size, const struct agent_config *cfg, const char *name)
{
    return store_path(out, out_size, cfg->out_dir, name);
}

static int set_paths(char paths[3][PATH_MAX], const struct agent_config *cfg)
{
    int i, r;

    for (i = 0; i < 3; i++) {
        if ((r = fileset_path(paths[i], PATH_MAX, cfg, set_names[i])) != 0)
            return r;
    }
    return 0;
}

static int ensure_dir(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        log_err("cannot create output directory %s: %s", dir, strerror(errno));
        return DEVID_ERR_IO;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        log_err("output path %s is not a directory", dir);
        return DEVID_ERR_IO;
    }
    return 0;
}

int fileset_prepare(const struct agent_config *cfg)
{
    char paths[3][PATH_MAX];
    const char *const order[3] = {paths[0], paths[1], paths[2]};
    int r;

    if ((r = ensure_dir(cfg->out_dir)) != 0 || (r = set_paths(paths, cfg)) != 0)
        return r;
    return store_recover(order, 3);
}

/* read_path is store_read that logs why, except for a missing file, which
 * the caller reports in its own words. */
static int read_path(uint8_t **out, size_t *out_len, const char *path, size_t max)
{
    char why[PATH_MAX + 128];
    int r = store_read(out, out_len, path, max, why, sizeof(why));

    if (r != 0 && r != DEVID_ERR_NOT_FOUND)
        log_err("cannot read %s", why);
    return r;
}

int fileset_read(uint8_t **out, size_t *out_len, const struct agent_config *cfg, const char *name)
{
    char path[PATH_MAX];
    int r;

    *out = NULL;
    *out_len = 0;
    if ((r = fileset_path(path, sizeof(path), cfg, name)) != 0)
        return r;
    return read_path(out, out_len, path, FILESET_FILE_MAX);
}

int fileset_read_cert(X509 **out, const struct agent_config *cfg)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char why[256];
    int r;

    *out = NULL;
    if ((r = fileset_read(&buf, &len, cfg, FILESET_CERT)) != 0)
        return r;
    r = pem_parse_cert(out, buf, len, 0, why, sizeof(why));
    free(buf);
    return r == DEVID_ERR_ALLOC ? r : r != 0 ? DEVID_ERR_CONFIG : 0;
}

/* to_pem sets |*out| (malloc) to |cert| (when set) and then |chain| as PEM. */
static int to_pem(char **out, size_t *out_len, X509 *cert, STACK_OF(X509) *chain)
{
    BIO *bio = NULL;
    char *mem = NULL;
    long n;
    int r = DEVID_ERR_ALLOC;

    *out = NULL;
    *out_len = 0;
    if ((bio = BIO_new(BIO_s_mem())) == NULL)
        goto out;
    if ((cert != NULL && PEM_write_bio_X509(bio, cert) != 1) ||
        (chain != NULL && pem_write_certs(bio, chain) != 0))
        goto out;
    n = BIO_get_mem_data(bio, &mem);
    if (n < 0 || (*out = malloc((size_t)n + 1)) == NULL)
        goto out;
    if (n > 0)
        memcpy(*out, mem, (size_t)n);
    *out_len = (size_t)n;
    r = 0;
out:
    BIO_free(bio);
    return r;
}

int fileset_write(char *cert_path, size_t cert_path_size, const struct agent_config *cfg,
                  const char *key_pem, size_t key_pem_len, X509 *cert, STACK_OF(X509) *chain)
{
    char paths[3][PATH_MAX];
    char *chain_pem = NULL, *cert_pem = NULL;
    size_t chain_len = 0, cert_len = 0;
    int i, r = DEVID_ERR_INTERNAL;

    if ((r = set_paths(paths, cfg)) != 0)
        goto out;
    if ((r = to_pem(&chain_pem, &chain_len, NULL, chain)) != 0 ||
        (r = to_pem(&cert_pem, &cert_len, cert, NULL)) != 0)
        goto out;
    if ((r = store_stage(paths[0], (const uint8_t *)key_pem, key_pem_len, 0600)) != 0)
        goto out;
    crash_point("write");
    if ((r = store_stage(paths[1], (const uint8_t *)chain_pem, chain_len, 0644)) != 0 ||
        (r = store_stage(paths[2], (const uint8_t *)cert_pem, cert_len, 0644)) != 0)
        goto out;
    for (i = 0; i < 3; i++) {
        if ((r = store_commit(paths[i])) != 0)
            goto out;
        if (i == 0)
            crash_point("commit");
    }
    snprintf(cert_path, cert_path_size, "%s", paths[2]);
    r = 0;
out:
    free(chain_pem);
    free(cert_pem);
    return r;
}

int fileset_marker_read(bool *present, char *serial, size_t serial_size,
                        const struct agent_config *cfg)
{
    char path[PATH_MAX];
    uint8_t *buf = NULL;
    size_t len = 0;
    int r;

    *present = false;
    serial[0] = '\0';
    if ((r = fileset_path(path, sizeof(path), cfg, FILESET_MARKER)) != 0)
        return r;
    if ((r = read_path(&buf, &len, path, MARKER_MAX)) == DEVID_ERR_NOT_FOUND)
        return 0;
    if (r != 0)
        return r;
    *present = true;
    if (renew_marker_parse(serial, serial_size, buf, len) != 0) {
        log_warn("%s is malformed: treating it as a renewal interrupted before its end", path);
        serial[0] = '\0';
    }
    free(buf);
    return 0;
}

int fileset_marker_write(const struct agent_config *cfg, const char *serial_hex)
{
    char path[PATH_MAX], marker[RENEW_SERIAL_HEX_MAX + 32];
    size_t len = 0;
    int r;

    if ((r = renew_marker_format(marker, sizeof(marker), &len, serial_hex)) != 0)
        return r;
    if ((r = fileset_path(path, sizeof(path), cfg, FILESET_MARKER)) != 0)
        return r;
    return store_write_atomic(path, (const uint8_t *)marker, len, 0644);
}

int fileset_marker_remove(const struct agent_config *cfg)
{
    char path[PATH_MAX];
    int r;

    if ((r = fileset_path(path, sizeof(path), cfg, FILESET_MARKER)) != 0)
        return r;
    return store_remove(path);
}
