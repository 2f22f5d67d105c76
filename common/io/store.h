/* Files devid writes and reads back: atomic replacement, bounded reads. */
#ifndef DEVID_COMMON_IO_STORE_H
#define DEVID_COMMON_IO_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * store_write_atomic replaces |path| with |len| bytes at |data| and file mode
 * |mode|: it writes a temporary file in the same directory, fsyncs it, renames
 * it over |path| and fsyncs the directory, so a reader sees the old or the new
 * contents, never a mix. Returns 0 or DEVID_ERR_IO (logged with the path).
 */
int store_write_atomic(const char *path, const uint8_t *data, size_t len, mode_t mode);

/*
 * store_read sets |*out| (malloc, with a NUL after the data) to the contents
 * of regular file |path| and |*out_len| to its length: the one file reader
 * devid has. On failure it writes the path and the reason to |why| and logs
 * nothing. Returns 0, DEVID_ERR_NOT_FOUND when the file does not exist,
 * DEVID_ERR_TOO_LARGE above |max| bytes, DEVID_ERR_IO, or DEVID_ERR_ALLOC.
 */
int store_read(uint8_t **out, size_t *out_len, const char *path, size_t max, char *why,
               size_t why_len);

/*
 * store_path writes "|dir|/|name|" to |out| (|out_size| bytes). Returns 0 or
 * DEVID_ERR_CONFIG when it does not fit.
 */
int store_path(char *out, size_t out_size, const char *dir, const char *name);

/*
 * store_stage writes |len| bytes at |data| to "|path|.new" with mode |mode|,
 * atomically and durably (as store_write_atomic), the first step of replacing
 * a set of files together. Returns 0 or DEVID_ERR_IO / DEVID_ERR_CONFIG.
 */
int store_stage(const char *path, const uint8_t *data, size_t len, mode_t mode);

/*
 * store_commit renames "|path|.new" over |path| and fsyncs the directory.
 * Returns 0, or DEVID_ERR_IO (logged).
 */
int store_commit(const char *path);

/*
 * store_recover finishes or undoes an interrupted replacement of the |n| files
 * at |paths|, staged in that order with store_stage and committed in that order
 * with store_commit. When "|paths[n-1]|.new" exists every file was staged, so
 * the commits still pending are done (roll forward); otherwise the staged
 * files are removed (roll back). Either way the set is whole again: all old or
 * all new. Returns 0 or DEVID_ERR_IO.
 */
int store_recover(const char *const *paths, size_t n);

/*
 * store_remove unlinks |path| (and the temporary files an interrupted
 * store_write_atomic of it left) and fsyncs the directory, so the removal is
 * durable. A missing file is not an error. Returns 0 or DEVID_ERR_IO.
 */
int store_remove(const char *path);

#endif
