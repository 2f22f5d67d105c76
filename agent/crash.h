/* The crash test hook: the agent kills itself at a named point, as a power
 * cut would, so the integration tests can show that the next run repairs
 * every interrupted one. Compiled into every build; docs/agent.md documents it. */
#ifndef DEVID_AGENT_CRASH_H
#define DEVID_AGENT_CRASH_H

/* The environment variable that names the point. */
#define CRASH_ENV "DEVID_AGENT_CRASH_AT"

/*
 * crash_point kills the agent with SIGKILL when DEVID_AGENT_CRASH_AT names
 * |point|, and returns otherwise. Points, in the order a run reaches them:
 * key-created, response, write, commit, renew-evict (renew only), persist.
 */
void crash_point(const char *point);

#endif
