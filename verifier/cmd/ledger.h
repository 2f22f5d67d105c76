/* devid-verifier list, show, revoke and crl: the operator's view of the
 * issuance ledger. */
#ifndef DEVID_VERIFIER_CMD_LEDGER_H
#define DEVID_VERIFIER_CMD_LEDGER_H

/* cmd_list_main runs `devid-verifier list`. Returns the exit code. */
int cmd_list_main(int argc, char **argv);

/* cmd_show_main runs `devid-verifier show`. Returns the exit code. */
int cmd_show_main(int argc, char **argv);

/* cmd_revoke_main runs `devid-verifier revoke`. Returns the exit code. */
int cmd_revoke_main(int argc, char **argv);

/* cmd_crl_main runs `devid-verifier crl`. Returns the exit code. */
int cmd_crl_main(int argc, char **argv);

#endif
