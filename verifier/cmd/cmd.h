/* devid-verifier's subcommands and the helpers they share. */
#ifndef DEVID_VERIFIER_CMD_CMD_H
#define DEVID_VERIFIER_CMD_CMD_H

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

/* cmd_exit_for returns the exit code for DEVID_ERR_* code |r|. */
int cmd_exit_for(int r);

/* serve_main runs `devid-verifier serve`. Returns the exit code. */
int serve_main(int argc, char **argv);

/* check_idevid_main runs `devid-verifier check-idevid`. Returns the exit code. */
int check_idevid_main(int argc, char **argv);

/* revoke_main runs `devid-verifier revoke` (cmd_ledger.c). Returns the exit code. */
int revoke_main(int argc, char **argv);

/* crl_main runs `devid-verifier crl` (cmd_ledger.c). Returns the exit code. */
int crl_main(int argc, char **argv);

/* list_main runs `devid-verifier list` (cmd_ledger.c). Returns the exit code. */
int list_main(int argc, char **argv);

/* show_main runs `devid-verifier show` (cmd_ledger.c). Returns the exit code. */
int show_main(int argc, char **argv);

#endif
