/* devid-verifier serve: the enrollment service. */
#ifndef DEVID_VERIFIER_CMD_SERVE_H
#define DEVID_VERIFIER_CMD_SERVE_H

/* cmd_serve_main runs `devid-verifier serve`: reads the configuration file,
 * applies the options, loads the keys and serves until SIGTERM or SIGINT.
 * Returns the exit code. */
int cmd_serve_main(int argc, char **argv);

#endif
