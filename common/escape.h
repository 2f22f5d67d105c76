/* Client-controlled text in logs and command output: escaped so that one
 * field can never end and another begin. */
#ifndef DEVID_COMMON_ESCAPE_H
#define DEVID_COMMON_ESCAPE_H

#include <stddef.h>

/* Longest escaped form of |n| input bytes, NUL included. */
#define ESCAPE_SIZE(n) (4 * (n) + 1)

/*
 * escape_str writes |in| (|in_len| bytes; NUL bytes included) to |out|
 * (|out_size| bytes, always NUL-terminated) so that it can stand inside a
 * double-quoted log field: '"' and '\' become \" and \\, and every byte
 * outside printable ASCII (0x20-0x7e), newlines and NUL included, becomes
 * \xHH. Output that does not fit is cut at a character boundary and ends in
 * "...". Returns |out|.
 */
char *escape_str(char *out, size_t out_size, const char *in, size_t in_len);

/*
 * escape_line is escape_str for free text that ends a line rather than
 * stands in quotes: only bytes outside printable ASCII become \xHH, so the
 * text cannot end its line; '"' and '\' stay as they are. Returns |out|.
 */
char *escape_line(char *out, size_t out_size, const char *in, size_t in_len);

#endif
