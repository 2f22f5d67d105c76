#include "verifier/core/assurance.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"

static const char *const names[ASSURANCE_LEVELS] = {"none", "ek", "iak"};

const char *assurance_str(enum assurance a)
{
    if ((unsigned)a >= ASSURANCE_LEVELS)
        return "unknown";
    return names[a];
}

int assurance_parse(enum assurance *out, const char *s)
{
    size_t i;

    if (out == NULL || s == NULL)
        return DEVID_ERR_INVALID_ARGUMENT;
    for (i = 0; i < ASSURANCE_LEVELS; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum assurance)i;
            return 0;
        }
    }
    return DEVID_ERR_CONFIG;
}

int assurance_arc_valid(const char *arc)
{
    size_t i, n, arcs = 0, digits = 0;

    if (arc == NULL || (n = strlen(arc)) == 0 || n > ASSURANCE_ARC_MAX)
        return 0;
    if (arc[0] < '0' || arc[0] > '2' || (n > 1 && arc[1] != '.'))
        return 0;
    for (i = 0; i <= n; i++) {
        if (arc[i] == '.' || arc[i] == '\0') {
            if (digits == 0)
                return 0;
            arcs++;
            digits = 0;
        } else if (arc[i] >= '0' && arc[i] <= '9') {
            if (digits == 1 && arc[i - 1] == '0')
                return 0;
            digits++;
        } else {
            return 0;
        }
    }
    return arcs >= 2;
}

int assurance_policy_oid(char *buf, size_t len, const char *arc, enum assurance a)
{
    int n;

    if (buf == NULL || len == 0 || !assurance_arc_valid(arc) || (unsigned)a >= ASSURANCE_LEVELS)
        return DEVID_ERR_INVALID_ARGUMENT;
    n = snprintf(buf, len, "%s.%u", arc, (unsigned)a + 1);
    if (n < 0 || (size_t)n >= len)
        return DEVID_ERR_INVALID_ARGUMENT;
    return 0;
}
