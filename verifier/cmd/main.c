/* devid-verifier: subcommands from a table, one *_main each. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "verifier/cmd/cmd.h"

const char *cmd_prog = "devid-verifier";

int cmd_parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    unsigned long v;

    if (s == NULL || *s == '\0' || *s == '-')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int cmd_exit_for(int r)
{
    switch (r) {
        case 0:
            return 0;
        case DEVID_ERR_IO:
            return EXIT_NOINPUT;
        case DEVID_ERR_CONFIG:
            return EXIT_CONFIG;
        default:
            return EXIT_SOFTWARE;
    }
}

static int help_main(int argc, char **argv);

static const struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *description;
} subcommands[] = {
    {"serve", serve_main, "run the enrollment service"},
    {"check-idevid", check_idevid_main, "check an IDevID certificate offline"},
    {"list", list_main, "list recorded issuances"},
    {"show", show_main, "show one issuance and its evidence"},
    {"revoke", revoke_main, "revoke operational certificates in the ledger"},
    {"crl", crl_main, "write a signed CRL of the revoked certificates"},
    {"help", help_main, "show this help"},
};

static int help_main(int argc, char **argv)
{
    size_t i;

    printf("usage: %s <command> [options]\n\ncommands:\n", cmd_prog);
    for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        printf("  %-14s %s\n", subcommands[i].name, subcommands[i].description);
    printf("\n`%s <command> --help` describes each command.\n", cmd_prog);
    return 0;
}

int main(int argc, char **argv)
{
    size_t i;

    if (argc < 2) {
        help_main(argc, argv);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return help_main(argc, argv);
    if (strcmp(argv[1], "--version") == 0) {
        printf("%s %s\n", cmd_prog, DEVID_VERSION);
        return 0;
    }
    for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "%s: unknown command \"%s\"; try `%s --help`\n", cmd_prog, argv[1], cmd_prog);
    return EXIT_USAGE;
}
