/* The agent's configuration parser (agent/core/config.h): the input is an
 * agent.conf, parsed on top of the defaults and then checked, as devid-agent
 * does with /etc/devid/agent.conf. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agent_config cfg;
    char err[512], *text;

    if (size > CONFIG_FILE_MAX || (text = malloc(size + 1)) == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (agent_config_init(&cfg) == 0) {
        if (agent_config_parse(&cfg, err, sizeof(err), text, "fuzz.conf") == 0)
            (void)agent_config_check(&cfg, err, sizeof(err));
        agent_config_cleanup(&cfg);
    }
    free(text);
    return 0;
}
