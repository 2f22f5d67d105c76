/* The verifier's configuration file: the input is parsed as verifier.conf
 * (verifier_config_parse) over the defaults, and, as a command line would,
 * one option is set from it: the first byte picks the option, the rest is
 * the value (verifier_config_set_option). No fixture needed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "verifier/core/config.h"

static void set_option(const uint8_t *data, size_t size)
{
    struct verifier_config c;
    size_t n = 0;
    char *value, why[512];

    while (verifier_config_get0_option(n) != NULL)
        n++;
    if (size == 0 || n == 0 || (value = malloc(size)) == NULL)
        return;
    memcpy(value, data + 1, size - 1);
    value[size - 1] = '\0';
    if (verifier_config_init(&c) == 0)
        verifier_config_set_option(&c, data[0] % n, value, why, sizeof(why));
    verifier_config_cleanup(&c);
    free(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct verifier_config c;
    char why[512];

    if (verifier_config_init(&c) == 0)
        verifier_config_parse(&c, (const char *)data, size, "fuzz.conf", why, sizeof(why));
    verifier_config_cleanup(&c);
    set_option(data, size);
    return 0;
}
