/* INI config parsing shared by every devid configuration file: libinih
 * over a memory buffer, with errors that name the file, the line and the key.
 * Pure: the caller reads the file. */
#ifndef DEVID_COMMON_CONF_H
#define DEVID_COMMON_CONF_H

#include <stddef.h>

/* Longest line accepted (libinih's INI_MAX_LINE less the newline). */
#define CONF_MAX_LINE 199
/* Largest config buffer accepted. */
#define CONF_MAX_SIZE (1024 * 1024)

/*
 * A conf_handler gets each key = value of |section| and returns 0, or -1 with
 * a reason (without file or line) in |err|.
 */
typedef int (*conf_handler)(void *arg, const char *section, const char *key, const char *value,
                            char *err, size_t err_len);

/*
 * conf_parse parses |len| bytes at |buf| as INI and calls |handler| for each
 * key. Lines longer than CONF_MAX_LINE, NUL bytes and syntax errors are
 * refused. On failure writes "FILE:LINE: reason" (|file| names the buffer) to
 * |why| and returns DEVID_ERR_CONFIG (or DEVID_ERR_ALLOC). Returns 0 on
 * success.
 */
int conf_parse(const char *buf, size_t len, const char *file, conf_handler handler, void *arg,
               char *why, size_t why_len);

/* conf_bool sets |*out| from "yes"/"true"/"on"/"1" or "no"/"false"/"off"/"0".
 * Returns 0 or -1. */
int conf_bool(const char *value, int *out);

/* conf_uint sets |*out| from a decimal in [min, max]. Returns 0 or -1. */
int conf_uint(const char *value, unsigned min, unsigned max, unsigned *out);

#endif
