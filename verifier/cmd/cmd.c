#include "verifier/cmd/cmd.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/escape.h"

/* Most options one subcommand declares. */
#define MAX_OPTIONS 64
/* The column help text starts in. */
#define HELP_COLUMN 27

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
        case DEVID_ERR_NOT_FOUND:
            return EXIT_NOINPUT;
        case DEVID_ERR_CONFIG:
            return EXIT_CONFIG;
        default:
            return EXIT_SOFTWARE;
    }
}

/* The index in |opts| of what getopt_long returned, or -1. */
static int option_index(int c, const struct cmd_option *opts, size_t n)
{
    size_t i;

    if (c >= 256 && (size_t)(c - 256) < n)
        return c - 256;
    for (i = 0; i < n; i++) {
        if (opts[i].short_name != 0 && opts[i].short_name == c)
            return (int)i;
    }
    return -1;
}

static int apply(const struct cmd_option *o, const char *arg, cmd_option_fn fn, void *ctx)
{
    unsigned long v;

    switch (o->kind) {
        case CMD_OPT_STRING:
            *(const char **)o->dest = arg;
            return 0;
        case CMD_OPT_FLAG:
            *(int *)o->dest = 1;
            return 0;
        case CMD_OPT_ULONG:
            if (cmd_parse_ulong(arg, o->min, o->max, &v) != 0) {
                if (o->want != NULL)
                    fprintf(stderr, "%s: --%s wants %s\n", cmd_prog, o->name, o->want);
                else
                    fprintf(stderr, "%s: --%s wants %lu to %lu\n", cmd_prog, o->name, o->min,
                            o->max);
                return -1;
            }
            *(unsigned long *)o->dest = v;
            return 0;
        case CMD_OPT_CALL:
            return fn != NULL ? fn(ctx, o->id, arg) : -1;
    }
    return -1;
}

enum cmd_parse_result cmd_parse_options(int argc, char **argv, const struct cmd_option *opts,
                                        size_t n, cmd_option_fn fn, void *ctx)
{
    struct option longopts[MAX_OPTIONS + 2];
    char shortopts[2 * MAX_OPTIONS + 2] = "h";
    size_t i, s = 1;
    int c, idx;

    if (n > MAX_OPTIONS)
        return CMD_BAD_OPTION;
    for (i = 0; i < n; i++) {
        longopts[i].name = opts[i].name;
        longopts[i].has_arg = opts[i].kind == CMD_OPT_FLAG ? no_argument : required_argument;
        longopts[i].flag = NULL;
        longopts[i].val = opts[i].short_name != 0 ? opts[i].short_name : 256 + (int)i;
        if (opts[i].short_name != 0) {
            shortopts[s++] = opts[i].short_name;
            if (opts[i].kind != CMD_OPT_FLAG)
                shortopts[s++] = ':';
        }
    }
    shortopts[s] = '\0';
    longopts[n] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n + 1] = (struct option){NULL, 0, NULL, 0};
    optind = 1;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (c == 'h')
            return CMD_HELP;
        if ((idx = option_index(c, opts, n)) < 0)
            return CMD_BAD_OPTION;
        if (apply(&opts[idx], optarg, fn, ctx) != 0)
            return CMD_BAD_VALUE;
    }
    return CMD_PARSED;
}

int cmd_usage_exit(enum cmd_parse_result parsed, void (*usage)(FILE *f))
{
    switch (parsed) {
        case CMD_PARSED:
            return 0;
        case CMD_HELP:
            usage(stdout);
            return 0;
        case CMD_BAD_OPTION:
            usage(stderr);
            return EXIT_USAGE;
        case CMD_BAD_VALUE:
            return EXIT_USAGE;
    }
    return EXIT_USAGE;
}

void cmd_print_options(FILE *f, const struct cmd_option *opts, size_t n)
{
    char first[128];
    const char *line, *nl;
    size_t i;

    for (i = 0; i < n; i++) {
        if (opts[i].help == NULL)
            continue;
        if (opts[i].short_name != 0)
            snprintf(first, sizeof(first), "-%c, --%s%s%s", opts[i].short_name, opts[i].name,
                     opts[i].arg != NULL ? " " : "", opts[i].arg != NULL ? opts[i].arg : "");
        else
            snprintf(first, sizeof(first), "--%s%s%s", opts[i].name, opts[i].arg != NULL ? " " : "",
                     opts[i].arg != NULL ? opts[i].arg : "");
        /* An option longer than the column gets its help on the next line. */
        if (strlen(first) + 2 >= HELP_COLUMN)
            fprintf(f, "  %s\n%*s", first, HELP_COLUMN, "");
        else
            fprintf(f, "  %-*s", HELP_COLUMN - 2, first);
        for (line = opts[i].help; (nl = strchr(line, '\n')) != NULL; line = nl + 1)
            fprintf(f, "%.*s\n%*s", (int)(nl - line), line, HELP_COLUMN, "");
        fprintf(f, "%s\n", line);
    }
}

const char *cmd_text(char *buf, size_t len, const char *s)
{
    return escape_str(buf, len, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

const char *cmd_line(char *buf, size_t len, const char *s)
{
    return escape_line(buf, len, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}
