#include "agent/core/renew.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"

#define MARKER_PREFIX "renewing "

/* ceil_offset returns ceil(|renew_at| * |lifetime|), at most |lifetime|,
 * without libm: the cast truncates a value below |lifetime|, so it fits. */
static int64_t ceil_offset(double renew_at, int64_t lifetime)
{
    double x = renew_at * (double)lifetime;
    int64_t whole;

    if (x >= (double)lifetime)
        return lifetime;
    whole = (int64_t)x;
    if ((double)whole < x)
        whole++;
    return whole < lifetime ? whole : lifetime;
}

int renew_schedule(bool *due, int64_t *due_at, int64_t not_before, int64_t not_after, int64_t now,
                   double renew_at)
{
    int64_t lifetime;

    if (due == NULL || due_at == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *due = false;
    *due_at = 0;
    if (!(renew_at > 0.0 && renew_at <= 1.0) || not_after <= not_before ||
        (not_before < 0 && not_after > INT64_MAX + not_before))
        return DEVID_ERR_INVALID_ARGUMENT;
    lifetime = not_after - not_before;
    /* elapsed < renew_at * lifetime  <=>  elapsed < ceil(renew_at * lifetime)
     * for a whole number of seconds, so the first due second is exact. */
    *due_at = not_before + ceil_offset(renew_at, lifetime);
    *due = now >= *due_at;
    return 0;
}

static bool lower_hex(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > RENEW_SERIAL_HEX_MAX)
        return false;
    for (i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

int renew_marker_format(char *out, size_t out_size, size_t *out_len, const char *serial_hex)
{
    int n;

    if (out == NULL || out_len == NULL || serial_hex == NULL ||
        !lower_hex(serial_hex, strnlen(serial_hex, RENEW_SERIAL_HEX_MAX + 1)))
        return DEVID_ERR_INVALID_ARGUMENT;
    n = snprintf(out, out_size, MARKER_PREFIX "%s\n", serial_hex);
    if (n < 0 || (size_t)n >= out_size)
        return DEVID_ERR_INVALID_ARGUMENT;
    *out_len = (size_t)n;
    return 0;
}

int renew_marker_parse(char *serial_hex, size_t serial_size, const uint8_t *buf, size_t len)
{
    const size_t plen = sizeof(MARKER_PREFIX) - 1;
    const char *s = (const char *)buf;
    size_t n;

    if (serial_hex == NULL || serial_size < RENEW_SERIAL_HEX_MAX + 1 || buf == NULL)
        return DEVID_ERR_BAD_REQUEST;
    if (len < plen + 2 || memcmp(s, MARKER_PREFIX, plen) != 0 || s[len - 1] != '\n')
        return DEVID_ERR_BAD_REQUEST;
    n = len - plen - 1;
    if (!lower_hex(s + plen, n))
        return DEVID_ERR_BAD_REQUEST;
    memcpy(serial_hex, s + plen, n);
    serial_hex[n] = '\0';
    return 0;
}

int renew_decide(enum renew_action *action, int64_t *due_at, const struct renew_facts *facts)
{
    bool due = false;
    int r;

    if (action == NULL || due_at == NULL || facts == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    *action = RENEW_ACTION_ENROLL;
    *due_at = 0;
    if (facts->marker) {
        if (facts->marker_serial == NULL || facts->cert_serial == NULL ||
            strcmp(facts->marker_serial, facts->cert_serial) == 0)
            *action = RENEW_ACTION_REDO;
        else
            *action = RENEW_ACTION_FINISH;
        return 0;
    }
    if (!facts->renew || !facts->enrolled)
        return 0;
    if ((r = renew_schedule(&due, due_at, facts->not_before, facts->not_after, facts->now,
                            facts->renew_at)) != 0)
        return r;
    *action = due || facts->force ? RENEW_ACTION_START : RENEW_ACTION_NOT_DUE;
    return 0;
}
