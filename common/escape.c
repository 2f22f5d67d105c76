#include "common/escape.h"

#include <stdbool.h>
#include <string.h>

/* The escaped form of byte |c| in |buf|; returns its length (1, 2 or 4).
 * With |quotes|, '"' and '\\' are escaped too. */
static size_t escape_byte(char buf[4], unsigned char c, bool quotes)
{
    static const char hex[] = "0123456789abcdef";

    if (quotes && (c == '"' || c == '\\')) {
        buf[0] = '\\';
        buf[1] = (char)c;
        return 2;
    }
    if (c >= 0x20 && c <= 0x7e) {
        buf[0] = (char)c;
        return 1;
    }
    buf[0] = '\\';
    buf[1] = 'x';
    buf[2] = hex[c >> 4];
    buf[3] = hex[c & 15];
    return 4;
}

static char *escape(char *out, size_t out_size, const char *in, size_t in_len, bool quotes)
{
    char buf[4];
    size_t i, o = 0, total = 0, room;
    bool cut;

    if (out == NULL || out_size == 0)
        return out;
    if (in == NULL)
        in_len = 0;
    for (i = 0; i < in_len; i++)
        total += escape_byte(buf, (unsigned char)in[i], quotes);
    cut = total + 1 > out_size;
    room = out_size - 1 - (cut ? (out_size > 3 ? 3 : out_size - 1) : 0);
    for (i = 0; i < in_len; i++) {
        size_t n = escape_byte(buf, (unsigned char)in[i], quotes);

        if (o + n > room)
            break;
        memcpy(out + o, buf, n);
        o += n;
    }
    if (cut) {
        size_t dots = out_size - 1 - o < 3 ? out_size - 1 - o : 3;

        memcpy(out + o, "...", dots);
        o += dots;
    }
    out[o] = '\0';
    return out;
}

char *escape_str(char *out, size_t out_size, const char *in, size_t in_len)
{
    return escape(out, out_size, in, in_len, true);
}

char *escape_line(char *out, size_t out_size, const char *in, size_t in_len)
{
    return escape(out, out_size, in, in_len, false);
}
