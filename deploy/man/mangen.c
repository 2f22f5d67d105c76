/* devid-mangen: prints the verifier's configuration key table, one key a
 * line, for mangen.py to turn into devid-verifier.conf(5). The table in
 * verifier/core/config.c is the one source of the keys, `serve`'s options and
 * their help; the pages are built from it and from the binaries' --help. */
#include <stdio.h>
#include <string.h>

#include "verifier/core/config.h"

/* Prints |s| with each newline as a space and each tab as a space, so that a
 * field never holds the separators. */
static void field(const char *s)
{
    for (; *s != '\0'; s++)
        putchar(*s == '\n' || *s == '\t' ? ' ' : *s);
}

int main(int argc, char **argv)
{
    const struct verifier_config_option *o;
    const char *section, *name;
    size_t i;

    if (argc != 2 || strcmp(argv[1], "verifier-keys") != 0) {
        fprintf(stderr, "usage: devid-mangen verifier-keys\n");
        return 64;
    }
    for (i = 0; verifier_config_get0_key(i, &section, &name) == 0; i++) {
        if ((o = verifier_config_get0_option(i)) == NULL)
            return 70;
        printf("%s\t%s\t%s\t%s\t", section, name, o->name, o->arg);
        field(o->help);
        putchar('\n');
    }
    return fflush(stdout) == 0 ? 0 : 70;
}
