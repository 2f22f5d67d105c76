/* devid-verifier check-idevid: the offline IDevID check for operators. */
#ifndef DEVID_VERIFIER_CMD_CHECK_H
#define DEVID_VERIFIER_CMD_CHECK_H

/* cmd_check_idevid_main runs `devid-verifier check-idevid`: the chain,
 * identity and policy checks a device faces before any TPM evidence, stage by
 * stage. Returns the exit code (0 accepted, 1 refused). */
int cmd_check_idevid_main(int argc, char **argv);

#endif
