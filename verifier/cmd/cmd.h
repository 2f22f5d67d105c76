/* What devid-verifier's subcommands share: exit codes, the program name and
 * one option parser, so each *_main declares its options as a table. */
#ifndef DEVID_VERIFIER_CMD_CMD_H
#define DEVID_VERIFIER_CMD_CMD_H

#include <stddef.h>
#include <stdio.h>

#include "common/escape.h"

/* Exit codes (sysexits.h values where one fits). */
enum {
    EXIT_REFUSED = 1,
    EXIT_USAGE = 64,
    EXIT_NOINPUT = 66,
    EXIT_SOFTWARE = 70,
    EXIT_CONFIG = 78,
};

/* The program name used in messages. */
extern const char *cmd_prog;

/* cmd_parse_ulong parses decimal |s| into |*out| when it lies in [min, max].
 * Returns 0, or -1 for anything else (sign, junk, overflow, range). */
int cmd_parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/* Room for cmd_text of a value of up to 512 bytes. */
#define CMD_TEXT_MAX ESCAPE_SIZE(512)

/* cmd_text writes |s| (NULL: "") to |buf| (|len| bytes) escaped with
 * escape_str, so that text from a certificate or a device (a subject, a
 * model, a serial) cannot end its line or field in command output. Returns
 * |buf|. */
const char *cmd_text(char *buf, size_t len, const char *s);

/* cmd_line is cmd_text for free text at the end of a line (a reason): only
 * bytes outside printable ASCII are escaped (escape_line). Returns |buf|. */
const char *cmd_line(char *buf, size_t len, const char *s);

/* cmd_exit_for returns the exit code for DEVID_ERR_* code |r|. */
int cmd_exit_for(int r);

/* What an option does with its argument. */
enum cmd_option_kind {
    /* *(const char **)dest = the argument (borrowed from argv). */
    CMD_OPT_STRING,
    /* *(unsigned long *)dest = the argument, a decimal in [min, max]. */
    CMD_OPT_ULONG,
    /* *(int *)dest = 1; the option takes no argument. */
    CMD_OPT_FLAG,
    /* The parser's callback is called with |id| and the argument. */
    CMD_OPT_CALL,
};

/* One option of a subcommand. */
struct cmd_option {
    /* The long option, without "--". */
    const char *name;
    enum cmd_option_kind kind;
    void *dest;
    /* CMD_OPT_ULONG: the accepted range, and what a refusal says it wants
     * (NULL: "MIN to MAX"). */
    unsigned long min, max;
    const char *want;
    /* CMD_OPT_CALL: passed to the callback. */
    int id;
    /* A one-letter short form, or 0. */
    char short_name;
    /* For cmd_print_options: the argument's name and the help text (lines
     * separated by '\n'); NULL help: not listed. */
    const char *arg;
    const char *help;
};

/* A CMD_OPT_CALL callback: returns 0, or nonzero after printing why |arg|
 * is refused. */
typedef int (*cmd_option_fn)(void *ctx, int id, const char *arg);

/* What cmd_parse_options found. */
enum cmd_parse_result {
    CMD_PARSED = 0,
    CMD_HELP,
    CMD_BAD_VALUE,
    CMD_BAD_OPTION,
};

/*
 * cmd_parse_options parses the options of argv (argv[0] is the subcommand)
 * against the |n| options at |opts| and -h/--help, calling |fn| with |ctx|
 * for CMD_OPT_CALL options. Returns CMD_PARSED with optind at the first
 * operand; CMD_HELP for --help; CMD_BAD_VALUE after printing why a value was
 * refused; CMD_BAD_OPTION for an option it does not know (getopt printed it).
 */
enum cmd_parse_result cmd_parse_options(int argc, char **argv, const struct cmd_option *opts,
                                        size_t n, cmd_option_fn fn, void *ctx);

/*
 * cmd_usage_exit returns the exit code for a parse that did not end in
 * CMD_PARSED, after printing |usage| to stdout for CMD_HELP or to stderr for
 * CMD_BAD_OPTION.
 */
int cmd_usage_exit(enum cmd_parse_result parsed, void (*usage)(FILE *f));

/*
 * cmd_print_options prints one "  --name ARG   help" entry per option of
 * |opts| that has help, continuation lines aligned under the first.
 */
void cmd_print_options(FILE *f, const struct cmd_option *opts, size_t n);

#endif
