/* Bytes as lowercase hex and back: the one hex codec for the ledger's
 * columns, fingerprints and operator output. Pure and header only, so every
 * library that includes it (cores and shells) has it without a link. */
#ifndef DEVID_COMMON_HEX_H
#define DEVID_COMMON_HEX_H

#include <stddef.h>
#include <stdint.h>

/* hex_encode writes the |len| bytes at |in| to |out| as 2 * |len| lowercase
 * hex digits and a NUL (|out| holds 2 * |len| + 1 bytes). */
static inline void hex_encode(char *out, const uint8_t *in, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* hex_digit returns the value of hex digit |c| (either case), or -1. */
static inline int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* hex_decode parses NUL-terminated |in|, exactly 2 * |len| hex digits, into
 * the |len| bytes at |out|. Returns 0, or -1 (|out| then undefined). */
static inline int hex_decode(uint8_t *out, size_t len, const char *in)
{
    size_t i;
    int hi, lo;

    for (i = 0; i < len; i++) {
        if ((hi = hex_digit(in[2 * i])) < 0 || (lo = hex_digit(in[2 * i + 1])) < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return in[2 * len] == '\0' ? 0 : -1;
}

#endif
