/* devid-verifier: subcommands from a table, one *_main each. */
#include <stdio.h>
#include <string.h>

#include "verifier/cmd/audit.h"
#include "verifier/cmd/check.h"
#include "verifier/cmd/cmd.h"
#include "verifier/cmd/ledger.h"
#include "verifier/cmd/serve.h"

static int help_main(int argc, char **argv);

static const struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *description;
} subcommands[] = {
    {"serve", cmd_serve_main, "run the enrollment service"},
    {"check-idevid", cmd_check_idevid_main, "check an IDevID certificate offline"},
    {"list", cmd_list_main, "list recorded issuances"},
    {"show", cmd_show_main, "show one issuance and its evidence"},
    {"revoke", cmd_revoke_main, "revoke operational certificates in the ledger"},
    {"crl", cmd_crl_main, "write a signed CRL of the revoked certificates"},
    {"audit", cmd_audit_main, "check the ledger against a signed head of its issuance log"},
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
